"""The 취소표 waitlist (예매대기): seats that come back after a sell-out go to the customers who
asked for them, in the order they asked, never to whoever refreshes fastest.

A customer joins for `quantity` seats of some grades (or any) of a sold-out performance.
Seats come back in four ways: a hold let go, a hold or an offer that lapses (the sweep), a
customer's cancellation, an operator's refund. Each goes through reservations/inventory.py,
which calls `waitlist_hand_on` in the same transaction that freed them: the seats become an
offer (a `waitlist` reservation held for the concert's offer_minutes) for the oldest waiting
entry they can fill, and only what no entry takes goes back on sale. A lapsed hold frees its
seats without a write, so until the sweep releases it, a lapsed hold's seat of a waited-for
grade stays taken (inventory.raise_unless_free; the seat map shows it held).

The line: waiting entries in join order. Each returned batch of seats, together with any
seats of those grades on sale at the moment, is offered entry by entry: an entry takes its
`quantity` seats of its grades, next to each other in one row when the pool has such a run;
an entry the pool cannot fill yet (it wants 2 and 1 came back) is skipped and keeps its
place for the next batch (docs/waitlist.md says why that stays fair).

Lock order, as everywhere: reservation -> seats -> waitlist entries (one at a time, in join
order) -> the new offer's rows.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import groupby

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from accounts.models import User
from concerts.models import Schedule, Seat, SeatStatus
from concerts.selectors import schedule_get_cached, seat_free_q
from concerts.services import seat_maps_changed
from config.audit import operator_history_record
from config.db import retry_on_lock_conflict, service_atomic
from config.errors import NotFound, ValidationFailed
from events.services import event_record

from . import facts, inventory
from .errors import SalesClosed, SeatsAvailable, WaitlistClosed, WaitlistEntryExists
from .limits import customer_lock_and_count
from .models import (
    MAX_SEATS_PER_RESERVATION,
    Reservation,
    ReservationSeat,
    ReservationSource,
    ReservationStatus,
    WaitlistEntry,
    WaitlistEvent,
    WaitlistEventKind,
    WaitlistStatus,
)
from .selectors import grade_key_of, waitlist_waited_grades, waits_for

logger = logging.getLogger(__name__)

# How many waiting entries one hand-on reads at a time while looking for the ones it can fill.
CANDIDATE_CHUNK = 200

AUTO_PAY_TASK = "payments.tasks.pay_waitlist_offer"


# --- Joining and leaving ---------------------------------------------------------------------


@retry_on_lock_conflict()
def waitlist_join(
    *,
    user: User,
    schedule_id: int,
    quantity: int,
    grades: Sequence[str] | None,
    auto_pay: bool = False,
    max_total: int | None = None,
    now: datetime | None = None,
) -> tuple[WaitlistEntry, bool]:
    """Put the customer on the performance's waitlist for `quantity` seats of `grades` (None:
    any). Returns (entry, created): asking again for the same returns the live entry.

    Only while fewer than `quantity` seats of those grades are free (SeatsAvailable: go and
    hold them), and within the ticket limit: the waited-for seats count as the customer's."""
    now = now or timezone.now()
    schedule = schedule_get_cached(schedule_id=schedule_id)
    if schedule.starts_at <= now:
        raise SalesClosed()
    if not schedule.concert.waitlist_enabled:
        raise WaitlistClosed()
    grades = _check_request(schedule, quantity, grades, auto_pay, max_total)
    wanted = dict(
        quantity=quantity,
        grade_key=grade_key_of(grades),
        auto_pay=auto_pay,
        max_total=max_total if auto_pay else None,
    )
    with service_atomic():
        tickets = customer_lock_and_count(user, schedule, now=now)
        live = WaitlistEntry.objects.filter(user=user, schedule=schedule, live=True).first()
        if live is not None:
            if all(getattr(live, name) == value for name, value in wanted.items()):
                return live, False
            raise WaitlistEntryExists(details={"entry_id": live.id})
        free = _free_seats(schedule.id, grades, now)
        if free >= quantity:
            raise SeatsAvailable(details={"available": free, "grades": grades})
        tickets.check(wanted=quantity)
        try:
            entry = WaitlistEntry.objects.create(
                user=user, schedule=schedule, joined_at=now, **wanted
            )
        except IntegrityError:  # the unique index: only with the customer lock bypassed
            raise WaitlistEntryExists() from None
        # A lapsed hold of these grades no longer shows free: its seats are now this line's.
        seat_maps_changed([schedule.id])
    return entry, True


