"""Seat inventory: the one place where a seat's sale state changes.

A seat's sale state is three columns: `status`, `reservation` (who holds or owns it) and
`hold_expires_at`. Nothing outside this module writes them (an operator's price or grade edit
of an available seat is a catalog change, in concerts.services). Each transition is one
function built on one conditional UPDATE whose WHERE clause is the rule it enforces, so the
database, not a Redis lock or a read made a moment earlier, decides who gets a seat:

    hold     available (or held by a lapsed hold)  -> held by a reservation, until an instant
    release  held by these reservations            -> available, or offered on (below)
    sell     held by this reservation, unexpired    -> sold to it
    give_back sold to this reservation              -> available, or offered on (below)

Seats that come back (release, give_back) are handed on in the same transaction: to the
oldest waiting waitlist entries that match them (reservations/waitlist.py), and only the
rest go back on sale. A hold that lapses frees its seats without a write (lazy expiry), so a
lapsed hold's seat of a grade the waitlist waits for is not free to anyone until the sweep
releases it and hands it on (`raise_unless_free`): there is no moment at which a returned
seat the waitlist wants is up for grabs (invariant 10).

Locking: a transaction that changes several seats first locks their rows in ascending id
order (`seats_lock`), so two such transactions wait for each other instead of deadlocking,
whichever index the optimizer picks for the UPDATE that follows. Two hot paths lock in the
statement that does their work, in the same order, to save a round trip each: a hold takes
seats seen available with the UPDATE itself (`seats_take`: found by primary key, locked in id
order, its row count proving they were free), and a payment locks its seats in the statement
that locks its reservation (`reservation_lock_for_sale`). The lock order across the system
is: the customer's user row -> reservation row -> seat rows -> wallet row.

Every function that locks seats also retires the cached seat maps of their schedules when the
transaction commits (concerts/cache.py).
"""

import functools
import operator
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext as _

from concerts.models import Seat, SeatStatus
from concerts.selectors import seat_effective_status, seat_free_q
from concerts.services import seat_maps_changed
from config.errors import ValidationFailed

from .errors import HoldExpired, SeatsUnavailable
from .models import Reservation
from .selectors import waitlist_waited_grades

# The seat columns a hold reads under the lock: their state, and what the answer shows.
SEAT_FIELDS = (
    "id",
    "schedule",
    "section",
    "row",
    "number",
    "grade",
    "price",
    "status",
    "hold_expires_at",
    "reservation",
)


class SeatState(NamedTuple):
    status: str
    hold_expires_at: datetime | None
    price: int
    grade: str
    section: str
    row: int
    number: int


def seats_first_look(*, schedule_id: int, seat_ids: Sequence[int]) -> dict[int, SeatState]:
    """The wanted seats of a schedule as they are now, read without a lock. Good enough to
    refuse a seat that is taken; a seat that looks free is taken only by a statement that
    checks it again (seats_take)."""
    rows = Seat.objects.filter(id__in=seat_ids, schedule_id=schedule_id).values_list(
        "id", *SeatState._fields
    )
    return {seat_id: SeatState(*state) for seat_id, *state in rows}


def seats_lock(*, seat_ids: Iterable[int], schedule_id: int | None = None) -> list[Seat]:
    """Lock these seat rows in ascending id order, and read them (SEAT_FIELDS) in the same
    statement. Only inside a transaction: a lock outside one would end at once.

    The schedules' cached seat maps are retired when the transaction commits, whatever it
    then does to the seats."""
    if not connection.in_atomic_block:
        raise RuntimeError("seats_lock() needs a transaction: the locks last until it ends.")
    locked = Seat.objects.select_for_update().filter(id__in=list(seat_ids))
    if schedule_id is not None:
        locked = locked.filter(schedule_id=schedule_id)
    seats = list(locked.order_by("id").only(*SEAT_FIELDS))
    seat_maps_changed(seat.schedule_id for seat in seats)
    return seats


def raise_unless_free(
    seat_ids: Sequence[int], seats: dict[int, SeatState], now: datetime, *, schedule_id: int
) -> None:
    """Refuse unless every wanted seat is a seat of the schedule (`seats`: those found) and
    free at `now`: available, or held by a hold that has run out, unless the waitlist waits
    for its grade (then the sweep hands it on; until then it stays taken)."""
    unknown = [seat_id for seat_id in seat_ids if seat_id not in seats]
    if unknown:
        raise ValidationFailed.on(
            "seat_ids", _("Not seats of this schedule: %(ids)s.") % {"ids": unknown}
        )
    taken = [
        seat_id
        for seat_id in seat_ids
        if seat_effective_status(seats[seat_id].status, seats[seat_id].hold_expires_at, now)
        != SeatStatus.AVAILABLE
    ]
    lapsed = [seat_id for seat_id in seat_ids if seats[seat_id].status == SeatStatus.HELD]
    if lapsed and not taken:  # rare: only then is the waitlist asked
        waited = waitlist_waited_grades(schedule_id=schedule_id)
        taken = [seat_id for seat_id in lapsed if seats[seat_id].grade in waited]
    if taken:
        raise SeatsUnavailable(details={"seat_ids": taken})


