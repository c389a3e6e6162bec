"""Cancelling seats of a paid reservation: by the customer (the concert's policy), or by an
operator (the policy, or in full), one reservation at a time or a whole performance as a job.

Every cancellation is one transaction that locks the reservation's row first, so customer
cancellations and operator refunds of one reservation take turns: the second finds the seats
already cancelled. Each seat's money moves once (CancellationItem is one per reservation seat,
a OneToOne the database enforces), and the ledger lines of a cancellation sum to what moved.
Lock order as everywhere: reservation (with the customer's row) -> seats -> wallet.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from concerts.models import Schedule
from concerts.selectors import schedule_get_cached
from config.audit import operator_history_record
from config.db import retry_on_lock_conflict, service_atomic
from config.errors import NotFound, ValidationFailed
from config.money import format_won
from reservations import inventory
from reservations.errors import CancellationClosed, ReservationNotCancellable
from reservations.models import Reservation, ReservationSeat, ReservationStatus

from . import facts
from .errors import RefundNotPossible
from .fees import Quote, SeatToCancel, cutoff_instant, quote_by_policy, quote_in_full
from .models import (
    Cancellation,
    CancellationItem,
    CancellationKind,
    LedgerKind,
    Payment,
    PaymentStatus,
    RefundJob,
    RefundJobState,
)
from .services import wallet_post

logger = logging.getLogger(__name__)

REFUND_JOB_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class CancellationQuote:
    reservation: Reservation
    quote: Quote


def cancellation_quote(
    *,
    user: User,
    reservation_id: int,
    seat_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> CancellationQuote:
    """What cancelling these seats (all, without `seat_ids`) of the customer's paid
    reservation would give back now. A read: nothing is locked or written."""
    now = now or timezone.now()
    reservation = _paid_reservation(Reservation.objects, user=user, reservation_id=reservation_id)
    items = _items_to_cancel(reservation, seat_ids)
    return CancellationQuote(reservation=reservation, quote=_policy_quote(reservation, items, now))


@retry_on_lock_conflict()
def reservation_cancel_paid(
    *,
    user: User,
    reservation_id: int,
    seat_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> Cancellation:
    """The customer cancels seats (all, without `seat_ids`) of their paid reservation: the
    refund by the concert's policy goes to the wallet, the seats go back on sale, the
    reservation is cancelled once no seat is left. After the cut-off: CancellationClosed."""
    now = now or timezone.now()
    with service_atomic():
        reservation = _paid_reservation(
            Reservation.objects.select_for_update().select_related("user"),
            user=user,
            reservation_id=reservation_id,
        )
        items = _items_to_cancel(reservation, seat_ids)
        quote = _policy_quote(reservation, items, now)
        if quote.closed:
            schedule = schedule_get_cached(
                schedule_id=reservation.schedule_id, published_only=False
            )
            cutoff = cutoff_instant(schedule.concert.cancellation_policy, schedule.starts_at)
            raise CancellationClosed(details={"cutoff": timezone.localtime(cutoff).isoformat()})
        return _cancel(
            reservation,
            quote,
            kind=CancellationKind.CUSTOMER,
            by=user,
            reason="Cancelled by the customer.",
            now=now,
        )


@retry_on_lock_conflict()
def payment_refund(
    *,
    payment_id: int,
    operator: User,
    in_full: bool,
    reason: str,
    job: RefundJob | None = None,
    now: datetime | None = None,
) -> Cancellation:
    """An operator refunds every seat still paid of a reservation: by the concert's policy, or
    in full (no fee, booking fees back: the show is cancelled). Allowed after the customers'
    cut-off. The reservation becomes refunded."""
    now = now or timezone.now()
    if not reason.strip():
        raise ValidationFailed.on("reason", _("Say why: the customer and the books will ask."))
    with transaction.atomic():
        reservation = (
            Reservation.objects.select_for_update()
            .select_related("user")
            .filter(payment__id=payment_id)
            .first()
        )
        if reservation is None:
            raise NotFound(_("Payment not found."))
        if reservation.status != ReservationStatus.CONFIRMED:
            raise RefundNotPossible(details={"status": reservation.status})
        items = _items_to_cancel(reservation, None)
        if in_full:
            quote = quote_in_full(seats=items, now=now)
        else:
            quote = _policy_quote(reservation, items, now, past_cutoff_allowed=True)
        cancellation = _cancel(
            reservation,
            quote,
            kind=CancellationKind.OPERATOR_FULL if in_full else CancellationKind.OPERATOR_POLICY,
            by=operator,
            reason=reason.strip(),
            now=now,
            job=job,
        )
        # The admin history of the payment and the booking, whichever screen or job asked.
        operator_history_record(
            operator=operator,
            objects=[cancellation.payment, reservation],
            message=_refund_history(cancellation, seats=len(quote.seats), job=job),
        )
        return cancellation


def _refund_history(cancellation: Cancellation, *, seats: int, job: RefundJob | None) -> str:
    values = {
        "amount": format_won(cancellation.amount),
        "seats": seats,
        "rule": cancellation.rule,
        "reason": cancellation.reason,
    }
    if job is not None:
        values["job"] = job.id
        return (
            _("Refund job %(job)s refunded %(amount)s for %(seats)s seat(s) (%(rule)s): %(reason)s")
            % values
        )
    return _("Refunded %(amount)s for %(seats)s seat(s) (%(rule)s): %(reason)s") % values


# --- What an operator's refund would move (the confirmation pages) -------------------------


@dataclass(frozen=True)
class RefundPreview:
    """What refunding one payment would move now, by the policy and in full. A booking with
    nothing left to refund (refunded, cancelled) has None for both."""

    payment_id: int
    reservation_id: int
    schedule_id: int
    customer: str
    seats: tuple[str, ...]  # the seats still paid: "A-1-3 (₩165,000)"
    paid: int
    refunded: int
    status: str  # the reservation's
    by_policy: int | None
    policy_fee: int | None  # the cancellation fee the policy keeps
    in_full: int | None

    @property
    def refundable(self) -> bool:
        return self.in_full is not None


def refund_previews(
    *, payments: QuerySet[Payment], now: datetime | None = None
) -> list[RefundPreview]:
    """Per payment, what payment_refund would give back now, both ways. A read: nothing is
    locked, so the refund itself may move a little less if the customer cancels a seat in
    between (it reads the booking again under its lock). Three queries, plus the tiers of
    each cancellation policy involved."""
    now = now or timezone.now()
    payments = list(payments.select_related("reservation__user").order_by("id"))
    confirmed = [
        payment.reservation_id
        for payment in payments
        if payment.reservation.status == ReservationStatus.CONFIRMED
    ]
    items = defaultdict(list)
    for item in (
        ReservationSeat.objects.filter(reservation_id__in=confirmed, cancelled_at=None)
        .select_related("seat")
        .order_by("reservation_id", "seat_id")
    ):
        items[item.reservation_id].append(item)
    tiers = {}
    previews = []
    for payment in payments:
        reservation = payment.reservation
        seats = items.get(reservation.id, [])
        by_policy = policy_fee = in_full = None
        if seats:
            to_cancel = [
                SeatToCancel(
                    item_id=item.id,
                    seat_id=item.seat_id,
                    price=item.price,
                    booking_fee=item.booking_fee,
                )
                for item in seats
            ]
            schedule = schedule_get_cached(
                schedule_id=reservation.schedule_id, published_only=False
            )
            policy = schedule.concert.cancellation_policy
            if policy.id not in tiers:
                tiers[policy.id] = list(policy.tiers.all())
            quote = quote_by_policy(
                policy=policy,
                tiers=tiers[policy.id],
                seats=to_cancel,
                paid_at=payment.created_at,
                show_starts_at=schedule.starts_at,
                now=now,
                past_cutoff_allowed=True,
            )
            by_policy, policy_fee = quote.amount, quote.fee
            in_full = quote_in_full(seats=to_cancel, now=now).amount
        previews.append(
            RefundPreview(
                payment_id=payment.id,
                reservation_id=reservation.id,
                schedule_id=reservation.schedule_id,
                customer=reservation.user.email,
                seats=tuple(str(item) for item in seats),
                paid=payment.amount,
                refunded=payment.refunded_amount,
                status=reservation.status,
                by_policy=by_policy,
                policy_fee=policy_fee,
                in_full=in_full,
            )
        )
    return previews


def _paid_reservation(queryset, *, user: User, reservation_id: int) -> Reservation:
    reservation = queryset.filter(id=reservation_id, user=user).first()
    if reservation is None:
        raise NotFound(_("Reservation not found."))
    if reservation.status != ReservationStatus.CONFIRMED:
        # Held ones are let go with DELETE /reservations/{id}; the rest are over.
        raise ReservationNotCancellable(details={"status": reservation.status})
    return reservation


def _items_to_cancel(
    reservation: Reservation, seat_ids: Sequence[int] | None
) -> list[SeatToCancel]:
    """The reservation's seats still paid (not cancelled), all or those of `seat_ids`."""
    live = {
        seat_id: SeatToCancel(item_id=item_id, seat_id=seat_id, price=price, booking_fee=fee)
        for item_id, seat_id, price, fee in ReservationSeat.objects.filter(
            reservation=reservation, cancelled_at=None
        ).values_list("id", "seat_id", "price", "booking_fee")
    }
    if seat_ids is None:
        return [live[seat_id] for seat_id in sorted(live)]
    wanted = sorted(set(seat_ids))
    unknown = [seat_id for seat_id in wanted if seat_id not in live]
    if unknown:
        raise ValidationFailed.on(
            "seat_ids",
            _("Not seats of this booking, or cancelled already: %(ids)s.") % {"ids": unknown},
        )
    return [live[seat_id] for seat_id in wanted]


