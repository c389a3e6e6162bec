from datetime import timedelta

import factory
from django.utils import timezone

from concerts.models import Concert, Schedule, Seat, SeatStatus


class ConcertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Concert

    title = factory.Sequence(lambda n: f"Concert {n}")
    artist = factory.Faker("name")
    venue = "Olympic Hall, Seoul"
    is_published = True
    sale_opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    concert = factory.SubFactory(ConcertFactory)
    starts_at = factory.Sequence(lambda n: timezone.now() + timedelta(days=30, hours=n))
    ends_at = factory.LazyAttribute(lambda schedule: schedule.starts_at + timedelta(hours=2))


class SeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Seat

    schedule = factory.SubFactory(ScheduleFactory)
    section = "A"
    row = 1
    number = factory.Sequence(lambda n: n + 1)
    grade = "R"
    price = 110_000
    status = SeatStatus.AVAILABLE
    # A held or sold seat belongs to a reservation (the database insists).
    reservation = factory.Maybe(
        factory.LazyAttribute(lambda seat: seat.status != SeatStatus.AVAILABLE),
        yes_declaration=factory.LazyAttribute(lambda seat: _reservation_for(seat.schedule)),
        no_declaration=None,
    )


def _reservation_for(schedule):
    from tests.reservations.factories import ReservationFactory

    return ReservationFactory(schedule=schedule)
