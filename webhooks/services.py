"""Delivering webhooks: claim what is due, POST it, record the answer.

A run (`webhook_deliveries_run`, the Celery task's body) keeps a small pool of threads busy
with POSTs. The database work stays on the run's own thread, in short transactions:
1. claim: lock due deliveries with SKIP LOCKED (other runs skip them), count the attempt and
   push `next_attempt_at` forward by a lease, commit. No row lock is held during the HTTP
   call; a worker that dies mid-call leaves a lease that runs out, and the next run sends
   the delivery again (at least once: receivers deduplicate by X-Event-Id).
2. POST (a thread of the pool; transport.post never raises).
3. record: 2xx is delivered; anything else is retried with exponential backoff and jitter
   until RETRY_WINDOW after the first attempt, then failed.

Order per aggregate per endpoint: a delivery is due only when no earlier event of its
aggregate still waits for its endpoint (pending, or not yet fanned out by the relay), so a
receiver sees a reservation's `held` before its `payment.confirmed` even when the first try
of `held` failed.

A slow or dead endpoint never holds up the others: each endpoint has at most
PER_ENDPOINT_IN_FLIGHT POSTs going per run, the timeout is short, and the sale never waits
for any of it (deliveries start after the relay's commit, in a worker).
"""

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from events.models import Event
from events.services import task_request_soon

from . import transport
from .models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, secret_generate

logger = logging.getLogger(__name__)

DELIVERY_TASK = "webhooks.tasks.deliver_webhooks"

BACKOFF_FIRST = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)
PER_ENDPOINT_IN_FLIGHT = 4
# A run stops claiming after this long (beat starts another); what it has in flight it ends.
RUN_SECONDS = 60.0


def retry_window() -> timedelta:
    return timedelta(hours=settings.WEBHOOK_RETRY_HOURS)


def lease() -> timedelta:
    """How long a claimed delivery is left to its worker: far longer than a POST may take
    (the timeout bounds the connection and each read), short enough that a dead worker's
    deliveries go out again within a minute or two."""
    return timedelta(seconds=max(60.0, 4 * settings.WEBHOOK_TIMEOUT_SECONDS))


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 10 s, 20 s, 40 s, ... up to an hour,
    each with "equal jitter" (between half and all of it), so the retries of many
    deliveries that failed together (an endpoint down) spread out instead of arriving at
    once when it comes back."""
    ceiling = min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return ceiling / 2 + ceiling / 2 * (rng or random).random()


# --- Endpoints -------------------------------------------------------------------------------


def webhook_endpoint_create(
    *,
    url: str,
    event_types: Iterable[str] = (),
    secret: str = "",
    description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint (the URL is checked: SSRF). A blank secret is generated."""
    endpoint = WebhookEndpoint(
        url=url,
        event_types=list(event_types),
        secret=secret or secret_generate(),
        description=description,
        active=active,
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


# --- Asking for a run ------------------------------------------------------------------------


def deliveries_request_on_commit() -> None:
    """Ask a worker for a run once the current transaction commits (once per transaction,
    however many deliveries it made). The beat's run delivers them should this be lost."""
    connection = transaction.get_connection()
    if any(entry[1] is _request_run for entry in connection.run_on_commit):
        return
    transaction.on_commit(_request_run)


def _request_run() -> None:
    task_request_soon(DELIVERY_TASK)


# --- Claiming --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A delivery taken by this run: everything its POST needs, read at the claim."""

    delivery_id: int
    endpoint_id: int
    attempts: int  # this attempt's number
    first_attempt_at: datetime
    url: str
    secret: str
    event_id: str
    body: bytes


def event_body(event: Event) -> bytes:
    """The JSON every endpoint receives (docs/webhooks.md)."""
    envelope = {
        "id": str(event.event_id),
        "type": event.type,
        "version": event.version,
        "occurred_at": timezone.localtime(event.occurred_at).isoformat(),
        "aggregate": {"type": event.aggregate_type, "id": event.aggregate_id},
        "data": event.payload,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def _due(now: datetime):
    earlier_pending = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        aggregate_type=OuterRef("aggregate_type"),
        aggregate_id=OuterRef("aggregate_id"),
        status=DeliveryStatus.PENDING,
        event_id__lt=OuterRef("event_id"),
    )
    # Several relay workers may commit the deliveries of one aggregate out of order; an
    # earlier event not yet fanned out holds the later ones back until it is.
    earlier_undispatched = Event.objects.filter(
        aggregate_type=OuterRef("aggregate_type"),
        aggregate_id=OuterRef("aggregate_id"),
        dispatched_at=None,
        id__lt=OuterRef("event_id"),
    )
    return (
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True
        )
        .exclude(Exists(earlier_pending))
        .exclude(Exists(earlier_undispatched))
    )


