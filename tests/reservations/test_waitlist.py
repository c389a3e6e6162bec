"""The 취소표 waitlist against the real database: returned seats reach waiting customers in
the order they joined, by grade and quantity, as offers they pay like any hold; offers that
lapse or are declined move on; what nobody waits for goes back on sale."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from payments.cancellations import payment_refund, reservation_cancel_paid
from payments.models import Payment
from payments.services import (
    waitlist_offer_auto_pay,
    waitlist_offers_auto_pay_pending,
    wallet_charge,
)
from reservations.errors import SeatsUnavailable, TicketLimitReached
from reservations.models import (
    Reservation,
    ReservationSource,
    WaitlistEntry,
    WaitlistEvent,
    WaitlistEventKind,
    WaitlistStatus,
)
from reservations.services import reservation_cancel, reservation_expire_due
from reservations.waitlist import pick_seats, waitlist_leave
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.conftest import client_for
from tests.reservations.factories import hold_seats
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

VIP, R = 165_000, 110_000


def new_offers(since_event_id: int) -> list[tuple[int, str, int]]:
    """Offers made after an event id, in the order made: (entry id, grade, seats)."""
    made = []
    for event in WaitlistEvent.objects.filter(
        id__gt=since_event_id, kind=WaitlistEventKind.OFFERED
    ).order_by("id"):
        grades = set(
            Seat.objects.filter(id__in=event.details["seat_ids"]).values_list("grade", flat=True)
        )
        assert len(grades) == 1
        made.append((event.entry_id, grades.pop(), len(event.details["seat_ids"])))
    return made


def last_event_id() -> int:
    return WaitlistEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def expected_offers(line: list[list], pool: Counter) -> list[tuple[int, str, int]]:
    """The contract, written plainly: go down the line in join order; an entry takes its
    quantity of its grade when the pool has that many (an any-grade entry takes VIP first,
    the front section), else it is skipped and keeps its place. `line` and `pool` are
    updated as the offers are made."""
    made = []
    for entry in list(line):
        entry_id, quantity, grades = entry
        choices = grades or ["VIP", "R"]
        grade = next((g for g in choices if pool[g] >= quantity), None)
        if grade is not None:
            pool[grade] -= quantity
            line.remove(entry)
            made.append((entry_id, grade, quantity))
    return made


def test_returned_seats_go_to_the_waiting_line_in_join_order_by_grade_and_quantity(operator):
    now = timezone.now()
    schedule = ScheduleFactory()
    vip = seats_of(schedule, "VIP", "A", rows=1, per_row=8, price=VIP)
    r = seats_of(schedule, "R", "B", rows=2, per_row=6, price=R)
    refund_vip = buy(schedule, *vip[0:2])
    cancel_vip = buy(schedule, vip[2])
    lapse_vip = hold(schedule, *vip[3:6])
    split_vip = buy(schedule, *vip[6:8])
    refund_r = buy(schedule, *r[0:4])
    lapse_r = hold(schedule, *r[4:6])
    cancel_r = buy(schedule, *r[6:9])
    split_r = buy(schedule, *r[9:12])

    # 50 customers join the sold-out performance, in this order.
    kinds = [(1, ["R"]), (2, ["VIP"]), (1, None), (1, ["VIP"]), (2, ["R"])]
    line = []
    for i in range(50):
        quantity, grades = kinds[i % 5]
        entry = join(schedule, quantity=quantity, grades=grades)
        line.append([entry.id, quantity, grades])

    pool, offered_seats = Counter(), []

    def returns(grades: Counter, give_back) -> None:
        since = last_event_id()
        give_back()
        pool.update(grades)
        made = new_offers(since)
        assert made == expected_offers(line, pool)
        for event in WaitlistEvent.objects.filter(id__gt=since, kind=WaitlistEventKind.OFFERED):
            offered_seats.extend(event.details["seat_ids"])

    def customer_cancels(reservation, *seats):
        ids = [seat.id for seat in seats] or None
        return lambda: reservation_cancel_paid(
            user=reservation.user, reservation_id=reservation.id, seat_ids=ids
        )

    def operator_refunds(reservation):
        return lambda: payment_refund(
            payment_id=reservation.payment.id, operator=operator, in_full=True, reason="Test."
        )

    returns(Counter(VIP=2), operator_refunds(refund_vip))
    returns(Counter(VIP=1), customer_cancels(cancel_vip))
    # Two holds lapse and are swept in one batch: 3 VIP and 2 R come back together.
    returns(Counter(VIP=3, R=2), lambda: reservation_expire_due(now=now + timedelta(minutes=6)))
    returns(Counter(VIP=1), customer_cancels(split_vip, vip[6]))
    returns(Counter(R=4), operator_refunds(refund_r))
    returns(Counter(R=3), customer_cancels(cancel_r))
    for seat in r[9:12]:
        returns(Counter(R=1), customer_cancels(split_r, seat))
    returns(Counter(VIP=1), customer_cancels(split_vip, vip[7]))

    assert len(offered_seats) == len(set(offered_seats)), "a seat was offered twice"
    assert len(offered_seats) == 20 - sum(pool.values()) == 20
    # What nobody in line could take is on sale; everything offered is held for its entry.
    on_sale = Seat.objects.filter(schedule=schedule, status=SeatStatus.AVAILABLE)
    assert Counter(on_sale.values_list("grade", flat=True)) == +pool
    offers = Reservation.objects.filter(source=ReservationSource.WAITLIST)
    assert offers.count() == WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED).count()
    for offer in offers:
        assert set(offer.current_seats.values_list("status", flat=True)) == {SeatStatus.HELD}
        assert offer.waitlist_entry.quantity == offer.items.count()
    assert not lapse_vip.current_seats.exists() and not lapse_r.current_seats.exists()


def test_an_offer_is_paid_like_a_hold_without_a_queue_token_and_the_entry_is_bought():
    schedule = ScheduleFactory(concert=ConcertFactory(booking_fee=2_000))
    seat = SeatFactory(schedule=schedule, price=R)
    sold = buy(schedule, seat)
    customer = UserFactory()
    entry = join(schedule, user=customer)

    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)

    entry.refresh_from_db()
    offer = entry.offer
    assert entry.status == WaitlistStatus.OFFERED
    assert offer.source == ReservationSource.WAITLIST
    assert offer.expires_at == entry.offered_at + timedelta(minutes=30)
    assert offer.total_price == R and offer.booking_fee_total == 2_000

    client = client_for(customer)
    wallet_charge(user=customer, amount=R + 2_000)
    paid = client.post(f"/api/v1/reservations/{offer.id}/payment")

    assert paid.status_code == 201, paid.json()
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.BOUGHT and entry.live is None
    assert [e.kind for e in entry.events.all()] == ["offered", "taken"]
    listed = client.get("/api/v1/reservations").json()["results"][0]
    assert listed["source"] == "waitlist" and listed["status"] == "confirmed"


def test_a_lapsed_offer_passes_to_the_next_entry_and_then_back_on_sale():
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule, grade="R", price=R)
    sold = buy(schedule, seat)
    first, second = join(schedule), join(schedule)
    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    first.refresh_from_db()
    offer_ends = first.offer.expires_at

    # Lazy: the moment the offer runs out it reads lapsed, and the seat is not anyone's to
    # take (the next entry waits for it) before the sweep hands it on.
    later = offer_ends + timedelta(seconds=1)
    with pytest.raises(SeatsUnavailable):
        hold_seats(UserFactory(), schedule, seat, now=later)

    assert reservation_expire_due(now=later) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == WaitlistStatus.LAPSED
    assert [e.kind for e in first.events.all()] == ["offered", "lapsed"]
    assert second.status == WaitlistStatus.OFFERED
    assert list(second.offer.items.values_list("seat_id", flat=True)) == [seat.id]

    # The second offer lapses too; nobody waits now, so the seat is on sale again.
    much_later = second.offer.expires_at + timedelta(seconds=1)
    assert reservation_expire_due(now=much_later) == 1
    seat.refresh_from_db()
    assert seat.status == SeatStatus.AVAILABLE
    assert hold_seats(UserFactory(), schedule, seat, now=much_later).status == "held"


def test_a_declined_offer_goes_to_the_next_in_line_at_once():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule, grade="R") for _ in range(2)]
    sold = buy(schedule, *seats)
    first = join(schedule, quantity=2)
    second = join(schedule, quantity=1)
    third = join(schedule, quantity=1)
    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    first.refresh_from_db()
    assert first.status == WaitlistStatus.OFFERED

    # Declining: the customer lets the offer's hold go (leaving the list does the same).
    reservation_cancel(user=first.user, reservation_id=first.offer_id)

    for entry in (first, second, third):
        entry.refresh_from_db()
    assert first.status == WaitlistStatus.LEFT
    assert first.events.last().kind == WaitlistEventKind.DECLINED
    assert second.status == WaitlistStatus.OFFERED and third.status == WaitlistStatus.OFFERED

    waitlist_leave(user=second.user, entry_id=second.id)
    second.refresh_from_db()
    assert second.status == WaitlistStatus.LEFT
    assert Seat.objects.filter(id=second.offer.items.get().seat_id, status="available").exists()


def test_an_entry_that_cannot_be_filled_yet_keeps_its_place_for_the_next_return():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule, grade="R", row=1, number=n) for n in (1, 2, 3)]
    first_sale = buy(schedule, seats[0])
    second_sale = buy(schedule, seats[1], seats[2])
    wants_two = join(schedule, quantity=2)
    wants_one = join(schedule, quantity=1)

    reservation_cancel_paid(user=first_sale.user, reservation_id=first_sale.id)
    wants_two.refresh_from_db()
    wants_one.refresh_from_db()
    assert wants_two.status == WaitlistStatus.WAITING  # skipped: one seat came back
    assert wants_one.status == WaitlistStatus.OFFERED

    reservation_cancel_paid(user=second_sale.user, reservation_id=second_sale.id)
    wants_two.refresh_from_db()
    assert wants_two.status == WaitlistStatus.OFFERED
    assert sorted(wants_two.offer.items.values_list("seat_id", flat=True)) == [
        seats[1].id,
        seats[2].id,
    ]


def test_auto_pay_pays_an_offer_once_when_the_balance_covers_it():
    schedule = ScheduleFactory(concert=ConcertFactory(booking_fee=1_000))
    seat = SeatFactory(schedule=schedule, price=R)
    sold = buy(schedule, seat)
    rich, poor = UserFactory(), UserFactory()
    wallet_charge(user=rich, amount=500_000)
    wallet_charge(user=poor, amount=10_000)
    entry = join(schedule, user=poor, auto_pay=True, max_total=200_000)

    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    entry.refresh_from_db()
    assert waitlist_offer_auto_pay(reservation_id=entry.offer_id) is None
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.OFFERED  # not enough money: it stays an offer
    failed = entry.events.get(kind=WaitlistEventKind.AUTO_PAY_FAILED)
    assert failed.details["reason"] == "insufficient_balance"
    assert waitlist_offers_auto_pay_pending() == 0  # and the beat does not try again

    # Declined, it passes to the next entry, who opted in and can pay: the beat's pass
    # pays it (as if the nudge at the offer had been lost), and only once.
    rich_entry = join(schedule, user=rich, auto_pay=True, max_total=R + 1_000)
    waitlist_leave(user=poor, entry_id=entry.id)
    assert waitlist_offers_auto_pay_pending() == 1
    assert waitlist_offers_auto_pay_pending() == 0
    rich_entry.refresh_from_db()
    assert rich_entry.status == WaitlistStatus.BOUGHT
    assert Payment.objects.filter(reservation=rich_entry.offer).count() == 1
    assert waitlist_offer_auto_pay(reservation_id=rich_entry.offer_id) is None


def test_auto_pay_leaves_an_offer_over_the_customers_maximum():
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule, price=R)
    sold = buy(schedule, seat)
    customer = UserFactory()
    wallet_charge(user=customer, amount=1_000_000)
    entry = join(schedule, user=customer, auto_pay=True, max_total=R - 1)

    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    entry.refresh_from_db()
    assert waitlist_offer_auto_pay(reservation_id=entry.offer_id) is None
    assert entry.events.get(kind=WaitlistEventKind.AUTO_PAY_FAILED).details["reason"] == (
        "over_max_total"
    )
    assert not Payment.objects.filter(reservation_id=entry.offer_id).exists()


def test_the_ticket_limit_counts_the_seats_waited_for():
    concert = ConcertFactory(ticket_limit=4)
    schedule = ScheduleFactory(concert=concert)
    vip = [SeatFactory(schedule=schedule, grade="VIP") for _ in range(2)]
    r = [SeatFactory(schedule=schedule, grade="R") for _ in range(4)]
    buy(schedule, *vip)
    customer = UserFactory()
    join(schedule, user=customer, quantity=2, grades=["VIP"])
    hold_seats(customer, schedule, r[0], r[1])

    with pytest.raises(TicketLimitReached) as refused:
        hold_seats(customer, schedule, r[2])
    assert refused.value.details == {"held": 2, "bought": 0, "waiting": 2, "limit": 4}


def test_pick_seats_prefers_seats_side_by_side_then_one_row_then_the_first_grade():
    def seat(grade, row, number, section="A"):
        return Seat(id=row * 100 + number, section=section, row=row, number=number, grade=grade)

    pool = [seat("R", 1, 1), seat("R", 1, 3), seat("R", 2, 5), seat("R", 2, 6), seat("S", 3, 1)]
    ids = lambda seats: [s.id for s in seats]  # noqa: E731

    assert ids(pick_seats(pool, quantity=2, grades=None)) == [205, 206]  # side by side
    assert ids(pick_seats(pool[:2] + pool[4:], quantity=2, grades=["R"])) == [101, 103]  # a row
    assert ids(pick_seats([pool[0], pool[2], pool[4]], quantity=2, grades=None)) == [101, 205]
    assert ids(pick_seats(pool, quantity=1, grades=["S", "R"])) == [301]  # the first grade
    assert pick_seats(pool, quantity=2, grades=["S"]) is None
