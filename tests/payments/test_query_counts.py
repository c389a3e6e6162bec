"""Exact queries per request of the payment and wallet charge paths, so that an extra query
(a read-back, a redundant lock, a savepoint nobody needs) shows up as a failing test.

Tests run inside a transaction: a transaction.atomic() is a SAVEPOINT ... RELEASE pair here,
where in production it is BEGIN ... COMMIT (which the counts do not include). With an
Idempotency-Key the service joins the decorator's transaction (config.db.service_atomic)
instead of nesting a savepoint of its own. Redis calls (freeing the queue slot, the seat map
version) are not queries."""

import uuid

import pytest

from payments.models import Wallet
from payments.services import wallet_charge
from reservations.models import Reservation, ReservationStatus
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db

TEST_SAVEPOINTS = 2  # SAVEPOINT and RELEASE SAVEPOINT of one transaction.atomic() in a test


def pay(client, reservation, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/reservations/{reservation.id}/payment", **headers)


def test_a_payment_with_an_idempotency_key_takes_twelve_queries(
    customer, customer_client, django_assert_num_queries
):
    wallet_charge(user=customer, amount=500_000)
    first = held_reservation(user=customer, seat_prices=(100_000,))
    second = held_reservation(user=customer, schedule=first.schedule, seat_prices=(100_000,))
    assert pay(customer_client, first, str(uuid.uuid4())).status_code == 201  # caches the start
    key = str(uuid.uuid4())

    # 1. the Bearer token and its user (accounts)
    #    (SAVEPOINT here, BEGIN in production: the work transaction, which the service joins)
    # 2. insert the key's record: waits while another request holds the key
    # 3. lock the reservation, the customer's row and the reservation's seats in id order,
    #    reading its items with what the event names of their seats: one statement
    #    (the performance's start and concert: from the per-process cache)
    # 4. the conditional UPDATE that sells the seats
    # 5. insert the payment
    # 6. the conditional UPDATE that debits the wallet
    # 7. the wallet's id and new balance (for the ledger entry)
    # 8. insert the ledger entry
    # 9. mark the reservation confirmed
    # 10. insert the payment.confirmed event (the outbox: it commits with the payment)
    # 11. end the customer's queue admission (so a restored queue does not bring it back)
    # 12. write the answer on the key's record
    #    (RELEASE SAVEPOINT here, COMMIT in production)
    with django_assert_num_queries(12 + TEST_SAVEPOINTS):
        response = pay(customer_client, second, key)

    assert response.status_code == 201
    assert Reservation.objects.get(id=second.id).status == ReservationStatus.CONFIRMED
    assert Wallet.objects.get(user=customer).balance == 300_000


def test_the_first_payment_for_a_performance_in_a_process_also_reads_its_start(
    customer, customer_client, django_assert_num_queries
):
    wallet_charge(user=customer, amount=500_000)
    reservation = held_reservation(user=customer, seat_prices=(100_000,))

    with django_assert_num_queries(12 + TEST_SAVEPOINTS + 1):  # + the schedule
        assert pay(customer_client, reservation, str(uuid.uuid4())).status_code == 201


def test_a_payment_without_a_key_takes_ten_queries(
    customer, customer_client, django_assert_num_queries
):
    wallet_charge(user=customer, amount=500_000)
    first = held_reservation(user=customer, seat_prices=(100_000,))
    second = held_reservation(user=customer, schedule=first.schedule, seat_prices=(100_000,))
    assert pay(customer_client, first).status_code == 201

    # The same as with a key, without 2. and 12. (the key's record)
    with django_assert_num_queries(10 + TEST_SAVEPOINTS):
        assert pay(customer_client, second).status_code == 201


def test_a_wallet_charge_takes_seven_queries(customer, customer_client, django_assert_num_queries):
    wallet_charge(user=customer, amount=1_000)  # the wallet exists

    # 1. the Bearer token and its user
    #    (SAVEPOINT here, BEGIN in production: the work transaction, which the service joins)
    # 2. insert the key's record
    # 3. the conditional UPDATE that credits the wallet
    # 4. the wallet's id and new balance
    # 5. insert the ledger entry
    # 6. insert the wallet.charged event
    # 7. write the answer on the key's record
    #    (RELEASE SAVEPOINT here, COMMIT in production)
    with django_assert_num_queries(7 + TEST_SAVEPOINTS):
        response = customer_client.post(
            "/api/v1/wallet/charges",
            {"amount": 2_500},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    assert response.status_code == 201
    assert response.json()["balance"] == 3_500
