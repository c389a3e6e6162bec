from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.errors import ReservationNotCancellable, SalesClosed
from reservations.services import reservation_cancel, reservation_expire_due
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import hold_seats

pytestmark = pytest.mark.django_db


def test_cancelling_a_lapsed_hold_answers_the_same_before_and_after_the_sweep(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    reservation = hold_seats(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))

    with pytest.raises(ReservationNotCancellable) as before:
        reservation_cancel(user=customer, reservation_id=reservation.id)
    reservation_expire_due()
    with pytest.raises(ReservationNotCancellable) as after:
        reservation_cancel(user=customer, reservation_id=reservation.id)

    assert before.value.details == after.value.details == {"status": "expired"}


def test_seats_of_a_performance_that_has_started_are_not_on_sale(customer):
    schedule = ScheduleFactory(starts_at=timezone.now() - timedelta(minutes=1))
    seat = SeatFactory(schedule=schedule)

    with pytest.raises(SalesClosed):
        hold_seats(customer, schedule, seat)
