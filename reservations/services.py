"""Holding seats, letting them go, and the expiry sweep.

The invariant "a seat is never held or sold to two reservations at once" is kept by the seat
rows themselves (reservations/inventory.py): a hold takes, in one conditional UPDATE, only
seats free at that instant, naming the reservation in the seat's own column, and takes all
of them or rolls back. Two holds racing for a seat queue on its row lock; the second then
finds it taken. No Redis lock is involved.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from concerts.models import Schedule, Seat
from concerts.selectors import schedule_get_cached
from config.audit import operator_history_record
from config.db import retry_on_lock_conflict
from config.errors import NotFound, ValidationFailed
from queueing.gate import queue_require_admitted

from . import facts, inventory, waitlist
from .errors import ReservationNotCancellable, SalesClosed
from .limits import customer_lock_and_count
from .models import (
    MAX_SEATS_PER_RESERVATION,
    Reservation,
    ReservationSeat,
    ReservationSource,
    ReservationStatus,
    WaitlistEventKind,
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
    end here), then in one transaction lock the customer, check their limit, and take
    the seats with a statement that checks them again (inventory.seats_take).
    """
    now = now or timezone.now()
    seat_ids = _check_seat_count(seat_ids)
    schedule = _schedule_on_sale(schedule_id, now)
    queue_require_admitted(raw_token=queue_token, user_id=user.id, concert=schedule.concert)
    first_look = inventory.seats_first_look(schedule_id=schedule.id, seat_ids=seat_ids)
    inventory.raise_unless_free(seat_ids, first_look, now, schedule_id=schedule.id)

    with transaction.atomic():
        customer_lock_and_count(user, schedule, now=now).check(wanted=len(seat_ids))
        # The reservation row before the seat rows (the lock order: see inventory). Its total
        # is the first look's; a seat repriced since is corrected below.
        reservation = Reservation.objects.create(
            user=user,
            schedule=schedule,
            total_price=sum(seat.price for seat in first_look.values()),
            booking_fee_total=schedule.concert.booking_fee * len(seat_ids),
            expires_at=now + timedelta(minutes=schedule.concert.hold_minutes),
        )
        seats = inventory.seats_take(reservation=reservation, seen=first_look, now=now)
        reservation.seat_items = _record_items(reservation, seats)
        facts.reservation_held(reservation, reservation.seat_items)
    return reservation


def _check_seat_count(seat_ids: Sequence[int]) -> list[int]:
    seat_ids = sorted(set(seat_ids))
    if not 1 <= len(seat_ids) <= MAX_SEATS_PER_RESERVATION:
        raise ValidationFailed.on(
            "seat_ids",
            _("Hold 1 to %(most)s different seats.") % {"most": MAX_SEATS_PER_RESERVATION},
        )
    return seat_ids


def _schedule_on_sale(schedule_id: int, now: datetime) -> Schedule:
    schedule = schedule_get_cached(schedule_id=schedule_id)
    if schedule.starts_at <= now:
        raise SalesClosed()
    return schedule


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
    """The customer lets a hold go (or declines a waitlist offer); its seats come back at
    once: to the waitlist, or on sale."""
    now = now or timezone.now()
    with transaction.atomic():
        reservation = (
            Reservation.objects.select_for_update().filter(id=reservation_id, user=user).first()
        )
        if reservation is None:
            raise NotFound(_("Reservation not found."))
        status = reservation_effective_status(reservation, now)
        if status == ReservationStatus.CANCELLED:
            return
        if status != ReservationStatus.HELD:  # a lapsed hold is expired, swept or not
            raise ReservationNotCancellable(details={"status": status})
        _let_go(reservation, now)
        facts.hold_let_go(reservation, by="customer")


@retry_on_lock_conflict()
def reservation_release_by_operator(
    *, reservation_id: int, operator: User, reason: str, now: datetime | None = None
) -> Reservation:
    """An operator lets a customer's hold go (a stuck hold, a customer on the phone), as the
    customer's own cancel would: the seats come back at once (to the waitlist's oldest
    matching entry, or on sale) and a waitlist offer counts as declined. The reason goes to
    the admin history in the same transaction: released and recorded, or neither.

    Only a live hold: a paid booking is refunded (payments), a lapsed hold is free already.
    """
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise ValidationFailed.on("reason", _("Say why: the customer may ask."))
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(id=reservation_id).first()
        if reservation is None:
            raise NotFound(_("Reservation not found."))
        status = reservation_effective_status(reservation, now)
        if status != ReservationStatus.HELD:
            raise ReservationNotCancellable(
                _("Only a live hold can be released; this reservation is %(status)s.")
                % {"status": ReservationStatus(status).label},
                details={"status": status},
            )
        seats = [
            str(item)
            for item in ReservationSeat.objects.filter(reservation=reservation).select_related(
                "seat"
            )
        ]
        _let_go(reservation, now)
        facts.hold_let_go(reservation, by="operator", reason=reason)
        operator_history_record(
            operator=operator,
            objects=[reservation],
            message=_("Hold released by an operator (seats %(seats)s): %(reason)s")
            % {"seats": ", ".join(seats), "reason": reason},
        )
    return reservation


def _let_go(reservation: Reservation, now: datetime) -> None:
    """End a live hold under its row lock: cancelled; an offer declined (its waitlist entry
    ends); the seats released and handed on."""
    reservation.status = ReservationStatus.CANCELLED
    reservation.save(update_fields=["status", "updated_at"])
    if reservation.source == ReservationSource.WAITLIST:  # an offer declined
        waitlist.waitlist_offers_closed(
            reservation_ids=[reservation.id], kind=WaitlistEventKind.DECLINED, now=now
        )
    inventory.seats_release(reservation_ids=[reservation.id], now=now)


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
        expiring = list(
            Reservation.objects.select_for_update(skip_locked=True)
            .filter(status=ReservationStatus.HELD, expires_at__lte=now)
            .order_by("id")
            .only("id", "user_id", "schedule_id", "source", "expires_at")[:batch]
        )
        due = [reservation.id for reservation in expiring]
        if due:
            Reservation.objects.filter(id__in=due).update(
                status=ReservationStatus.EXPIRED, updated_at=now
            )
            facts.reservations_expired(expiring)
            waitlist.waitlist_offers_closed(
                reservation_ids=due, kind=WaitlistEventKind.LAPSED, now=now
            )
            inventory.seats_release(reservation_ids=due, now=now)
    return len(due)
