"""Polling as told (poll_after_seconds from the place in line, 429 for a poll before its time),
admissions that must be claimed, and the ETA against a virtual-time run of the real scripts."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from bench.queue_sim import Scenario, eta_errors, poll_bound, report, simulate
from queueing.errors import QueuePollTooEarly
from queueing.models import QueueAdmission
from queueing.redis_queue import queue_keys, queue_redis
from queueing.selectors import poll_cap_seconds
from queueing.services import queue_admit_tick, queue_enter, queue_leave, queue_poll
from queueing.tokens import token_verify
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def poll(concert, user_id, token, now, touch=True):
    return queue_poll(
        concert=concert,
        user_id=user_id,
        token=token_verify(token, user_id=user_id),
        now=now,
        touch=touch,
    )


def tick_through(concert, start, seconds):
    """A tick every second, as beat sends them (a longer gap reads as an outage)."""
    for second in range(seconds + 1):
        queue_admit_tick(concert=concert, now=start + timedelta(seconds=second))


def a_line(concert, customers, now):
    return {
        u: queue_enter(concert_id=concert.id, user_id=u, now=now).token
        for u in range(1, customers + 1)
    }


def test_the_front_polls_every_second_and_the_back_rarely():
    # 6 a second, nobody let in yet: the ETA of place p is about p / 6 s, the interval a
    # quarter of it, from 1 s to the 60 s cap (less up to half of it, varied by customer).
    concert = ConcertFactory(queue_max_active=100_000, queue_admit_per_minute=360)
    now = timezone.now()
    tokens = a_line(concert, 3_000, now)

    def told(user_id):
        status = poll(concert, user_id, tokens[user_id], now, touch=False)
        return status.eta_seconds, status.poll_after_seconds

    assert told(1) == (1, 1)
    assert told(20)[1] == 1  # 4 s away
    assert told(240) == (40, 10)
    assert told(480) == (80, 20)
    for far in (1_500, 2_999):  # 250 s and more: capped, and spread over the cap's second half
        assert 30 <= told(far)[1] <= 60
    intervals = [told(u)[1] for u in range(1, 1_400, 50)]
    assert intervals == sorted(intervals)  # never more often further back (below the cap)


def test_the_cap_stays_well_inside_the_abandon_time():
    assert poll_cap_seconds(ConcertFactory.build(queue_abandon_after_seconds=300)) == 60
    assert poll_cap_seconds(ConcertFactory.build(queue_abandon_after_seconds=90)) == 60
    assert poll_cap_seconds(ConcertFactory.build(queue_abandon_after_seconds=30)) == 20
    assert poll_cap_seconds(ConcertFactory.build(queue_abandon_after_seconds=15)) == 10
    assert poll_cap_seconds(ConcertFactory.build(queue_abandon_after_seconds=3)) == 1


def test_polling_as_told_keeps_the_place_however_far_back():
    concert = ConcertFactory(
        queue_max_active=1, queue_admit_per_minute=1, queue_abandon_after_seconds=30
    )
    start = timezone.now()
    tokens = a_line(concert, 300, start)
    # Customer 1 takes the slot and shops (10 minutes): 300 waits, polling as told.
    queue_admit_tick(concert=concert, now=start)
    poll(concert, 1, tokens[1], start)
    now, due = start, start + timedelta(seconds=poll_cap_seconds(concert))
    while now < start + timedelta(seconds=150):  # several abandon times
        queue_admit_tick(concert=concert, now=now)
        if now >= due:
            status = poll(concert, 300, tokens[300], now)
            assert status.state == "waiting"
            assert status.poll_after_seconds <= poll_cap_seconds(concert)
            due = now + timedelta(seconds=status.poll_after_seconds)
        now += timedelta(seconds=1)
    never_polled = poll(concert, 299, tokens[299], now, touch=False)
    assert (never_polled.state, never_polled.ended_because) == ("expired", "abandoned")


def test_a_poll_before_its_time_is_refused_and_one_a_little_early_is_not():
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=60)
    start = timezone.now()
    tokens = a_line(concert, 200, start)
    told = queue_enter(concert_id=concert.id, user_id=200, now=start).status.poll_after_seconds
    assert told >= 30

    with pytest.raises(QueuePollTooEarly) as refused:
        poll(concert, 200, tokens[200], start + timedelta(seconds=told * 0.5))
    assert refused.value.retry_after == told - told // 2
    assert refused.value.details == {"retry_after_seconds": told - told // 2}
    # 85 % of the interval: within the tolerance (80 %, or the interval less 1 s).
    assert poll(concert, 200, tokens[200], start + timedelta(seconds=told * 0.85)).position == 200
    # Reading without polling (a gated call) is never refused.
    assert poll(concert, 200, tokens[200], start + timedelta(seconds=told * 0.9), touch=False)


def test_polling_too_early_through_the_api_is_a_429_with_retry_after(customer, customer_client):
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=60)
    for user_id in range(1_000_000, 1_000_100):  # a hundred ahead
        queue_enter(concert_id=concert.id, user_id=user_id)
    entered = customer_client.post(f"/api/v1/concerts/{concert.id}/queue").json()
    assert entered["poll_after_seconds"] >= 10
    customer_client.credentials(
        HTTP_AUTHORIZATION=customer_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=entered["token"],
    )

    response = customer_client.get("/api/v1/queue")

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 9
    body = response.json()["error"]
    assert body["code"] == "queue_poll_too_early"
    assert body["details"] == {"retry_after_seconds": int(response["Retry-After"])}
    assert set(body) == {"code", "message", "details", "request_id"}


@pytest.mark.parametrize("token_format", ["current", "earlier"])
def test_a_refused_poll_costs_no_database_query(
    customer, customer_client, django_assert_num_queries, token_format
):
    """Refused by the poll's own Redis call (a token that names its customer), or by the gate
    before the Bearer token's lookup (a token of the earlier format)."""
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=60)
    for user_id in range(1_000_000, 1_000_100):
        queue_enter(concert_id=concert.id, user_id=user_id)
    token = customer_client.post(f"/api/v1/concerts/{concert.id}/queue").json()["token"]
    if token_format == "earlier":
        concert_id, _user, nonce, order, mac = token.split(".")
        token = f"{concert_id}.{nonce}.{order}.{mac}"
    client = client_for(customer)
    client.credentials(
        HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_X_QUEUE_TOKEN=token
    )

    with django_assert_num_queries(0):
        response = client.get("/api/v1/queue")

    assert response.status_code == 429


