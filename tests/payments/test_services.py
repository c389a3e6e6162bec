from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import SeatStatus
from payments.models import Wallet
from payments.services import payment_create, wallet_charge
from reservations.errors import HoldExpired
from reservations.models import ReservationStatus
from reservations.services import reservation_expire_due
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import hold_seats

pytestmark = pytest.mark.django_db


def test_a_swept_reservation_cannot_be_paid(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold_seats(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))
    reservation_expire_due()

    with pytest.raises(HoldExpired):
        payment_create(user=customer, reservation_id=reservation.id)

    assert Wallet.objects.get(user=customer).balance == 500_000
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED


def test_a_lapsed_hold_not_yet_swept_can_still_be_paid_while_its_seats_are_free(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold_seats(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))

    payment_create(user=customer, reservation_id=reservation.id)

    seat.refresh_from_db()
    assert (seat.status, seat.reservation_id) == (SeatStatus.SOLD, reservation.id)
