"""The reads behind the sale's metrics (monitoring/collector.py), each one aggregate query.

Per concert, the seat and money numbers are the operator console's own reads
(console/selectors.py `inventory` and `money`): Grafana and the dashboard show one truth,
lazy expiry and seats kept for the waitlist counted the same way.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q

from concerts.models import Concert, Schedule
from console.selectors import Scope
from events.models import Event
from reservations.models import Reservation, ReservationStatus

# A concert is watched from the announcement of its sale until a day after its last
# performance ends (refunds of a cancelled show still move then); older ones drop out, so
# the number of series stays that of the concerts on sale.
WATCHED_AFTER_LAST_PERFORMANCE = timedelta(days=1)


def watched_concerts(*, now: datetime) -> list[Scope]:
    """Concerts with a sale date and a performance not long over, each with all its
    performances (past ones too: their sales stay in the totals). Two queries."""
    concerts = list(
        Concert.objects.filter(
            sale_opens_at__isnull=False,
            schedules__ends_at__gte=now - WATCHED_AFTER_LAST_PERFORMANCE,
        )
        .distinct()
        .order_by("id")
    )
    schedules = defaultdict(list)
    for schedule in Schedule.objects.filter(concert_id__in=[c.id for c in concerts]).order_by(
        "starts_at", "id"
    ):
        schedules[schedule.concert_id].append(schedule)
    return [Scope(concert=c, schedules=schedules[c.id]) for c in concerts]


@dataclass(frozen=True)
class HoldCounts:
    made: int
    expired: int  # by the sweep, or past their end and not yet swept (lazy expiry)


def hold_counts(
    *, schedule_concert: dict[int, int], now: datetime
) -> dict[tuple[int, str], HoldCounts]:
    """Reservations made and expired per (concert, source) since the sale began; source
    `queue` is a customer's hold, `waitlist` an offer. One GROUP BY over the schedules'
    reservations (by the schedule index), folded into concerts here."""
    lapsed = Q(status=ReservationStatus.EXPIRED) | Q(
        status=ReservationStatus.HELD, expires_at__lte=now
    )
    rows = (
        Reservation.objects.filter(schedule_id__in=list(schedule_concert))
        .values_list("schedule_id", "source")
        .annotate(made=Count("id"), expired=Count("id", filter=lapsed))
        .order_by()
    )
    made: dict[tuple[int, str], int] = defaultdict(int)
    expired: dict[tuple[int, str], int] = defaultdict(int)
    for schedule_id, source, made_n, expired_n in rows:
        key = (schedule_concert[schedule_id], source)
        made[key] += made_n
        expired[key] += expired_n
    return {key: HoldCounts(made=made[key], expired=expired[key]) for key in made}


@dataclass(frozen=True)
class OutboxBacklog:
    undispatched: int
    oldest_age_seconds: float  # 0 when nothing waits


def outbox_backlog(*, now: datetime) -> OutboxBacklog:
    """Events recorded and not yet handed to their channels (events/): how many, and how
    long the oldest has waited. One query on the undispatched index."""
    waiting = Event.objects.filter(dispatched_at__isnull=True).aggregate(
        count=Count("id"), oldest=Min("occurred_at")
    )
    oldest = waiting["oldest"]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxBacklog(undispatched=waiting["count"], oldest_age_seconds=age)