def _policy_quote(
    reservation: Reservation,
    items: list[SeatToCancel],
    now: datetime,
    *,
    past_cutoff_allowed: bool = False,
) -> Quote:
    schedule = schedule_get_cached(schedule_id=reservation.schedule_id, published_only=False)
    policy = schedule.concert.cancellation_policy
    return quote_by_policy(
        policy=policy,
        tiers=list(policy.tiers.all()),
        seats=items,
        paid_at=reservation.payment.created_at,
        show_starts_at=schedule.starts_at,
        now=now,
        past_cutoff_allowed=past_cutoff_allowed,
    )


def _cancel(
    reservation: Reservation,
    quote: Quote,
    *,
    kind: str,
    by: User,
    reason: str,
    now: datetime,
    job: RefundJob | None = None,
) -> Cancellation:
    """Perform a cancellation under the reservation's lock: seats back, the record, the
    money, the states. The steps' order is the lock order (seats before the wallet)."""
    payment = Payment.objects.select_for_update().get(reservation=reservation)
    seat_ids = [seat.seat_id for seat in quote.seats]
    inventory.seats_give_back(reservation=reservation, seat_ids=seat_ids, now=now)
    cancellation = Cancellation.objects.create(
        reservation=reservation,
        payment=payment,
        kind=kind,
        created_by=by,
        reason=reason,
        rule=quote.rule[:200],
        refund=quote.refund,
        fee=quote.fee,
        booking_fee_refunded=quote.booking_fee_refunded,
        booking_fee_kept=quote.booking_fee_kept,
        amount=quote.amount,
        job=job,
    )
    CancellationItem.objects.bulk_create(
        CancellationItem(
            cancellation=cancellation,
            item_id=seat.item_id,
            price=seat.price,
            fee=seat.fee,
            booking_fee=seat.booking_fee,
            booking_fee_refunded=seat.booking_fee_refunded,
            refund=seat.refund,
        )
        for seat in quote.seats
    )
    ReservationSeat.objects.filter(id__in=[seat.item_id for seat in quote.seats]).update(
        cancelled_at=now
    )
    lines = [(LedgerKind.REFUND, quote.refund)]
    if quote.fee:
        lines.append((LedgerKind.CANCELLATION_FEE, -quote.fee))
    if quote.booking_fee_refunded:
        lines.append((LedgerKind.BOOKING_FEE_REFUND, quote.booking_fee_refunded))
    wallet_post(
        user=reservation.user,
        lines=lines,
        payment=payment,
        cancellation=cancellation,
        created_by=None if kind == CancellationKind.CUSTOMER else by,
    )
    _settle_states(reservation, payment, kind=kind, by=by, amount=quote.amount, now=now)
    facts.cancellation_made(cancellation, reservation)
    return cancellation


