"""Money: wallet charges and payments (cancellations and refunds: cancellations.py).

A balance only changes by one conditional UPDATE (`balance = balance + x WHERE balance + x
>= 0`) together with the ledger entry that records it, in one transaction; a CHECK keeps the
column from ever going negative. No read-modify-write, so concurrent charges and payments
of one wallet cannot lose an update.

Lock order, everywhere: the customer's user row -> reservation row -> seat rows -> wallet
row. (A hold takes the user row, then seats; a payment takes its reservation, the user row
and then its seats in one statement; the sweep takes reservations, then seats.) Seats change only
through reservations/inventory.py.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from concerts.selectors import schedule_get_cached
from config.db import retry_on_lock_conflict, service_atomic
from config.errors import NotFound, ValidationFailed
from queueing.services import queue_admission_end
from reservations import inventory
from reservations.errors import HoldExpired, ReservationNotPayable, SalesClosed
from reservations.models import (
    Reservation,
    ReservationSource,
    ReservationStatus,
    WaitlistEntry,
    WaitlistEventKind,
    WaitlistStatus,
)
from reservations.selectors import reservation_effective_status
from reservations.waitlist import waitlist_auto_pay_failed, waitlist_offer_taken

from . import facts
from .errors import InsufficientBalance
from .models import LedgerEntry, LedgerKind, Payment, Wallet

logger = logging.getLogger(__name__)

MAX_CHARGE_WON = 5_000_000


def wallet_for_user(*, user: User) -> Wallet:
    """The customer's wallet, created empty on first use."""
    wallet = Wallet.objects.filter(user=user).first()
    if wallet is not None:
        return wallet
    try:
        with transaction.atomic():
            return Wallet.objects.create(user=user)
    except IntegrityError:  # created by a concurrent request a moment ago
        return Wallet.objects.get(user=user)


def wallet_post(
    *,
    user: User,
    lines: list[tuple[str, int]],
    payment: Payment | None = None,
    cancellation=None,
    created_by: User | None = None,
) -> list[LedgerEntry]:
    """Move money in or out of the wallet and record it: `lines` are (kind, amount) ledger
    lines of one event (a payment's tickets and booking fees, say), amount negative to take.
    One conditional UPDATE by their sum: the balance never goes below zero, and the lines'
    balances follow in order. Call inside a transaction."""
    total = sum(amount for _, amount in lines)
    moved = Wallet.objects.filter(user=user, balance__gte=-total).update(
        balance=F("balance") + total, updated_at=timezone.now()
    )
    if not moved and total >= 0:
        # Money coming in misses only when the customer had no wallet at the UPDATE. Under
        # READ COMMITTED a concurrent first charge may have opened it since, so open it (or
        # find it) and move again; the second UPDATE finds the row.
        wallet_for_user(user=user)
        return wallet_post(
            user=user,
            lines=lines,
            payment=payment,
            cancellation=cancellation,
            created_by=created_by,
        )
    # After a move this reads our own uncommitted row, locked by the UPDATE: the balance the
    # lines leave. Without one, the latest committed balance, for the error's details.
    wallet = next(iter(Wallet.objects.filter(user=user).values_list("id", "balance")), None)
    if not moved:
        raise InsufficientBalance(details={"balance": wallet[1] if wallet else 0, "amount": -total})
    wallet_id, balance = wallet
    entries, running = [], balance - total
    for kind, amount in lines:
        running += amount
        entries.append(
            LedgerEntry(
                wallet_id=wallet_id,
                kind=kind,
                amount=amount,
                balance_after=running,
                payment=payment,
                cancellation=cancellation,
                created_by=created_by,
            )
        )
    if len(entries) == 1:
        entries[0].save(force_insert=True)  # with its id, for the answer
        return entries
    return LedgerEntry.objects.bulk_create(entries)


@retry_on_lock_conflict()
def wallet_charge(*, user: User, amount: int) -> LedgerEntry:
    """Top up the wallet by `amount` won (1 to MAX_CHARGE_WON)."""
    if not 1 <= amount <= MAX_CHARGE_WON:
        raise ValidationFailed.on(
            "amount", _("Charge between 1 and %(most)s won.") % {"most": f"{MAX_CHARGE_WON:,}"}
        )
    with service_atomic():
        [entry] = wallet_post(user=user, lines=[(LedgerKind.CHARGE, amount)])
        facts.wallet_charged(entry, customer_id=user.id)
        return entry


