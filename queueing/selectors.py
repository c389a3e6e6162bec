"""Reads of the waiting room."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from accounts.models import User
from concerts.models import Concert

from .errors import QueueTokenInvalid, TokenProblem
from .models import EndReason, QueueState
from .redis_queue import queue_pipeline, run_script, to_ms
from .scripts import POST_OPENING_BASE


@dataclass(frozen=True)
class QueueStatus:
    state: QueueState
    position: int | None = None  # 1 = next in line; None before sales open
    eta_seconds: int | None = None
    admitted_until: datetime | None = None
    sale_opens_at: datetime | None = None
    # Once ended: why, as the queue scripts recorded it (an EndReason, or "expired" for an
    # admitted session that ran out).
    ended_because: str | None = None

    @property
    def ahead(self) -> int | None:
        return None if self.position is None else self.position - 1


def _eta_seconds(
    position: int, measured_rate: float | None, active: int, concert: Concert
) -> int | None:
    """Seconds until admission (docs/queue.md, "ETA"). While slots are free the line moves
    at the configured pace, so the first `free` places are that far from the door; places
    behind them wait for slots to free up, at the pace measured over the last minute. No
    estimate while paused, or while the line has not moved for a minute (every slot taken,
    nobody leaving): any number would be a guess."""
    if concert.queue_paused:
        return None
    configured = concert.queue_admit_per_minute / 60
    free = max(0, concert.queue_max_active - active)
    if position <= free:
        return max(1, math.ceil(position / configured))
    rate = configured if measured_rate is None else measured_rate
    if rate <= 0:
        return None
    return math.ceil(free / configured) + math.ceil((position - free) / rate)


class EntryUnknown(Exception):
    """Redis has no entry of this customer at all: it lost the line (or never had it). The
    caller restores the entry from the token (services.queue_poll)."""


def queue_status(
    *, concert: Concert, user_id: int, nonce: str, now: datetime | None = None, touch: bool = True
) -> QueueStatus:
    """Where an entry stands, in one Redis call. A waiting customer's poll (`touch`) also
    keeps their place: whoever stops polling is dropped after abandon_after_seconds.
    EntryUnknown when Redis has no entry of the customer (see services.queue_poll)."""
    now = now or timezone.now()
    reply = run_script("STATUS", concert.id, [user_id, nonce, to_ms(now), int(touch)])
    return status_from_reply(reply, concert=concert, now=now)


def status_from_reply(reply: list, *, concert: Concert, now: datetime) -> QueueStatus:
    """A QueueStatus from the queue scripts' entry_status answer."""
    kind = reply[0].decode()
    if kind == "unknown":
        raise EntryUnknown()
    if kind == "invalid":  # the customer's current entry is a newer one
        raise QueueTokenInvalid.because(TokenProblem.REPLACED)
    opens = concert.sale_opens_at
    if kind == "ended":
        reason = reply[1].decode()
        state = EndReason(reason).public_state if reason in EndReason else QueueState.EXPIRED
        return QueueStatus(state=state, ended_because=reason, sale_opens_at=opens)
    if kind == "admitted":
        until = datetime.fromtimestamp(int(float(reply[1])) / 1000, tz=UTC)
        return QueueStatus(state=QueueState.ADMITTED, admitted_until=until, sale_opens_at=opens)
    position, rate = int(reply[1]), float(reply[2]) if reply[2] else None
    active = int(reply[3])
    before_opening = opens is None or opens > now
    return QueueStatus(
        state=QueueState.PAUSED if concert.queue_paused else QueueState.WAITING,
        # Before opening the order is not final for anyone, so no position is shown.
        position=None if before_opening else position,
        eta_seconds=None if before_opening else _eta_seconds(position, rate, active, concert),
        sale_opens_at=opens,
    )


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    admitted: int
    rate_per_minute: float


def queue_stats(*, concert_ids: list[int], now: datetime | None = None) -> dict[int, QueueStats]:
    """Live numbers for the operators' queue panel, one pipelined round trip for all."""
    now = now or timezone.now()
    pipe = queue_pipeline()
    for concert_id in concert_ids:
        run_script("STATS", concert_id, [to_ms(now)], client=pipe)
    replies = pipe.execute()
    return {
        concert_id: QueueStats(
            waiting=int(waiting), admitted=int(admitted), rate_per_minute=float(rate) * 60
        )
        for concert_id, (waiting, admitted, rate) in zip(concert_ids, replies, strict=True)
    }


@dataclass(frozen=True)
class QueuedCustomer:
    user_id: int
    email: str  # "" when the account is gone
    position: int | None = None  # waiting: 1 = next in line
    since: datetime | None = None  # waiting: arrival; None for arrivals before opening
    until: datetime | None = None  # admitted: when the session runs out


@dataclass(frozen=True)
class QueuePeek:
    waiting: int
    admitted: int
    first_waiting: list[QueuedCustomer]
    first_admitted: list[QueuedCustomer]


def queue_peek(*, concert_id: int, limit: int = 50, now: datetime | None = None) -> QueuePeek:
    """Who is in a concert's queue, for the operators' panel: the first `limit` waiting, in
    line order, with when they arrived, and the first `limit` admitted, with when their
    session runs out. One Redis script call and one query for the emails, however long the
    line. Before opening the order is the shuffle's, and arrival times are not kept."""
    now = now or timezone.now()
    waiting, admitted, line, shopping = run_script("PEEK", concert_id, [to_ms(now), limit])
    line = [(int(user), int(float(score))) for user, score in _pairs(line)]
    shopping = [(int(user), float(score)) for user, score in _pairs(shopping)]
    emails = dict(
        User.objects.filter(id__in={user for user, _ in line + shopping}).values_list("id", "email")
    )
    return QueuePeek(
        waiting=int(waiting),
        admitted=int(admitted),
        first_waiting=[
            QueuedCustomer(
                user_id=user,
                email=emails.get(user, ""),
                position=place,
                since=_arrival(order),
            )
            for place, (user, order) in enumerate(line, start=1)
        ],
        first_admitted=[
            QueuedCustomer(
                user_id=user,
                email=emails.get(user, ""),
                until=datetime.fromtimestamp(until / 1000, tz=UTC),
            )
            for user, until in shopping
        ],
    )


def _pairs(flat: list) -> list[tuple]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def _arrival(order: int) -> datetime | None:
    """An order key after opening is the arrival time in microseconds (scripts.py)."""
    if order < POST_OPENING_BASE:
        return None
    return datetime.fromtimestamp((order - POST_OPENING_BASE) / 1_000_000, tz=UTC)
