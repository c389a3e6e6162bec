"""Invariant 12: every committed fact produces exactly one event with a unique id, written in
the fact's own transaction; rolled-back work produces none. And the relay hands each event to
the channels once, in order, even with workers racing or dying mid-batch."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from events import services as outbox
from events.models import Event
from payments.cancellations import payment_refund, reservation_cancel_paid
from payments.errors import InsufficientBalance
from payments.services import payment_create, wallet_charge
from queueing.services import queue_admit_all, queue_set_paused
from reservations.errors import TicketLimitReached
from reservations.services import reservation_cancel, reservation_expire_due
from tests.accounts.factories import OperatorFactory, UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.concurrency import run_concurrently
from tests.reservations.factories import hold_seats
from tests.reservations.waitlist_helpers import buy, join

pytestmark = pytest.mark.django_db


def types(**aggregate) -> list[str]:
    events = Event.objects.order_by("id")
    if aggregate:
        ((kind, ident),) = aggregate.items()
        events = events.filter(aggregate_type=kind, aggregate_id=str(ident))
    return list(events.values_list("type", flat=True))


def test_a_booking_from_hold_to_refund_tells_each_fact_once():
    schedule = ScheduleFactory(concert=ConcertFactory(booking_fee=2_000))
    seats = [SeatFactory(schedule=schedule, price=110_000) for _ in range(2)]
    customer = UserFactory()
    charge = wallet_charge(user=customer, amount=500_000)
    held = hold_seats(customer, schedule, *seats)
    payment = payment_create(user=customer, reservation_id=held.id)
    reservation_cancel_paid(user=customer, reservation_id=held.id, seat_ids=[seats[0].id])
    payment_refund(payment_id=payment.id, operator=OperatorFactory(), in_full=True, reason="Moved.")

    assert types(reservation=held.id) == [
        "reservation.held",
        "payment.confirmed",
        "reservation.cancelled",
        "reservation.refunded",
    ]
    assert types(wallet=charge.wallet_id) == ["wallet.charged"]
    confirmed = Event.objects.get(type="payment.confirmed")
    assert confirmed.payload["amount"] == 224_000 and confirmed.payload["booking_fee"] == 4_000
    assert confirmed.payload["performance"]["concert_title"] == schedule.concert.title
    assert [s["seat_id"] for s in confirmed.payload["seats"]] == sorted(s.id for s in seats)
    refunded = Event.objects.get(type="reservation.refunded")
    assert refunded.payload["amount"] == 112_000 and refunded.payload["reason"] == "Moved."
    assert len(set(Event.objects.values_list("event_id", flat=True))) == Event.objects.count()


def test_holds_let_go_and_lapsed_and_waitlist_offers_are_told():
    now = timezone.now()
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule) for _ in range(3)]
    let_go = hold_seats(UserFactory(), schedule, seats[0])
    lapsing = hold_seats(UserFactory(), schedule, seats[1])
    sold = buy(schedule, seats[2])
    entry = join(schedule)

    reservation_cancel(user=let_go.user, reservation_id=let_go.id)
    reservation_expire_due(now=now + timedelta(minutes=10))
    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)

    assert types(reservation=let_go.id) == ["reservation.held", "reservation.cancelled"]
    assert (
        Event.objects.get(type="reservation.cancelled", aggregate_id=str(let_go.id)).payload["paid"]
        is False
    )
    assert types(reservation=lapsing.id) == ["reservation.held", "reservation.expired"]
    # The lapsed hold's seat and the cancelled one go to the waiting customer: one offer.
    assert types(waitlist_entry=entry.id) == ["waitlist.offered"]
    offered = Event.objects.get(type="waitlist.offered")
    assert offered.payload["customer_id"] == entry.user_id and offered.payload["amount_due"] > 0


def test_sale_opened_once_and_pauses_are_told():
    concert = ConcertFactory(sale_opens_at=timezone.now() - timedelta(minutes=1))
    ScheduleFactory(concert=concert)

    queue_admit_all()
    queue_admit_all()
    queue_set_paused(concert_ids=[concert.id], paused=True)
    queue_set_paused(concert_ids=[concert.id], paused=True)  # already paused: no fact
    queue_set_paused(concert_ids=[concert.id], paused=False)

    assert types(concert=concert.id) == ["sale.opened", "sale.paused", "sale.resumed"]


def test_work_that_rolls_back_leaves_no_event():
    schedule = ScheduleFactory(concert=ConcertFactory(ticket_limit=1))
    seats = [SeatFactory(schedule=schedule) for _ in range(2)]
    customer = UserFactory()
    held = hold_seats(customer, schedule, seats[0])
    before = Event.objects.count()

    with pytest.raises(InsufficientBalance):  # nothing in the wallet
        payment_create(user=customer, reservation_id=held.id)
    with pytest.raises(TicketLimitReached):
        hold_seats(customer, schedule, seats[1])
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.event_record(type="test.fact", aggregate=("test", 1), payload={})
        raise RuntimeError("the fact's transaction fails after the event was written")

    assert Event.objects.count() == before


@pytest.mark.django_db(transaction=True)  # the test's own transaction would hide the point
def test_an_event_outside_the_facts_transaction_is_refused():
    with pytest.raises(RuntimeError):
        outbox.event_record(type="test.fact", aggregate=("test", 1), payload={})


# --- The relay --------------------------------------------------------------------------------

HANDED: list[str] = []


def recording_channel(event: Event) -> None:
    HANDED.append(str(event.event_id))


def failing_channel(event: Event) -> None:
    if event.payload.get("fail"):
        raise ConnectionError("the worker dies mid-batch")


def record(count: int, **payload) -> list[Event]:
    with transaction.atomic():
        return [
            outbox.event_record(type="test.fact", aggregate=("test", i % 7), payload=payload)
            for i in range(count)
        ]


@pytest.fixture
def channels():
    def use(*paths):
        outbox._channels.cache_clear()
        return override_settings(EVENT_CHANNELS=list(paths))

    HANDED.clear()
    yield use
    outbox._channels.cache_clear()


def test_the_relay_hands_every_event_to_the_channels_once_in_order(channels):
    events = record(250)

    with channels("tests.events.test_outbox.recording_channel"):
        assert outbox.events_dispatch(batch=100) == 250
        assert outbox.events_dispatch() == 0

    assert HANDED == [str(event.event_id) for event in events]
    assert not Event.objects.filter(dispatched_at=None).exists()


def test_a_relay_dying_mid_batch_loses_nothing_and_the_next_run_dispatches_it(channels):
    record(5)
    record(1, fail=True)
    record(5)

    with channels("tests.events.test_outbox.failing_channel"):
        with pytest.raises(ConnectionError):
            outbox.events_dispatch(batch=100)
    assert Event.objects.filter(dispatched_at=None).count() == 11  # rolled back whole

    Event.objects.filter(payload__fail=True).update(payload={})  # the cause is gone
    with channels("tests.events.test_outbox.recording_channel"):
        assert outbox.events_dispatch() == 11


@pytest.mark.django_db(transaction=True)
def test_relays_racing_each_other_hand_each_event_on_once(channels):
    events = record(400)

    with channels("tests.events.test_outbox.recording_channel"):
        outcomes = run_concurrently(4, lambda i: outbox.events_dispatch(batch=25), workers=4)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes) == 400
    assert Counter(HANDED) == Counter(str(event.event_id) for event in events)
    assert max(Counter(HANDED).values()) == 1


def test_dispatched_events_are_pruned_after_their_retention(channels):
    old, fresh = record(1)[0], record(1)[0]
    with channels():
        outbox.events_dispatch()
    Event.objects.filter(id=old.id).update(dispatched_at=timezone.now() - timedelta(days=31))
    undispatched = record(1)[0]
    Event.objects.filter(id=undispatched.id).update(occurred_at=timezone.now() - timedelta(days=90))

    assert outbox.events_prune() == 1
    assert set(Event.objects.values_list("id", flat=True)) == {fresh.id, undispatched.id}