def seat_states(seats: Iterable[Seat]) -> dict[int, SeatState]:
    return {
        seat.id: SeatState(*(getattr(seat, field) for field in SeatState._fields)) for seat in seats
    }


def seats_take(
    *, reservation: Reservation, seen: dict[int, SeatState], now: datetime
) -> list[Seat]:
    """Take the seats `seen` (the first look, every one of them free then) for the
    reservation until its expires_at: all or none (SeatsUnavailable, or ValidationFailed
    for a seat that is gone; the caller's transaction then rolls back what was taken).
    Returns the seats as taken, in id order, with what the hold records of them.

    Seen available (nearly always): one conditional UPDATE takes them, and its row count
    proves that every one was still available, at the grade and price seen, when it took
    its row lock. No lock before it: the UPDATE finds its rows by primary key, so it locks
    them in ascending id order as seats_lock would, and takes them in the same statement.
    When it comes up short (a rival was faster, an operator repriced or removed a seat), or
    a seat seen was a lapsed hold (the waitlist may wait for its grade: raise_unless_free),
    the seats are locked, checked and taken one step at a time, as they are by every other
    transition; the seats the UPDATE took are then already the reservation's."""
    seat_ids = sorted(seen)
    schedule_id = reservation.schedule_id
    if all(state.status == SeatStatus.AVAILABLE for state in seen.values()):
        as_seen = functools.reduce(
            operator.or_,
            (
                Q(id=seat_id, price=state.price, grade=state.grade)
                for seat_id, state in seen.items()
            ),
        )
        taken = (
            Seat.objects.filter(
                id__in=seat_ids, schedule_id=schedule_id, status=SeatStatus.AVAILABLE
            )
            .filter(as_seen)
            .update(
                status=SeatStatus.HELD,
                reservation=reservation,
                hold_expires_at=reservation.expires_at,
            )
        )
        if taken == len(seat_ids):
            seat_maps_changed([schedule_id])
            return [_seat_as_taken(seat_id, seen[seat_id], reservation) for seat_id in seat_ids]
    seats = seats_lock(seat_ids=seat_ids, schedule_id=schedule_id)
    taken_above = {seat.id for seat in seats if seat.reservation_id == reservation.id}
    rest = [seat_id for seat_id in seat_ids if seat_id not in taken_above]
    raise_unless_free(rest, seat_states(seats), now, schedule_id=schedule_id)
    seats_hold(reservation=reservation, seat_ids=rest, expires_at=reservation.expires_at, now=now)
    return seats


def _seat_as_taken(seat_id: int, seen: SeatState, reservation: Reservation) -> Seat:
    return Seat(
        id=seat_id,
        schedule_id=reservation.schedule_id,
        section=seen.section,
        row=seen.row,
        number=seen.number,
        grade=seen.grade,
        price=seen.price,
        status=SeatStatus.HELD,
        reservation=reservation,
        hold_expires_at=reservation.expires_at,
    )


def seats_hold(
    *,
    reservation: Reservation,
    seat_ids: Sequence[int],
    expires_at: datetime,
    now: datetime,
) -> None:
    """Take these seats of the reservation's schedule for it until `expires_at`: all or none.
    Call with the seats locked (seats_lock) and checked free; the UPDATE checks again."""
    claimed = (
        Seat.objects.filter(id__in=seat_ids, schedule_id=reservation.schedule_id)
        .filter(seat_free_q(now))
        .update(status=SeatStatus.HELD, reservation=reservation, hold_expires_at=expires_at)
    )
    if claimed != len(seat_ids):  # raising rolls back the seats claimed above
        raise SeatsUnavailable(details={"seat_ids": list(seat_ids)})


def seats_release(*, reservation_ids: Sequence[int], now: datetime) -> int:
    """Seats still held by these reservations come back: to the waitlist, or on sale.
    Returns how many came back.

    Seats another hold already took over (after these ran out) are not touched: the
    condition names the holder."""
    held = Seat.objects.filter(reservation_id__in=reservation_ids, status=SeatStatus.HELD)
    seats = seats_lock(seat_ids=held.order_by().values_list("id", flat=True))
    released = held.update(status=SeatStatus.AVAILABLE, reservation=None, hold_expires_at=None)
    _hand_on({seat.schedule_id for seat in seats}, now)
    return released


