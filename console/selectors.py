"""Reads of the operator console (docs/console.md): the on-sale dashboard's numbers and one
customer's records.

The dashboard is polled every few seconds by every operator watching a sale, so each of its
reads is one aggregate or indexed query, whatever the number of seats, holds and payments:
GROUP BY counts, one sales-per-minute aggregate, and one read of a performance's seats for
the seat map. tests/console/test_dashboard.py pins the count.

Seat states follow the domain's one truth (docs/architecture.md, "Seats and lazy expiry"): a
hold past its end counts as available at once, except that a lapsed hold of a grade the
waitlist waits for stays held until the sweep hands its seats on (docs/waitlist.md).
"""

import zlib
from collections import Counter, defaultdict
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce, Substr, TruncMinute
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework.authtoken.models import Token

from accounts.models import User
from concerts.models import Concert, Schedule, Seat, SeatStatus
from payments.models import Cancellation, LedgerEntry, Payment, Wallet
from queueing.models import QueueAdmission
from queueing.selectors import eta_seconds, queue_stats
from reservations.models import (
    Reservation,
    ReservationSeat,
    ReservationSource,
    WaitlistEntry,
    WaitlistStatus,
)
from reservations.selectors import ANY_GRADE

SALES_WINDOW_MINUTES = 60
TOKEN_PREFIX_LENGTH = 6  # enough to tell two tokens apart, far too little to use one


# --- What a dashboard shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """A concert with its performances, and the one performance looked at (None: all)."""

    concert: Concert
    schedules: list[Schedule]
    schedule: Schedule | None = None

    @property
    def schedule_ids(self) -> list[int]:
        return [self.schedule.id] if self.schedule else [s.id for s in self.schedules]

    def rows(self, to_schedule: str = "") -> Q:
        """Rows of this scope, reached through `to_schedule` ("reservation__" from a
        payment). By schedule ids, not a join to the concert: the schedule_id indexes
        answer it directly."""
        return Q(**{f"{to_schedule}schedule_id__in": self.schedule_ids})


def dashboard_scope(*, concert_id: int, schedule_id: int | None = None) -> Scope:
    """The concert and its performances in two queries; 404 for a concert that does not
    exist, or a performance that is not the concert's."""
    concert = Concert.objects.filter(id=concert_id).first()
    if concert is None:
        raise Http404("No such concert.")
    schedules = list(Schedule.objects.filter(concert_id=concert.id).order_by("starts_at", "id"))
    for schedule in schedules:
        schedule.concert = concert  # str(schedule) names its concert: no query per schedule
    schedule = None
    if schedule_id is not None:
        schedule = next((s for s in schedules if s.id == schedule_id), None)
        if schedule is None:
            raise Http404("No such performance of this concert.")
    return Scope(concert=concert, schedules=schedules, schedule=schedule)


# --- The waiting room --------------------------------------------------------------------------


class QueueState:
    NOT_ANNOUNCED = "not_announced"
    BEFORE_OPENING = "before_opening"
    ADMITTING = "admitting"
    PAUSED = "paused"


@dataclass(frozen=True)
class QueueNow:
    state: str
    paused: bool  # the operator holds admission (whether or not the sale has opened)
    waiting: int
    admitted: int
    rate_per_minute: float
    eta_last_seconds: int | None  # when the last customer in line should be let in


def queue_state(concert: Concert, now: datetime) -> str:
    if concert.sale_opens_at is None:
        return QueueState.NOT_ANNOUNCED
    if concert.sale_opens_at > now:
        return QueueState.BEFORE_OPENING
    return QueueState.PAUSED if concert.queue_paused else QueueState.ADMITTING


def queue_now(*, concert: Concert, now: datetime) -> QueueNow | None:
    """The concert's queue, in one Redis round trip; None when Redis does not answer, so
    that the rest of the dashboard (all from the database) still shows."""
    try:
        stats = queue_stats(concert_ids=[concert.id], now=now)[concert.id]
    except RedisError:
        return None
    state = queue_state(concert, now)
    eta = None
    if state == QueueState.ADMITTING and stats.waiting:
        # The formula customers are told their own ETA with (docs/queue.md, "ETA"), for
        # the last place in line: one truth for the customer and the operator.
        eta = eta_seconds(
            position=stats.waiting,
            active=stats.admitted,
            turnover_per_minute=stats.turnover_per_minute,
            lag_seconds=stats.lag_seconds,
            concert=concert,
        )
    return QueueNow(
        state=state,
        paused=concert.queue_paused,
        waiting=stats.waiting,
        admitted=stats.admitted,
        rate_per_minute=stats.rate_per_minute,
        eta_last_seconds=eta,
    )


