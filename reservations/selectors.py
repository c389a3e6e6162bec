from datetime import datetime

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound

from .models import Reservation, ReservationSeat, ReservationStatus


def reservation_effective_status(reservation: Reservation, now: datetime) -> str:
    """A held reservation past its end reads as expired at once, swept or not."""
    if reservation.status == ReservationStatus.HELD and reservation.expires_at <= now:
        return ReservationStatus.EXPIRED
    return reservation.status


def reservation_list_for_user(*, user_id: int) -> QuerySet[Reservation]:
    return (
        Reservation.objects.filter(user_id=user_id)
        .select_related("schedule__concert")
        .prefetch_related(
            # A plain list in `seat_items`; a service that has the rows in hand (a hold) sets
            # the same attribute, and the serializer reads only that.
            Prefetch(
                "items",
                queryset=ReservationSeat.objects.select_related("seat"),
                to_attr="seat_items",
            )
        )
        .order_by("-id")
    )


def reservation_get_for_user(*, user_id: int, reservation_id: int) -> Reservation:
    """The customer's own reservation. Another customer's is 'not found', never 'forbidden':
    its existence is not revealed."""
    reservation = reservation_list_for_user(user_id=user_id).filter(id=reservation_id).first()
    if reservation is None:
        raise NotFound("Reservation not found.")
    return reservation