def deliveries_claim(*, now: datetime, limit: int, in_flight: Counter | None = None) -> list[Claim]:
    """Take up to `limit` due deliveries, oldest due first, at most PER_ENDPOINT_IN_FLIGHT
    per endpoint counting `in_flight` (endpoint id -> POSTs this run has going)."""
    taken = Counter(in_flight or {})
    saturated = [endpoint for endpoint, count in taken.items() if count >= PER_ENDPOINT_IN_FLIGHT]
    # Chosen without locks (the order check reads other rows), then locked with SKIP LOCKED
    # and checked again: rows another run took meanwhile are skipped or no longer due.
    candidates = (
        _due(now)
        .exclude(endpoint_id__in=saturated)
        .order_by("next_attempt_at", "id")
        .values_list("id", "endpoint_id")[: limit * PER_ENDPOINT_IN_FLIGHT]
    )
    chosen = []
    for delivery_id, endpoint_id in candidates:
        if taken[endpoint_id] < PER_ENDPOINT_IN_FLIGHT:
            taken[endpoint_id] += 1
            chosen.append(delivery_id)
            if len(chosen) == limit:
                break
    if not chosen:
        return []
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(id__in=chosen, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not ids:
            return []
        WebhookDelivery.objects.filter(id__in=ids).update(
            attempts=F("attempts") + 1,
            first_attempt_at=Coalesce("first_attempt_at", Value(now)),
            last_attempt_at=now,
            next_attempt_at=now + lease(),
        )
        rows = list(
            WebhookDelivery.objects.filter(id__in=ids)
            .select_related("endpoint", "event")
            .order_by("id")
        )
    return [
        Claim(
            delivery_id=row.id,
            endpoint_id=row.endpoint_id,
            attempts=row.attempts,
            first_attempt_at=row.first_attempt_at,
            url=row.endpoint.url,
            secret=row.endpoint.secret,
            event_id=str(row.event.event_id),
            body=event_body(row.event),
        )
        for row in rows
    ]


# --- Sending and recording -------------------------------------------------------------------


def delivery_send(claim: Claim) -> transport.Answer:
    """POST one claimed delivery, signed now. No database access: runs in a pool thread."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "concerts-webhooks/1",
        "X-Event-Id": claim.event_id,
        "X-Signature": transport.signature_header(
            secret=claim.secret, body=claim.body, timestamp=int(time.time())
        ),
    }
    return transport.post(
        url=claim.url,
        body=claim.body,
        headers=headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )


def delivery_record(*, claim: Claim, answer: transport.Answer, now: datetime) -> str:
    """Write down what came of an attempt; returns the delivery's status. A failure counts
    only while the row is still this claim's (same attempt number): a run whose lease ran out
    must not push back a newer attempt. A success always counts."""
    answered = {
        "last_status_code": answer.status_code,
        "last_response": answer.body,
        "last_error": answer.error[:300],
    }
    if answer.ok:
        WebhookDelivery.objects.filter(id=claim.delivery_id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.DELIVERED, delivered_at=now, **answered
        )
        return DeliveryStatus.DELIVERED
    give_up_at = claim.first_attempt_at + retry_window()
    if now >= give_up_at:
        status, next_attempt_at = DeliveryStatus.FAILED, now
    else:
        status = DeliveryStatus.PENDING
        next_attempt_at = min(now + backoff(claim.attempts), give_up_at)
    WebhookDelivery.objects.filter(
        id=claim.delivery_id, status=DeliveryStatus.PENDING, attempts=claim.attempts
    ).update(status=status, next_attempt_at=next_attempt_at, **answered)
    # Never the secret, the headers or the URL (which may carry a token): ids and the answer.
    logger.info(
        "Webhook delivery %s to endpoint %s, attempt %s: %s%s",
        claim.delivery_id,
        claim.endpoint_id,
        claim.attempts,
        answer.status_code or answer.error,
        " (given up)" if status == DeliveryStatus.FAILED else "",
    )
    return status


def webhook_deliveries_run(
    *,
    now: datetime | None = None,
    workers: int | None = None,
    max_seconds: float = RUN_SECONDS,
    send: Callable[[Claim], transport.Answer] = delivery_send,
) -> int:
    """Deliver what is due until nothing is (or `max_seconds` have passed); returns how many
    attempts were made. `now` fixes the clock of the claims and the backoff (tests)."""
    workers = workers or settings.WEBHOOK_WORKERS
    clock = (lambda: now) if now else timezone.now
    started = time.monotonic()
    attempts = 0
    in_flight: dict[Future, Claim] = {}
    per_endpoint: Counter = Counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
        while True:
            # Fill the free threads; claim again while claims find work (an endpoint that
            # reaches its share is left out of the next claim, so others are found).
            while len(in_flight) < workers and time.monotonic() - started < max_seconds:
                claims = deliveries_claim(
                    now=clock(), limit=workers - len(in_flight), in_flight=per_endpoint
                )
                if not claims:
                    break
                for claim in claims:
                    in_flight[pool.submit(send, claim)] = claim
                    per_endpoint[claim.endpoint_id] += 1
            if not in_flight:
                return attempts
            done, _pending = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                claim = in_flight.pop(future)
                per_endpoint[claim.endpoint_id] -= 1
                delivery_record(claim=claim, answer=future.result(), now=clock())
                attempts += 1


# --- Operators -------------------------------------------------------------------------------


def webhook_deliveries_redeliver(
    *, delivery_ids: Iterable[int], now: datetime | None = None
) -> int:
    """Send delivered or failed deliveries again, as new (attempts from zero, a fresh day of
    retries). Pending ones are on their way already. Returns how many."""
    with transaction.atomic():
        count = (
            WebhookDelivery.objects.filter(id__in=list(delivery_ids))
            .filter(Q(status=DeliveryStatus.DELIVERED) | Q(status=DeliveryStatus.FAILED))
            .update(
                status=DeliveryStatus.PENDING,
                attempts=0,
                first_attempt_at=None,
                delivered_at=None,
                next_attempt_at=now or timezone.now(),
            )
        )
        if count:
            deliveries_request_on_commit()
    return count