def test_the_gate_reads_only_the_entry_the_token_names(customer, customer_client):
    """Another customer's early poll, or a token that is not well-formed, is not refused by
    someone else's record: the gate is keyed by the entry's secret nonce."""
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=60)
    for user_id in range(1_000_000, 1_000_100):
        queue_enter(concert_id=concert.id, user_id=user_id)
    customer_client.post(f"/api/v1/concerts/{concert.id}/queue")  # told to wait
    other = UserFactory()
    other_client = client_for(other)
    token = other_client.post(f"/api/v1/concerts/{concert.id}/queue").json()["token"]
    other_client.credentials(
        HTTP_AUTHORIZATION=other_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=token + "x",
    )
    assert other_client.get("/api/v1/queue").json()["error"]["code"] == "queue_token_invalid"


# --- Claiming an admission ------------------------------------------------------------------


def test_an_admission_nobody_claims_goes_to_the_next_in_line():
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=600, queue_claim_seconds=30)
    start = timezone.now().replace(microsecond=0)
    tokens = a_line(concert, 3, start)
    poll(concert, 1, tokens[1], start)  # told: 1 s

    # Within the window (from the poll it was told, 1 s later, plus 30 s) the slot waits.
    tick_through(concert, start, 30)
    assert poll(concert, 2, tokens[2], start + timedelta(seconds=30), touch=False).state == (
        "waiting"
    )
    later = start + timedelta(seconds=31)
    tick = queue_admit_tick(concert=concert, now=later)

    assert (tick.unclaimed, tick.admitted, tick.active) == (1, 1, 1)
    gone = poll(concert, 1, tokens[1], later)
    assert (gone.state, gone.ended_because) == ("expired", "unclaimed")
    assert poll(concert, 2, tokens[2], later).state == "admitted"
    ended = QueueAdmission.objects.get(concert=concert, user_id=1)
    assert ended.ended_at == later  # a line Redis later loses does not bring it back


def test_a_claimed_admission_keeps_its_whole_session_from_the_claim():
    concert = ConcertFactory(
        queue_max_active=1,
        queue_admitted_minutes=10,
        queue_claim_seconds=30,
        queue_abandon_after_seconds=3600,
    )
    start = timezone.now().replace(microsecond=0)
    tokens = a_line(concert, 2, start)
    queue_admit_tick(concert=concert, now=start)
    seen = start + timedelta(seconds=20)

    claimed = poll(concert, 1, tokens[1], seen)

    assert claimed.admitted_until == seen + timedelta(minutes=10)
    tick_through(concert, start, 20 + 10 * 60 - 1)
    moment = seen + timedelta(minutes=9, seconds=59)
    assert poll(concert, 1, tokens[1], moment, touch=False).state == "admitted"
    assert poll(concert, 2, tokens[2], moment, touch=False).state == "waiting"
    end = seen + timedelta(minutes=10, seconds=1)
    queue_admit_tick(concert=concert, now=end)
    assert poll(concert, 1, tokens[1], end, touch=False).ended_because == "expired"


def test_the_claim_window_starts_when_the_customer_was_told_to_look_again():
    """Polling as told never loses an admission: a customer far back, told to come back in a
    minute, whose turn comes early, still finds the slot waiting at that poll."""
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=600, queue_claim_seconds=5)
    start = timezone.now().replace(microsecond=0)
    tokens = a_line(concert, 2, start)
    told = queue_enter(concert_id=concert.id, user_id=2, now=start).status.poll_after_seconds
    assert told > 20
    queue_admit_tick(concert=concert, now=start)  # 1 in, 2 waits for the slot
    queue_leave(token=token_verify(tokens[1], user_id=1), user_id=1, now=start)
    tick_through(concert, start + timedelta(seconds=1), told + 2)  # 2 in at once, unaware

    assert poll(concert, 2, tokens[2], start + timedelta(seconds=told + 3)).state == "admitted"