# --- Inventory -------------------------------------------------------------------------------


@dataclass
class SeatCounts:
    """Seats by what they are now; the four states add up to the total. `held`: customers'
    holds; `offered`: seats held for waitlist offers (returned seats handed to the line)."""

    total: int = 0
    available: int = 0
    held: int = 0
    offered: int = 0
    sold: int = 0

    def add(self, other: "SeatCounts") -> None:
        self.total += other.total
        self.available += other.available
        self.held += other.held
        self.offered += other.offered
        self.sold += other.sold


@dataclass
class Inventory:
    by_grade: dict[str, SeatCounts] = field(default_factory=dict)  # dearest grade first
    by_schedule: dict[int, SeatCounts] = field(default_factory=dict)
    total: SeatCounts = field(default_factory=SeatCounts)


def waited_grades(scope: Scope) -> dict[int, Container[str]]:
    """Per performance, the grades its waiting waitlist entries ask for (ANY_GRADE when
    one takes any). The rule of reservations.selectors.waitlist_waited_grades, for every
    performance of the scope in one query instead of one query each."""
    keys = (
        WaitlistEntry.objects.filter(scope.rows(), status=WaitlistStatus.WAITING)
        .values_list("schedule_id", "grade_key")
        .order_by()  # the model's ordering would join the DISTINCT and list every entry
        .distinct()
    )
    waited: dict[int, set[str]] = defaultdict(set)
    anything: set[int] = set()
    for schedule_id, grade_key in keys:
        if not grade_key:
            anything.add(schedule_id)
        else:
            waited[schedule_id].update(grade_key.strip("|").split("|"))
    return {**waited, **dict.fromkeys(anything, ANY_GRADE)}


def inventory(scope: Scope, *, now: datetime, waited: dict[int, Container[str]]) -> Inventory:
    """Seats by grade and by performance, from one GROUP BY (performance, grade) query: its
    size is performances x grades, never the number of seats."""
    held = Q(status=SeatStatus.HELD)
    live = Q(hold_expires_at__gt=now)
    hold = Q(reservation__source=ReservationSource.QUEUE)
    offer = Q(reservation__source=ReservationSource.WAITLIST)
    rows = (
        Seat.objects.filter(scope.rows())
        .values_list("schedule_id", "grade")
        .annotate(
            price=Max("price"),
            total=Count("id"),
            sold=Count("id", filter=Q(status=SeatStatus.SOLD)),
            held=Count("id", filter=held & live & hold),
            offered=Count("id", filter=held & live & offer),
            lapsed_held=Count("id", filter=held & ~live & hold),
            lapsed_offered=Count("id", filter=held & ~live & offer),
        )
        .order_by()
    )
    result = Inventory()
    price_of: dict[str, int] = {}
    by_grade: dict[str, SeatCounts] = defaultdict(SeatCounts)
    for schedule_id, grade, price, total, sold, held_n, offered_n, lapsed_h, lapsed_o in rows:
        if grade in waited.get(schedule_id, ()):
            # Kept for the waitlist until the sweep hands the seats on: not for sale.
            held_n, offered_n = held_n + lapsed_h, offered_n + lapsed_o
        counts = SeatCounts(
            total=total,
            available=total - sold - held_n - offered_n,
            held=held_n,
            offered=offered_n,
            sold=sold,
        )
        by_grade[grade].add(counts)
        result.by_schedule.setdefault(schedule_id, SeatCounts()).add(counts)
        result.total.add(counts)
        price_of[grade] = max(price, price_of.get(grade, 0))
    result.by_grade = {
        grade: by_grade[grade] for grade in sorted(by_grade, key=lambda g: (-price_of[g], g))
    }
    return result


