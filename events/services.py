"""Recording facts, and relaying them to the channels.

`event_record` is the one helper services call, inside their own transaction, right where
the fact happens: the row commits with the change or not at all. No signals: a reader of a
service sees every event it produces.

The relay (`events_dispatch`) claims undispatched events oldest first with SKIP LOCKED, so
several workers share the work and a worker killed mid-batch leaves its rows to the next
(its transaction rolls back). For each event it calls every channel of settings.EVENT_CHANNELS
(`fan_out(event)`: create the channel's own delivery rows, idempotently), then marks the event
dispatched, all in one transaction: an event is dispatched once, with all its deliveries, or
not at all. The channels deliver from their own rows, in order per aggregate.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import Event

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 100
KEEP_DISPATCHED = timedelta(days=30)

RELAY_TASK = "events.tasks.dispatch_events"


def event_record(
    *,
    type: str,
    aggregate: tuple[str, object],
    payload: dict,
    occurred_at: datetime | None = None,
    version: int = 1,
) -> Event:
    """Record a fact in the caller's transaction (refused outside one: an event must commit
    with its fact). After the commit a relay is asked to dispatch it at once; the beat's
    pass picks it up should that request be lost."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_record() belongs inside the transaction of its fact.")
    aggregate_type, aggregate_id = aggregate
    event = Event.objects.create(
        type=type,
        version=version,
        occurred_at=occurred_at or timezone.now(),
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
    )
    _request_dispatch_on_commit()
    return event


def _request_dispatch_on_commit() -> None:
    transaction.on_commit(lambda: task_request_soon(RELAY_TASK))


# A task asked for within this many seconds of the last request is not asked again: during a
# sale every payment commits an event, and one relay run takes them all in batches, where a
# run per payment would spend the workers' CPU on claims that find one event each. What a
# run misses, the next request or the beat's pass (every few seconds) takes.
REQUEST_WINDOW_SECONDS = 1


_last_request: dict[str, float] = {}


def task_request_soon(task_path: str) -> None:
    """Ask a worker to run this task (no arguments) soon, at most once a REQUEST_WINDOW:
    the relay and the channels' delivery runs, after the commit that gave them work. A
    request that cannot be made is left to the beat.

    Each process first checks its own clock (no round trip while it asked a moment ago),
    then the shared one in Redis (so that many processes together still ask about once)."""
    now = time.monotonic()
    if now - _last_request.get(task_path, -REQUEST_WINDOW_SECONDS) < REQUEST_WINDOW_SECONDS:
        return
    _last_request[task_path] = now
    try:
        if shared_cache.add(f"task-requested:{task_path}", 1, timeout=REQUEST_WINDOW_SECONDS):
            import_string(task_path).delay()
    except Exception:  # Redis or the broker is down: the beat's pass does it
        logger.warning(
            "Could not ask for %s; the beat's pass will run it", task_path, exc_info=True
        )


@cache
def _channels() -> list[Callable[[Event], object]]:
    return [import_string(path) for path in settings.EVENT_CHANNELS]


def events_dispatch(*, batch: int = DISPATCH_BATCH) -> int:
    """Hand undispatched events to every channel, oldest first; returns how many. Loops
    until none is left (or every remaining one is claimed by another worker)."""
    dispatched = 0
    while True:
        with transaction.atomic():
            events = list(
                Event.objects.select_for_update(skip_locked=True)
                .filter(dispatched_at=None)
                .order_by("id")[:batch]
            )
            if not events:
                return dispatched
            for event in events:
                for fan_out in _channels():
                    fan_out(event)
            Event.objects.filter(id__in=[event.id for event in events]).update(
                dispatched_at=timezone.now()
            )
            dispatched += len(events)


def events_prune(*, older_than: timedelta = KEEP_DISPATCHED) -> int:
    """Delete dispatched events older than the retention period (their deliveries go with
    them, by cascade, once delivered or failed). Returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _counts = Event.objects.filter(dispatched_at__lt=cutoff).delete()
    return deleted
