"""The database itself keeps the money rules, whatever code runs against it."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from payments.models import LedgerEntry, LedgerKind, Payment, Wallet
from payments.services import wallet_charge
from tests.reservations.factories import ReservationFactory

pytestmark = pytest.mark.django_db


def test_a_wallet_balance_can_never_go_below_zero(customer):
    wallet_charge(user=customer, amount=1_000)

    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=customer).update(balance=F("balance") - 1_001)

    assert Wallet.objects.get(user=customer).balance == 1_000


@pytest.mark.parametrize(
    "kind, amount", [(LedgerKind.CHARGE, -5), (LedgerKind.PAYMENT, 5), (LedgerKind.REFUND, 0)]
)
def test_a_ledger_entry_has_the_sign_of_its_kind(customer, kind, amount):
    wallet_charge(user=customer, amount=1_000)
    wallet = Wallet.objects.get(user=customer)

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(wallet=wallet, kind=kind, amount=amount, balance_after=1_000)


def test_a_reservation_has_at_most_one_payment(customer):
    reservation = ReservationFactory(user=customer)
    Payment.objects.create(reservation=reservation, user=customer, amount=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(reservation=reservation, user=customer, amount=1)
