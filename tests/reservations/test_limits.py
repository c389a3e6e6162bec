"""reservations/limits.py: the ticket limit's count must be read after the customer's lock is
granted, never from a snapshot taken while it waited (a count folded into the locking
statement as subqueries was tried: see docs/performance.md)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from reservations import inventory
from reservations.limits import customer_lock_and_count
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import ReservationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def runs_a_locking_read(connection_id: int) -> bool:
    """Whether that database connection is running a SELECT ... FOR UPDATE now: while our
    other transaction holds the lock it asks for, that means it waits for it. (The process
    list, not INNODB_TRX: that one is a cache, refreshed only when nobody read it for 0.1 s.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", [connection_id]
        )
        row = cursor.fetchone()
    return row is not None and "FOR UPDATE" in (row[0] or "")


def test_a_count_that_waited_for_the_customer_lock_sees_the_seats_held_meanwhile():
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule, number=n) for n in (1, 2, 3)]
    customer = UserFactory()
    now = timezone.now()
    first_holds_the_lock, first_may_commit = threading.Event(), threading.Event()
    counted, second_connection, errors = [], [], []

    def first_hold():
        # The customer's first request: locks their row, holds three seats, and commits only
        # once the second request is waiting for the lock.
        try:
            with transaction.atomic():
                customer_lock_and_count(customer, schedule, now=now)
                reservation = ReservationFactory(
                    user=customer, schedule=schedule, expires_at=now + timedelta(minutes=5)
                )
                inventory.seats_hold(
                    reservation=reservation,
                    seat_ids=[seat.id for seat in seats],
                    expires_at=reservation.expires_at,
                    now=now,
                )
                first_holds_the_lock.set()
                first_may_commit.wait(timeout=30)
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            errors.append(error)
        finally:
            connection.close()

    def second_count():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT CONNECTION_ID()")
                second_connection.append(cursor.fetchone()[0])
            with transaction.atomic():
                counted.append(customer_lock_and_count(customer, schedule, now=now))
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            errors.append(error)
        finally:
            connection.close()

    first = threading.Thread(target=first_hold)
    first.start()
    assert first_holds_the_lock.wait(timeout=30), errors
    second = threading.Thread(target=second_count)
    second.start()
    waited = False
    deadline = time.monotonic() + 4  # below innodb_lock_wait_timeout (5 s)
    while not waited and time.monotonic() < deadline:
        time.sleep(0.05)
        waited = bool(second_connection) and runs_a_locking_read(second_connection[0])
    first_may_commit.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert not errors
    assert waited, "the second count never waited for the lock: the race was not exercised"
    [count] = counted
    assert (count.held, count.bought, count.waiting) == (3, 0, 0)
