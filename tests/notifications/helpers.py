"""Customers and events for the notification tests, in bulk where the tests need many."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from events.models import Event
from events.services import event_record
from notifications.models import CustomerMessage
from notifications.services import customer_messages_send


def customers(count: int, *, tag: str = "bulk") -> list[User]:
    User.objects.bulk_create(
        User(email=f"{tag}{n}@example.com", name=f"고객 {n}", password="!") for n in range(count)
    )
    return list(User.objects.filter(email__startswith=tag).order_by("id"))


def payment_confirmed_payload(customer_id: int, reservation_id: int) -> dict:
    """What payments.facts.payment_confirmed writes (docs/events.md), for one R seat."""
    starts = timezone.localtime(timezone.now() + timedelta(days=30))
    return {
        "payment_id": reservation_id,
        "reservation_id": reservation_id,
        "customer_id": customer_id,
        "source": "queue",
        "performance": {
            "schedule_id": 1,
            "concert_id": 1,
            "concert_title": "Bulk Concert",
            "artist": "Someone",
            "venue": "KSPO DOME",
            "starts_at": starts.isoformat(),
        },
        "seats": [
            {
                "seat_id": reservation_id,
                "section": "B",
                "row": 2,
                "number": reservation_id,
                "grade": "R",
                "price": 110_000,
                "booking_fee": 2_000,
            }
        ],
        "amount": 112_000,
        "tickets_price": 110_000,
        "booking_fee": 2_000,
        "paid_at": timezone.localtime().isoformat(),
    }


def record_payments(people: list[User]) -> list[Event]:
    """One payment.confirmed event per customer, recorded as the payment service does."""
    with transaction.atomic():
        return [
            event_record(
                type="payment.confirmed",
                aggregate=("reservation", 100_000 + n),
                payload=payment_confirmed_payload(person.id, 100_000 + n),
            )
            for n, person in enumerate(people)
        ]


def mails_of(outbox, *, to: str) -> list:
    return [mail for mail in outbox if mail.to == [to]]


def html_of(mail) -> str:
    [(html, mimetype)] = mail.alternatives
    assert mimetype == "text/html"
    return html


def message_ids(outbox) -> list[str]:
    """The Message-ID header of each mail as it went out (not what we meant to set)."""
    return [mail.message()["Message-ID"] for mail in outbox]


def relay_and_send(**options) -> int:
    from events.services import events_dispatch

    events_dispatch()
    return customer_messages_send(**options)


def statuses() -> dict[str, int]:
    from collections import Counter

    return dict(Counter(CustomerMessage.objects.values_list("status", flat=True)))