def _settle_states(
    reservation: Reservation,
    payment: Payment,
    *,
    kind: str,
    by: User,
    amount: int,
    now: datetime,
) -> None:
    left = ReservationSeat.objects.filter(reservation=reservation, cancelled_at=None).exists()
    payment.refunded_amount += amount
    payment.status = PaymentStatus.PARTLY_REFUNDED if left else PaymentStatus.REFUNDED
    update = ["refunded_amount", "status"]
    if not left:
        payment.refunded_at, payment.refunded_by = now, by
        update += ["refunded_at", "refunded_by"]
        reservation.status = (
            ReservationStatus.CANCELLED
            if kind == CancellationKind.CUSTOMER
            else ReservationStatus.REFUNDED
        )
        reservation.save(update_fields=["status", "updated_at"])
    payment.save(update_fields=update)


# --- A whole performance, refunded as a job ------------------------------------------------


def refund_job_create(*, schedule_id: int, in_full: bool, reason: str, operator: User) -> RefundJob:
    """Queue the refund of every paid reservation of a performance. The Celery task
    refund_job_run does it; refund_jobs_resume restarts a job whose worker died."""
    if not reason.strip():
        raise ValidationFailed.on("reason", _("Say why: the customers and the books will ask."))
    schedule = Schedule.objects.filter(id=schedule_id).first()
    if schedule is None:
        raise NotFound(_("Schedule not found."))
    with transaction.atomic():
        job = RefundJob.objects.create(
            schedule=schedule,
            kind=CancellationKind.OPERATOR_FULL if in_full else CancellationKind.OPERATOR_POLICY,
            reason=reason.strip(),
            created_by=operator,
            total=Reservation.objects.filter(
                schedule=schedule, status=ReservationStatus.CONFIRMED
            ).count(),
        )
        transaction.on_commit(lambda: _enqueue(job.id))
    return job


