"""Holding seats, letting them go, and the expiry sweep.

The invariant "a seat is never held or sold to two reservations at once" is kept by the seat
rows themselves (reservations/inventory.py): a hold locks the wanted seat rows (in id order)
and then takes, in one conditional UPDATE, only seats free at that instant, naming the
reservation in the seat's own column. Two holds racing for a seat queue on its row lock; the
second then finds it taken. No Redis lock is involved.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import User
from concerts.models import Schedule, Seat, SeatStatus
from concerts.selectors import schedule_get_cached
from config.db import retry_on_lock_conflict
from config.errors import NotFound, ValidationFailed
from queueing.gate import queue_require_admitted

from . import inventory
from .errors import ReservationNotCancellable, SalesClosed, TicketLimitReached
from .models import (
    MAX_SEATS_PER_RESERVATION,
    Reservation,
    ReservationSeat,
    ReservationStatus,
)
from .selectors import reservation_effective_status

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
    """Hold 1-4 seats of one schedule for the concert's hold_minutes: all of them, or none,
    and never more than the concert's ticket_limit held and bought by this customer for the
    performance. Each ticket carries the concert's booking fee, paid with the seats.

    Only a customer admitted from the concert's queue may hold (`queue_token`). Returns the
    reservation with its schedule, concert and seats (`seat_items`) loaded, ready to serialize.

    The steps: check the request, take a first look without locks (a stampede's refusals
    end here), then in one transaction lock the customer, check their limit, lock the seats,
    check them again, and take them.
    """
    now = now or timezone.now()
    seat_ids = _check_seat_count(seat_ids)
    schedule = _schedule_on_sale(schedule_id, now)
    queue_require_admitted(raw_token=queue_token, user_id=user.id, concert=schedule.concert)
    first_look = inventory.seats_first_look(schedule_id=schedule.id, seat_ids=seat_ids)
    inventory.raise_unless_free(seat_ids, first_look, now)

    with transaction.atomic():
        _lock_customer(user)
        _check_ticket_limit(user, schedule, wanted=len(seat_ids), now=now)
        # The reservation row before the seat rows (the lock order: see inventory). Its total
        # is the first look's; a seat repriced since is corrected below.
        reservation = Reservation.objects.create(
            user=user,
            schedule=schedule,
            total_price=sum(seat.price for seat in first_look.values()),
            booking_fee_total=schedule.concert.booking_fee * len(seat_ids),
            expires_at=now + timedelta(minutes=schedule.concert.hold_minutes),
        )
        seats = inventory.seats_lock(seat_ids=seat_ids, schedule_id=schedule.id)
        inventory.raise_unless_free(seat_ids, inventory.seat_states(seats), now)
        inventory.seats_hold(
            reservation=reservation, seat_ids=seat_ids, expires_at=reservation.expires_at, now=now
        )
        reservation.seat_items = _record_items(reservation, seats)
    return reservation


def _check_seat_count(seat_ids: Sequence[int]) -> list[int]:
    seat_ids = sorted(set(seat_ids))
    if not 1 <= len(seat_ids) <= MAX_SEATS_PER_RESERVATION:
        raise ValidationFailed.on(
            "seat_ids", f"Hold 1 to {MAX_SEATS_PER_RESERVATION} different seats."
        )
    return seat_ids


def _schedule_on_sale(schedule_id: int, now: datetime) -> Schedule:
    schedule = schedule_get_cached(schedule_id=schedule_id)
    if schedule.starts_at <= now:
        raise SalesClosed()
    return schedule


def _lock_customer(user: User) -> None:
    """Serialise this customer's own holds (only theirs), so two parallel requests cannot
    both pass the per-customer limit. (A payment takes the same row: it turns held seats
    into bought ones, which the limit counts alike.)"""
    User.objects.select_for_update().filter(id=user.id).values_list("id").get()


def _check_ticket_limit(user: User, schedule: Schedule, *, wanted: int, now: datetime) -> None:
    """Seats this customer holds (unexpired) or bought for the performance, plus the wanted
    ones, within the concert's ticket_limit. Seats cancelled, refunded or let go are back on
    sale, no longer theirs, and so not counted."""
    mine = Seat.objects.filter(reservation__user=user, reservation__schedule_id=schedule.id)
    counts = mine.aggregate(
        held=Count("id", filter=Q(status=SeatStatus.HELD, hold_expires_at__gt=now)),
        bought=Count("id", filter=Q(status=SeatStatus.SOLD)),
    )
    limit = schedule.concert.ticket_limit
    if counts["held"] + counts["bought"] + wanted > limit:
        raise TicketLimitReached.of(held=counts["held"], bought=counts["bought"], limit=limit)


def _record_items(reservation: Reservation, seats: list[Seat]) -> list[ReservationSeat]:
    """The reservation's record of its seats at their prices now (under the lock)."""
    booking_fee = reservation.booking_fee_total // len(seats)
    items = ReservationSeat.objects.bulk_create(
        ReservationSeat(
            reservation=reservation, seat=seat, price=seat.price, booking_fee=booking_fee
        )
        for seat in seats
    )
    total_price = sum(seat.price for seat in seats)
    if total_price != reservation.total_price:  # an operator repriced a seat meanwhile
        reservation.total_price = total_price
        reservation.save(update_fields=["total_price"])
    return items


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
        inventory.seats_release(reservation_ids=[reservation.id])
        reservation.status = ReservationStatus.CANCELLED
        reservation.save(update_fields=["status", "updated_at"])


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
            inventory.seats_release(reservation_ids=due)
            Reservation.objects.filter(id__in=due).update(
                status=ReservationStatus.EXPIRED, updated_at=now
            )
    return len(due)
