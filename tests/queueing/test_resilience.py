"""The waiting room through faults, against the real Redis and database: Redis losing the
line (as after a restart without its data), outages that must not count as abandonment, and a
Redis that cannot take a payment's slot release. The real SIGKILL/SIGSTOP runs are bin/chaos."""

from datetime import timedelta

import pytest
from django.utils import timezone

from queueing.models import QueueAdmission
from queueing.redis_queue import queue_keys, queue_redis
from queueing.selectors import queue_stats
from queueing.services import (
    RESTORE_GRACE,
    queue_admit_all,
    queue_admit_tick,
    queue_enter,
    queue_poll,
    queue_release,
)
from queueing.tokens import token_verify
from tests.concerts.factories import ConcertFactory, ScheduleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _poll_gate_off(settings):
    """These tests read positions many times at the same instant; the poll gate (429 for a
    poll before its time) has its own tests in test_polling.py."""
    settings.QUEUE_POLL_GATE = False


def poll(concert, user_id, token, now=None, touch=True):
    return queue_poll(
        concert=concert,
        user_id=user_id,
        token=token_verify(token, user_id=user_id),
        now=now,
        touch=touch,
    )


def redis_loses_the_line(concert) -> None:
    """What a Redis restarted without its data looks like to this concert: no keys at all."""
    queue_redis().delete(*queue_keys(concert.id))


def tick_every_second(concert, start, end) -> None:
    moment = start
    while moment <= end:
        queue_admit_tick(concert=concert, now=moment)
        moment += timedelta(seconds=1)


def test_everyone_keeps_their_place_and_session_when_redis_loses_the_line():
    concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6_000)
    start = timezone.now()
    tokens = {
        u: queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 8)
    }
    queue_admit_tick(concert=concert, now=start)  # 1 and 2 are in; 3..7 wait
    before = {u: poll(concert, u, tokens[u], now=start) for u in tokens}
    assert [before[u].position for u in range(3, 8)] == [1, 2, 3, 4, 5]

    redis_loses_the_line(concert)
    later = start + timedelta(seconds=1)
    newcomer = queue_enter(concert_id=concert.id, user_id=8, now=later)  # before anyone polls
    # The waiting customers come back in another order than they arrived.
    after = {u: poll(concert, u, tokens[u], now=later) for u in (7, 5, 3, 6, 4, 2, 1)}

    assert [after[u].state for u in (1, 2)] == ["admitted", "admitted"]
    assert after[1].admitted_until == before[1].admitted_until
    # Everyone who arrived before is ahead of the newcomer again, in their arrival order.
    positions = {u: poll(concert, u, tokens[u], now=later).position for u in range(3, 8)}
    assert positions == {3: 1, 4: 2, 5: 3, 6: 4, 7: 5}
    assert newcomer.status.position == 1  # told while Redis knew nobody else...
    assert poll(concert, 8, newcomer.token, now=later).position == 6  # ...and behind them now


def test_restored_waiting_customers_sort_ahead_of_later_arrivals():
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=6_000)
    start = timezone.now()
    early = {u: queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in (1, 2, 3)}
    queue_admit_tick(concert=concert, now=start)  # 1 is in

    redis_loses_the_line(concert)
    later = start + timedelta(seconds=1)
    for u in (3, 2):
        poll(concert, u, early[u], now=later)
    newcomer = queue_enter(concert_id=concert.id, user_id=9, now=later)

    assert [poll(concert, u, early[u], now=later).position for u in (2, 3)] == [1, 2]
    assert newcomer.status.position == 3


def test_after_a_loss_capacity_holds_and_nobody_is_let_in_during_the_grace():
    concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6_000)
    start = timezone.now()
    tokens = {
        u: queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 6)
    }
    queue_admit_tick(concert=concert, now=start)  # 1 and 2 are in
    later = start + timedelta(seconds=2)
    # Customer 2's session ends 5 s after the loss, in the middle of the grace.
    QueueAdmission.objects.filter(user_id=2).update(admitted_until=later + timedelta(seconds=5))

    redis_loses_the_line(concert)
    first_tick = queue_admit_tick(concert=concert, now=later)  # puts 1 and 2 back
    for u in (3, 4, 5):
        poll(concert, u, tokens[u], now=later)
    tick_every_second(concert, later, later + RESTORE_GRACE - timedelta(seconds=1))
    during = poll(concert, 3, tokens[3], now=later + RESTORE_GRACE - timedelta(seconds=1))
    tick_every_second(concert, later + RESTORE_GRACE, later + RESTORE_GRACE)
    after = poll(concert, 3, tokens[3], now=later + RESTORE_GRACE)

    assert (first_tick.admitted, first_tick.active) == (0, 2)  # nobody new over capacity
    assert (during.state, during.position) == ("waiting", 1)  # a slot was free: still waits
    assert after.state == "admitted"  # the first of the line, once the grace is over
    stats = queue_stats(concert_ids=[concert.id], now=later + RESTORE_GRACE)[concert.id]
    assert (stats.admitted, stats.waiting) == (2, 2)


def test_a_token_redis_never_heard_of_after_a_loss_is_put_back_not_refused(customer_client):
    concert = ConcertFactory()
    ScheduleFactory(concert=concert)
    token = customer_client.post(f"/api/v1/concerts/{concert.id}/queue").json()["token"]

    redis_loses_the_line(concert)
    response = customer_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert response.status_code == 200
    assert response.json()["status"] == "waiting"


