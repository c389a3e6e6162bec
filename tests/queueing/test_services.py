from datetime import timedelta

import pytest
from django.utils import timezone

from queueing.models import QueueAdmission
from queueing.redis_queue import queue_keys, queue_pipeline, queue_redis, run_script, to_ms
from queueing.scripts import POST_OPENING_BASE
from queueing.selectors import queue_stats, session_prior_ms
from queueing.services import (
    queue_admit_tick,
    queue_enter,
    queue_leave,
    queue_poll,
    queue_release,
)
from queueing.tokens import token_verify
from tests.concerts.factories import ConcertFactory
from tests.concurrency import run_concurrently


@pytest.fixture(autouse=True)
def _poll_gate_off(settings):
    """These tests read positions many times at the same instant; the poll gate (429 for a
    poll before its time) has its own tests in test_polling.py."""
    settings.QUEUE_POLL_GATE = False


def status_of(concert, user_id, token, now=None, touch=True):
    return queue_poll(
        concert=concert,
        user_id=user_id,
        token=token_verify(token, user_id=user_id),
        now=now,
        touch=touch,
    )


def tick_every_second(concert, start, end) -> None:
    """Admission ticks from `start` to `end`, one a second, as beat sends them: a longer gap
    between two ticks would read as an outage (scripts.py)."""
    moment = start
    while moment <= end:
        queue_admit_tick(concert=concert, now=moment)
        moment += timedelta(seconds=1)


@pytest.mark.django_db(transaction=True)
def test_a_thousand_concurrent_entries_get_positions_one_to_a_thousand():
    concert = ConcertFactory()

    entries = run_concurrently(1000, lambda i: queue_enter(concert_id=concert.id, user_id=i + 1))

    assert all(entry.created for entry in entries)
    # The position each customer was told on entering is its arrival order: 1..1000, once each.
    assert sorted(entry.status.position for entry in entries) == list(range(1, 1001))
    # And it stays true when asked again.
    positions = [status_of(concert, i + 1, entries[i].token).position for i in range(1000)]
    assert positions == [entry.status.position for entry in entries]
    assert len({entry.token for entry in entries}) == 1000


@pytest.mark.django_db(transaction=True)
def test_one_customer_entering_twenty_times_at_once_gets_one_entry():
    concert = ConcertFactory()

    entries = run_concurrently(20, lambda i: queue_enter(concert_id=concert.id, user_id=7))

    assert len({entry.token for entry in entries}) == 1
    assert sum(entry.created for entry in entries) == 1
    assert queue_stats(concert_ids=[concert.id])[concert.id].waiting == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_never_admit_more_than_max_active():
    concert = ConcertFactory(queue_max_active=50, queue_admit_per_minute=100_000)
    for user_id in range(1, 501):
        queue_enter(concert_id=concert.id, user_id=user_id)

    results = run_concurrently(10, lambda i: queue_admit_tick(concert=concert), workers=10)

    assert sum(result.admitted for result in results) == 50
    stats = queue_stats(concert_ids=[concert.id])[concert.id]
    assert (stats.admitted, stats.waiting) == (50, 450)
    # More ticks change nothing while all 50 slots are taken.
    assert queue_admit_tick(concert=concert).admitted == 0


@pytest.mark.django_db
def test_admission_keeps_to_the_rate():
    concert = ConcertFactory(queue_max_active=1000, queue_admit_per_minute=60)  # one a second
    now = timezone.now()
    for user_id in range(1, 21):
        queue_enter(concert_id=concert.id, user_id=user_id, now=now)

    first = queue_admit_tick(concert=concert, now=now)  # saved-up allowance: two seconds' worth
    same_instant = queue_admit_tick(concert=concert, now=now)
    five_seconds_later = queue_admit_tick(concert=concert, now=now + timedelta(seconds=5))

    assert (first.admitted, same_instant.admitted, five_seconds_later.admitted) == (2, 0, 2)


