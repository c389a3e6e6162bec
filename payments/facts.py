"""The facts of money as outbox events (events.event_record; payloads in docs/events.md).
Called by the services in the transaction of the fact."""

from django.utils import timezone

from events.services import event_record
from reservations.facts import performance_of, seat_payload
from reservations.models import Reservation

from .models import Cancellation, CancellationKind, LedgerEntry, Payment


def payment_confirmed(payment: Payment, reservation: Reservation, items: list[dict]) -> None:
    """`items`: the reservation's seats as the payment read them (values(): seat_id, price,
    booking_fee, seat__section, seat__row, seat__number, seat__grade)."""
    event_record(
        type="payment.confirmed",
        aggregate=("reservation", reservation.id),
        payload={
            "payment_id": payment.id,
            "reservation_id": reservation.id,
            "customer_id": payment.user_id,
            "source": reservation.source,
            "performance": performance_of(reservation.schedule_id),
            "seats": [
                seat_payload(
                    seat_id=item["seat_id"],
                    section=item["seat__section"],
                    row=item["seat__row"],
                    number=item["seat__number"],
                    grade=item["seat__grade"],
                    price=item["price"],
                    booking_fee=item["booking_fee"],
                )
                for item in items
            ],
            "amount": payment.amount,
            "tickets_price": payment.amount - payment.booking_fee,
            "booking_fee": payment.booking_fee,
            "paid_at": timezone.localtime(payment.created_at).isoformat(),
        },
    )


def cancellation_made(cancellation: Cancellation, reservation: Reservation) -> None:
    """A paid booking's seats cancelled by the customer (reservation.cancelled) or refunded
    by an operator (reservation.refunded), with the money of each seat."""
    customer = cancellation.kind == CancellationKind.CUSTOMER
    event_record(
        type="reservation.cancelled" if customer else "reservation.refunded",
        aggregate=("reservation", reservation.id),
        payload={
            "reservation_id": reservation.id,
            "payment_id": cancellation.payment_id,
            "cancellation_id": cancellation.id,
            "customer_id": reservation.user_id,
            "paid": True,
            "by": "customer" if customer else "operator",
            "kind": cancellation.kind,
            "reason": cancellation.reason,
            "rule": cancellation.rule,
            "performance": performance_of(reservation.schedule_id),
            "seats": [
                {
                    "seat_id": item.item.seat_id,
                    "price": item.price,
                    "fee": item.fee,
                    "booking_fee": item.booking_fee,
                    "booking_fee_refunded": item.booking_fee_refunded,
                    "refund": item.refund,
                }
                for item in cancellation.items.select_related("item")
            ],
            "refund": cancellation.refund,
            "cancellation_fee": cancellation.fee,
            "booking_fee_refunded": cancellation.booking_fee_refunded,
            "booking_fee_kept": cancellation.booking_fee_kept,
            "amount": cancellation.amount,
            "reservation_status": reservation.status,
        },
    )


def wallet_charged(entry: LedgerEntry, customer_id: int) -> None:
    event_record(
        type="wallet.charged",
        aggregate=("wallet", entry.wallet_id),
        payload={
            "customer_id": customer_id,
            "ledger_entry_id": entry.id,
            "amount": entry.amount,
            "balance_after": entry.balance_after,
        },
    )