def test_a_gated_call_claims_the_admission(customer, customer_client):
    schedule = ScheduleFactory(concert__queue_claim_seconds=30)
    concert = schedule.concert
    token = queue_enter(concert_id=concert.id, user_id=customer.id).token
    queue_admit_tick(concert=concert)
    customer_client.credentials(
        HTTP_AUTHORIZATION=customer_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=token,
    )
    assert customer_client.get(f"/api/v1/schedules/{schedule.id}/seats").status_code == 200

    tick_through(concert, timezone.now(), 90)  # far past the claim window

    assert customer_client.get(f"/api/v1/schedules/{schedule.id}/seats").status_code == 200


def test_who_lost_an_unclaimed_slot_reads_why_and_can_enter_again(customer, customer_client):
    schedule = ScheduleFactory(concert__queue_claim_seconds=30)
    concert = schedule.concert
    token = queue_enter(concert_id=concert.id, user_id=customer.id).token
    tick_through(concert, timezone.now(), 90)  # admitted, never claimed
    customer_client.credentials(
        HTTP_AUTHORIZATION=customer_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=token,
    )

    status = customer_client.get("/api/v1/queue").json()
    seats = customer_client.get(f"/api/v1/schedules/{schedule.id}/seats")
    again = customer_client.post(f"/api/v1/concerts/{concert.id}/queue")

    assert (status["status"], status["ended_reason"]) == ("expired", "unclaimed")
    assert seats.status_code == 410
    assert seats.json()["error"]["details"] == {"state": "expired", "reason": "unclaimed"}
    assert again.status_code == 201 and again.json()["token"] != token


def test_shoppers_never_exceed_max_active_while_unclaimed_slots_return():
    concert = ConcertFactory(
        queue_max_active=5, queue_admit_per_minute=6_000, queue_claim_seconds=3
    )
    start = timezone.now().replace(microsecond=0)
    tokens = a_line(concert, 40, start)
    admitted_key = queue_keys(concert.id)[2]
    unclaimed = 0
    claimed = set()
    for second in range(0, 200):
        now = start + timedelta(seconds=second)
        tick = queue_admit_tick(concert=concert, now=now)
        unclaimed += tick.unclaimed
        assert tick.active <= 5
        assert queue_redis().zcount(admitted_key, f"({int(now.timestamp() * 1000)}", "+inf") <= 5
        # The even ones come, claim, buy and leave at once; the odd ones never come.
        for user_id in set(range(2, 41, 2)) - claimed:
            if poll(concert, user_id, tokens[user_id], now, touch=False).state == "admitted":
                claimed.add(user_id)
                queue_leave(
                    token=token_verify(tokens[user_id], user_id=user_id), user_id=user_id, now=now
                )
    assert (unclaimed, len(claimed)) == (20, 20)
    assert QueueAdmission.objects.filter(concert=concert).count() == 40


# --- The ETA against what happened --------------------------------------------------------


def test_the_eta_is_honest_on_a_small_simulated_on_sale():
    """A virtual-time run of the real scripts (bench/queue_sim.py): 1,500 customers, 100
    slots, sessions of ~2 minutes. Not a timing test: the seed fixes every draw."""
    result = simulate(
        Scenario(
            "test",
            customers=1_500,
            max_active=100,
            admit_per_minute=600,
            admitted_minutes=3,
            seed=3,
        ),
        concert_id=987_654,
    )
    summary = report(result)
    errors = eta_errors(result)

    assert summary["admission_order_exact"]
    assert summary["max_active_never_exceeded"] and summary["max_active_seen"] == 100
    assert summary["unclaimed_returned"] > 100
    assert summary["seconds_over_bound"] == 0
    assert summary["seen_late_s"]["p99"] <= 2  # polling as told: admission seen within ~1 s
    assert -0.10 <= errors["signed_p50"] <= 0.10
    assert errors["p90"] <= 0.25
    for phase in errors["by_phase"].values():
        assert -0.10 <= phase["signed_p50"] <= 0.10


def test_the_stated_poll_bound_counts_the_back_of_the_line_at_its_harmonic_mean_interval():
    """Customers at the cap poll every 30-60 s (whole seconds): the line's rate is the mean of
    1 / interval (1 / 43.2 s), more than 1 / the mean interval (1 / 45 s) would say."""
    front = poll_bound(admit_per_minute=600, waiting=0, max_active=0, cap_s=60)
    back = poll_bound(admit_per_minute=600, waiting=43_000, max_active=0, cap_s=60) - front

    assert front == pytest.approx(10 / 0.25 * (1 + math.log(60)))
    assert back == pytest.approx(43_000 * sum(1 / i for i in range(30, 61)) / 31)
    assert back > 43_000 / 45