@pytest.mark.django_db
def test_customers_are_admitted_first_come_first_served():
    concert = ConcertFactory(queue_max_active=3, queue_admit_per_minute=10_000)
    tokens = {
        user_id: queue_enter(concert_id=concert.id, user_id=user_id).token
        for user_id in (5, 3, 9, 1)
    }

    queue_admit_tick(concert=concert)

    states = {
        user_id: status_of(concert, user_id, token).state for user_id, token in tokens.items()
    }
    assert states == {5: "admitted", 3: "admitted", 9: "admitted", 1: "waiting"}
    assert status_of(concert, 1, tokens[1]).position == 1


@pytest.mark.django_db
def test_arrivals_before_opening_are_shuffled_and_placed_before_later_ones():
    opens = timezone.now() + timedelta(hours=1)
    concert = ConcertFactory(sale_opens_at=opens)
    early = {
        user_id: queue_enter(
            concert_id=concert.id, user_id=user_id, now=opens - timedelta(minutes=30)
        )
        for user_id in range(1, 201)
    }
    # Nobody is told a position before the order is final.
    assert {entry.status.position for entry in early.values()} == {None}

    after = opens + timedelta(seconds=1)
    late = {
        user_id: queue_enter(concert_id=concert.id, user_id=user_id, now=after)
        for user_id in range(201, 211)
    }

    early_positions = [status_of(concert, u, e.token, now=after).position for u, e in early.items()]
    late_positions = [status_of(concert, u, e.token, now=after).position for u, e in late.items()]
    assert sorted(early_positions) == list(range(1, 201))
    assert early_positions != list(range(1, 201))  # arrival order does not decide (1 in 200!)
    assert late_positions == list(range(201, 211))  # after opening: first come, first served


@pytest.mark.django_db
def test_reentering_before_opening_cannot_reroll_a_place():
    opens = timezone.now() + timedelta(hours=1)
    concert = ConcertFactory(sale_opens_at=opens)
    first = queue_enter(concert_id=concert.id, user_id=1, now=opens - timedelta(minutes=5))

    again = queue_enter(concert_id=concert.id, user_id=1, now=opens - timedelta(minutes=4))

    assert again.token == first.token and not again.created


@pytest.mark.django_db
def test_waiting_customers_who_stop_polling_lose_their_place():
    concert = ConcertFactory(queue_abandon_after_seconds=300, queue_max_active=1)
    start = timezone.now()
    gone = queue_enter(concert_id=concert.id, user_id=1, now=start)
    polling = queue_enter(concert_id=concert.id, user_id=2, now=start)
    assert status_of(concert, 2, polling.token, now=start).position == 2

    paused = ConcertFactory.build(id=concert.id, **_paused(concert))  # ticks only tidy up
    tick_every_second(paused, start, start + timedelta(seconds=199))
    status_of(concert, 2, polling.token, now=start + timedelta(seconds=200))  # a poll
    tick_every_second(paused, start + timedelta(seconds=200), start + timedelta(seconds=400))

    assert status_of(concert, 1, gone.token, now=start + timedelta(seconds=401)).state == "expired"
    assert status_of(concert, 2, polling.token, now=start + timedelta(seconds=401)).position == 1


def _paused(concert) -> dict:
    """The concert's settings with admission paused, so a tick only tidies up."""
    return {
        "sale_opens_at": concert.sale_opens_at,
        "queue_paused": True,
        "queue_abandon_after_seconds": concert.queue_abandon_after_seconds,
        "queue_max_active": concert.queue_max_active,
        "queue_admit_per_minute": concert.queue_admit_per_minute,
        "queue_admitted_minutes": concert.queue_admitted_minutes,
    }


