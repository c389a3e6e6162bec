"""Idempotency-Key (config/idempotency.py) against the real database: the key's record is
written in the work's own transaction, so a retry waits for the first request's outcome and
gets it, whether the first committed, failed, or died with its worker."""

import threading
import time
import uuid

import pytest
from django.db import connection

from accounts.models import IdempotencyRecord
from payments.models import LedgerEntry, Wallet
from tests.accounts.factories import UserFactory
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def charge(client, amount, key):
    return client.post(
        "/api/v1/wallet/charges", {"amount": amount}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


class HeldCharge:
    """A first request whose charge stops inside its transaction until released: its key's
    record is inserted (and locked) and its money moved, nothing committed yet."""

    def __init__(self, monkeypatch):
        import payments.services

        self.inside, self.release = threading.Event(), threading.Event()
        self.connection_id = None
        real_charge = payments.services.wallet_charge

        def held_charge(**kwargs):
            entry = real_charge(**kwargs)
            if threading.current_thread().name == "first":
                self.connection_id = connection.connection.thread_id()
                self.inside.set()
                self.release.wait(timeout=30)
            return entry

        monkeypatch.setattr("payments.api.services.wallet_charge", held_charge)

    def start(self, client, key) -> dict:
        outcome = {}

        def first():
            try:
                outcome["response"] = charge(client, 1_000, key)
            except Exception as error:  # noqa: BLE001 - the test looks at what happened
                outcome["error"] = error
            finally:
                connection.close()

        thread = threading.Thread(target=first, name="first")
        thread.start()
        assert self.inside.wait(timeout=10), "the first request never reached its charge"
        outcome["thread"] = thread
        return outcome


def retry_in_background(client, key) -> dict:
    outcome = {}

    def retry():
        started = time.monotonic()
        try:
            outcome["response"] = charge(client, 1_000, key)
        finally:
            outcome["seconds"] = time.monotonic() - started
            connection.close()

    outcome["thread"] = threading.Thread(target=retry)
    outcome["thread"].start()
    return outcome


def test_a_retry_during_the_first_request_waits_and_gets_its_answer(monkeypatch):
    customer = UserFactory()
    key = str(uuid.uuid4())
    held = HeldCharge(monkeypatch)
    first = held.start(client_for(customer), key)

    retry = retry_in_background(client_for(customer), key)
    time.sleep(0.5)
    assert retry["thread"].is_alive()  # waiting on the key, not answered "in progress"
    held.release.set()
    first["thread"].join(10)
    retry["thread"].join(10)

    assert first["response"].status_code == 201
    assert retry["response"].status_code == 201
    assert retry["response"]["Idempotent-Replayed"] == "true"
    assert retry["response"].json() == first["response"].json()
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == 1_000


def test_a_retry_after_the_first_request_died_is_done_afresh_at_once(monkeypatch):
    """The first request's worker dies mid-charge: the database drops its connection and
    rolls its transaction back (here: KILL, as when the process is SIGKILLed). The retry that
    was waiting on the key does the charge itself, once."""
    customer = UserFactory()
    key = str(uuid.uuid4())
    held = HeldCharge(monkeypatch)
    first = held.start(client_for(customer), key)
    retry = retry_in_background(client_for(customer), key)
    time.sleep(0.3)

    killed_at = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"KILL {held.connection_id}")
    retry["thread"].join(10)
    answered_after = time.monotonic() - killed_at
    held.release.set()
    first["thread"].join(10)

    assert retry["response"].status_code == 201
    assert "Idempotent-Replayed" not in retry["response"]
    assert answered_after < 3
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == 1_000
    assert IdempotencyRecord.objects.filter(user=customer, key=key).count() == 1


def test_a_retry_while_the_first_runs_past_the_lock_wait_is_a_409(monkeypatch):
    customer = UserFactory()
    key = str(uuid.uuid4())
    held = HeldCharge(monkeypatch)
    first = held.start(client_for(customer), key)

    retry = charge(client_for(customer), 1_000, key)  # waits innodb_lock_wait_timeout (5 s)
    held.release.set()
    first["thread"].join(10)

    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "idempotency_in_progress"
    assert retry["Retry-After"] == "1"
    assert first["response"].status_code == 201
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1


def test_a_failed_request_leaves_no_record_behind():
    customer = UserFactory()
    key = str(uuid.uuid4())

    refused = charge(client_for(customer), 10_000_000, key)  # over the charge limit

    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.filter(user=customer).exists()
    assert charge(client_for(customer), 1_000, key).status_code == 201