def _enqueue(job_id: int) -> None:
    from .tasks import run_refund_job

    run_refund_job.delay(job_id)


def refund_job_run(*, job_id: int, now: datetime | None = None) -> RefundJob:
    """Refund the job's reservations one by one, each in its own transaction, while this run
    holds the job's lease (renewed with every refund; a second run stands back). Each
    reservation is refunded exactly once: a refunded one is no longer confirmed, so a run
    that restarts after a crash skips it."""
    if not _lease(job_id):
        return RefundJob.objects.get(id=job_id)
    job = RefundJob.objects.select_related("schedule", "created_by").get(id=job_id)
    RefundJob.objects.filter(id=job_id).update(state=RefundJobState.RUNNING)
    in_full = job.kind == CancellationKind.OPERATOR_FULL
    while True:
        payment_id = (
            Payment.objects.filter(
                reservation__schedule=job.schedule,
                reservation__status=ReservationStatus.CONFIRMED,
            )
            .order_by("id")
            .values_list("id", flat=True)
            .first()
        )
        if payment_id is None:
            break
        payment_refund(
            payment_id=payment_id,
            operator=job.created_by,
            in_full=in_full,
            reason=job.reason,
            job=job,
            now=now,
        )
        refunded = job.cancellations.values("reservation").distinct().count()
        RefundJob.objects.filter(id=job_id).update(
            refunded=refunded, lease_until=timezone.now() + REFUND_JOB_LEASE
        )
    RefundJob.objects.filter(id=job_id).update(
        state=RefundJobState.DONE,
        refunded=job.cancellations.values("reservation").distinct().count(),
        finished_at=timezone.now(),
        lease_until=None,
    )
    return RefundJob.objects.get(id=job_id)


def _lease(job_id: int) -> bool:
    """Take the job for this run, unless another run holds it (or it is done)."""
    now = timezone.now()
    return bool(
        RefundJob.objects.filter(id=job_id)
        .exclude(state=RefundJobState.DONE)
        .filter(lease_until__isnull=True)
        .update(lease_until=now + REFUND_JOB_LEASE)
        or RefundJob.objects.filter(id=job_id, lease_until__lt=now)
        .exclude(state=RefundJobState.DONE)
        .update(lease_until=now + REFUND_JOB_LEASE)
    )


def refund_jobs_resume() -> int:
    """Beat: restart unfinished jobs nobody runs (never started, or their worker died: the
    lease ran out). Returns how many were sent again."""
    now = timezone.now()
    stalled = list(
        RefundJob.objects.exclude(state=RefundJobState.DONE)
        .filter(created_at__lt=now - timedelta(seconds=10))
        .exclude(lease_until__gte=now)
        .values_list("id", flat=True)
    )
    for job_id in stalled:
        logger.warning("Refund job %s: no run holds it; sending it again", job_id)
        _enqueue(job_id)
    return len(stalled)