@pytest.mark.django_db
def test_nobody_is_dropped_for_not_polling_before_sales_open():
    opens = timezone.now() + timedelta(minutes=1)
    concert = ConcertFactory(
        sale_opens_at=opens, queue_abandon_after_seconds=300, queue_max_active=1
    )
    entry = queue_enter(concert_id=concert.id, user_id=1, now=opens - timedelta(days=2))
    queue_enter(concert_id=concert.id, user_id=2, now=opens - timedelta(days=2))

    queue_admit_tick(concert=concert, now=opens + timedelta(seconds=10))

    states = {status_of(concert, 1, entry.token, now=opens + timedelta(seconds=11)).state}
    assert states <= {"waiting", "admitted"}
    assert queue_stats(concert_ids=[concert.id])[concert.id].waiting == 1


@pytest.mark.django_db
def test_an_admitted_session_runs_out_and_frees_its_slot():
    concert = ConcertFactory(queue_max_active=1, queue_admitted_minutes=10)
    start = timezone.now()
    first = queue_enter(concert_id=concert.id, user_id=1, now=start)
    second = queue_enter(concert_id=concert.id, user_id=2, now=start)
    queue_admit_tick(concert=concert, now=start)
    status = status_of(concert, 1, first.token, now=start)
    assert status.state == "admitted"
    assert status.admitted_until == start.replace(
        microsecond=start.microsecond // 1000 * 1000
    ) + timedelta(minutes=10)

    status_of(concert, 2, second.token, now=start + timedelta(minutes=9))  # still polling
    later = start + timedelta(minutes=10, seconds=1)
    queue_admit_tick(concert=concert, now=later)

    assert status_of(concert, 1, first.token, now=later).state == "expired"
    assert status_of(concert, 2, second.token, now=later).state == "admitted"


@pytest.mark.django_db
def test_leaving_or_paying_frees_the_slot_for_the_next_customer():
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=10_000)
    tokens = [queue_enter(concert_id=concert.id, user_id=u).token for u in (1, 2, 3)]
    queue_admit_tick(concert=concert)

    queue_leave(token=token_verify(tokens[0], user_id=1), user_id=1)
    queue_admit_tick(concert=concert)
    assert status_of(concert, 2, tokens[1]).state == "admitted"

    queue_release(concert_id=concert.id, user_id=2)
    queue_admit_tick(concert=concert)
    assert status_of(concert, 3, tokens[2]).state == "admitted"
    assert status_of(concert, 1, tokens[0]).state == "done"
    assert status_of(concert, 2, tokens[1]).state == "done"


@pytest.mark.django_db
def test_reentering_after_leaving_starts_a_new_entry_at_the_back():
    from queueing.errors import QueueTokenInvalid

    concert = ConcertFactory()
    old = queue_enter(concert_id=concert.id, user_id=1)
    queue_enter(concert_id=concert.id, user_id=2)
    queue_leave(token=token_verify(old.token, user_id=1), user_id=1)

    new = queue_enter(concert_id=concert.id, user_id=1)

    assert new.created and new.token != old.token
    assert new.status.position == 2
    with pytest.raises(QueueTokenInvalid) as refused:
        status_of(concert, 1, old.token)
    assert refused.value.details == {"reason": "replaced"}


@pytest.mark.django_db
def test_while_slots_are_free_the_eta_is_the_configured_pace():
    concert = ConcertFactory(queue_max_active=10_000, queue_admit_per_minute=600)  # 10 a second
    start = timezone.now().replace(microsecond=0)
    tokens = [queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 201)]

    queue_admit_tick(concert=concert, now=start)  # the saved-up 20
    queue_admit_tick(concert=concert, now=start + timedelta(seconds=1))  # 10 more

    # 30 admitted; the last customer is 170th and slots are free: 170 at 10 a second -> 17 s.
    last = status_of(concert, 200, tokens[-1], now=start + timedelta(seconds=1))
    assert (last.position, last.eta_seconds) == (170, 17)


@pytest.mark.django_db
def test_an_empty_queue_promises_seconds_not_minutes():
    concert = ConcertFactory(queue_max_active=100, queue_admit_per_minute=300)

    entry = queue_enter(concert_id=concert.id, user_id=1)

    assert (entry.status.position, entry.status.eta_seconds) == (1, 1)


