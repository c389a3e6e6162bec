"""Invariant 10 under races, on separate database connections: a seat that comes back while a
matching entry waits goes to the oldest such entry and is never anyone else's in between;
auto-pay pays once; join, hold and buy together never pass the ticket limit."""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from payments.cancellations import payment_refund, reservation_cancel_paid
from payments.models import LedgerEntry, LedgerKind, Payment
from payments.services import payment_create, waitlist_offer_auto_pay, wallet_charge
from reservations.models import Reservation, ReservationSource, WaitlistEntry, WaitlistStatus
from reservations.services import reservation_expire_due, reservation_hold
from reservations.waitlist import waitlist_join
from tests.accounts.factories import OperatorFactory, UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.concurrency import admit_everyone, make_customers, run_concurrently
from tests.conftest import client_for
from tests.reservations.factories import hold_seats
from tests.reservations.waitlist_helpers import buy, join

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_hundred_clients_hammering_holds_never_win_a_seat_the_line_waits_for():
    concert = ConcertFactory(hold_minutes=1, queue_max_active=1_000, queue_admit_per_minute=60_000)
    schedule = ScheduleFactory(concert=concert)
    seats = [SeatFactory(schedule=schedule, grade="R", number=n) for n in range(1, 13)]
    to_cancel, to_refund = buy(schedule, *seats[0:4]), buy(schedule, *seats[4:8])
    # A hold that runs out in ~3 s, while the clients hammer: lazy expiry must not free it.
    lapsing = hold_seats(
        UserFactory(), schedule, *seats[8:12], now=timezone.now() - timedelta(seconds=57)
    )
    line = [join(schedule) for _ in range(12)]
    hammerers = make_customers(100, prefix="hammer")
    tokens = admit_everyone(hammerers, concert)
    clients = [client_for(user) for user in hammerers]
    seat_ids = [seat.id for seat in seats]
    operator = OperatorFactory()
    done = threading.Event()

    def give_seats_back():
        time.sleep(0.3)
        reservation_cancel_paid(user=to_cancel.user, reservation_id=to_cancel.id)
        time.sleep(0.3)
        payment_refund(
            payment_id=to_refund.payment.id, operator=operator, in_full=True, reason="Race."
        )
        while timezone.now() < lapsing.expires_at + timedelta(seconds=0.5):
            time.sleep(0.1)  # the hold has lapsed: the clients see it free for a while
        reservation_expire_due()
        time.sleep(0.3)
        done.set()
        return "returned"

    def hammer(i):
        if i == 100:
            return give_seats_back()
        answers = []
        while not done.is_set():
            response = clients[i].post(
                "/api/v1/reservations",
                {"schedule_id": schedule.id, "seat_ids": [random.choice(seat_ids)]},
                format="json",
                HTTP_X_QUEUE_TOKEN=tokens[hammerers[i].id],
            )
            answers.append(response.status_code)
        return answers

    outcomes = run_concurrently(101, hammer, workers=101)

    assert outcomes[100] == "returned", outcomes[100]
    answers = [code for outcome in outcomes[:100] for code in outcome]
    assert len(answers) > 100  # they did hammer
    assert set(answers) == {409}
    assert not Reservation.objects.filter(user__in=hammerers).exists()
    # Every seat went to the line, in join order: twelve seats, twelve entries of one.
    for entry in line:
        entry.refresh_from_db()
    assert [entry.status for entry in line] == [WaitlistStatus.OFFERED] * 12
    offered = Seat.objects.filter(reservation__source=ReservationSource.WAITLIST)
    assert offered.count() == 12


def test_auto_pay_racing_itself_and_the_sweep_pays_an_offer_once():
    schedule = ScheduleFactory(concert=ConcertFactory(booking_fee=1_000))
    seat = SeatFactory(schedule=schedule, price=110_000)
    sold = buy(schedule, seat)
    customer = UserFactory()
    wallet_charge(user=customer, amount=500_000)
    entry = join(schedule, user=customer, auto_pay=True, max_total=111_000)
    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    entry.refresh_from_db()
    offer = entry.offer
    at_the_end = offer.expires_at - timedelta(microseconds=1)

    outcomes = run_concurrently(
        12,
        lambda i: (
            waitlist_offer_auto_pay(reservation_id=offer.id)
            if i % 3
            else reservation_expire_due(
                now=at_the_end + timedelta(microseconds=2) if i % 2 else None
            )
        ),
    )

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    offer.refresh_from_db()
    entry.refresh_from_db()
    payments = Payment.objects.filter(reservation=offer)
    debits = LedgerEntry.objects.filter(payment__reservation=offer, kind=LedgerKind.PAYMENT)
    if offer.status == "confirmed":
        assert payments.count() == 1 and debits.count() == 1
        assert entry.status == WaitlistStatus.BOUGHT
    else:  # the sweep saw it lapse first: no money moved
        assert offer.status == "expired" and not payments.exists() and not debits.exists()
        assert entry.status == WaitlistStatus.LAPSED


def test_join_hold_and_buy_in_parallel_never_pass_the_ticket_limit():
    concert = ConcertFactory(ticket_limit=4)
    schedule = ScheduleFactory(concert=concert)
    buy(schedule, *[SeatFactory(schedule=schedule, grade="VIP") for _ in range(4)])
    customers = make_customers(8, prefix="limit")
    r_seats = [SeatFactory(schedule=schedule, grade="R") for _ in range(8 * 4)]
    tokens = admit_everyone(customers, concert)
    for customer in customers:
        wallet_charge(user=customer, amount=1_000_000)

    def act(i):
        customer, action = customers[i // 4], i % 4
        if action == 0:
            return waitlist_join(user=customer, schedule_id=schedule.id, quantity=2, grades=["VIP"])
        mine = r_seats[(i // 4) * 4 :][(action - 1) % 2 * 2 :][:2]
        held = reservation_hold(
            user=customer,
            schedule_id=schedule.id,
            seat_ids=[seat.id for seat in mine],
            queue_token=tokens[customer.id],
        )
        if action == 3:
            payment_create(user=customer, reservation_id=held.id)
        return held

    outcomes = run_concurrently(len(customers) * 4, act)

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert refused and all(
        type(o).__name__ in ("TicketLimitReached", "SeatsUnavailable") for o in refused
    ), refused
    now = timezone.now()
    for customer in customers:
        held = Seat.objects.filter(
            reservation__user=customer, status=SeatStatus.HELD, hold_expires_at__gt=now
        ).count()
        bought = Seat.objects.filter(reservation__user=customer, status=SeatStatus.SOLD).count()
        waiting = sum(
            WaitlistEntry.objects.filter(user=customer, status="waiting").values_list(
                "quantity", flat=True
            )
        )
        assert held + bought + waiting <= 4, (customer.id, held, bought, waiting)
