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


def test_a_lapsed_hold_cannot_be_paid_even_before_the_sweep(customer, customer_client):
    """Expiry has one truth: what GET says (expired), the seat map shows (available) and the
    sweep will do, payment does too."""
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold_seats(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))

    seen = customer_client.get(f"/api/v1/reservations/{reservation.id}").json()["status"]
    with pytest.raises(HoldExpired) as refused:
        payment_create(user=customer, reservation_id=reservation.id)

    assert seen == "expired"
    assert "back on sale" in refused.value.message
    seat.refresh_from_db()
    assert seat.status == SeatStatus.HELD  # untouched until the sweep tidies it up
    assert Wallet.objects.get(user=customer).balance == 500_000
