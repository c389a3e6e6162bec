import uuid
from collections import Counter

import pytest

from payments.models import LedgerEntry, LedgerKind, Payment, Wallet
from payments.services import wallet_charge
from reservations.models import ReservationStatus
from tests.concurrency import make_customers, run_concurrently
from tests.conftest import client_for
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_payments_of_one_reservation_debit_once():
    [customer] = make_customers(1)
    wallet_charge(user=customer, amount=1_000_000)
    reservation = held_reservation(user=customer, seat_prices=(100_000, 100_000))
    shared_key = str(uuid.uuid4())
    keys = [shared_key] * 10 + [str(uuid.uuid4()) for _ in range(10)]

    responses = run_concurrently(
        20,
        lambda i: client_for(customer).post(
            f"/api/v1/reservations/{reservation.id}/payment", HTTP_IDEMPOTENCY_KEY=keys[i]
        ),
        workers=20,
    )

    codes = Counter((r.status_code, r.json().get("error", {}).get("code")) for r in responses)
    assert set(codes) <= {
        (201, None),
        (409, "idempotency_in_progress"),
        (409, "reservation_not_payable"),
    }
    assert Payment.objects.filter(reservation=reservation).count() == 1
    debits = LedgerEntry.objects.filter(kind=LedgerKind.PAYMENT)
    assert list(debits.values_list("amount", flat=True)) == [-200_000]
    assert Wallet.objects.get(user=customer).balance == 800_000
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    # Whoever answered 201 answered with the one payment.
    paid_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert paid_ids == {Payment.objects.get().id}
