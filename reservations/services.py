"""Holding seats, letting them go, and the expiry sweep.

The invariant "a seat is never held or sold to two reservations at once" is kept by the seat
rows themselves: a hold locks the wanted seat rows (in id order) and then takes, in one
conditional UPDATE, only seats free at that instant, naming the reservation in the seat's own
column. Two holds racing for a seat queue on its row lock; the second then finds it taken.
No Redis lock is involved.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from concerts.models import Seat, SeatStatus
from concerts.selectors import schedule_get, seat_free_q
from concerts.services import lock_seats_in_order
from config.db import retry_on_lock_conflict
from config.errors import NotFound
from queueing.selectors import queue_require_admitted

from .errors import (
    HoldLimitReached,
    InvalidSeats,
    ReservationNotCancellable,
    SalesClosed,
    SeatsUnavailable,
)
from .models import Reservation, ReservationSeat, ReservationStatus
from .selectors import reservation_effective_status

MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE = 4
SWEEP_BATCH = 500


@retry_on_lock_conflict()
def reservation_hold(
    *,
    user: User,
    schedule_id: int,
    seat_ids: Sequence[int],
    queue_token: str | None,
    now: datetime | None = None,
) -> Reservation:
    """Hold 1-4 seats of one schedule for the concert's hold_minutes: all of them, or none.

    Only a customer admitted from the concert's queue may hold (`queue_token`)."""
    now = now or timezone.now()
    seat_ids = sorted(set(seat_ids))
    if not 1 <= len(seat_ids) <= MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE:
        raise InvalidSeats(details={"seat_ids": ["Hold 1 to 4 different seats."]})
    schedule = schedule_get(schedule_id=schedule_id)
    if schedule.starts_at <= now:
        raise SalesClosed()
    queue_require_admitted(raw_token=queue_token, user_id=user.id, concert=schedule.concert)
    expires_at = now + timedelta(minutes=schedule.concert.hold_minutes)

    with transaction.atomic():
        # Serialise this customer's own holds (only theirs), so two parallel requests cannot
        # both pass the per-customer limit below.
        User.objects.select_for_update().only("id").get(id=user.id)
        already_held = Seat.objects.filter(
            reservation__user=user,
            reservation__schedule_id=schedule.id,
            status=SeatStatus.HELD,
            hold_expires_at__gt=now,
        ).count()
        if already_held + len(seat_ids) > MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE:
            raise HoldLimitReached(
                details={"held": already_held, "limit": MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE}
            )

        # total_price is set below from the seats actually claimed; 1 satisfies the CHECK.
        reservation = Reservation.objects.create(
            user=user, schedule=schedule, total_price=1, expires_at=expires_at
        )
        lock_seats_in_order(seat_ids)
        # The statement that takes the seats, re-checking each one is free under the lock.
        claimed = (
            Seat.objects.filter(id__in=seat_ids, schedule_id=schedule.id)
            .filter(seat_free_q(now))
            .update(status=SeatStatus.HELD, reservation=reservation, hold_expires_at=expires_at)
        )
        if claimed != len(seat_ids):  # raising rolls back the reservation and any seat taken
            _raise_why_not_claimed(schedule.id, seat_ids, reservation)

        prices = dict(Seat.objects.filter(reservation=reservation).values_list("id", "price"))
        ReservationSeat.objects.bulk_create(
            ReservationSeat(reservation=reservation, seat_id=seat_id, price=price)
            for seat_id, price in prices.items()
        )
        reservation.total_price = sum(prices.values())
        reservation.save(update_fields=["total_price"])
    return reservation


def _raise_why_not_claimed(schedule_id: int, seat_ids: list[int], reservation) -> None:
    in_schedule = set(
        Seat.objects.filter(id__in=seat_ids, schedule_id=schedule_id).values_list("id", flat=True)
    )
    unknown = [seat_id for seat_id in seat_ids if seat_id not in in_schedule]
    if unknown:
        raise InvalidSeats(details={"seat_ids": [f"Not seats of this schedule: {unknown}."]})
    ours = set(Seat.objects.filter(reservation=reservation).values_list("id", flat=True))
    raise SeatsUnavailable(details={"seat_ids": [s for s in seat_ids if s not in ours]})


@retry_on_lock_conflict()
def reservation_cancel(*, user: User, reservation_id: int, now: datetime | None = None) -> None:
    """The customer lets a hold go; its seats are on sale again at once."""
    now = now or timezone.now()
    with transaction.atomic():
        reservation = (
            Reservation.objects.select_for_update().filter(id=reservation_id, user=user).first()
        )
        if reservation is None:
            raise NotFound("Reservation not found.")
        status = reservation_effective_status(reservation, now)
        if status == ReservationStatus.CANCELLED:
            return
        if status != ReservationStatus.HELD:  # a lapsed hold is expired, swept or not
            raise ReservationNotCancellable(details={"status": status})
        _release_held_seats([reservation.id])
        reservation.status = ReservationStatus.CANCELLED
        reservation.save(update_fields=["status", "updated_at"])


def _release_held_seats(reservation_ids: list[int]) -> int:
    """Seats still held by these reservations go back on sale. Seats another hold already
    took over (after these ran out) are not touched: the condition names the holder."""
    held = Seat.objects.filter(reservation_id__in=reservation_ids, status=SeatStatus.HELD)
    lock_seats_in_order(list(held.values_list("id", flat=True)))
    return held.update(status=SeatStatus.AVAILABLE, reservation=None, hold_expires_at=None)


def reservation_expire_due(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """The sweep: mark held reservations past their end as expired and free their seats.

    Only tidies up: every read already treats them as expired. Claims rows with
    SKIP LOCKED, so several workers sweep side by side and a payment in progress (which
    holds its reservation's row lock) is skipped, never raced. Returns how many expired.
    """
    now = now or timezone.now()
    expired = 0
    while swept := _expire_batch(now=now, batch=batch):
        expired += swept
    return expired


@retry_on_lock_conflict()
def _expire_batch(*, now: datetime, batch: int) -> int:
    with transaction.atomic():
        due = list(
            Reservation.objects.select_for_update(skip_locked=True)
            .filter(status=ReservationStatus.HELD, expires_at__lte=now)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if due:
            _release_held_seats(due)
            Reservation.objects.filter(id__in=due).update(
                status=ReservationStatus.EXPIRED, updated_at=now
            )
    return len(due)
