from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from concerts.errors import SeatMapInvalid
from concerts.models import Schedule, Seat, SeatStatus
from concerts.services import SeatBlock, seat_map_generate
from reservations.services import reservation_cancel
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.reservations.factories import hold_seats

pytestmark = pytest.mark.django_db

VIP = SeatBlock(section="A", grade="VIP", price=165_000, rows=2, seats_per_row=5)
R = SeatBlock(section="A", grade="R", price=132_000, rows=3, seats_per_row=5, first_row=3)


def test_generates_sections_rows_and_seats_with_a_price_per_grade():
    schedule = ScheduleFactory()

    created = seat_map_generate(schedule_ids=[schedule.id], blocks=[VIP, R])

    assert created == 25
    seats = list(
        Seat.objects.filter(schedule=schedule).values_list("row", "number", "grade", "price")
    )
    assert len(seats) == 25
    assert seats[0] == (1, 1, "VIP", 165_000)
    assert seats[-1] == (5, 5, "R", 132_000)
    assert {status for status in Seat.objects.values_list("status", flat=True)} == {"available"}


def test_generates_the_same_map_for_several_schedules():
    schedules = ScheduleFactory.create_batch(3)

    created = seat_map_generate(schedule_ids=[s.id for s in schedules], blocks=[VIP])

    assert created == 30
    assert [s.seats.count() for s in schedules] == [10, 10, 10]


@pytest.mark.parametrize(
    "blocks, message",
    [
        ([], "at least one block"),
        (
            [VIP, SeatBlock(section="B", grade="VIP", price=1, rows=1, seats_per_row=1)],
            "two prices",
        ),
        (
            [VIP, SeatBlock(section="A", grade="VIP", price=165_000, rows=1, seats_per_row=1)],
            "overlap",
        ),
        ([SeatBlock(section="A", grade="R", price=0, rows=1, seats_per_row=1)], "positive"),
        ([SeatBlock(section=" ", grade="R", price=1, rows=1, seats_per_row=1)], "section"),
        ([SeatBlock(section="A", grade="R", price=1, rows=200, seats_per_row=200)], "at most"),
    ],
)
def test_refuses_bad_layouts_and_writes_nothing(blocks, message):
    schedule = ScheduleFactory()

    with pytest.raises(SeatMapInvalid, match=message):
        seat_map_generate(schedule_ids=[schedule.id], blocks=blocks)

    assert not Seat.objects.exists()


def test_adding_seats_that_exist_fails_for_all_schedules():
    fresh, taken = ScheduleFactory.create_batch(2)
    SeatFactory(schedule=taken, section="A", row=1, number=1)

    with pytest.raises(SeatMapInvalid, match="already exist"):
        seat_map_generate(schedule_ids=[fresh.id, taken.id], blocks=[VIP])

    assert fresh.seats.count() == 0  # all or none
    assert taken.seats.count() == 1


def test_replace_swaps_an_unsold_map():
    schedule = ScheduleFactory()
    seat_map_generate(schedule_ids=[schedule.id], blocks=[VIP, R])

    seat_map_generate(schedule_ids=[schedule.id], blocks=[VIP], replace=True)

    assert schedule.seats.count() == 10


@pytest.mark.parametrize("status", [SeatStatus.SOLD, SeatStatus.HELD])
def test_replace_is_refused_once_a_seat_belongs_to_a_customer(status):
    schedule = ScheduleFactory()
    expiry = timezone.now() + timedelta(minutes=5) if status == SeatStatus.HELD else None
    SeatFactory(schedule=schedule, status=status, hold_expires_at=expiry)

    with pytest.raises(SeatMapInvalid, match="held or sold"):
        seat_map_generate(schedule_ids=[schedule.id], blocks=[VIP], replace=True)

    assert schedule.seats.count() == 1


def test_unknown_schedules_are_refused():
    with pytest.raises(SeatMapInvalid, match="not found"):
        seat_map_generate(schedule_ids=[987654], blocks=[VIP])


# The database, not only the code, keeps the catalog consistent.


def test_database_refuses_a_seat_twice_in_one_schedule():
    seat = SeatFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Seat.objects.create(
            schedule=seat.schedule,
            section=seat.section,
            row=seat.row,
            number=seat.number,
            grade="S",
            price=1,
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"price": 0},
        {"row": 0},
        {"number": 0},
        {"status": "lost"},
        {"status": SeatStatus.HELD, "hold_expires_at": None},
        {"status": SeatStatus.AVAILABLE, "hold_expires_at": timezone.now()},
    ],
)
def test_database_refuses_impossible_seats(fields):
    schedule = ScheduleFactory()
    values = {"section": "A", "row": 1, "number": 1, "grade": "R", "price": 1, **fields}

    with pytest.raises(IntegrityError), transaction.atomic():
        Seat.objects.create(schedule=schedule, **values)


def test_database_refuses_a_schedule_that_ends_before_it_starts():
    concert = ConcertFactory()
    now = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(concert=concert, starts_at=now, ends_at=now)


def test_replacing_a_seat_map_with_reservation_history_is_refused_not_a_crash(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    reservation = hold_seats(customer, schedule, seat)
    reservation_cancel(user=customer, reservation_id=reservation.id)

    with pytest.raises(SeatMapInvalid, match="reserved before"):
        seat_map_generate(
            schedule_ids=[schedule.id],
            blocks=[SeatBlock(section="Z", grade="R", price=1000, rows=1, seats_per_row=2)],
            replace=True,
        )

    assert Seat.objects.filter(schedule=schedule).count() == 1