def _check_request(
    schedule: Schedule,
    quantity: int,
    grades: Sequence[str] | None,
    auto_pay: bool,
    max_total: int | None,
) -> list[str] | None:
    if not 1 <= quantity <= MAX_SEATS_PER_RESERVATION:
        raise ValidationFailed.on(
            "quantity", _("Wait for 1 to %(most)s seats.") % {"most": MAX_SEATS_PER_RESERVATION}
        )
    if auto_pay and max_total is None:
        raise ValidationFailed.on(
            "max_total", _("Say the most an offer may cost to be paid without asking you.")
        )
    if grades is None:
        return None
    known = set(
        Seat.objects.filter(schedule_id=schedule.id).values_list("grade", flat=True).distinct()
    )
    unknown = [grade for grade in grades if grade not in known]
    if unknown:
        raise ValidationFailed.on(
            "grades",
            _("This performance has no seats of grade %(grades)s.")
            % {"grades": ", ".join(unknown)},
        )
    return list(dict.fromkeys(grades))


def _free_seats(schedule_id: int, grades: Sequence[str] | None, now: datetime) -> int:
    """Seats of these grades a customer could hold now: available ones, and those of lapsed
    holds unless the waitlist already waits for their grade."""
    seats = Seat.objects.filter(schedule_id=schedule_id).filter(seat_free_q(now))
    if grades is not None:
        seats = seats.filter(grade__in=grades)
    free = seats.filter(status=SeatStatus.AVAILABLE).count()
    lapsed = list(seats.filter(status=SeatStatus.HELD).values_list("grade", flat=True))
    if lapsed:
        waited = waitlist_waited_grades(schedule_id=schedule_id)
        free += sum(1 for grade in lapsed if grade not in waited)
    return free


@retry_on_lock_conflict()
def waitlist_leave(*, user: User, entry_id: int, now: datetime | None = None) -> None:
    """The customer leaves the line. An offer they hold is declined: its seats go to the
    next in line, or on sale. Leaving twice, or an entry that has ended, is harmless."""
    now = now or timezone.now()
    entry = WaitlistEntry.objects.filter(id=entry_id, user=user).first()
    if entry is None:
        raise NotFound(_("Waitlist entry not found."))
    with transaction.atomic():
        _leave(entry, now)


