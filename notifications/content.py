"""What a customer message says: a context drawn from its event's payload, rendered in the
customer's language from notifications/templates/notifications/<kind>.txt and .html (and
<kind>_sms.txt). Amounts as ₩165,000, times in TIME_ZONE (Asia/Seoul)."""

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from config.money import format_won
from events.models import Event

from .models import CustomerMessage, MessageChannel, MessageKind

SUBJECTS = {
    MessageKind.BOOKING_CONFIRMED: _("Booking confirmed: %(title)s, %(when)s"),
    MessageKind.BOOKING_CANCELLED: _("Booking cancelled: %(title)s, %(when)s"),
    MessageKind.BOOKING_REFUNDED: _("Booking refunded: %(title)s, %(when)s"),
    MessageKind.WAITLIST_OFFER: _("Seats for you from the waitlist: %(title)s, %(when)s"),
    MessageKind.HOLD_EXPIRED: _("Your hold has ended: %(title)s, %(when)s"),
}


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str  # empty for an SMS


def language_for(customer_id: int) -> str:
    """The language a customer is written to in: Korean by default (LANGUAGE_CODE). No
    customer chooses a language today; once one is kept, it is read here."""
    return settings.LANGUAGE_CODE


def message_render(message: CustomerMessage) -> Content:
    """`message` with its event and customer loaded."""
    with (
        translation.override(language_for(message.customer_id)),
        timezone.override(settings.TIME_ZONE),
    ):
        context = _context(message)
        performance = context["performance"]
        subject = str(
            SUBJECTS[message.kind] % {"title": performance["title"], "when": performance["when"]}
        )
        context["subject"] = subject
        if message.channel == MessageChannel.SMS:
            text = render_to_string(f"notifications/{message.kind}_sms.txt", context)
            return Content(subject=subject, text=_tidy(text), html="")
        text = render_to_string(f"notifications/{message.kind}.txt", context)
        html = render_to_string(f"notifications/{message.kind}.html", context)
        return Content(subject=subject, text=_tidy(text), html=html)


def _tidy(text: str) -> str:
    """Template tags leave blank lines and trailing spaces in plain text."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def when(value: str | datetime | None) -> str:
    """'2026년 12월 5일 (토요일) 오후 7:00' (Korean) / 'Dec. 5, 2026 (Sat) 7 p.m.', local time."""
    if not value:
        return ""
    moment = timezone.localtime(datetime.fromisoformat(value) if isinstance(value, str) else value)
    return (
        f"{date_format(moment, 'DATE_FORMAT')} ({date_format(moment, 'D')}) "
        f"{date_format(moment, 'TIME_FORMAT')}"
    )


def seat_label(seat: dict) -> str:
    """'A-1-3': section, row, number, as every screen of ours writes a seat."""
    return f"{seat['section']}-{seat['row']}-{seat['number']}"


def _context(message: CustomerMessage) -> dict:
    payload = message.event.payload
    performance = payload.get("performance") or {}
    context = {
        "kind": message.kind,
        "customer_name": message.customer.name,
        "reservation_id": payload.get("reservation_id"),
        "performance": {
            "title": performance.get("concert_title", ""),
            "artist": performance.get("artist", ""),
            "venue": performance.get("venue", ""),
            "when": when(performance.get("starts_at")),
        },
    }
    return context | _DETAILS[message.kind](message.event)


def _confirmed(event: Event) -> dict:
    payload = event.payload
    return {
        "seats": [
            {
                "label": seat_label(seat),
                "grade": seat["grade"],
                "price": format_won(seat["price"]),
                "booking_fee": format_won(seat.get("booking_fee", 0)),
            }
            for seat in payload["seats"]
        ],
        "tickets_price": format_won(payload["tickets_price"]),
        "booking_fee": format_won(payload["booking_fee"]),
        "amount": format_won(payload["amount"]),
        "paid_at": when(payload.get("paid_at")),
        # Not in the payload today (docs/notifications.md); shown once it is.
        "cancellable_until": when(payload.get("cancellable_until")),
        "cancellation_path": f"/api/v1/reservations/{payload['reservation_id']}/cancellation",
    }


def _cancelled(event: Event) -> dict:
    """reservation.cancelled (paid) and reservation.refunded. Their payload names seats by id
    only; the labels come from the booking's payment.confirmed event while it is kept."""
    payload = event.payload
    labels = _seat_labels_of_reservation(payload["reservation_id"])
    return {
        "seats": [
            {
                "label": labels.get(seat["seat_id"], ""),
                "price": format_won(seat["price"]),
                "fee": format_won(seat["fee"]),
                "refund": format_won(seat["refund"]),  # booking fee refunded included
            }
            for seat in payload["seats"]
        ],
        "refund": format_won(payload["refund"]),
        "cancellation_fee": format_won(payload["cancellation_fee"]),
        "booking_fee_refunded": format_won(payload["booking_fee_refunded"]),
        "booking_fee_kept": format_won(payload["booking_fee_kept"]),
        "booking_fee_was_kept": payload["booking_fee_kept"] > 0,
        "amount": format_won(payload["amount"]),
        "whole_booking": payload.get("reservation_status") != "confirmed",
    }


def _seat_labels_of_reservation(reservation_id: int) -> dict[int, str]:
    confirmed = (
        Event.objects.filter(
            type="payment.confirmed",
            aggregate_type="reservation",
            aggregate_id=str(reservation_id),
        )
        .only("payload")
        .first()
    )
    if confirmed is None:
        return {}
    return {seat["seat_id"]: seat_label(seat) for seat in confirmed.payload.get("seats", [])}


def _offered(event: Event) -> dict:
    payload = event.payload
    return {
        "seats": [
            {"label": seat_label(seat), "grade": seat["grade"], "price": format_won(seat["price"])}
            for seat in payload.get("seats", [])
        ],
        "amount_due": format_won(payload.get("amount_due")),
        "expires_at": when(payload.get("expires_at")),
        "payment_path": f"/api/v1/reservations/{payload['reservation_id']}/payment",
    }


def _expired(event: Event) -> dict:
    return {"expired_at": when(event.payload.get("expired_at"))}


_DETAILS = {
    MessageKind.BOOKING_CONFIRMED: _confirmed,
    MessageKind.BOOKING_CANCELLED: _cancelled,
    MessageKind.BOOKING_REFUNDED: _cancelled,
    MessageKind.WAITLIST_OFFER: _offered,
    MessageKind.HOLD_EXPIRED: _expired,
}
