"""reservations/inventory.py: each seat transition, its all-or-none promise, and its locks."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from reservations import inventory
from reservations.errors import HoldExpired, SeatsUnavailable
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import ReservationFactory

pytestmark = pytest.mark.django_db


def seat_locks(queries) -> list[str]:
    return [q["sql"] for q in queries if "concerts_seat" in q["sql"] and "FOR UPDATE" in q["sql"]]


def test_seats_are_locked_in_ascending_id_order_in_one_statement():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule) for _ in range(3)]

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = inventory.seats_lock(seat_ids=[s.id for s in reversed(seats)])

    assert [seat.id for seat in locked] == sorted(seat.id for seat in seats)
    (lock,) = seat_locks(queries.captured_queries)
    # The order is what keeps two multi-seat transactions from deadlocking: pin it.
    assert "ORDER BY `concerts_seat`.`id` ASC" in lock


@pytest.mark.parametrize("transition", ["release", "sell", "give_back"])
def test_every_transition_locks_its_seats_in_ascending_order_first(transition):
    schedule = ScheduleFactory()
    now = timezone.now()
    reservation = ReservationFactory(schedule=schedule)
    status = SeatStatus.SOLD if transition == "give_back" else SeatStatus.HELD
    expiry = None if status == SeatStatus.SOLD else reservation.expires_at
    seats = [
        SeatFactory(
            schedule=schedule, status=status, reservation=reservation, hold_expires_at=expiry
        )
        for _ in range(2)
    ]

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        if transition == "release":
            inventory.seats_release(reservation_ids=[reservation.id], now=timezone.now())
        elif transition == "sell":
            inventory.seats_sell(reservation=reservation, seat_ids=[s.id for s in seats], now=now)
        else:
            inventory.seats_give_back(
                reservation=reservation, seat_ids=[s.id for s in seats], now=timezone.now()
            )

    sqls = [q["sql"] for q in queries.captured_queries]
    lock = next(i for i, sql in enumerate(sqls) if "FOR UPDATE" in sql)
    write = next(i for i, sql in enumerate(sqls) if sql.startswith("UPDATE `concerts_seat`"))
    assert lock < write
    assert "ORDER BY `concerts_seat`.`id` ASC" in sqls[lock]


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_a_lock_outside_a_transaction_is_refused():
    seat = SeatFactory()

    with pytest.raises(RuntimeError, match="needs a transaction"):
        inventory.seats_lock(seat_ids=[seat.id])


def test_a_hold_takes_all_the_seats_or_none():
    schedule = ScheduleFactory()
    now = timezone.now()
    free = SeatFactory(schedule=schedule)
    taken = SeatFactory(schedule=schedule, status=SeatStatus.SOLD)
    reservation = ReservationFactory(schedule=schedule)

    with pytest.raises(SeatsUnavailable), transaction.atomic():
        inventory.seats_hold(
            reservation=reservation,
            seat_ids=[free.id, taken.id],
            expires_at=now + timedelta(minutes=5),
            now=now,
        )

    free.refresh_from_db()
    assert (free.status, free.reservation_id) == (SeatStatus.AVAILABLE, None)


def test_a_seat_whose_hold_ran_out_can_be_held_by_someone_else():
    schedule = ScheduleFactory()
    now = timezone.now()
    seat = SeatFactory(
        schedule=schedule, status=SeatStatus.HELD, hold_expires_at=now - timedelta(seconds=1)
    )
    newcomer = ReservationFactory(schedule=schedule)

    with transaction.atomic():
        inventory.seats_hold(
            reservation=newcomer, seat_ids=[seat.id], expires_at=now + timedelta(minutes=5), now=now
        )

    seat.refresh_from_db()
    assert (seat.status, seat.reservation_id) == (SeatStatus.HELD, newcomer.id)


def test_release_leaves_a_seat_another_hold_took_over():
    schedule = ScheduleFactory()
    now = timezone.now()
    lapsed, current = ReservationFactory(schedule=schedule), ReservationFactory(schedule=schedule)
    seat = SeatFactory(
        schedule=schedule,
        status=SeatStatus.HELD,
        reservation=current,
        hold_expires_at=now + timedelta(minutes=5),
    )

    with transaction.atomic():
        released = inventory.seats_release(reservation_ids=[lapsed.id], now=timezone.now())

    seat.refresh_from_db()
    assert released == 0
    assert (seat.status, seat.reservation_id) == (SeatStatus.HELD, current.id)


def test_selling_fails_whole_when_a_seat_went_to_someone_else():
    schedule = ScheduleFactory()
    now = timezone.now()
    mine, theirs = ReservationFactory(schedule=schedule), ReservationFactory(schedule=schedule)
    still_mine = SeatFactory(
        schedule=schedule,
        status=SeatStatus.HELD,
        reservation=mine,
        hold_expires_at=now + timedelta(minutes=1),
    )
    lost = SeatFactory(
        schedule=schedule,
        status=SeatStatus.HELD,
        reservation=theirs,
        hold_expires_at=now + timedelta(minutes=5),
    )

    with pytest.raises(HoldExpired), transaction.atomic():
        inventory.seats_sell(reservation=mine, seat_ids=[still_mine.id, lost.id], now=now)

    assert Seat.objects.filter(status=SeatStatus.SOLD).count() == 0


def test_give_back_frees_only_the_seats_sold_to_that_reservation():
    schedule = ScheduleFactory()
    refunded, other = ReservationFactory(schedule=schedule), ReservationFactory(schedule=schedule)
    returned = SeatFactory(schedule=schedule, status=SeatStatus.SOLD, reservation=refunded)
    kept = SeatFactory(schedule=schedule, status=SeatStatus.SOLD, reservation=other)

    with transaction.atomic():
        given_back = inventory.seats_give_back(
            reservation=refunded, seat_ids=[returned.id, kept.id], now=timezone.now()
        )

    kept.refresh_from_db()
    assert given_back == 1
    assert (kept.status, kept.reservation_id) == (SeatStatus.SOLD, other.id)
    assert Seat.objects.filter(status=SeatStatus.AVAILABLE, reservation=None).count() == 1


def take_after(change, *, prices=(50_000, 50_000)):
    """A hold's seats_take of two seats seen available, after `change(seats)` ran between
    the first look and the take (a rival, an operator). Returns (seats, taken or error)."""
    schedule = ScheduleFactory()
    now = timezone.now()
    seats = [SeatFactory(schedule=schedule, price=price) for price in prices]
    seen = inventory.seats_first_look(schedule_id=schedule.id, seat_ids=[s.id for s in seats])
    change(seats)
    reservation = ReservationFactory(schedule=schedule, expires_at=now + timedelta(minutes=5))
    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            taken = inventory.seats_take(reservation=reservation, seen=seen, now=now)
    except SeatsUnavailable as refused:
        return seats, refused, None
    return seats, taken, queries.captured_queries


def test_seats_seen_available_are_taken_by_one_update_without_a_lock_first():
    seats, taken, queries = take_after(lambda seats: None)

    assert [seat.id for seat in taken] == [seat.id for seat in seats]
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    assert set(Seat.objects.values_list("status", "reservation_id")) == {
        (SeatStatus.HELD, taken[0].reservation_id)
    }


def test_a_seat_a_rival_took_after_the_first_look_refuses_the_hold_whole():
    def rival_takes_the_second(seats):
        rival = ReservationFactory(schedule=seats[1].schedule)
        with transaction.atomic():
            inventory.seats_hold(
                reservation=rival,
                seat_ids=[seats[1].id],
                expires_at=rival.expires_at,
                now=timezone.now(),
            )

    seats, refused, _ = take_after(rival_takes_the_second)

    assert isinstance(refused, SeatsUnavailable)
    assert refused.details == {"seat_ids": [seats[1].id]}
    first = Seat.objects.get(id=seats[0].id)
    assert (first.status, first.reservation_id) == (SeatStatus.AVAILABLE, None)


def test_a_seat_repriced_after_the_first_look_is_taken_at_its_new_price():
    from concerts.services import seat_reprice

    def operator_reprices_the_second(seats):
        seat_reprice(seat_id=seats[1].id, grade=seats[1].grade, price=70_000)

    seats, taken, queries = take_after(operator_reprices_the_second)

    assert [(seat.id, seat.price) for seat in taken] == [
        (seats[0].id, 50_000),
        (seats[1].id, 70_000),
    ]
    assert sum("FOR UPDATE" in q["sql"] for q in queries) == 1  # the careful path ran
    assert Seat.objects.filter(status=SeatStatus.HELD).count() == 2
