from datetime import timedelta

import factory
from django.utils import timezone

from reservations.models import Reservation, ReservationSeat
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    user = factory.SubFactory(UserFactory)
    schedule = factory.SubFactory(ScheduleFactory)
    total_price = 110_000
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))


class ReservationSeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReservationSeat

    reservation = factory.SubFactory(ReservationFactory)
    price = 110_000
