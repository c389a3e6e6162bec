import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import IdempotencyRecord
from payments.models import LedgerEntry, Wallet
from payments.services import MAX_CHARGE_WON
from tests.accounts.factories import UserFactory
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    return response.json()["error"]


def charge(client, amount, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/wallet/charges", {"amount": amount}, format="json", **headers)


def test_a_new_wallet_is_empty(customer_client):
    assert customer_client.get("/api/v1/wallet").json()["balance"] == 0


def test_charges_add_up_in_the_balance_and_the_ledger(customer_client):
    charge(customer_client, 10_000)
    second = charge(customer_client, 2_500)

    assert second.status_code == 201
    assert second.json()["balance"] == 12_500
    assert second.json()["transaction"]["kind"] == "charge"
    ledger = customer_client.get("/api/v1/wallet/transactions").json()
    assert [entry["amount"] for entry in ledger["results"]] == [2_500, 10_000]
    assert customer_client.get("/api/v1/wallet").json()["balance"] == 12_500


@pytest.mark.parametrize("amount", [0, -5, MAX_CHARGE_WON + 1, "1000", 1.5, None, "ten", 10**30])
def test_charge_amounts_must_be_whole_won_within_limits(customer_client, amount):
    response = charge(customer_client, amount)

    assert response.status_code == 400
    assert "amount" in error(response)["details"]
    assert not LedgerEntry.objects.exists()


def test_the_same_key_replays_the_first_answer_and_charges_once(customer_client):
    key = str(uuid.uuid4())

    first = charge(customer_client, 7_000, key)
    again = charge(customer_client, 7_000, key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Wallet.objects.get().balance == 7_000


def test_the_same_key_for_a_different_request_is_refused(customer_client):
    key = str(uuid.uuid4())
    charge(customer_client, 7_000, key)

    response = charge(customer_client, 8_000, key)

    assert (response.status_code, error(response)["code"]) == (422, "idempotency_key_reused")
    assert Wallet.objects.get().balance == 7_000


def test_keys_belong_to_one_customer(customer_client):
    key = str(uuid.uuid4())
    charge(customer_client, 7_000, key)
    other = client_for(UserFactory())

    response = charge(other, 7_000, key)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert sorted(Wallet.objects.values_list("balance", flat=True)) == [7_000, 7_000]


def test_malformed_keys_are_validation_errors(customer_client):
    response = charge(customer_client, 1_000, "not-a-uuid")

    assert response.status_code == 400
    assert "Idempotency-Key" in error(response)["details"]


def test_a_failed_request_does_not_burn_its_key(admit, customer, customer_client):
    from tests.reservations.factories import held_reservation

    reservation = held_reservation(user=customer, seat_prices=(50_000,))
    key = str(uuid.uuid4())
    pay = lambda: customer_client.post(  # noqa: E731
        f"/api/v1/reservations/{reservation.id}/payment", HTTP_IDEMPOTENCY_KEY=key
    )

    short = pay()
    charge(customer_client, 60_000)
    paid = pay()

    assert (short.status_code, error(short)["code"]) == (402, "insufficient_balance")
    assert error(short)["details"] == {"balance": 0, "amount": 50_000}
    assert paid.status_code == 201
    assert Wallet.objects.get(user=customer).balance == 10_000


def test_old_keys_are_deleted_by_the_housekeeping_task(customer_client):
    from accounts.tasks import delete_old_idempotency_records

    charge(customer_client, 1_000, str(uuid.uuid4()))
    charge(customer_client, 1_000, str(uuid.uuid4()))
    IdempotencyRecord.objects.filter(id=IdempotencyRecord.objects.first().id).update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    assert delete_old_idempotency_records.apply().get() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_payments_and_ledger_are_each_customers_own(customer_client):
    charge(customer_client, 5_000)
    other = client_for(UserFactory())

    assert other.get("/api/v1/wallet").json()["balance"] == 0
    assert other.get("/api/v1/wallet/transactions").json()["count"] == 0
    assert other.get("/api/v1/payments").json()["count"] == 0


def test_a_wallet_holding_too_little_is_402_and_keeps_its_money(customer, customer_client):
    from tests.reservations.factories import held_reservation

    charge(customer_client, 30_000)
    reservation = held_reservation(user=customer, seat_prices=(50_000,))

    response = customer_client.post(f"/api/v1/reservations/{reservation.id}/payment")

    assert (response.status_code, error(response)["code"]) == (402, "insufficient_balance")
    assert error(response)["details"] == {"balance": 30_000, "amount": 50_000}
    assert Wallet.objects.get(user=customer).balance == 30_000
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    reservation.refresh_from_db()
    assert reservation.status == "held"
