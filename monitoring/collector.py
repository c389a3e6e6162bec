"""The sale's numbers, read from the database and Redis at scrape time.

They are facts that live there (a seat is sold or it is not), so one aggregate read per scrape
is right for every web process and machine at once, survives restarts, and costs the
customers' requests nothing; counters kept in each process would count only what that
process saw. The per-process side (requests, 503s, Celery runs) is monitoring/metrics.py.

Cost per scrape: two queries for the concerts watched, one for holds, one for the outbox,
four per watched concert (the console's inventory and money reads), and one pipelined Redis
round trip for every queue. A part that cannot be read (Redis or the database down) is left
out and `concerts_metrics_read_failed{part}` says so; the scrape itself still answers.
"""

import logging
import time

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from redis.exceptions import RedisError

from console.selectors import Scope, inventory, money, waited_grades
from queueing.selectors import queue_stats

from .selectors import hold_counts, outbox_backlog, watched_concerts

logger = logging.getLogger(__name__)

SEAT_STATES = ("available", "held", "offered", "sold")


class SaleCollector:
    def collect(self):
        started = time.perf_counter()
        now = timezone.now()
        failed = GaugeMetricFamily(
            "concerts_metrics_read_failed",
            "1 when this scrape could not read a part of the sale's numbers (left out).",
            labels=["part"],
        )
        scopes = []
        try:
            scopes = watched_concerts(now=now)
            families = self.database_part(scopes, now)
        except DatabaseError as error:
            logger.warning("Metrics: the database did not answer: %r", error)
            failed.add_metric(["database"], 1)
        else:
            yield from families
            failed.add_metric(["database"], 0)
        try:
            families = self.queue_part(scopes, now)
        except RedisError as error:
            logger.warning("Metrics: the queue's Redis did not answer: %r", error)
            failed.add_metric(["queue"], 1)
        else:
            yield from families
            failed.add_metric(["queue"], 0)
        yield failed
        yield GaugeMetricFamily(
            "concerts_metrics_read_seconds",
            "Time this scrape took to read the sale's numbers.",
            value=time.perf_counter() - started,
        )

    def database_part(self, scopes: list[Scope], now) -> list:
        info = GaugeMetricFamily(
            "concerts_concert_info",
            "1 for each concert watched (sale announced, a performance not long over).",
            labels=["concert", "title"],
        )
        seats = GaugeMetricFamily(
            "concerts_seats",
            "Seats by state now, as the operator console counts them (lazy expiry: a lapsed "
            "hold is available unless the waitlist waits for its grade).",
            labels=["concert", "state"],
        )
        payments = CounterMetricFamily(
            "concerts_payments", "Payments made for the concert's seats.", labels=["concert"]
        )
        revenue = CounterMetricFamily(
            "concerts_revenue_won",
            "Won paid for the concert's seats, booking fees included (before refunds).",
            labels=["concert"],
        )
        refunded = CounterMetricFamily(
            "concerts_refunded_won",
            "Won given back to wallets: cancellations and operators' refunds.",
            labels=["concert"],
        )
        cancellations = CounterMetricFamily(
            "concerts_cancellations",
            "Cancellations and refunds (each moves money once).",
            labels=["concert"],
        )
        for scope in scopes:
            concert = str(scope.concert.id)
            info.add_metric([concert, scope.concert.title], 1)
            counts = inventory(scope, now=now, waited=waited_grades(scope)).total
            for state in SEAT_STATES:
                seats.add_metric([concert, state], getattr(counts, state))
            paid = money(scope)
            payments.add_metric([concert], paid.payments)
            revenue.add_metric([concert], paid.paid)
            refunded.add_metric([concert], paid.refunded)
            cancellations.add_metric([concert], paid.cancellations)

        holds = CounterMetricFamily(
            "concerts_holds",
            "Reservations made: source=queue a customer's hold, source=waitlist an offer "
            "to the waitlist.",
            labels=["concert", "source"],
        )
        expired = CounterMetricFamily(
            "concerts_holds_expired",
            "Reservations whose hold (or offer) ran out unpaid, swept or not yet.",
            labels=["concert", "source"],
        )
        schedule_concert = {s.id: scope.concert.id for scope in scopes for s in scope.schedules}
        for (concert_id, source), counts in sorted(
            hold_counts(schedule_concert=schedule_concert, now=now).items()
        ):
            holds.add_metric([str(concert_id), source], counts.made)
            expired.add_metric([str(concert_id), source], counts.expired)
        backlog = outbox_backlog(now=now)
        return [
            info,
            seats,
            payments,
            revenue,
            refunded,
            cancellations,
            holds,
            expired,
            GaugeMetricFamily(
                "concerts_outbox_undispatched",
                "Events recorded and not yet handed to webhooks and emails.",
                value=backlog.undispatched,
            ),
            GaugeMetricFamily(
                "concerts_outbox_oldest_age_seconds",
                "How long the oldest undispatched event has waited (0: none waits).",
                value=backlog.oldest_age_seconds,
            ),
        ]

    def queue_part(self, scopes: list[Scope], now) -> list:
        stats = queue_stats(concert_ids=[scope.concert.id for scope in scopes], now=now)
        waiting = GaugeMetricFamily(
            "concerts_queue_waiting", "Customers waiting in the queue.", labels=["concert"]
        )
        admitted = GaugeMetricFamily(
            "concerts_queue_admitted",
            "Customers admitted now (shopping), at most the concert's queue_max_active.",
            labels=["concert"],
        )
        rate = GaugeMetricFamily(
            "concerts_queue_admissions_per_minute",
            "Admissions over the last minute, as the queue measures them (its ETA uses it).",
            labels=["concert"],
        )
        for concert_id, numbers in stats.items():
            waiting.add_metric([str(concert_id)], numbers.waiting)
            admitted.add_metric([str(concert_id)], numbers.admitted)
            rate.add_metric([str(concert_id)], numbers.rate_per_minute)
        return [waiting, admitted, rate]
