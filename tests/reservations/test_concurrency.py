import random
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from payments.models import LedgerEntry, LedgerKind, Payment, Wallet
from payments.services import payment_create, wallet_charge
from reservations.errors import HoldExpired, SeatsUnavailable, TicketLimitReached
from reservations.models import Reservation, ReservationSeat, ReservationStatus
from reservations.services import reservation_expire_due, reservation_hold
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.concurrency import admit_everyone, make_customers, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_hundred_contenders_for_one_seat_make_exactly_one_hold():
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    customers = make_customers(200)
    tokens = admit_everyone(customers, schedule.concert)

    outcomes = run_concurrently(
        200,
        lambda i: reservation_hold(
            user=customers[i],
            schedule_id=schedule.id,
            seat_ids=[seat.id],
            queue_token=tokens[customers[i].id],
        ),
    )

    winners = [o for o in outcomes if isinstance(o, Reservation)]
    losers = [o for o in outcomes if isinstance(o, SeatsUnavailable)]
    assert (len(winners), len(losers)) == (1, 199)
    assert all(o.details == {"seat_ids": [seat.id]} for o in losers)
    seat.refresh_from_db()
    assert (seat.status, seat.reservation_id) == (SeatStatus.HELD, winners[0].id)
    assert Reservation.objects.count() == 1  # the losers left nothing behind


def test_three_hundred_customers_on_fifty_seats_never_share_a_seat():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule, row=1 + n // 10, number=1 + n % 10) for n in range(50)]
    seat_ids = [seat.id for seat in seats]
    customers = make_customers(300)
    tokens = admit_everyone(customers, schedule.concert)
    rng = random.Random(4)
    wishes = [rng.sample(seat_ids, rng.randint(1, 4)) for _ in customers]

    outcomes = run_concurrently(
        300,
        lambda i: reservation_hold(
            user=customers[i],
            schedule_id=schedule.id,
            seat_ids=wishes[i],
            queue_token=tokens[customers[i].id],
        ),
    )

    unexpected = [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, SeatsUnavailable)
    ]
    assert unexpected == []  # no deadlock or lock timeout reached a customer
    winners = [o for o in outcomes if isinstance(o, Reservation)]
    assert winners
    # Each won seat is in exactly one reservation, and the seat row names that reservation.
    held_items = ReservationSeat.objects.filter(reservation__status=ReservationStatus.HELD)
    assert held_items.values("seat").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    for reservation in winners:
        won = set(Seat.objects.filter(reservation=reservation).values_list("id", flat=True))
        assert won == set(reservation.items.values_list("seat_id", flat=True))
        assert won == set(wishes[customers.index(reservation.user)])  # all or nothing
    assert Seat.objects.filter(schedule=schedule, status=SeatStatus.HELD).count() == sum(
        len(r.items.all()) for r in winners
    )


def test_one_customer_racing_themselves_stays_within_four_seats():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule, number=n) for n in range(1, 21)]
    [customer] = make_customers(1)
    token = admit_everyone([customer], schedule.concert)[customer.id]

    outcomes = run_concurrently(
        10,
        lambda i: reservation_hold(
            user=customer,
            schedule_id=schedule.id,
            seat_ids=[seats[2 * i].id, seats[2 * i + 1].id],
            queue_token=token,
        ),
        workers=10,
    )

    assert Counter(type(o) for o in outcomes) == {Reservation: 2, TicketLimitReached: 8}
    assert Seat.objects.filter(status=SeatStatus.HELD).count() == 4


def test_twenty_parallel_holds_across_two_dates_and_after_a_payment_keep_the_limit():
    """One customer, several devices: 20 holds at once over two performances of a concert
    whose limit is 3, after they already bought one seat of the first. Seats held and bought
    never pass the limit for either performance."""
    from payments.services import payment_create, wallet_charge

    concert = ConcertFactory(ticket_limit=3)
    first, second = ScheduleFactory(concert=concert), ScheduleFactory(concert=concert)
    seats = {
        schedule.id: [SeatFactory(schedule=schedule) for _ in range(21)]
        for schedule in (first, second)
    }
    [customer] = make_customers(1)
    token = admit_everyone([customer], concert)[customer.id]
    wallet_charge(user=customer, amount=1_000_000)
    bought = reservation_hold(
        user=customer, schedule_id=first.id, seat_ids=[seats[first.id][20].id], queue_token=token
    )
    payment_create(user=customer, reservation_id=bought.id)
    token = admit_everyone([customer], concert)[customer.id]  # paying ended the session

    def hold(i):
        schedule = (first, second)[i % 2]
        return reservation_hold(
            user=customer,
            schedule_id=schedule.id,
            seat_ids=[seats[schedule.id][i].id],
            queue_token=token,
        )

    outcomes = run_concurrently(20, hold, workers=20)

    assert Counter(type(o).__name__ for o in outcomes) == {
        "Reservation": 2 + 3,  # 2 more of the first date, 3 of the second
        "TicketLimitReached": 15,
    }
    for schedule, limit in ((first, 3), (second, 3)):
        mine = Seat.objects.filter(schedule=schedule, reservation__user=customer)
        assert mine.exclude(status=SeatStatus.AVAILABLE).count() == limit