@retry_on_lock_conflict()
def waitlist_remove_by_operator(
    *, entry_id: int, operator: User, reason: str, now: datetime | None = None
) -> WaitlistEntry:
    """An operator takes a customer off the line, as if they had left: an offer they hold is
    declined and its seats go to the next in line, or on sale. The reason goes to the admin
    history in the same transaction. An entry that has ended already is left as it is."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise ValidationFailed.on("reason", _("Say why: the customer may ask."))
    entry = WaitlistEntry.objects.filter(id=entry_id).first()
    if entry is None:
        raise NotFound(_("Waitlist entry not found."))
    with transaction.atomic():
        entry = _leave(entry, now)
        operator_history_record(
            operator=operator,
            objects=[entry],
            message=_("Taken off the waitlist by an operator: %(reason)s") % {"reason": reason},
        )
    return entry


def _leave(entry: WaitlistEntry, now: datetime) -> WaitlistEntry:
    """End a live entry, inside a transaction: a waiting one left, an offer declined (or
    lapsed, if it ran out a moment ago). Returns the entry as it now is."""
    if entry.offer_id is not None:  # the lock order: the reservation before the entry
        Reservation.objects.select_for_update().filter(id=entry.offer_id).first()
    entry = WaitlistEntry.objects.select_for_update().get(id=entry.id)
    if entry.status == WaitlistStatus.WAITING:
        _end(entry, WaitlistStatus.LEFT, now)
        seat_maps_changed([entry.schedule_id])
    elif entry.status == WaitlistStatus.OFFERED:
        offer = entry.offer
        if offer.status == ReservationStatus.HELD and offer.expires_at > now:
            offer.status = ReservationStatus.CANCELLED
            offer.save(update_fields=["status", "updated_at"])
            waitlist_offers_closed(
                reservation_ids=[offer.id], kind=WaitlistEventKind.DECLINED, now=now
            )
            inventory.seats_release(reservation_ids=[offer.id], now=now)
        else:  # it lapsed a moment ago; the sweep frees its seats
            waitlist_offers_closed(
                reservation_ids=[offer.id], kind=WaitlistEventKind.LAPSED, now=now
            )
        entry.refresh_from_db()
    return entry


def _end(entry: WaitlistEntry, status: str, now: datetime) -> None:
    entry.status, entry.live, entry.ended_at = status, None, now
    entry.save(update_fields=["status", "live", "ended_at"])


# --- Handing returned seats on ---------------------------------------------------------------


def waitlist_hand_on(*, schedule_id: int, now: datetime) -> list[Reservation]:
    """Offer the free seats of a performance to its waiting entries, oldest first. Called
    by inventory in the transaction that freed seats, after they became available. Returns
    the offers made."""
    waited = waitlist_waited_grades(schedule_id=schedule_id)
    if not waited:
        return []
    schedule = schedule_get_cached(schedule_id=schedule_id, published_only=False)
    if schedule.starts_at <= now:
        return []
    # The pool: seats of the waited grades on sale now. Seats a hold has locked this moment
    # are skipped (that hold takes them); those this transaction freed are ours already.
    pool = Seat.objects.filter(schedule_id=schedule_id, status=SeatStatus.AVAILABLE)
    if isinstance(waited, frozenset):
        pool = pool.filter(grade__in=waited)
    pool = list(
        pool.select_for_update(skip_locked=True).order_by("id").only(*inventory.SEAT_FIELDS)
    )
    offers = []
    for entry in _candidates(schedule_id, pool):
        seats = pick_seats(pool, quantity=entry.quantity, grades=entry.grades)
        if seats is None:
            continue  # cannot be filled from this pool: keeps its place for the next
        locked = WaitlistEntry.objects.select_for_update().filter(
            id=entry.id, status=WaitlistStatus.WAITING
        )
        entry = locked.first()
        if entry is None:  # it left, or another hand-on served it, a moment ago
            continue
        offers.append(_offer(entry, schedule, seats, now))
        taken = {seat.id for seat in seats}
        pool = [seat for seat in pool if seat.id not in taken]
    if offers:
        seat_maps_changed([schedule_id])
    return offers


def _candidates(schedule_id: int, pool: list[Seat]):
    """Waiting entries that might take seats of the pool, in join order, read a chunk at a
    time (a long line is not read whole to hand on one seat)."""
    if not pool:
        return
    grades = sorted({seat.grade for seat in pool})
    line = (
        WaitlistEntry.objects.filter(schedule_id=schedule_id, status=WaitlistStatus.WAITING)
        .filter(waits_for(grades))
        .order_by("joined_at", "id")
        .only("id", "quantity", "grade_key", "joined_at")
    )
    after = None
    while True:
        chunk = line
        if after is not None:
            chunk = chunk.filter(
                Q(joined_at__gt=after.joined_at) | Q(joined_at=after.joined_at, id__gt=after.id)
            )
        chunk = list(chunk.filter(quantity__lte=len(pool))[:CANDIDATE_CHUNK])
        yield from chunk
        if len(chunk) < CANDIDATE_CHUNK:
            return
        after = chunk[-1]


def pick_seats(pool: list[Seat], *, quantity: int, grades: list[str] | None) -> list[Seat] | None:
    """`quantity` seats of `grades` from the pool, or None if it has too few. Preferred:
    next to each other in one row; then in one row; then any. Among equals the customer's
    first-listed grade, then the front rows."""
    usable = [seat for seat in pool if grades is None or seat.grade in grades]
    if len(usable) < quantity:
        return None

    def rank(seat: Seat) -> tuple:
        preference = grades.index(seat.grade) if grades else 0
        return (preference, seat.section, seat.row, seat.number)

    usable.sort(key=rank)
    rows = [
        list(seats)
        for _, seats in groupby(
            sorted(usable, key=lambda s: (s.section, s.row, s.number)),
            key=lambda s: (s.section, s.row),
        )
    ]
    side_by_side, same_row = [], []
    for row in rows:
        for start in range(len(row) - quantity + 1):
            run = row[start : start + quantity]
            if run[-1].number - run[0].number == quantity - 1:
                side_by_side.append(run)
        if len(row) >= quantity:
            same_row.append(sorted(row, key=rank)[:quantity])
    for runs in (side_by_side, same_row):
        if runs:
            return min(runs, key=lambda run: max(rank(seat) for seat in run))
    return usable[:quantity]


def _offer(entry: WaitlistEntry, schedule: Schedule, seats: list[Seat], now: datetime):
    """Hold the seats for the entry's customer for the concert's offer_minutes."""
    concert = schedule.concert
    offer = Reservation.objects.create(
        user_id=entry.user_id,
        schedule_id=schedule.id,
        source=ReservationSource.WAITLIST,
        total_price=sum(seat.price for seat in seats),
        booking_fee_total=concert.booking_fee * len(seats),
        expires_at=now + timedelta(minutes=concert.offer_minutes),
    )
    seat_ids = sorted(seat.id for seat in seats)
    inventory.seats_hold(reservation=offer, seat_ids=seat_ids, expires_at=offer.expires_at, now=now)
    ReservationSeat.objects.bulk_create(
        ReservationSeat(
            reservation=offer, seat=seat, price=seat.price, booking_fee=concert.booking_fee
        )
        for seat in seats
    )
    entry.status, entry.offer, entry.offered_at = WaitlistStatus.OFFERED, offer, now
    entry.save(update_fields=["status", "offer", "offered_at"])
    WaitlistEvent.objects.create(
        entry=entry,
        kind=WaitlistEventKind.OFFERED,
        reservation=offer,
        details={
            "seat_ids": seat_ids,
            "amount_due": offer.total_price + offer.booking_fee_total,
            "expires_at": timezone.localtime(offer.expires_at).isoformat(),
        },
    )
    _publish(entry, "waitlist.offered", offer, seats=seats)
    if entry.auto_pay:
        transaction.on_commit(lambda: waitlist_request_auto_pay(offer.id))
    return offer


def _publish(entry: WaitlistEntry, type: str, offer: Reservation | None, seats=None) -> None:
    """The outbox event of an offer's fact (docs/events.md), beside the entry's own record."""
    payload = {
        "entry_id": entry.id,
        "customer_id": entry.user_id,
        "quantity": entry.quantity,
        "grades": entry.grades,
        "performance": facts.performance_of(entry.schedule_id),
        "reservation_id": offer.id if offer else entry.offer_id,
    }
    if seats is not None:
        payload |= {
            "seats": [
                facts.seat_payload(
                    seat_id=seat.id,
                    section=seat.section,
                    row=seat.row,
                    number=seat.number,
                    grade=seat.grade,
                    price=seat.price,
                )
                for seat in sorted(seats, key=lambda seat: seat.id)
            ],
            "amount_due": offer.total_price + offer.booking_fee_total,
            "expires_at": timezone.localtime(offer.expires_at).isoformat(),
        }
    event_record(type=type, aggregate=("waitlist_entry", entry.id), payload=payload)


def waitlist_request_auto_pay(reservation_id: int) -> None:
    """Ask a worker to pay an auto-pay offer. Payments sits above this layer, so its task is
    named, not imported. Should the broker be down, the payments beat pass pays it."""
    try:
        import_string(AUTO_PAY_TASK).delay(reservation_id)
    except Exception:  # the offer stands; the beat's pass pays it
        logger.warning("Could not ask for auto-pay of offer %s", reservation_id, exc_info=True)


# --- Offers ending ---------------------------------------------------------------------------


def waitlist_offers_closed(*, reservation_ids: Sequence[int], kind: str, now: datetime) -> int:
    """Offers among these reservations that ended unpaid: lapsed (the sweep) or declined
    (the customer let it go). Their entries end: lapsed, or left. Returns how many. Call in
    the transaction that ends the reservations, before their seats are released."""
    entries = list(
        WaitlistEntry.objects.select_for_update().filter(
            offer_id__in=reservation_ids, status=WaitlistStatus.OFFERED
        )
    )
    status = WaitlistStatus.LAPSED if kind == WaitlistEventKind.LAPSED else WaitlistStatus.LEFT
    for entry in entries:
        _end(entry, status, now)
        _publish(entry, f"waitlist.{kind}", None)
    WaitlistEvent.objects.bulk_create(
        WaitlistEvent(entry=entry, kind=kind, reservation_id=entry.offer_id) for entry in entries
    )
    return len(entries)


def waitlist_offer_taken(*, reservation_id: int, now: datetime) -> None:
    """The offer was paid: its entry is bought. Call in the payment's transaction."""
    entry = (
        WaitlistEntry.objects.select_for_update()
        .filter(offer_id=reservation_id, status=WaitlistStatus.OFFERED)
        .first()
    )
    if entry is not None:
        _end(entry, WaitlistStatus.BOUGHT, now)
        WaitlistEvent.objects.create(
            entry=entry, kind=WaitlistEventKind.TAKEN, reservation_id=reservation_id
        )
        _publish(entry, "waitlist.taken", None)


def waitlist_auto_pay_failed(*, entry: WaitlistEntry, reason: str, details: dict) -> None:
    """Record why an auto-pay offer was left for the customer to pay (once per offer)."""
    if not entry.events.filter(kind=WaitlistEventKind.AUTO_PAY_FAILED).exists():
        WaitlistEvent.objects.create(
            entry=entry,
            kind=WaitlistEventKind.AUTO_PAY_FAILED,
            reservation_id=entry.offer_id,
            details={"reason": reason, **details},
        )


@retry_on_lock_conflict()
def waitlist_hand_on_now(*, schedule_ids, now: datetime | None = None) -> int:
    """An operator's nudge: offer the seats on sale of these performances to their lines
    (seats that came back before anyone waited, or while the waitlist was off). Returns how
    many offers were made."""
    now = now or timezone.now()
    made = 0
    for schedule_id in sorted(set(schedule_ids)):
        with transaction.atomic():
            made += len(waitlist_hand_on(schedule_id=schedule_id, now=now))
    return made
