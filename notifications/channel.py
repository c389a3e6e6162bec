"""The customer channel of the outbox relay (settings.EVENT_CHANNELS): which event tells which
customer what, written as message rows in the relay's transaction.

`fan_out(event)` runs inside `events.services.events_dispatch`'s transaction, so an event is
marked dispatched together with its messages or not at all; the unique constraint (event,
customer, channel) and `ignore_conflicts` make a second fan-out of the same event (a relay
that died after this call and before its commit is retried) add nothing. Sending happens
later, from the rows (services.customer_messages_send), asked for once the relay commits.
"""

import logging
from email.utils import parseaddr

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from events.models import Event

from .models import CustomerMessage, MessageChannel, MessageKind
from .services import request_sending

logger = logging.getLogger(__name__)

# Kinds that would also go out as an SMS / 알림톡: only what is urgent enough to interrupt
# someone (an offer runs out within minutes). No customer has a phone number today
# (`phone_of`), so none is made yet; docs/notifications.md.
SMS_KINDS = {MessageKind.WAITLIST_OFFER}


def message_kind(event: Event) -> MessageKind | None:
    """What, if anything, the customer is told about this event."""
    payload = event.payload
    if event.type == "payment.confirmed":
        return MessageKind.BOOKING_CONFIRMED
    if event.type == "reservation.cancelled" and payload.get("paid"):
        # An unpaid hold let go by the customer needs no mail: they just did it.
        return MessageKind.BOOKING_CANCELLED
    if event.type == "reservation.refunded":
        return MessageKind.BOOKING_REFUNDED
    if event.type == "waitlist.offered":
        return MessageKind.WAITLIST_OFFER
    if event.type == "reservation.expired" and payload.get("source") != "waitlist":
        # A lapsed waitlist offer's seats go to the next entry, not back on sale; its
        # customer is not mailed (waitlist.lapsed could be, later).
        return MessageKind.HOLD_EXPIRED
    return None


def phone_of(customer: User) -> str:
    """The customer's mobile number for SMS / 알림톡: none is kept today (no phone field)."""
    return ""


def message_id_for(event: Event, customer_id: int, channel: str) -> str:
    """Stable across every attempt: derived from the event, so a resend after a crash is the
    same mail to the receiving side (RFC 5322 Message-ID)."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    suffix = "" if channel == MessageChannel.EMAIL else f".{channel}"
    return f"<{event.event_id}.{customer_id}{suffix}@{domain}>"


def fan_out(event: Event) -> None:
    kind = message_kind(event)
    if kind is None:
        return
    customer_id = event.payload.get("customer_id")
    customer = User.objects.filter(id=customer_id).only("id", "email").first()
    if customer is None:  # deleted since: nobody to tell
        logger.warning("No customer %s for event %s", customer_id, event.event_id)
        return
    now = timezone.now()
    addresses = [(MessageChannel.EMAIL, customer.email)]
    if kind in SMS_KINDS and (phone := phone_of(customer)):
        addresses.append((MessageChannel.SMS, phone))
    CustomerMessage.objects.bulk_create(
        [
            CustomerMessage(
                event=event,
                customer=customer,
                channel=channel,
                kind=kind,
                to=to,
                next_attempt_at=now,
                message_id=message_id_for(event, customer.id, channel),
            )
            for channel, to in addresses
            if to
        ],
        ignore_conflicts=True,
    )
    _request_sending_on_commit()


def _request_sending_on_commit() -> None:
    """Once per relay transaction, however many events it fans out: after the commit (the
    rows are not there for a worker before), a sender is asked for. Should the request be
    lost, the beat's pass sends the rows anyway."""
    if any(callback is request_sending for _ids, callback, _robust in connection.run_on_commit):
        return
    transaction.on_commit(request_sending)
