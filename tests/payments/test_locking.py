"""What a payment locks. MariaDB has no FOR UPDATE OF: a locking query that joins another
table locks that table's rows too, and a shared row (the schedule) would make every payment
of a performance wait for the others."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.services import payment_create, wallet_charge
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db


def test_a_payment_locks_only_rows_of_its_own_customer_and_reservation(customer):
    wallet_charge(user=customer, amount=500_000)
    reservation = held_reservation(user=customer, seat_prices=(100_000,))

    with CaptureQueriesContext(connection) as queries:
        payment_create(user=customer, reservation_id=reservation.id)

    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking, "a payment must lock what it changes"
    for sql in locking:
        assert "concerts_schedule" not in sql and "concerts_concert" not in sql, sql
