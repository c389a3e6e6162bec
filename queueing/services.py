"""Writes of the waiting room. All queue state is in Redis; each write is one atomic script."""

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from concerts.models import Concert
from concerts.selectors import concert_get_cached

from . import scripts
from .errors import QueueClosed, QueueTokenInvalid
from .models import EndReason
from .redis_queue import run_script, to_ms
from .selectors import QueueStatus, status_from_reply
from .tokens import QueueToken, new_nonce, token_issue


@dataclass(frozen=True)
class QueueEntry:
    token: str
    created: bool
    status: QueueStatus


def queue_enter(*, concert_id: int, user_id: int, now: datetime | None = None) -> QueueEntry:
    """Put a customer in a concert's queue, or give back their live entry (idempotent).

    Arrivals before sales open get a random place among all pre-opening arrivals, ahead of
    everyone who comes after opening: the same fair shuffle as reordering them at opening,
    and nobody sees a position before then, so re-entering early gains nothing.
    """
    now = now or timezone.now()
    concert = concert_get_cached(concert_id=concert_id)
    if concert.sale_opens_at is None:
        raise QueueClosed()
    pre_opening = now < concert.sale_opens_at
    _state, nonce, created, *status = run_script(
        "ENTER",
        concert_id,
        [
            user_id,
            new_nonce(),
            to_ms(now),
            int(pre_opening),
            secrets.randbelow(scripts.POST_OPENING_BASE),
        ],
    )
    nonce = nonce.decode()
    return QueueEntry(
        token=token_issue(concert_id=concert_id, user_id=user_id, nonce=nonce),
        created=bool(created),
        status=status_from_reply(status, concert=concert, now=now),
    )


def queue_leave(*, token: QueueToken, user_id: int) -> None:
    """The customer leaves the queue; an admitted customer's slot frees at once."""
    reply = run_script("END", token.concert_id, [user_id, token.nonce, EndReason.LEFT])
    if reply[0] == b"invalid":
        raise QueueTokenInvalid()


def queue_release(*, concert_id: int, user_id: int) -> None:
    """The customer is done (paid): their admitted slot goes to the next in line.

    Call after the payment commits (transaction.on_commit)."""
    run_script("END", concert_id, [user_id, "", EndReason.DONE])


def queue_set_paused(*, concert_ids: Sequence[int], paused: bool) -> int:
    """Pause or resume admission. Admitted customers keep their sessions; the next tick
    reads the flag. Returns how many concerts changed."""
    return Concert.objects.filter(id__in=concert_ids).update(
        queue_paused=paused, updated_at=timezone.now()
    )


@dataclass(frozen=True)
class TickResult:
    admitted: int
    active: int
    waiting: int
    rate_per_second: float


def queue_admit_tick(*, concert: Concert, now: datetime | None = None) -> TickResult:
    """One admission step for a concert: expire finished sessions, drop abandoned waiters,
    let the next customers in within the rate and capacity. Safe to run concurrently."""
    now = now or timezone.now()
    admitting = (
        concert.sale_opens_at is not None
        and concert.sale_opens_at <= now
        and not concert.queue_paused
    )
    abandon_cutoff = to_ms(now) - concert.queue_abandon_after_seconds * 1000
    opened_ms = to_ms(concert.sale_opens_at) if concert.sale_opens_at else math.inf
    if abandon_cutoff <= opened_ms:
        # Everyone's abandonment clock starts at opening: nobody has to poll before it.
        abandon_cutoff = -1
    admitted, active, waiting, rate = run_script(
        "TICK",
        concert.id,
        [
            to_ms(now),
            int(admitting),
            concert.queue_max_active,
            concert.queue_admit_per_minute,
            concert.queue_admitted_minutes * 60_000,
            abandon_cutoff,
        ],
    )
    return TickResult(
        admitted=admitted, active=active, waiting=waiting, rate_per_second=float(rate)
    )


def queue_admit_all(*, now: datetime | None = None) -> int:
    """A tick for every concert on sale now. Returns how many customers were let in."""
    now = now or timezone.now()
    concerts = Concert.objects.filter(
        is_published=True, sale_opens_at__lte=now, schedules__ends_at__gte=now
    ).distinct()
    return sum(queue_admit_tick(concert=concert, now=now).admitted for concert in concerts)
