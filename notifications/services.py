"""Sending customer messages from their rows, exactly once as far as this side can know.

A sender works in three steps, each its own short transaction:
1. claim: due rows (pending and due, or `sending` with a lease that ran out: their worker
   died) are locked with SKIP LOCKED, so concurrent senders never take the same row, and
   set `sending` with a lease and one more attempt; commit. No row lock is held while mail
   goes out.
2. send: render and hand the mail to the email backend (one connection for the batch), with
   a Message-ID fixed when the row was made.
3. record: `sent`, with the subject and time, only if the row is still this worker's claim
   (status `sending` and the same attempt number: a fencing token). A failure instead puts
   the row back to `pending` with a backoff, or `failed` after MAX_ATTEMPTS.

The one window left: a worker killed after the SMTP server accepted a mail and before step
3 commits leaves the row `sending`; once its lease runs out, it is sent again, with the same
Message-ID, so the receiving side can tell it is the same mail. Everything else is exactly
once: rows are made once per (event, customer, channel), a claim is exclusive, and a worker
stops sending before its lease could run out (so no second worker takes a row mid-send).
"""

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from config.audit import operator_history_record
from events.services import task_request_soon

from .content import Content, message_render
from .models import CustomerMessage, MessageChannel, MessageStatus
from .sms import sms_sender

logger = logging.getLogger(__name__)

SEND_TASK = "notifications.tasks.send_customer_messages"
SEND_BATCH = 20
# A claim's lease: a row claimed longer ago belongs to a dead worker. A worker stops taking
# the next row of its batch when less than LEASE_MARGIN is left, and one send is bounded by
# EMAIL_TIMEOUT (per network operation), well inside the margin.
LEASE = timedelta(minutes=10)
LEASE_MARGIN = timedelta(minutes=2)
MAX_ATTEMPTS = 5
# The wait after the n-th failed attempt: about 5 minutes in all, then 30, then 2 hours.
BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]


def request_sending() -> None:
    """Ask a worker to send what is due (after a commit that made messages)."""
    task_request_soon("notifications.tasks.send_customer_messages")


def customer_messages_send(*, now: datetime | None = None, batch: int = SEND_BATCH) -> int:
    """Send every message that is due, a batch at a time; returns how many were sent. `now`
    (tests) decides what is due; leases are timed by the clock."""
    sent = 0
    while True:
        claimed = _claim(now=now or timezone.now(), batch=batch)
        if not claimed:
            return sent
        sent += _send_claimed(claimed, now=now)


def _claim(*, now: datetime, batch: int) -> dict[int, int]:
    """Due rows, made this worker's: {message id: attempt number}."""
    with transaction.atomic():
        rows = list(
            CustomerMessage.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)
                | Q(status=MessageStatus.SENDING, lease_until__lt=now)
            )
            .order_by("id")
            .only("id", "status", "attempts")[:batch]
        )
        # A message whose sender died on every attempt (a mail that kills the worker?) is
        # not tried for ever; it may have gone out, which its last error says.
        worn_out = [
            row.id
            for row in rows
            if row.status == MessageStatus.SENDING and row.attempts >= MAX_ATTEMPTS
        ]
        if worn_out:
            CustomerMessage.objects.filter(id__in=worn_out).update(
                status=MessageStatus.FAILED,
                lease_until=None,
                last_error=gettext(
                    "The worker sending it stopped before recording the outcome, "
                    "%(attempts)s times; it may have been sent."
                )
                % {"attempts": MAX_ATTEMPTS},
            )
        claimed = {row.id: row.attempts + 1 for row in rows if row.id not in worn_out}
        CustomerMessage.objects.filter(id__in=claimed).update(
            status=MessageStatus.SENDING,
            lease_until=now + LEASE,
            attempts=F("attempts") + 1,
        )
    return claimed