def test_fifty_concurrent_charges_add_up_exactly():
    [customer] = make_customers(1)

    outcomes = run_concurrently(50, lambda i: wallet_charge(user=customer, amount=1000 + i))

    assert not [o for o in outcomes if isinstance(o, Exception)]
    wallet = Wallet.objects.get(user=customer)
    expected = sum(1000 + i for i in range(50))
    assert wallet.balance == expected
    assert sum(wallet.entries.values_list("amount", flat=True)) == expected
    # Each entry recorded the balance right after it, so they form one unbroken chain.
    chain = sorted(wallet.entries.values_list("balance_after", "amount"))
    assert [after - amount for after, amount in chain] == [0] + [after for after, _ in chain[:-1]]


def _lapsed_holds(count: int, *, price: int = 50_000):
    """`count` customers, each with a funded wallet and a hold that has just run out."""
    schedule = ScheduleFactory()
    customers = make_customers(count)
    tokens = admit_everyone(customers, schedule.concert)
    then = timezone.now() - timedelta(minutes=schedule.concert.hold_minutes, seconds=1)
    reservations = []
    for n, customer in enumerate(customers):
        seat = SeatFactory(schedule=schedule, number=n + 1, price=price)
        wallet_charge(user=customer, amount=price)
        reservations.append(
            reservation_hold(
                user=customer,
                schedule_id=schedule.id,
                seat_ids=[seat.id],
                queue_token=tokens[customer.id],
                now=then,
            )
        )
    return schedule, customers, reservations


def test_payments_racing_the_expiry_sweep_are_paid_or_expired_never_both():
    schedule, customers, reservations = _lapsed_holds(40)

    def race(i):
        if i % 5 == 4:
            return reservation_expire_due()
        n = i - i // 5  # 4 payers for every sweeper
        return payment_create(user=customers[n], reservation_id=reservations[n].id)

    outcomes = run_concurrently(50, race, workers=16)

    assert not [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, HoldExpired)]
    for reservation in reservations:
        reservation.refresh_from_db()
        paid = Payment.objects.filter(reservation=reservation).exists()
        debits = LedgerEntry.objects.filter(
            wallet__user=reservation.user, kind=LedgerKind.PAYMENT
        ).count()
        seat = Seat.objects.get(id=reservation.items.get().seat_id)
        if reservation.status == ReservationStatus.CONFIRMED:
            assert (paid, debits, seat.status, seat.reservation_id) == (
                True,
                1,
                SeatStatus.SOLD,
                reservation.id,
            )
        else:
            assert reservation.status == ReservationStatus.EXPIRED
            assert (paid, debits, seat.status) == (False, 0, SeatStatus.AVAILABLE)
        balance = Wallet.objects.get(user=reservation.user).balance
        assert balance == (0 if paid else 50_000)


def test_a_lapsed_hold_whose_seat_went_to_someone_else_is_never_charged():
    schedule, customers, reservations = _lapsed_holds(1)
    [late] = reservations
    [rival] = make_customers(1, prefix="rival")
    rival_token = admit_everyone([rival], schedule.concert)[rival.id]
    reservation_hold(
        user=rival,
        schedule_id=schedule.id,
        seat_ids=[late.items.get().seat_id],
        queue_token=rival_token,
    )

    with pytest.raises(HoldExpired):
        payment_create(user=customers[0], reservation_id=late.id)

    assert Wallet.objects.get(user=customers[0]).balance == 50_000
    assert not Payment.objects.filter(reservation=late).exists()


def test_sweepers_side_by_side_expire_each_hold_once():
    _, _, reservations = _lapsed_holds(30)

    swept = run_concurrently(4, lambda i: reservation_expire_due(batch=5), workers=4)

    assert sum(swept) == 30
    assert set(
        Reservation.objects.filter(id__in=[r.id for r in reservations]).values_list(
            "status", flat=True
        )
    ) == {ReservationStatus.EXPIRED}
    assert not Seat.objects.filter(status=SeatStatus.HELD).exists()
