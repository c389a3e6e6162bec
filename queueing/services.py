"""Writes of the waiting room. All live queue state is in Redis, each write one atomic script;
the database keeps what must survive Redis losing it: admissions (QueueAdmission).

When Redis comes back empty (or a failover lost its last writes), nobody is asked to start
over (docs/queue.md, "When Redis loses the line"):
- the first tick of a concert finds the Redis state not set up (`new`), puts back the
  admitted sessions the database knows, and lets nobody new in for RESTORE_GRACE, so that
  every waiting customer polls once and is put back before anyone behind them is admitted;
- a customer whose entry Redis does not know is put back from their signed token: at their
  original order key while waiting, or admitted until their recorded end.
"""

import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.exceptions
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from concerts.models import Concert
from concerts.selectors import concert_get_cached
from events.services import event_record

from . import scripts
from .errors import QueueClosed, QueueTokenInvalid, TokenProblem
from .models import EndReason, QueueAdmission, QueueState
from .redis_queue import queue_pipeline, run_script, to_ms
from .selectors import (
    EntryUnknown,
    QueueStatus,
    queue_status,
    session_prior_ms,
    settings_args,
    status_from_reply,
)
from .tokens import QueueToken, new_nonce, token_issue

logger = logging.getLogger(__name__)

# After Redis lost a concert's line, nobody new is let in for this long: time enough for the
# customers near the door (told to poll every second or two) to poll once and be put back in
# order; one told to poll in I seconds is at least 4 I seconds from the door (docs/queue.md).
RESTORE_GRACE = timedelta(seconds=10)
# Slots of paying customers that Redis could not free at once, freed per tick.
PENDING_RELEASES_PER_TICK = 500


@dataclass(frozen=True)
class QueueEntry:
    token: str
    created: bool
    status: QueueStatus


def queue_enter(
    *,
    concert_id: int,
    user_id: int,
    now: datetime | None = None,
    previous: QueueToken | None = None,
) -> QueueEntry:
    """Put a customer in a concert's queue, or give back their live entry (idempotent).

    Arrivals before sales open get a random place among all pre-opening arrivals, ahead of
    everyone who comes after opening: the same fair shuffle as reordering them at opening,
    and nobody sees a position before then, so re-entering early gains nothing. `previous`:
    the customer's token of this queue, if they sent it; an entry Redis lost is put back from
    it first, so entering again after an outage never costs a place.
    """
    now = now or timezone.now()
    concert = concert_get_cached(concert_id=concert_id)
    if concert.sale_opens_at is None:
        raise QueueClosed()
    if previous is not None and previous.concert_id == concert.id:
        try:
            queue_poll(concert=concert, user_id=user_id, token=previous, now=now, touch=False)
        except QueueTokenInvalid:
            pass  # a replaced token: the current entry is given back below
    pre_opening = now < concert.sale_opens_at
    nonce, order, created, *status = run_script(
        "ENTER",
        concert_id,
        [
            user_id,
            new_nonce(),
            to_ms(now),
            int(pre_opening),
            secrets.randbelow(scripts.POST_OPENING_BASE),
            *settings_args(concert),
        ],
    )
    nonce = nonce.decode()
    return QueueEntry(
        token=token_issue(
            concert_id=concert_id, user_id=user_id, nonce=nonce, order=int(float(order))
        ),
        created=bool(created),
        status=status_from_reply(status, concert=concert, now=now),
    )


def queue_poll(
    *,
    concert: Concert,
    user_id: int,
    token: QueueToken,
    now: datetime | None = None,
    touch: bool = True,
) -> QueueStatus:
    """Where the token's entry stands (a waiting customer's poll, `touch`, keeps the place).
    An entry Redis has lost is put back from the token first: a valid token is never refused
    because Redis forgot it."""
    now = now or timezone.now()
    if token.concert_id != concert.id:
        raise QueueTokenInvalid.because(TokenProblem.OTHER_CONCERT)
    try:
        return queue_status(
            concert=concert, user_id=user_id, nonce=token.nonce, now=now, touch=touch
        )
    except EntryUnknown:
        return _entry_restore(concert=concert, user_id=user_id, token=token, now=now)


def _entry_restore(
    *, concert: Concert, user_id: int, token: QueueToken, now: datetime
) -> QueueStatus:
    admission = (
        QueueAdmission.objects.filter(concert=concert, user_id=user_id, nonce=token.nonce)
        .values_list("admitted_until", "ended_at")
        .first()
    )
    if admission is not None:
        admitted_until, ended_at = admission
        if ended_at is not None:
            return QueueStatus(state=QueueState.DONE, sale_opens_at=concert.sale_opens_at)
        if admitted_until <= now:
            return QueueStatus(state=QueueState.EXPIRED, sale_opens_at=concert.sale_opens_at)
        until_ms = to_ms(admitted_until)
    elif token.order > 0:
        until_ms = ""
    else:  # issued to an admitted entry whose admission never reached the database
        return QueueStatus(state=QueueState.EXPIRED, sale_opens_at=concert.sale_opens_at)
    logger.info(
        "Queue of concert %s: entry of user %s put back from its token", concert.id, user_id
    )
    reply = run_script(
        "RESTORE",
        concert.id,
        [
            user_id,
            token.nonce,
            token.order,
            to_ms(now),
            until_ms,
            concert.queue_max_active,
            *settings_args(concert),
        ],
    )
    return status_from_reply(reply, concert=concert, now=now)


