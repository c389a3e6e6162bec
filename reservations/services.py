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
from concerts.selectors import schedule_get_cached, seat_effective_status, seat_free_q
from concerts.services import lock_seats_in_order, seat_maps_changed
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
from .selectors import reservation_effective_status, reservation_with_items

MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE = 4
SWEEP_BATCH = 500

# The seat columns a hold reads under the lock: their state, and what the answer shows.
SEAT_FIELDS = ("id", "section", "row", "number", "grade", "price", "status", "hold_expires_at")


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

    Only a customer admitted from the concert's queue may hold (`queue_token`). Returns the
    reservation with its schedule, concert and items (seats) loaded, ready to serialize."""
    now = now or timezone.now()
    seat_ids = sorted(set(seat_ids))
    if not 1 <= len(seat_ids) <= MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE:
        raise InvalidSeats(details={"seat_ids": ["Hold 1 to 4 different seats."]})
    schedule = schedule_get_cached(schedule_id=schedule_id)
    if schedule.starts_at <= now:
        raise SalesClosed()
    queue_require_admitted(raw_token=queue_token, user_id=user.id, concert=schedule.concert)
    expires_at = now + timedelta(minutes=schedule.concert.hold_minutes)

    # A first look, without a lock or a transaction. In a stampede nearly every request asks
    # for seats taken a moment before, and is answered from this one read: a seat that is
    # taken now is a true "taken". A seat that looks free is checked again under its lock.
    first_look = {
        seat_id: (status, hold_expires_at, price)
        for seat_id, status, hold_expires_at, price in Seat.objects.filter(
            id__in=seat_ids, schedule_id=schedule.id
        ).values_list("id", "status", "hold_expires_at", "price")
    }
    _raise_unless_free(seat_ids, first_look, now)

    with transaction.atomic():
        # Serialise this customer's own holds (only theirs), so two parallel requests cannot
        # both pass the per-customer limit below.
        User.objects.select_for_update().filter(id=user.id).values_list("id").get()
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

        # The reservation row before the seat rows (the lock order: see payments.services).
        # Its total is the first look's; a seat repriced since is corrected below.
        reservation = Reservation.objects.create(
            user=user,
            schedule=schedule,
            total_price=sum(price for _, _, price in first_look.values()),
            expires_at=expires_at,
        )
        # Lock the wanted seat rows in ascending id order, reading them as they are now: what
        # concerts.services.lock_seats_in_order does for every transaction that takes or frees
        # several seats (two of them wait for each other instead of deadlocking), in the same
        # statement as the read. Like it, retire the schedule's cached seat map on commit.
        seats = list(
            Seat.objects.select_for_update()
            .filter(id__in=seat_ids, schedule_id=schedule.id)
            .order_by("id")
            .only(*SEAT_FIELDS)
        )
        seat_maps_changed([schedule.id])
        # Raising rolls back the reservation above.
        _raise_unless_free(
            seat_ids, {s.id: (s.status, s.hold_expires_at, s.price) for s in seats}, now
        )
        # The statement that takes the seats, with the database checking each one is free.
        claimed = (
            Seat.objects.filter(id__in=seat_ids, schedule_id=schedule.id)
            .filter(seat_free_q(now))
            .update(status=SeatStatus.HELD, reservation=reservation, hold_expires_at=expires_at)
        )
        if claimed != len(seat_ids):  # the rows are locked and free: not expected, but final
            raise SeatsUnavailable(details={"seat_ids": seat_ids})

        items = ReservationSeat.objects.bulk_create(
            ReservationSeat(reservation=reservation, seat=seat, price=seat.price) for seat in seats
        )
        total_price = sum(seat.price for seat in seats)
        if total_price != reservation.total_price:  # an operator repriced a seat meanwhile
            reservation.total_price = total_price
            reservation.save(update_fields=["total_price"])
    return reservation_with_items(reservation, items)


def _raise_unless_free(
    seat_ids: list[int], seats: dict[int, tuple[str, datetime | None, int]], now: datetime
) -> None:
    """`seats`: id -> (status, hold_expires_at, price) of the wanted seats of the schedule."""
    unknown = [seat_id for seat_id in seat_ids if seat_id not in seats]
    if unknown:
        raise InvalidSeats(details={"seat_ids": [f"Not seats of this schedule: {unknown}."]})
    taken = [
        seat_id
        for seat_id in seat_ids
        if seat_effective_status(seats[seat_id][0], seats[seat_id][1], now) != SeatStatus.AVAILABLE
    ]
    if taken:
        raise SeatsUnavailable(details={"seat_ids": taken})


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
    lock_seats_in_order(list(held.order_by().values_list("id", flat=True)))
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