def test_entering_again_with_the_old_token_after_a_loss_keeps_the_place(customer_client):
    concert = ConcertFactory()
    first = customer_client.post(f"/api/v1/concerts/{concert.id}/queue").json()
    from tests.accounts.factories import UserFactory
    from tests.conftest import client_for

    client_for(UserFactory()).post(f"/api/v1/concerts/{concert.id}/queue")

    redis_loses_the_line(concert)
    client_for(UserFactory()).post(f"/api/v1/concerts/{concert.id}/queue")  # came after the loss
    again = customer_client.post(
        f"/api/v1/concerts/{concert.id}/queue", HTTP_X_QUEUE_TOKEN=first["token"]
    )

    assert again.status_code == 200
    assert (again.json()["token"], again.json()["position"]) == (first["token"], 1)


def test_an_outage_does_not_count_as_not_polling():
    """25 s without ticks or polls (the database or Redis down) against a 15 s abandon time:
    nobody loses their place. Afterwards the clock runs again for whoever stops polling."""
    concert = ConcertFactory(queue_max_active=1, queue_abandon_after_seconds=15)
    start = timezone.now()
    tokens = {u: queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in (1, 2, 3)}
    tick_every_second(concert, start, start + timedelta(seconds=5))
    assert poll(concert, 1, tokens[1], now=start + timedelta(seconds=1)).state == "admitted"
    for u in (2, 3):
        poll(concert, u, tokens[u], now=start + timedelta(seconds=5))

    back = start + timedelta(seconds=30)  # the service answered nothing from 5 s to 30 s
    queue_admit_tick(concert=concert, now=back)

    assert [poll(concert, u, tokens[u], now=back, touch=False).state for u in (2, 3)] == [
        "waiting",
        "waiting",
    ]
    # Customer 3 polls on, customer 2 does not: 15 s of service later, only 2 is gone.
    for second in range(1, 17):
        moment = back + timedelta(seconds=second)
        queue_admit_tick(concert=concert, now=moment)
        poll(concert, 3, tokens[3], now=moment)
    end = back + timedelta(seconds=16)
    assert poll(concert, 2, tokens[2], now=end, touch=False).state == "expired"
    assert poll(concert, 3, tokens[3], now=end, touch=False).position == 1


def test_a_paused_queue_reads_paused_with_the_place_kept():
    concert = ConcertFactory(queue_paused=True)
    entry = queue_enter(concert_id=concert.id, user_id=1)

    status = poll(concert, 1, entry.token)

    assert (status.state, status.position, status.eta_seconds) == ("paused", 1, None)


def test_a_slot_release_redis_cannot_take_is_done_when_it_is_back(redis_down):
    concert = ConcertFactory(queue_max_active=1)
    ScheduleFactory(concert=concert)
    tokens = {u: queue_enter(concert_id=concert.id, user_id=u).token for u in (1, 2)}
    queue_admit_tick(concert=concert)
    with redis_down():
        queue_release(concert_id=concert.id, user_id=1)  # after a payment: must not raise

    assert QueueAdmission.objects.get(user_id=1).release_pending
    queue_admit_all()  # Redis is back: the tick frees the slot and lets the next one in
    assert not QueueAdmission.objects.get(user_id=1).release_pending
    assert poll(concert, 1, tokens[1]).state == "done"
    assert poll(concert, 2, tokens[2]).state == "admitted"


def test_sessions_that_ended_by_payment_are_not_brought_back(
    customer, django_capture_on_commit_callbacks
):
    """Customers who paid are done: after Redis loses the line, restoring their sessions
    would put more customers in than max_active."""
    from payments.services import payment_create, wallet_charge
    from tests.concerts.factories import SeatFactory
    from tests.reservations.factories import hold_seats

    concert = ConcertFactory(queue_max_active=1)
    schedule = ScheduleFactory(concert=concert)
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold_seats(customer, schedule, seat)
    with django_capture_on_commit_callbacks(execute=True):
        payment_create(user=customer, reservation_id=reservation.id)
    waiting = queue_enter(concert_id=concert.id, user_id=999)

    redis_loses_the_line(concert)
    tick = queue_admit_tick(concert=concert)  # puts live sessions back: none

    assert tick.active == 0
    assert QueueAdmission.objects.get(user_id=customer.id).ended_at is not None
    assert poll(concert, 999, waiting.token).state == "waiting"


def test_restoring_never_admits_more_than_max_active_whatever_the_database_says():
    """Were the database to know more running sessions than max_active (it should not), the
    restore puts back max_active of them, and the others next in line."""
    concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6_000)
    start = timezone.now()
    tokens = {
        u: queue_enter(concert_id=concert.id, user_id=u, now=start).token for u in range(1, 6)
    }
    queue_admit_tick(concert=concert, now=start)  # 1 and 2 are in
    stale = QueueAdmission.objects.get(user_id=1)
    for user_id in (3, 4):  # sessions the database wrongly believes still running
        token = token_verify(tokens[user_id], user_id=user_id)
        QueueAdmission.objects.create(
            concert=concert,
            user_id=user_id,
            nonce=token.nonce,
            order=token.order,
            admitted_at=start - timedelta(seconds=1),
            admitted_until=stale.admitted_until,
        )

    redis_loses_the_line(concert)
    later = start + timedelta(seconds=1)
    tick = queue_admit_tick(concert=concert, now=later)
    states = {u: poll(concert, u, tokens[u], now=later).state for u in range(1, 6)}

    assert tick.active == 2
    assert queue_stats(concert_ids=[concert.id], now=later)[concert.id].admitted == 2
    assert sorted(states.values()) == ["admitted", "admitted", "waiting", "waiting", "waiting"]
