"""What a payment locks. MariaDB has no FOR UPDATE OF: a locking query that joins another
table locks that table's rows too, and a shared row (the schedule) would make every payment
of a performance wait for the others."""

import threading

import pytest
from django.db import OperationalError, connection, transaction

from payments.models import Wallet
from payments.services import payment_create, wallet_charge
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db(transaction=True)


def lockable_now(table: str, row_id: int) -> bool:
    """Whether another connection can lock the row at once (NOWAIT), while ours holds its
    locks."""
    outcome = []

    def try_lock():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [row_id])
            outcome.append(True)
        except OperationalError:
            outcome.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=try_lock)
    thread.start()
    thread.join(timeout=30)
    return outcome == [True]


def test_a_payment_locks_only_rows_of_its_own_customer_and_reservation(customer):
    wallet_charge(user=customer, amount=500_000)
    reservation = held_reservation(user=customer, seat_prices=(100_000,))
    schedule = reservation.schedule

    with transaction.atomic():  # the payment's locks stay held until this block ends
        payment_create(user=customer, reservation_id=reservation.id)

        locked = {
            name: not lockable_now(table, row_id)
            for name, table, row_id in [
                ("reservation", "reservations_reservation", reservation.id),
                ("customer", "accounts_user", customer.id),
                ("schedule", "concerts_schedule", schedule.id),
                ("concert", "concerts_concert", schedule.concert_id),
            ]
        }

    assert locked == {"reservation": True, "customer": True, "schedule": False, "concert": False}


def test_a_payment_locks_its_seats_in_the_statement_that_locks_its_reservation(customer):
    from django.test.utils import CaptureQueriesContext

    wallet_charge(user=customer, amount=500_000)
    reservation = held_reservation(user=customer, seat_prices=(100_000, 100_000))
    seat_ids = sorted(reservation.items.values_list("seat_id", flat=True))

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        payment_create(user=customer, reservation_id=reservation.id)
        seats_locked = [not lockable_now("concerts_seat", seat_id) for seat_id in seat_ids]

    [lock] = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert "`reservations_reservation`" in lock and "`concerts_seat`" in lock
    assert "ORDER BY" in lock  # the seats in id order: see inventory.reservation_lock_for_sale
    assert seats_locked == [True, True]


def test_a_first_charge_lands_when_a_rival_opens_the_wallet_mid_charge(customer):
    # Under READ COMMITTED each statement sees the latest commits. The interleaving that once
    # answered "balance too low" to a top-up: our UPDATE finds no wallet, then a concurrent
    # first charge opens and commits it before we look again.
    rival_opened = []

    def rival_commits_a_wallet_after_our_update(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not rival_opened and sql.startswith("UPDATE") and "payments_wallet" in sql:
            rival = threading.Thread(target=open_wallet_elsewhere)
            rival.start()
            rival.join(timeout=30)
        return result

    def open_wallet_elsewhere():
        try:
            rival_opened.append(Wallet.objects.create(user=customer, balance=700))
        finally:
            connection.close()

    with connection.execute_wrapper(rival_commits_a_wallet_after_our_update):
        entry = wallet_charge(user=customer, amount=300)

    assert rival_opened, "the rival never ran: the interleaving was not exercised"
    assert (entry.amount, entry.balance_after) == (300, 1000)
    assert Wallet.objects.get(user=customer).balance == 1000
