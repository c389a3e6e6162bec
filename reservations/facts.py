"""The facts of reservations as outbox events (events.event_record; payloads in docs/events.md).
Called by the services in the transaction of the fact."""

from collections.abc import Sequence

from django.utils import timezone

from concerts.models import Schedule
from concerts.selectors import schedule_get_cached
from events.services import event_record

from .models import Reservation, ReservationSeat


def performance_of(schedule_id: int) -> dict:
    """What a message about a booking names: the performance, its concert and venue."""
    schedule: Schedule = schedule_get_cached(schedule_id=schedule_id, published_only=False)
    concert = schedule.concert
    return {
        "schedule_id": schedule.id,
        "concert_id": concert.id,
        "concert_title": concert.title,
        "artist": concert.artist,
        "venue": concert.venue,
        "starts_at": timezone.localtime(schedule.starts_at).isoformat(),
    }


def seat_payload(
    *, seat_id: int, section: str, row: int, number: int, grade: str, price: int, booking_fee=None
) -> dict:
    """A seat as every event names it (docs/events.md)."""
    seat = {
        "seat_id": seat_id,
        "section": section,
        "row": row,
        "number": number,
        "grade": grade,
        "price": price,
    }
    if booking_fee is not None:
        seat["booking_fee"] = booking_fee
    return seat


def seats_of(items: Sequence[ReservationSeat]) -> list[dict]:
    return [
        seat_payload(
            seat_id=item.seat_id,
            section=item.seat.section,
            row=item.seat.row,
            number=item.seat.number,
            grade=item.seat.grade,
            price=item.price,
            booking_fee=item.booking_fee,
        )
        for item in items
    ]


def reservation_summary(reservation: Reservation, items: Sequence[ReservationSeat]) -> dict:
    return {
        "reservation_id": reservation.id,
        "customer_id": reservation.user_id,
        "source": reservation.source,
        "performance": performance_of(reservation.schedule_id),
        "seats": seats_of(items),
        "total_price": reservation.total_price,
        "booking_fee": reservation.booking_fee_total,
        "amount_due": reservation.total_price + reservation.booking_fee_total,
        "expires_at": timezone.localtime(reservation.expires_at).isoformat(),
    }


def reservation_held(reservation: Reservation, items: Sequence[ReservationSeat]) -> None:
    event_record(
        type="reservation.held",
        aggregate=("reservation", reservation.id),
        payload=reservation_summary(reservation, items),
    )


def reservations_expired(reservations: Sequence[Reservation]) -> None:
    """Holds (and waitlist offers) the sweep ended unpaid."""
    for reservation in reservations:
        event_record(
            type="reservation.expired",
            aggregate=("reservation", reservation.id),
            payload={
                "reservation_id": reservation.id,
                "customer_id": reservation.user_id,
                "source": reservation.source,
                "performance": performance_of(reservation.schedule_id),
                "expired_at": timezone.localtime(reservation.expires_at).isoformat(),
            },
        )


def hold_let_go(reservation: Reservation, *, by: str, reason: str = "") -> None:
    """A hold cancelled before payment: by the customer, or released by an operator."""
    event_record(
        type="reservation.cancelled",
        aggregate=("reservation", reservation.id),
        payload={
            "reservation_id": reservation.id,
            "customer_id": reservation.user_id,
            "source": reservation.source,
            "paid": False,
            "by": by,
            "reason": reason,
            "performance": performance_of(reservation.schedule_id),
            "seat_ids": list(
                reservation.items.order_by("seat_id").values_list("seat_id", flat=True)
            ),
        },
    )