@pytest.mark.django_db
def test_when_every_slot_is_taken_the_eta_is_the_pace_at_which_sessions_end():
    concert = ConcertFactory(
        queue_max_active=2, queue_admit_per_minute=600, queue_admitted_minutes=10
    )
    start = timezone.now().replace(microsecond=0)
    tokens = [queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 6)]
    queue_admit_tick(concert=concert, now=start)  # 1 and 2 in: every slot taken

    # Nobody has finished yet: each running session is expected to last 70 % of the 10
    # admitted minutes (420 s), so 2 slots free up every 420 s, one every 210 s (the next
    # half of that away in a steady line); both have just begun, half a session (210 s)
    # behind a steady line: the 3rd (1st in line) in 210 + 105 s.
    first = status_of(concert, 3, tokens[2], now=start)
    assert (first.position, first.eta_seconds) == (1, 315)

    # Both leave after 60 s; 3 and 4 go in. Two sessions seen to end weigh as much as the
    # prior when 2 slots are a full house: a running one is now expected to last
    # (2 x 420 + 120) / 4 = 240 s. Sessions seen: 60 + 60 s ended, two just begun (240 s
    # each): 150 s on average, 2 slots -> one freed every 75 s; the running ones, just
    # begun, are 75 s behind a steady line: 75 + 37.5 s.
    later = start + timedelta(seconds=60)
    for user_id in (1, 2):
        queue_leave(
            token=token_verify(tokens[user_id - 1], user_id=user_id), user_id=user_id, now=later
        )
    queue_admit_tick(concert=concert, now=later)
    fifth = status_of(concert, 5, tokens[4], now=later)
    assert (fifth.position, fifth.eta_seconds) == (1, 113)


@pytest.mark.django_db
def test_the_usual_shopping_time_an_operator_gives_is_where_the_eta_starts():
    concert = ConcertFactory(
        queue_max_active=2,
        queue_admit_per_minute=600,
        queue_admitted_minutes=10,
        queue_shopping_seconds=60,
    )
    start = timezone.now().replace(microsecond=0)
    tokens = [queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 6)]
    queue_admit_tick(concert=concert, now=start)  # 1 and 2 in: every slot taken

    # Each running session is expected to last the operator's 60 s, not 70 % of the 10
    # admitted minutes: a slot frees every 30 s, and both sessions, just begun, are 30 s
    # behind a steady line: the 3rd (1st in line) in 30 + 15 s.
    first = status_of(concert, 3, tokens[2], now=start)
    assert (first.position, first.eta_seconds) == (1, 45)

    # After 20 s a running session is expected to last its age plus the prior's share (60 s
    # of 600) of what is left: 20 + 0.1 * 580 = 78 s. Two slots: one every 39 s; the
    # sessions are 20 s old, 19 s behind a steady line (half of 78 s, less 20): 19 + 19.5 s.
    later = start + timedelta(seconds=20)
    queue_admit_tick(concert=concert, now=later)
    assert status_of(concert, 3, tokens[2], now=later).eta_seconds == 39


@pytest.mark.django_db
def test_a_usual_shopping_time_longer_than_the_session_counts_as_the_session():
    concert = ConcertFactory(
        queue_max_active=2, queue_admitted_minutes=1, queue_shopping_seconds=3_600
    )

    assert session_prior_ms(concert) == 60_000


