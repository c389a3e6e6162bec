"""What a payment locks. MariaDB has no FOR UPDATE OF: a locking query that joins another
table locks that table's rows too, and a shared row (the schedule) would make every payment
of a performance wait for the others."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from concerts.models import SeatStatus
from payments.services import payment_create, wallet_charge
from tests.concerts.factories import SeatFactory
from tests.reservations.factories import ReservationFactory, ReservationSeatFactory

pytestmark = pytest.mark.django_db


def test_a_payment_locks_only_rows_of_its_own_customer_and_reservation(customer):
    wallet_charge(user=customer, amount=500_000)
    reservation = ReservationFactory(user=customer, total_price=100_000)
    seat = SeatFactory(
        schedule=reservation.schedule,
        status=SeatStatus.HELD,
        hold_expires_at=reservation.expires_at,
        reservation=reservation,
        price=100_000,
    )
    ReservationSeatFactory(reservation=reservation, seat=seat, price=100_000)

    with CaptureQueriesContext(connection) as queries:
        payment_create(user=customer, reservation_id=reservation.id)

    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking, "a payment must lock what it changes"
    for sql in locking:
        assert "concerts_schedule" not in sql and "concerts_concert" not in sql, sql
