"""Sending exactly once: concurrent senders, retries, workers that die mid-send, and 1,000
payments. The one window left (a worker killed after the SMTP server took the mail and
before it recorded that) is shown too: the mail goes again, with the same Message-ID."""

import logging
import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from events.services import event_record, events_dispatch
from notifications import services
from notifications.models import CustomerMessage, MessageChannel, MessageStatus
from notifications.services import LEASE, MAX_ATTEMPTS, customer_messages_send
from tests.notifications.helpers import (
    customers,
    message_ids,
    record_payments,
    relay_and_send,
    statuses,
)


class FlakyBackend(LocmemBackend):
    """Refuses the first `failures` sends (an SMTP server that answers 4xx, or is down)."""

    failures = 0

    def send_messages(self, messages):
        if FlakyBackend.failures:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("the SMTP server said no")
        return super().send_messages(messages)


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no `except Exception`."""


@pytest.mark.django_db
def test_running_the_sender_twice_sends_each_message_once(mailoutbox):
    record_payments(customers(30))
    events_dispatch()

    assert customer_messages_send(batch=7) == 30
    assert customer_messages_send() == 0
    assert customer_messages_send(now=timezone.now() + timedelta(days=1)) == 0

    assert len(mailoutbox) == 30
    assert len(set(message_ids(mailoutbox))) == 30
    assert statuses() == {"sent": 30}


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_send_each_message_once(monkeypatch):
    asked = []
    monkeypatch.setattr("events.tasks.dispatch_events.delay", lambda: None)
    monkeypatch.setattr("notifications.channel.request_sending", lambda: asked.append(1))
    record_payments(customers(200))
    events_dispatch()
    # Every relay transaction that made messages asked for a sender once, after its commit.
    assert len(asked) == 2  # two batches of 100 events
    mail.outbox = []
    counts, errors = [], []
    start = threading.Barrier(4)

    def sender():
        try:
            start.wait()
            counts.append(customer_messages_send(batch=5))
        except Exception as error:  # pragma: no cover - shown by the assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(counts) == 200
    assert len(mail.outbox) == 200
    assert len(set(message_ids(mail.outbox))) == 200
    assert statuses() == {"sent": 200}


@pytest.mark.django_db
@override_settings(EMAIL_BACKEND="tests.notifications.test_sending.FlakyBackend")
def test_a_refused_send_is_retried_after_a_backoff_and_sent_once():
    mail.outbox = []
    record_payments(customers(1))
    FlakyBackend.failures = 1
    events_dispatch()
    now = timezone.now()

    assert customer_messages_send(now=now) == 0
    message = CustomerMessage.objects.get()
    assert message.status == MessageStatus.PENDING and message.attempts == 1
    assert "the SMTP server said no" in message.last_error
    assert customer_messages_send(now=now + timedelta(seconds=30)) == 0  # backing off
    assert customer_messages_send(now=now + timedelta(minutes=2)) == 1

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.attempts == 2
    assert len(mail.outbox) == 1


@pytest.mark.django_db
@override_settings(EMAIL_BACKEND="tests.notifications.test_sending.FlakyBackend")
def test_a_message_that_never_goes_is_failed_after_the_last_attempt():
    mail.outbox = []
    record_payments(customers(1))
    FlakyBackend.failures = 100
    now = timezone.now()
    events_dispatch()

    for attempt in range(MAX_ATTEMPTS + 2):
        customer_messages_send(now=now + timedelta(hours=3 * attempt))

    message = CustomerMessage.objects.get()
    assert message.status == MessageStatus.FAILED and message.attempts == MAX_ATTEMPTS
    assert mail.outbox == []
    FlakyBackend.failures = 0


@pytest.mark.django_db
def test_a_worker_killed_after_its_claim_leaves_the_message_to_the_next_once(mailoutbox):
    record_payments(customers(3))
    events_dispatch()
    now = timezone.now()
    services._claim(now=now, batch=10)  # ...and the worker dies before sending

    assert customer_messages_send(now=now + timedelta(minutes=1)) == 0  # still leased
    assert customer_messages_send(now=now + LEASE + timedelta(seconds=1)) == 3

    assert len(mailoutbox) == 3
    assert statuses() == {"sent": 3}
    assert set(CustomerMessage.objects.values_list("attempts", flat=True)) == {2}


@pytest.mark.django_db
def test_a_worker_killed_mid_send_by_the_backend_leaves_it_to_the_next_once(
    mailoutbox, monkeypatch
):
    record_payments(customers(2))
    events_dispatch()
    now = timezone.now()

    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(LocmemBackend, "send_messages", killed)
    with pytest.raises(WorkerKilled):
        customer_messages_send(now=now)
    monkeypatch.undo()

    assert mailoutbox == []
    assert customer_messages_send(now=now + LEASE + timedelta(seconds=1)) == 2
    assert len(mailoutbox) == 2 and statuses() == {"sent": 2}


@pytest.mark.django_db
def test_the_window_left_a_kill_after_the_server_took_it_resends_the_same_message_id(
    mailoutbox, monkeypatch
):
    record_payments(customers(1))
    events_dispatch()
    now = timezone.now()

    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(services, "_record_sent", killed)
    with pytest.raises(WorkerKilled):
        customer_messages_send(now=now)
    monkeypatch.undo()
    assert customer_messages_send(now=now + LEASE + timedelta(seconds=1)) == 1

    first, second = message_ids(mailoutbox)
    assert first == second == CustomerMessage.objects.get().message_id
    assert statuses() == {"sent": 1}


@pytest.mark.django_db
def test_a_thousand_payments_mail_a_thousand_customers_none_twice(mailoutbox):
    people = customers(1000)
    events = record_payments(people)

    relay_and_send()
    relay_and_send()  # a second pass finds nothing to do

    assert len(mailoutbox) == 1000
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(p.email for p in people)
    ids = message_ids(mailoutbox)
    assert len(set(ids)) == 1000
    assert all(
        str(event.event_id) in message_id for event, message_id in zip(events, ids, strict=True)
    )
    assert statuses() == {"sent": 1000}


@pytest.mark.django_db
def test_an_offer_also_goes_by_sms_to_a_known_phone_through_the_sms_sender(
    mailoutbox, monkeypatch, caplog
):
    [person] = customers(1)
    monkeypatch.setattr("notifications.channel.phone_of", lambda customer: "010-1234-5678")
    with transaction.atomic():
        event_record(
            type="waitlist.offered",
            aggregate=("waitlist_entry", 7),
            payload={
                "entry_id": 7,
                "customer_id": person.id,
                "quantity": 1,
                "grades": ["R"],
                "performance": {
                    "concert_title": "Waitlist Night",
                    "artist": "Someone",
                    "venue": "Olympic Hall",
                    "starts_at": (timezone.now() + timedelta(days=9)).isoformat(),
                },
                "reservation_id": 55,
                "seats": [
                    {
                        "seat_id": 1,
                        "section": "A",
                        "row": 3,
                        "number": 4,
                        "grade": "R",
                        "price": 110_000,
                    }
                ],
                "amount_due": 112_000,
                "expires_at": (timezone.now() + timedelta(minutes=30)).isoformat(),
            },
        )

    with caplog.at_level(logging.INFO, logger="notifications.sms"):
        assert relay_and_send() == 2

    sms = CustomerMessage.objects.get(channel=MessageChannel.SMS)
    assert sms.status == MessageStatus.SENT and sms.to == "010-1234-5678"
    [line] = [r.getMessage() for r in caplog.records if r.name == "notifications.sms"]
    assert "010-1234-5678" in line and "Waitlist Night" in line and "₩112,000" in line
    assert len(mailoutbox) == 1 and "A-3-4" in mailoutbox[0].body


@pytest.mark.django_db
def test_operators_list_messages_and_send_one_again(operator_client, operator, mailoutbox):
    record_payments(customers(2))
    relay_and_send()
    message = CustomerMessage.objects.order_by("id").first()

    listing = operator_client.get("/admin/notifications/customermessage/")
    page = operator_client.get(f"/admin/notifications/customermessage/{message.id}/change/")
    assert listing.status_code == 200 and page.status_code == 200
    assert message.to in listing.content.decode()
    assert "payment.confirmed" in listing.content.decode()

    answer = operator_client.post(
        "/admin/notifications/customermessage/",
        {"action": "send_again", "_selected_action": [message.id]},
    )
    assert answer.status_code == 302
    assert customer_messages_send() == 1

    assert len(mailoutbox) == 3
    assert message_ids(mailoutbox).count(message.message_id) == 2
    assert LogEntry.objects.filter(object_id=str(message.id)).exists()