def _send_claimed(claimed: dict[int, int], *, now: datetime | None) -> int:
    # Timed by the monotonic clock from the claim, whatever `now` says.
    deadline = time.monotonic() + (LEASE - LEASE_MARGIN).total_seconds()
    messages = list(
        CustomerMessage.objects.filter(id__in=claimed)
        .select_related("event", "customer")
        .order_by("id")
    )
    email = get_connection()
    try:
        email.open()
    except Exception as error:  # the SMTP server is unreachable: every row waits its turn
        for message in messages:
            _record_failure(message, claimed[message.id], error, now=now)
        return 0
    sent = 0
    try:
        for position, message in enumerate(messages):
            if time.monotonic() > deadline:
                _hand_back(messages[position:], claimed)
                break
            attempt = claimed[message.id]
            try:
                content = message_render(message)
                _deliver(message, content, email)
            except Exception as error:
                _record_failure(message, attempt, error, now=now)
                continue
            sent += _record_sent(message, attempt, content)
    finally:
        email.close()
    return sent


def _deliver(message: CustomerMessage, content: Content, email) -> None:
    if message.channel == MessageChannel.SMS:
        sms_sender().send(message.to, content.text)
        return
    mail = EmailMultiAlternatives(
        subject=content.subject,
        body=content.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        connection=email,
        headers={
            "Message-ID": message.message_id,
            "X-Event-Id": str(message.event.event_id),
            # RFC 3834: no vacation replies to a machine's mail.
            "Auto-Submitted": "auto-generated",
        },
    )
    mail.attach_alternative(content.html, "text/html")
    mail.send()


def _still_mine(message: CustomerMessage, attempt: int):
    return CustomerMessage.objects.filter(
        id=message.id, status=MessageStatus.SENDING, attempts=attempt
    )


def _record_sent(message: CustomerMessage, attempt: int, content: Content) -> int:
    recorded = _still_mine(message, attempt).update(
        status=MessageStatus.SENT,
        subject=content.subject[:200],
        sent_at=timezone.now(),
        lease_until=None,
        last_error="",
    )
    if not recorded:  # cannot happen while a send stays inside the lease; say so if it does
        logger.error("Message %s was sent after its claim was taken over", message.id)
    return recorded


def _record_failure(
    message: CustomerMessage, attempt: int, error: Exception, *, now: datetime | None
) -> None:
    logger.warning("Message %s, attempt %s, failed: %s", message.id, attempt, error)
    last_error = f"{type(error).__name__}: {error}"[:2000]
    if attempt >= MAX_ATTEMPTS:
        _still_mine(message, attempt).update(
            status=MessageStatus.FAILED, lease_until=None, last_error=last_error
        )
        return
    _still_mine(message, attempt).update(
        status=MessageStatus.PENDING,
        next_attempt_at=(now or timezone.now()) + BACKOFF[min(attempt, len(BACKOFF)) - 1],
        lease_until=None,
        last_error=last_error,
    )


def _hand_back(messages: Sequence[CustomerMessage], claimed: dict[int, int]) -> None:
    """Rows of the batch not reached before the lease ran short: due again at once, the
    attempt not counted."""
    for message in messages:
        _still_mine(message, claimed[message.id]).update(
            status=MessageStatus.PENDING,
            next_attempt_at=timezone.now(),
            lease_until=None,
            attempts=F("attempts") - 1,
        )


def customer_messages_resend(*, message_ids: Sequence[int], operator: User) -> int:
    """An operator's "send again": the messages (not one being sent right now) are due at
    once with fresh attempts, keeping their Message-ID. Returns how many."""
    with transaction.atomic():
        messages = list(
            CustomerMessage.objects.select_for_update()
            .filter(id__in=message_ids)
            .exclude(status=MessageStatus.SENDING)
            .order_by("id")
        )
        CustomerMessage.objects.filter(id__in=[message.id for message in messages]).update(
            status=MessageStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            lease_until=None,
            last_error="",
        )
        if messages:
            operator_history_record(
                operator=operator, objects=messages, message=gettext("Sent again on request.")
            )
            transaction.on_commit(request_sending)
    return len(messages)