def queue_leave(*, token: QueueToken, user_id: int, now: datetime | None = None) -> None:
    """The customer leaves the queue; an admitted customer's slot frees at once."""
    now = now or timezone.now()
    reply = run_script("END", token.concert_id, [user_id, token.nonce, EndReason.LEFT, to_ms(now)])
    if reply[0] == b"invalid":
        raise QueueTokenInvalid.because(TokenProblem.REPLACED)
    # So that an entry Redis later loses is not put back: the customer left.
    QueueAdmission.objects.filter(
        concert_id=token.concert_id, user_id=user_id, nonce=token.nonce, ended_at=None
    ).update(ended_at=now)


def queue_admission_end(*, concert_id: int, user_id: int, now: datetime) -> int:
    """Record that the customer's admitted session is over (they paid), so that a line Redis
    later loses does not bring it back as admitted: restoring finished sessions would put
    more customers in than max_active. Call inside the payment's transaction: it commits
    with the payment or not at all. Returns how many admissions it ended (0 or 1)."""
    return QueueAdmission.objects.filter(
        concert_id=concert_id, user_id=user_id, ended_at=None, admitted_until__gt=now
    ).update(ended_at=now)


def queue_release(*, concert_id: int, user_id: int) -> None:
    """The customer is done (paid): their admitted slot goes to the next in line.

    Call after the payment commits. The payment stands whatever happens here, and this must
    not hold its answer up: if Redis cannot be reached (or the circuit to it is open), the
    release is recorded in the database and the next tick after Redis is back does it."""
    try:
        run_script("END", concert_id, [user_id, "", EndReason.DONE, to_ms(timezone.now())])
    except redis.exceptions.RedisError:
        now = timezone.now()
        pending = QueueAdmission.objects.filter(
            concert_id=concert_id, user_id=user_id, admitted_until__gt=now
        ).update(ended_at=Coalesce(F("ended_at"), Value(now)), release_pending=True)
        logger.info(
            "Queue slot of user %s (concert %s): Redis unavailable, %s release(s) left for "
            "the tick",
            user_id,
            concert_id,
            pending,
        )


def queue_set_paused(*, concert_ids: Sequence[int], paused: bool) -> int:
    """Pause or resume admission. Admitted customers keep their sessions; the next tick
    reads the flag. Returns how many concerts changed; each change is a sale.paused or
    sale.resumed event."""
    now = timezone.now()
    with transaction.atomic():
        changing = list(
            Concert.objects.select_for_update()
            .filter(id__in=concert_ids, queue_paused=not paused)
            .values_list("id", flat=True)
        )
        Concert.objects.filter(id__in=changing).update(queue_paused=paused, updated_at=now)
        for concert_id in changing:
            event_record(
                type="sale.paused" if paused else "sale.resumed",
                aggregate=("concert", concert_id),
                payload={"concert_id": concert_id, "at": timezone.localtime(now).isoformat()},
            )
    return len(changing)


def _sale_opened(concert: Concert, now: datetime) -> None:
    """The first tick at or after the opening tells it, once (a conditional UPDATE decides
    which of several workers does)."""
    with transaction.atomic():
        if Concert.objects.filter(id=concert.id, sale_opened_at=None).update(sale_opened_at=now):
            event_record(
                type="sale.opened",
                aggregate=("concert", concert.id),
                payload={
                    "concert_id": concert.id,
                    "title": concert.title,
                    "sale_opens_at": timezone.localtime(concert.sale_opens_at).isoformat(),
                },
            )


@dataclass(frozen=True)
class TickResult:
    admitted: int
    active: int
    waiting: int
    rate_per_second: float
    unclaimed: int = 0  # admitted sessions that ended unclaimed at this tick