@pytest.mark.django_db
def test_positions_stay_right_with_a_hundred_thousand_waiting():
    concert = ConcertFactory(queue_max_active=1_000, queue_admit_per_minute=1_000_000)
    now = timezone.now()
    client = queue_redis()
    orders = {}
    # Built fast: the same ENTER script, pipelined a thousand at a time.
    for first in range(1, 100_001, 1000):
        pipe = queue_pipeline()
        for user_id in range(first, first + 1000):
            run_script(
                "ENTER", concert.id, [user_id, f"{user_id:016x}", to_ms(now), 0, 0], client=pipe
            )
        for user_id, reply in zip(range(first, first + 1000), pipe.execute(), strict=True):
            orders[user_id] = int(reply[1])
    assert client.zcard(queue_keys(concert.id)[0]) == 100_000

    def position(user_id):
        from queueing.tokens import token_issue

        token = token_issue(
            concert_id=concert.id, user_id=user_id, nonce=f"{user_id:016x}", order=orders[user_id]
        )
        return status_of(concert, user_id, token, now=now).position

    assert [position(u) for u in (1, 2, 50_000, 99_999, 100_000)] == [1, 2, 50_000, 99_999, 100_000]
    queue_admit_tick(concert=concert, now=now)  # lets the first 1,000 in
    assert [position(u) for u in (1_001, 50_000, 100_000)] == [1, 49_000, 99_000]
    assert queue_stats(concert_ids=[concert.id], now=now)[concert.id].waiting == 99_000


@pytest.mark.django_db
def test_all_keys_of_a_concert_share_one_cluster_slot():
    keys = queue_keys(42)

    assert {key[key.index("{") : key.index("}") + 1] for key in keys} == {"{42}"}


def test_post_opening_order_keys_stay_exact_in_a_redis_double():
    # Sorted-set scores are doubles: integers are exact below 2^53. Post-opening keys are
    # 2^41 + the arrival in microseconds since 1970: exact until the 23rd century.
    year_2200_us = 7_258_118_400 * 10**6
    assert POST_OPENING_BASE + year_2200_us < 2**53


@pytest.mark.django_db
def test_paying_frees_only_an_admitted_queue_slot_never_a_place_in_line():
    concert = ConcertFactory()
    entry = queue_enter(concert_id=concert.id, user_id=1)  # waiting, for another date, say

    queue_release(concert_id=concert.id, user_id=1)

    assert status_of(concert, 1, entry.token).state == "waiting"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda token: token, None),
        (lambda token: token.replace("7.", "8.", 1), "not_yours"),  # the concert
        (lambda token: token.replace("0123", "3210", 1), "not_yours"),  # the entry
        (lambda token: token.replace(".99.", ".98.", 1), "not_yours"),  # the place in line
        (lambda token: token[:-1], "malformed"),
        (lambda token: "", "missing"),
    ],
)
def test_a_token_names_its_customer_concert_entry_and_place(change, reason):
    from queueing.errors import QueueTokenInvalid
    from queueing.tokens import token_issue

    token = change(token_issue(concert_id=7, user_id=1, nonce="0123456789abcdef", order=99))

    if reason is None:
        assert token_verify(token, user_id=1).order == 99
        with pytest.raises(QueueTokenInvalid) as someone_else:
            token_verify(token, user_id=2)
        assert someone_else.value.details == {"reason": "not_yours"}
    else:
        with pytest.raises(QueueTokenInvalid) as refused:
            token_verify(token, user_id=1)
        assert refused.value.details == {"reason": reason}


@pytest.mark.django_db
def test_a_tick_can_let_ten_thousand_in_at_once():
    """An operator's generous rate: the tick's answer (each admitted customer and entry) is
    far bigger than what Lua's unpack() takes."""
    concert = ConcertFactory(queue_max_active=1_000_000, queue_admit_per_minute=3_000_000)
    now = timezone.now()
    pipe = queue_pipeline()
    for user_id in range(1, 10_001):
        run_script("ENTER", concert.id, [user_id, f"{user_id:016x}", to_ms(now), 0, 0], client=pipe)
    pipe.execute()

    tick = queue_admit_tick(concert=concert, now=now)

    assert (tick.admitted, tick.waiting) == (10_000, 0)
    assert QueueAdmission.objects.filter(concert=concert).count() == 10_000