# What a sale reads of its reservation, and of each of its seats (the payment's event names
# them; payments/facts.py).
SALE_RESERVATION_FIELDS = (
    "id",
    "user_id",
    "schedule_id",
    "status",
    "source",
    "total_price",
    "booking_fee_total",
    "expires_at",
)
SALE_ITEM_FIELDS = (
    "seat_id",
    "price",
    "booking_fee",
    "seat__section",
    "seat__row",
    "seat__number",
    "seat__grade",
)


def reservation_lock_for_sale(
    *, reservation_id: int, user_id: int
) -> tuple[Reservation, list[dict]] | None:
    """Lock a customer's reservation, the customer's own row and the reservation's seats in
    one statement, reading what a sale needs: the reservation (SALE_RESERVATION_FIELDS; the
    others load if asked for) and its items (SALE_ITEM_FIELDS), in seat id order. None when
    the customer has no such reservation. Then seats_sell(..., locked=True).

    The locks come in the system's order. The reservation and the customer rows first: each
    is found by its primary key, so the statement reads (and locks) them before it joins
    anything. Then each item and its seat, the items read through their (reservation, seat)
    index, so the seats in ascending id order. The customer's row because a sale's Payment
    and ledger inserts take a shared lock on it (foreign key checks), which must not come
    after the seats. MariaDB has no FOR UPDATE OF, so every joined row is locked: no join
    with the schedule, or every payment of the performance would wait for the others."""
    if not connection.in_atomic_block:
        raise RuntimeError("reservation_lock_for_sale() needs a transaction.")
    item_paths = [f"items__{path}" for path in SALE_ITEM_FIELDS]
    rows = list(
        Reservation.objects.select_for_update()
        .filter(id=reservation_id, user_id=user_id)
        .order_by("items__seat_id")
        # user__is_active: joins (and so locks) the customer's row.
        .values_list(*SALE_RESERVATION_FIELDS, "user__is_active", *item_paths)
    )
    if not rows:
        return None
    width = len(SALE_RESERVATION_FIELDS)
    reservation = _reservation_from(rows[0][:width])
    items = [
        dict(zip(SALE_ITEM_FIELDS, row[width + 1 :], strict=True))
        for row in rows
        if row[width + 1] is not None  # a reservation without items: one row, items NULL
    ]
    seat_maps_changed([reservation.schedule_id])
    return reservation, items


def _reservation_from(values: Sequence) -> Reservation:
    """A Reservation of SALE_RESERVATION_FIELDS, as the ORM builds one from a row read with
    .only(): any other field loads when asked for."""
    read = dict(zip(SALE_RESERVATION_FIELDS, values, strict=True))
    in_model_order = [
        read[field.attname] for field in Reservation._meta.concrete_fields if field.attname in read
    ]
    return Reservation.from_db(connection.alias, read, in_model_order)


def seats_sell(
    *, reservation: Reservation, seat_ids: Sequence[int], now: datetime, locked: bool = False
) -> None:
    """Sell these seats to the reservation: each must still be held by it, and its hold not
    run out (expiry has one truth: a lapsed hold's seats are free for anyone, not its own).
    All or none: otherwise HoldExpired, and the transaction rolls back what was sold. Locks
    the seats first, unless the caller has (`locked`: reservation_lock_for_sale)."""
    if not locked:
        seats_lock(seat_ids=seat_ids)
    sold = Seat.objects.filter(
        id__in=seat_ids,
        reservation=reservation,
        status=SeatStatus.HELD,
        hold_expires_at__gt=now,
    ).update(status=SeatStatus.SOLD, hold_expires_at=None)
    if sold != len(seat_ids):
        raise HoldExpired(details={"reservation_id": reservation.id})


def seats_give_back(*, reservation: Reservation, seat_ids: Sequence[int], now: datetime) -> int:
    """These seats, sold to this reservation, come back (a cancellation or a refund): to the
    waitlist, or on sale. Returns how many. Locks them first."""
    seats_lock(seat_ids=seat_ids)
    returned = Seat.objects.filter(
        id__in=seat_ids, reservation=reservation, status=SeatStatus.SOLD
    ).update(status=SeatStatus.AVAILABLE, reservation=None)
    _hand_on([reservation.schedule_id], now)
    return returned


def _hand_on(schedule_ids: Iterable[int], now: datetime) -> None:
    """Offer the seats that came back to the waitlists of their schedules, in this
    transaction: nobody sees them available before the waitlist had its turn."""
    # Imported here: the waitlist builds on this module (it takes seats with seats_hold).
    from .waitlist import waitlist_hand_on

    for schedule_id in sorted(set(schedule_ids)):
        waitlist_hand_on(schedule_id=schedule_id, now=now)