def queue_admit_tick(*, concert: Concert, now: datetime | None = None) -> TickResult:
    """One admission step for a concert: expire finished sessions, drop abandoned waiters,
    let the next customers in within the rate and capacity, and record whom it let in. Safe
    to run concurrently."""
    now = now or timezone.now()
    reply = _tick(concert, now)
    if reply[0] == b"new":
        _queue_go_live(concert=concert, now=now)
        reply = _tick(concert, now)
    admitted, active, waiting, rate, unclaimed_count, *rest = reply
    unclaimed, let_in = rest[:unclaimed_count], rest[unclaimed_count:]
    if unclaimed:
        # So that a line Redis later loses does not bring these sessions back.
        QueueAdmission.objects.filter(
            concert=concert, user_id__in=[int(user) for user in unclaimed], ended_at=None
        ).update(ended_at=now)
    if let_in:
        until = now + timedelta(minutes=concert.queue_admitted_minutes)
        admissions = []
        for user_id, entry in zip(let_in[::2], let_in[1::2], strict=True):
            nonce, _, order = entry.decode().partition(":")
            admissions.append(
                QueueAdmission(
                    concert=concert,
                    user_id=int(user_id),
                    nonce=nonce,
                    order=int(order or 0),
                    admitted_at=now,
                    admitted_until=until,
                )
            )
        QueueAdmission.objects.bulk_create(admissions, ignore_conflicts=True)
    return TickResult(
        admitted=admitted,
        active=active,
        waiting=waiting,
        rate_per_second=float(rate),
        unclaimed=len(unclaimed),
    )


def _tick(concert: Concert, now: datetime) -> list:
    admitting = (
        concert.sale_opens_at is not None
        and concert.sale_opens_at <= now
        and not concert.queue_paused
    )
    abandon_after_ms = concert.queue_abandon_after_seconds * 1000
    opened_ms = to_ms(concert.sale_opens_at) if concert.sale_opens_at else math.inf
    if to_ms(now) - abandon_after_ms <= opened_ms:
        # Everyone's abandonment clock starts at opening: nobody has to poll before it.
        abandon_after_ms = -1
    return run_script(
        "TICK",
        concert.id,
        [
            to_ms(now),
            int(admitting),
            concert.queue_max_active,
            concert.queue_admit_per_minute,
            concert.queue_admitted_minutes * 60_000,
            abandon_after_ms,
            concert.queue_claim_seconds * 1000,
            session_prior_ms(concert),
        ],
    )


def _queue_go_live(*, concert: Concert, now: datetime) -> None:
    """Set up this Redis for the concert: the first tick ever, or the first after Redis lost
    the line. Admitted sessions still running go back in before anyone new is let in; if the
    line had run before, nobody new is let in for RESTORE_GRACE, while waiting customers
    poll and are put back in their order."""
    recorded = QueueAdmission.objects.filter(concert=concert)
    # The most recently admitted first: should the database know more running sessions than
    # max_active (it should not), those are the ones most likely still shopping.
    live = list(
        recorded.filter(admitted_until__gt=now, ended_at=None)
        .order_by("-admitted_at", "-id")
        .values_list("user_id", "nonce", "order", "admitted_until")
    )
    pipe = queue_pipeline()  # up to max_active sessions: one trip
    for user_id, nonce, order, admitted_until in live:
        run_script(
            "RESTORE",
            concert.id,
            [
                user_id,
                nonce,
                order,
                to_ms(now),
                to_ms(admitted_until),
                concert.queue_max_active,
                *settings_args(concert),
            ],
            client=pipe,
        )
    pipe.execute()
    ran_before = bool(live) or recorded.exists()
    resume_at = to_ms(now + RESTORE_GRACE) if ran_before else 0
    run_script("GO_LIVE", concert.id, [to_ms(now), resume_at])
    if ran_before:
        logger.warning(
            "Queue of concert %s: Redis had lost it; %s admitted session(s) put back, "
            "admission resumes in %s s",
            concert.id,
            len(live),
            int(RESTORE_GRACE.total_seconds()),
        )


def queue_release_pending(*, limit: int = PENDING_RELEASES_PER_TICK) -> int:
    """Free the slots of paying customers that Redis could not free at the time."""
    pending = list(
        QueueAdmission.objects.filter(release_pending=True).values_list(
            "id", "concert_id", "user_id"
        )[:limit]
    )
    for admission_id, concert_id, user_id in pending:
        run_script("END", concert_id, [user_id, "", EndReason.DONE, to_ms(timezone.now())])
        QueueAdmission.objects.filter(id=admission_id).update(release_pending=False)
    return len(pending)


def queue_admit_all(*, now: datetime | None = None) -> int:
    """A tick for every concert on sale now. Returns how many customers were let in."""
    now = now or timezone.now()
    queue_release_pending()
    concerts = Concert.objects.filter(
        is_published=True, sale_opens_at__lte=now, schedules__ends_at__gte=now
    ).distinct()
    admitted = 0
    for concert in concerts:
        if concert.sale_opened_at is None:
            _sale_opened(concert, now)
        admitted += queue_admit_tick(concert=concert, now=now).admitted
    return admitted


def queue_admissions_delete_old(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Housekeeping: admissions are needed only while their session could still run."""
    deleted, _ = QueueAdmission.objects.filter(
        admitted_until__lt=timezone.now() - older_than
    ).delete()
    return deleted