# --- Money -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """Won paid and given back for the scope's reservations. `paid` includes the booking
    fees, `refunded` whatever went back to wallets (booking fees returned included)."""

    payments: int
    paid: int
    booking_fees: int
    refunded: int
    cancellations: int
    tickets_refunded: int  # the tickets' prices given back...
    cancellation_fees: int  # ...less the fees kept...
    booking_fees_refunded: int  # ...plus booking fees given back = refunded

    @property
    def tickets_paid(self) -> int:
        return self.paid - self.booking_fees

    @property
    def net(self) -> int:
        return self.paid - self.refunded

    @property
    def net_booking_fees(self) -> int:
        return self.booking_fees - self.booking_fees_refunded

    @property
    def net_tickets(self) -> int:
        return self.net - self.net_booking_fees


def money(scope: Scope) -> Money:
    """Two aggregates: the payments, and the cancellations that split what went back."""
    paid = Payment.objects.filter(scope.rows("reservation__")).aggregate(
        payments=Count("id"),
        paid=Coalesce(Sum("amount"), 0),
        booking_fees=Coalesce(Sum("booking_fee"), 0),
        refunded=Coalesce(Sum("refunded_amount"), 0),
    )
    back = Cancellation.objects.filter(scope.rows("reservation__")).aggregate(
        cancellations=Count("id"),
        tickets_refunded=Coalesce(Sum("refund"), 0),
        cancellation_fees=Coalesce(Sum("fee"), 0),
        booking_fees_refunded=Coalesce(Sum("booking_fee_refunded"), 0),
    )
    return Money(**{name: int(value) for name, value in (paid | back).items()})


@dataclass(frozen=True)
class SalesMinute:
    starts_at: datetime
    payments: int
    tickets: int


def sales_per_minute(
    scope: Scope, *, now: datetime, minutes: int = SALES_WINDOW_MINUTES
) -> list[SalesMinute]:
    """Payments and tickets sold in each of the last `minutes` minutes (the current one
    last), from one GROUP BY minute query. Minutes are cut in UTC, which the database
    does without time zone tables; Asia/Seoul's offset is whole hours, so they are the
    same minutes there."""
    current = now.astimezone(UTC).replace(second=0, microsecond=0)
    first = current - timedelta(minutes=minutes - 1)
    rows = (
        Payment.objects.filter(
            scope.rows("reservation__"),
            created_at__gte=first,
            created_at__lt=current + timedelta(minutes=1),
        )
        .annotate(minute=TruncMinute("created_at", tzinfo=UTC))
        .values_list("minute")
        .annotate(payments=Count("id", distinct=True), tickets=Count("reservation__items"))
        .order_by()
    )
    counts = {minute.astimezone(UTC): (payments, tickets) for minute, payments, tickets in rows}
    series = []
    for offset in range(minutes):
        starts_at = first + timedelta(minutes=offset)
        payments, tickets = counts.get(starts_at, (0, 0))
        series.append(SalesMinute(starts_at=starts_at, payments=payments, tickets=tickets))
    return series


# --- The seat map ----------------------------------------------------------------------------

SEAT_AVAILABLE, SEAT_HELD, SEAT_OFFERED, SEAT_SOLD = "a", "h", "w", "s"


@dataclass(frozen=True)
class SeatGrid:
    """A performance's seats in map order (section, row, number): `layout` says where each
    is, `states` its state now, one letter per seat (SEAT_*). The layout changes only when
    the seat map is regenerated or a seat regraded, which `key` tells a client holding an
    older layout; between those, the states are all a client needs (a few bytes per
    seat)."""

    key: str
    states: str
    layout: list[tuple[int, str, int, int, str]]  # id, section, row, number, grade

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(self.states)
        return {
            state: found[state] for state in (SEAT_AVAILABLE, SEAT_HELD, SEAT_OFFERED, SEAT_SOLD)
        }


def seat_grid(*, schedule_id: int, now: datetime, waited: Container[str]) -> SeatGrid:
    """Every seat of a performance in one query (its unique index gives the order)."""
    rows = (
        Seat.objects.filter(schedule_id=schedule_id)
        .order_by("section", "row", "number")
        .values_list(
            "id",
            "section",
            "row",
            "number",
            "grade",
            "status",
            "hold_expires_at",
            "reservation__source",
        )
    )
    layout, states = [], []
    for seat_id, section, row, number, grade, status, hold_expires_at, source in rows:
        layout.append((seat_id, section, row, number, grade))
        states.append(_seat_state(status, hold_expires_at, source, grade in waited, now))
    key = zlib.crc32(";".join(f"{s[0]}:{s[4]}" for s in layout).encode())
    return SeatGrid(key=f"{len(layout)}-{key:08x}", states="".join(states), layout=layout)


def _seat_state(status: str, expires: datetime | None, source: str | None, waited: bool, now):
    """What a seat is now, as concerts.selectors.seat_map_build tells customers: a lapsed
    hold is available unless the waitlist waits for its grade; an offer is told apart."""
    if status == SeatStatus.SOLD:
        return SEAT_SOLD
    if status != SeatStatus.HELD or (expires <= now and not waited):
        return SEAT_AVAILABLE
    return SEAT_OFFERED if source == ReservationSource.WAITLIST else SEAT_HELD


# --- Customers -------------------------------------------------------------------------------


def customer_search(*, query: str, limit: int = 50) -> list[User]:
    """Customers whose email or name contains `query` (or whose id it is), the newest
    first. Contains, not starts with: operators are read a name over the phone."""
    query = query.strip()
    if not query:
        return []
    matches = Q(email__icontains=query) | Q(name__icontains=query)
    if query.isascii() and query.isdigit() and len(query) < 19:  # a possible id, no overflow
        matches |= Q(id=int(query))
    return list(User.objects.filter(matches).order_by("-id")[:limit])


@dataclass(frozen=True)
class Listed:
    """The newest rows of a customer's list, and whether there are more (`rows` holds at
    most the limit; `more`: the page links to the full admin list)."""

    rows: list
    more: bool


def _newest(queryset, limit: int) -> Listed:
    rows = list(queryset[: limit + 1])
    return Listed(rows=rows[:limit], more=len(rows) > limit)


@dataclass(frozen=True)
class CustomerRecords:
    token_prefix: str | None
    token_created: datetime | None
    admissions: Listed
    reservations: Listed
    payments: Listed
    cancellations: Listed
    waitlist: Listed
    wallet: Wallet | None
    ledger: Listed


def customer_records(*, user: User, limit: int = 100) -> CustomerRecords:
    """Everything an operator needs to answer a customer, the newest first, `limit` rows
    of each, in a fixed number of queries. The API token is read as its first characters
    only (SUBSTR in the database): the whole key never leaves the database."""
    token = (
        Token.objects.filter(user_id=user.id)
        .annotate(prefix=Substr("key", 1, TOKEN_PREFIX_LENGTH))
        .values_list("prefix", "created")
        .first()
    )
    wallet = Wallet.objects.filter(user_id=user.id).first()
    ledger = LedgerEntry.objects.none()
    if wallet is not None:
        ledger = LedgerEntry.objects.filter(wallet_id=wallet.id)
    return CustomerRecords(
        token_prefix=token[0] if token else None,
        token_created=token[1] if token else None,
        admissions=_newest(
            # Admissions have no index by customer, only (concert, customer, entry): naming
            # every concert lets the database seek that index once per concert instead of
            # reading every admission ever made.
            QueueAdmission.objects.filter(
                concert_id__in=list(Concert.objects.values_list("id", flat=True)),
                user_id=user.id,
            )
            .select_related("concert")
            .order_by("-admitted_at", "-id"),
            limit,
        ),
        reservations=_newest(
            Reservation.objects.filter(user_id=user.id)
            .select_related("schedule__concert")
            .prefetch_related("items__seat")
            .order_by("-id"),
            limit,
        ),
        payments=_newest(Payment.objects.filter(user_id=user.id).order_by("-id"), limit),
        cancellations=_newest(
            Cancellation.objects.filter(reservation__user_id=user.id)
            .select_related("created_by")
            .order_by("-id"),
            limit,
        ),
        waitlist=_newest(
            WaitlistEntry.objects.filter(user_id=user.id)
            .select_related("schedule__concert", "offer")
            .order_by("-joined_at", "-id"),
            limit,
        ),
        wallet=wallet,
        ledger=_newest(ledger.order_by("-id"), limit),
    )


def seat_label(section: str, row: int, number: int) -> str:
    """How a seat is written on tickets and in exports: "A-1-3"."""
    return f"{section}-{row}-{number}"


def reservation_seat_labels(reservation: Reservation) -> list[tuple[str, bool]]:
    """A reservation's seats as labels, each with whether it was cancelled; from the
    prefetched items."""
    items: list[ReservationSeat] = list(reservation.items.all())
    return [
        (
            seat_label(item.seat.section, item.seat.row, item.seat.number),
            item.cancelled_at is not None,
        )
        for item in items
    ]
