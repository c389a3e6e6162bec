from collections.abc import Callable, Container
from datetime import datetime

from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import NotFound
from config.localcache import LocalCache

from .models import Concert, Schedule, Seat, SeatStatus


def seat_free_q(now: datetime, prefix: str = "") -> Q:
    """Seats free to hold at `now`: available, or held by a hold that has expired.

    Lazy expiry: an expired hold is free everywhere at once, whether or not the sweep has
    tidied it up yet. `prefix` reaches the seat through a relation (e.g. "seats__").
    """
    return Q(**{f"{prefix}status": SeatStatus.AVAILABLE}) | Q(
        **{f"{prefix}status": SeatStatus.HELD, f"{prefix}hold_expires_at__lte": now}
    )


def seat_effective_status(status: str, hold_expires_at: datetime | None, now: datetime) -> str:
    if status == SeatStatus.HELD and hold_expires_at is not None and hold_expires_at <= now:
        return SeatStatus.AVAILABLE
    return status


def concert_list() -> QuerySet[Concert]:
    """Published concerts, the next performance first; concerts with no dates yet last."""
    return (
        Concert.objects.filter(is_published=True)
        .annotate(
            first_performance_at=Min("schedules__starts_at"),
            last_performance_at=Max("schedules__starts_at"),
            schedule_count=Count("schedules"),
        )
        .order_by(F("first_performance_at").asc(nulls_last=True), "id")
    )


def concert_get(*, concert_id: int) -> Concert:
    concert = concert_list().filter(id=concert_id).first()
    if concert is None:
        raise NotFound(_("Concert not found."))
    return concert


def schedule_list_with_seat_counts(*, concert_id: int) -> QuerySet[Schedule]:
    """The dates of a published concert, each with total/available seats and price range."""
    if not Concert.objects.filter(id=concert_id, is_published=True).exists():
        raise NotFound(_("Concert not found."))
    now = timezone.now()
    return (
        Schedule.objects.filter(concert_id=concert_id)
        .annotate(
            total_seats=Count("seats"),
            available_seats=Count("seats", filter=seat_free_q(now, prefix="seats__")),
            min_price=Min("seats__price"),
            max_price=Max("seats__price"),
        )
        .order_by("starts_at", "id")
    )


# Concerts and schedules (each with its concert: start, hold_minutes, queue settings,
# publication), reused by each web process for LOCAL_CACHE_SECONDS: every queue poll, seat-map
# read, hold and payment needs them, and they change rarely, so an operator's change reaches
# every process within that time. Seats and money are never cached here. The one per-process
# cache of catalog rows; what it returns is shared, never to be modified.
_catalog_rows = LocalCache()


def concert_get_cached(*, concert_id: int, published_only: bool = True) -> Concert:
    def load() -> Concert:
        concert = Concert.objects.filter(id=concert_id).first()
        if concert is None:
            raise NotFound(_("Concert not found."))
        return concert

    concert = _catalog_rows.get(("concert", concert_id), load)
    if published_only and not concert.is_published:
        raise NotFound(_("Concert not found."))
    return concert


def schedule_get_cached(*, schedule_id: int, published_only: bool = True) -> Schedule:
    """A schedule with its concert. `published_only`: of a published concert, as customers
    see it (a payment of a hold made before the concert was hidden asks for any)."""

    def load() -> Schedule:
        schedule = Schedule.objects.select_related("concert").filter(id=schedule_id).first()
        if schedule is None:
            raise NotFound(_("Schedule not found."))
        return schedule

    schedule = _catalog_rows.get(("schedule", schedule_id), load)
    if published_only and not schedule.concert.is_published:
        raise NotFound(_("Schedule not found."))
    return schedule


def seat_map_build(
    *,
    schedule_id: int,
    now: datetime | None = None,
    held_back: Callable[[], Container[str]] | None = None,
) -> tuple[list[dict], datetime | None]:
    """All seats of a schedule as plain dicts, each with its status as of `now`, and until
    when that stays true without a write: when the first of its holds runs out (lazy
    expiry); None when nothing is held.

    `held_back()`: the grades whose lapsed holds stay held until the sweep hands their seats
    on (the waitlist waits for them); asked only when the map has a lapsed hold.

    Built from values_list() rather than model instances and serializers: a seat map has up
    to thousands of seats and is read by every admitted buyer.
    """
    now = now or timezone.now()
    rows = Seat.objects.filter(schedule_id=schedule_id).values_list(
        "id", "section", "row", "number", "grade", "price", "status", "hold_expires_at"
    )
    seats, first_expiry, kept = [], None, None
    for seat_id, section, row, number, grade, price, status, hold_expires_at in rows:
        if status == SeatStatus.HELD and hold_expires_at <= now:
            if kept is None:
                kept = held_back() if held_back is not None else ()
            if grade not in kept:
                status = SeatStatus.AVAILABLE
        elif status == SeatStatus.HELD and (first_expiry is None or hold_expires_at < first_expiry):
            first_expiry = hold_expires_at  # (a lapsed hold kept back changes with a write)
        seats.append(
            {
                "id": seat_id,
                "section": section,
                "row": row,
                "number": number,
                "grade": grade,
                "price": price,
                "status": status,
            }
        )
    return seats, first_expiry