@retry_on_lock_conflict()
def payment_create(*, user: User, reservation_id: int, now: datetime | None = None) -> Payment:
    """Pay a hold from the wallet: the tickets and their booking fees, debited once as two
    ledger lines; confirmed once; the seats become sold.

    Expiry has one truth: a hold past its `expires_at` is expired for payment as it is for
    every read, the seat map and the sweep, whether or not the sweep has run (410
    hold_expired, nothing debited).
    """
    now = now or timezone.now()
    with service_atomic():
        # One statement locks the reservation, the customer's own row and the seats, and
        # reads the reservation's items (inventory.reservation_lock_for_sale says why each).
        locked = inventory.reservation_lock_for_sale(reservation_id=reservation_id, user_id=user.id)
        if locked is None:
            raise NotFound(_("Reservation not found."))
        reservation, items = locked
        status = reservation_effective_status(reservation, now)
        if status == ReservationStatus.EXPIRED:
            raise HoldExpired(details={"reservation_id": reservation.id})
        if status != ReservationStatus.HELD:
            raise ReservationNotPayable(details={"status": status})
        schedule = schedule_get_cached(schedule_id=reservation.schedule_id, published_only=False)
        if schedule.starts_at <= now:
            raise SalesClosed()
        concert_id = schedule.concert_id

        # Seats first: if they are gone, "top up your wallet" would be the wrong advice.
        seat_ids = [item["seat_id"] for item in items]
        inventory.seats_sell(reservation=reservation, seat_ids=seat_ids, now=now, locked=True)
        fees = reservation.booking_fee_total
        payment = Payment.objects.create(
            reservation=reservation,
            user=user,
            amount=reservation.total_price + fees,
            booking_fee=fees,
        )
        lines = [(LedgerKind.PAYMENT, -reservation.total_price)]
        if fees:
            lines.append((LedgerKind.BOOKING_FEE, -fees))
        wallet_post(user=user, lines=lines, payment=payment)
        Reservation.objects.filter(id=reservation.id).update(
            status=ReservationStatus.CONFIRMED, updated_at=timezone.now()
        )
        facts.payment_confirmed(payment, reservation, items)
        if reservation.source == ReservationSource.WAITLIST:
            # An offer from the waitlist: the entry is bought. The customer may be shopping
            # in the queue meanwhile; that session is theirs to finish.
            waitlist_offer_taken(reservation_id=reservation.id, now=now)
            return payment
        # The buyer's admitted session is over: recorded with the payment, so that a queue
        # Redis loses is restored without it (docs/queue.md); Redis learns it after the commit.
        queue_admission_end(concert_id=concert_id, user_id=user.id, now=now)
        transaction.on_commit(lambda: _release_queue_slot(concert_id=concert_id, user_id=user.id))
    return payment


def waitlist_offer_auto_pay(*, reservation_id: int, now: datetime | None = None) -> Payment | None:
    """Pay a waitlist offer whose entry opted in to auto-pay, from the wallet, when the
    balance covers it and it costs at most the entry's max_total; otherwise it stays an
    offer for the customer to pay (and says why). Safe to run twice or alongside the
    sweep: payment_create pays a hold once, and never one that has lapsed."""
    now = now or timezone.now()
    offer = (
        Reservation.objects.select_related("user", "waitlist_entry")
        .filter(id=reservation_id, source=ReservationSource.WAITLIST)
        .first()
    )
    entry = getattr(offer, "waitlist_entry", None)
    if entry is None or not entry.auto_pay or entry.status != WaitlistStatus.OFFERED:
        return None
    amount = offer.total_price + offer.booking_fee_total
    if entry.max_total is not None and amount > entry.max_total:
        waitlist_auto_pay_failed(
            entry=entry,
            reason="over_max_total",
            details={"amount": amount, "max_total": entry.max_total},
        )
        return None
    try:
        return payment_create(user=offer.user, reservation_id=offer.id, now=now)
    except (ReservationNotPayable, HoldExpired):  # paid already, declined, or lapsed
        return None
    except InsufficientBalance as refused:
        waitlist_auto_pay_failed(
            entry=entry, reason="insufficient_balance", details=refused.details
        )
        return None


def waitlist_offers_auto_pay_pending(*, now: datetime | None = None) -> int:
    """Beat: pay auto-pay offers that no worker has paid yet (the nudge sent when the offer
    was made can be lost with the broker). Returns how many were paid."""
    now = now or timezone.now()
    pending = (
        WaitlistEntry.objects.filter(
            status=WaitlistStatus.OFFERED,
            auto_pay=True,
            offer__status=ReservationStatus.HELD,
            offer__expires_at__gt=now,
        )
        .exclude(events__kind=WaitlistEventKind.AUTO_PAY_FAILED)
        .values_list("offer_id", flat=True)
    )
    return sum(
        waitlist_offer_auto_pay(reservation_id=offer_id, now=now) is not None
        for offer_id in list(pending)
    )


def _release_queue_slot(*, concert_id: int, user_id: int) -> None:
    """The buyer is done shopping: their admitted slot goes to the next in line. The payment
    is already committed, so nothing here may fail it: queue_release leaves the release to
    the tick when Redis is unavailable, and should even that fail, the slot frees itself
    when the admitted session runs out."""
    from queueing.services import queue_release

    try:
        queue_release(concert_id=concert_id, user_id=user_id)
    except Exception:
        logger.warning("Could not free the queue slot of user %s", user_id, exc_info=True)
