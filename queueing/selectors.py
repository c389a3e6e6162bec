"""Reads of the waiting room."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from concerts.models import Concert

from . import scripts
from .errors import QueuePollTooEarly, QueueTokenInvalid, TokenProblem
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
    # When to ask again (the scripts' poll interval: docs/queue.md, "Polling").
    poll_after_seconds: int = scripts.ADMITTED_POLL_MS // 1000

    @property
    def ahead(self) -> int | None:
        return None if self.position is None else self.position - 1


# The longest a waiting customer is told to wait between polls, and how far inside the
# concert's abandon time that must stay (polling as told never counts as abandonment).
POLL_CAP_SECONDS = 60
ABANDON_MARGIN_SECONDS = 5


def poll_cap_seconds(concert: Concert) -> int:
    """At most POLL_CAP_SECONDS, and at most the abandon time less a third of it (at least
    ABANDON_MARGIN_SECONDS): 60 s for the default 300 s, 10 s for 15 s."""
    abandon = concert.queue_abandon_after_seconds
    return max(1, min(POLL_CAP_SECONDS, abandon - max(ABANDON_MARGIN_SECONDS, abandon // 3)))


def session_prior_ms(concert: Concert) -> int:
    """The ETA's prior for the length of an admitted session it has not seen end: the
    operator's usual shopping time (at most the admitted session), or a cautious share of the
    admitted session (docs/queue.md, "ETA")."""
    admitted_ms = concert.queue_admitted_minutes * 60_000
    if concert.queue_shopping_seconds:
        return min(admitted_ms, concert.queue_shopping_seconds * 1000)
    return int(scripts.SESSION_PRIOR_SHARE * admitted_ms)


def settings_args(concert: Concert) -> list:
    """The concert's queue settings as the entry scripts read them (scripts.settings_at)."""
    opens = concert.sale_opens_at
    return [
        concert.queue_admit_per_minute,
        concert.queue_max_active,
        concert.queue_admitted_minutes * 60_000,
        poll_cap_seconds(concert) * 1000,
        "" if opens is None else to_ms(opens),
        int(concert.queue_paused),
        int(settings.QUEUE_POLL_GATE),
        session_prior_ms(concert),
    ]


def eta_seconds(
    *, position: int, active: int, turnover_per_minute: float, lag_seconds: float, concert: Concert
) -> int | None:
    """The ETA of `position` as the entry scripts compute it (scripts.PRELUDE, eta_ms), for
    the operators' views, which read the line's numbers with STATS: the configured pace while
    slots are free, and once all are taken the turnover (slots freed a minute) after the
    lag of a young cohort, whichever is later."""
    if concert.queue_paused:
        return None
    pace = concert.queue_admit_per_minute / 60
    length = session_prior_ms(concert) / 1000
    if turnover_per_minute <= 0:  # no tick yet: the prior
        turnover_per_minute, lag_seconds = concert.queue_max_active / length * 60, length / 2
    freeing = turnover_per_minute / 60
    seconds = position / pace
    free = max(0, concert.queue_max_active - active)
    if freeing < pace and position > free:
        seconds = max(seconds, lag_seconds + (position - free - 0.5) / freeing)
    return max(1, math.ceil(seconds))


class EntryUnknown(Exception):
    """Redis has no entry of this customer at all: it lost the line (or never had it). The
    caller restores the entry from the token (services.queue_poll)."""


def queue_status(
    *, concert: Concert, user_id: int, nonce: str, now: datetime | None = None, touch: bool = True
) -> QueueStatus:
    """Where an entry stands, in one Redis call. A waiting customer's poll (`touch`) also
    keeps their place (whoever stops polling is dropped after abandon_after_seconds), and is
    refused (QueuePollTooEarly) well before the time it was told. Any call claims an
    admission not claimed yet.
    EntryUnknown when Redis has no entry of the customer (see services.queue_poll)."""
    now = now or timezone.now()
    mode = "poll" if touch else "look"
    reply = run_script(
        "STATUS", concert.id, [user_id, nonce, to_ms(now), mode, *settings_args(concert)]
    )
    return status_from_reply(reply, concert=concert, now=now)


def queue_poll_gate(*, concert_id: int, nonce: str, now: datetime | None = None) -> None:
    """QueuePollTooEarly if the entry `nonce` polls well before it was told to: one Redis
    read and no database query, so a client polling too fast costs next to nothing. Runs
    before the customer is authenticated; the nonce is the token's secret part."""
    now = now or timezone.now()
    wait_ms = int(run_script("POLL_GATE", concert_id, [nonce, to_ms(now)]))
    if wait_ms > 0:
        raise QueuePollTooEarly.wait(wait_ms)


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
    if kind == "early":
        raise QueuePollTooEarly.wait(int(reply[1]))
    if kind == "admitted":
        until = datetime.fromtimestamp(int(float(reply[1])) / 1000, tz=UTC)
        return QueueStatus(
            state=QueueState.ADMITTED,
            admitted_until=until,
            sale_opens_at=opens,
            poll_after_seconds=int(reply[2]) // 1000,
        )
    position, eta_ms, poll_ms = int(reply[1]), reply[2], int(reply[3])
    before_opening = opens is None or opens > now
    eta = None if before_opening or not eta_ms else max(1, math.ceil(float(eta_ms) / 1000))
    return QueueStatus(
        state=QueueState.PAUSED if concert.queue_paused else QueueState.WAITING,
        # Before opening the order is not final for anyone, so no position is shown.
        position=None if before_opening else position,
        eta_seconds=eta,
        sale_opens_at=opens,
        poll_after_seconds=poll_ms // 1000,
    )


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    admitted: int
    rate_per_minute: float
    # Slots freed a minute when every slot is taken (the ETA's turnover estimate), and the
    # lag of the sessions running now behind a steady line.
    turnover_per_minute: float = 0.0
    lag_seconds: float = 0.0
    # Admitted sessions that ended (paid, left, ran out, unclaimed) and their mean length: the
    # usual shopping time an operator can give the next sale (Concert.queue_shopping_seconds).
    sessions_ended: int = 0
    mean_session_seconds: float | None = None


def queue_stats(*, concert_ids: list[int], now: datetime | None = None) -> dict[int, QueueStats]:
    """Live numbers for the operators' queue panel, one pipelined round trip for all."""
    now = now or timezone.now()
    pipe = queue_pipeline()
    for concert_id in concert_ids:
        run_script("STATS", concert_id, [to_ms(now)], client=pipe)
    replies = pipe.execute()
    return {
        concert_id: QueueStats(
            waiting=int(waiting),
            admitted=int(admitted),
            rate_per_minute=float(rate) * 60,
            turnover_per_minute=float(turnover) * 60_000,
            lag_seconds=float(lag) / 1000,
            sessions_ended=int(ended),
            mean_session_seconds=float(ended_ms) / 1000 / int(ended) if int(ended) else None,
        )
        for concert_id, (waiting, admitted, rate, turnover, lag, ended, ended_ms) in zip(
            concert_ids, replies, strict=True
        )
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
