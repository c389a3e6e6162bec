import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.response import Response

from accounts.models import IdempotencyRecord
from config.errors import IdempotencyInProgress
from config.idempotency import _work_and_record
from payments.models import LedgerEntry, Wallet
from payments.services import wallet_charge

pytestmark = pytest.mark.django_db


def stale_claim(customer) -> IdempotencyRecord:
    body = "POST /api/v1/wallet/charges\n" + '{"amount":1000}'
    return IdempotencyRecord.objects.create(
        user=customer,
        key=str(uuid.uuid4()),
        fingerprint=hashlib.sha256(body.encode()).hexdigest(),
        locked_at=timezone.now() - timedelta(minutes=1),
    )


def test_a_claim_taken_over_while_its_request_works_leaves_nothing_of_that_work(customer):
    claim = stale_claim(customer)

    def work() -> Response:
        entry = wallet_charge(user=customer, amount=1_000)
        # Meanwhile a retry with the same key takes the stale claim over (as _claim does).
        IdempotencyRecord.objects.filter(id=claim.id).update(locked_at=timezone.now())
        return Response({"id": entry.id}, status=201)

    with pytest.raises(IdempotencyInProgress):
        _work_and_record(claim, work)

    assert not LedgerEntry.objects.exists()
    assert not Wallet.objects.filter(balance__gt=0).exists()


def test_a_claim_still_ours_records_the_answer_with_the_work(customer):
    claim = stale_claim(customer)

    _work_and_record(claim, lambda: Response({"charged": 1_000}, status=201))

    claim.refresh_from_db()
    assert (claim.completed, claim.response_status, claim.response_body) == (
        True,
        201,
        {"charged": 1_000},
    )


def test_a_stuck_request_whose_claim_was_taken_over_does_no_work(customer, customer_client):
    import hashlib

    from rest_framework.response import Response

    from config.errors import IdempotencyInProgress
    from config.idempotency import _work_and_record

    key = str(uuid.uuid4())
    body = "POST /api/v1/wallet/charges\n" + '{"amount":1000}'
    # A first request claimed the key a minute ago and is stuck (a long lock wait, say).
    stuck = IdempotencyRecord.objects.create(
        user=customer,
        key=key,
        fingerprint=hashlib.sha256(body.encode()).hexdigest(),
        locked_at=timezone.now() - timedelta(minutes=1),
    )

    retry = customer_client.post(
        "/api/v1/wallet/charges", {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    with pytest.raises(IdempotencyInProgress):  # the stuck one wakes up: its claim is gone
        _work_and_record(stuck, lambda: Response(wallet_charge(user=customer, amount=1_000)))

    assert retry.status_code == 201
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == 1_000
