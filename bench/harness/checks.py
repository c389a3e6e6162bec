"""Correctness after load: the contract's invariants over the whole database, for the
benchmark (bench/) and the fault suite (ops/chaos), whatever commit they measure.

A check is {"check": what, "value": measured, "expected": wanted, "ok": value == expected}.
"""

from __future__ import annotations


def check(name: str, value, expected, *, ok: bool | None = None) -> dict:
    """`ok`: when `expected` is a bound rather than a value (e.g. "<= 2.5")."""
    ok = value == expected if ok is None else ok
    return {"check": name, "value": value, "expected": expected, "ok": ok}


def invariant_checks(now=None) -> list[dict]:
    """The contract's invariants 1-3 and 9 (no seat sold or held twice, wallets equal their
    ledger and never go negative, one payment per paid reservation, money back never more
    than was paid), with lazy expiry taken into account: a held seat past its hold's end is
    free, and its reservation, swept or not, is over. Each value should be 0.

    Written for both shapes of the code under test: since customers can cancel some seats of
    a paid booking (ReservationSeat.cancelled_at), a cancelled seat is no longer the
    reservation's; a payment is a tickets line plus a booking-fee line."""
    from django.db.models import Count, Exists, F, OuterRef, Q, Sum
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from concerts.models import Seat
    from payments.models import LedgerEntry, Payment, Wallet
    from reservations.models import Reservation, ReservationSeat

    now = now or timezone.now()
    can_cancel_seats = _has_field(ReservationSeat, "cancelled_at")
    live = Q(reservation__status="confirmed") | Q(
        reservation__status="held", reservation__expires_at__gt=now
    )
    if can_cancel_seats:
        live &= Q(cancelled_at__isnull=True)
    live_items = ReservationSeat.objects.filter(live)
    covered = ReservationSeat.objects.filter(
        live, reservation_id=OuterRef("reservation_id"), seat_id=OuterRef("id")
    )
    counts = {
        "seats in two live (held, unexpired, or confirmed) reservations": live_items.values(
            "seat_id"
        )
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "seats of live reservations not held/sold by that reservation": (
            live_items.exclude(seat__reservation_id=F("reservation_id")).count()
            + live_items.filter(reservation__status="held").exclude(seat__status="held").count()
            + live_items.filter(reservation__status="confirmed")
            .exclude(seat__status="sold")
            .count()
        ),
        "sold seats, or held seats whose hold runs, that no live reservation covers": (
            Seat.objects.filter(Q(status="sold") | Q(status="held", hold_expires_at__gt=now))
            .exclude(Exists(covered))
            .count()
        ),
        "seats still held by a reservation that expired or was cancelled": Seat.objects.filter(
            status="held", reservation__status__in=["expired", "cancelled"]
        ).count(),
        "wallets whose balance is not the sum of their ledger": Wallet.objects.annotate(
            total=Coalesce(Sum("entries__amount"), 0)
        )
        .exclude(balance=F("total"))
        .count(),
        "wallets below zero": Wallet.objects.filter(balance__lt=0).count(),
        "confirmed reservations without a payment": Reservation.objects.filter(
            status="confirmed", payment__isnull=True
        ).count(),
        "payments of reservations never confirmed": Payment.objects.exclude(
            reservation__status__in=["confirmed", "cancelled", "refunded"]
        ).count(),
        "payments without exactly one debit of their amount": _payments_not_debited_once(),
        "payment debits of no payment": LedgerEntry.objects.filter(
            kind="payment", payment__isnull=True
        ).count(),
    }
    if _has_field(Payment, "refunded_amount"):
        counts["payments refunded more than paid, or not refunded once cancelled"] = (
            Payment.objects.filter(refunded_amount__gt=F("amount")).count()
            + Payment.objects.filter(reservation__status__in=["cancelled", "refunded"])
            .exclude(status="refunded")
            .count()
        )
    return [check(name, value, 0) for name, value in counts.items()]


def _has_field(model, name: str) -> bool:
    return name in {field.name for field in model._meta.get_fields()}


def _payments_not_debited_once() -> int:
    """Payments whose debit is not exactly one tickets line (and at most one booking-fee
    line) adding up to their amount."""
    from payments.models import LedgerEntry, Payment

    debits: dict[int, list[tuple[str, int]]] = {}
    for payment_id, kind, amount in LedgerEntry.objects.filter(
        kind__in=["payment", "booking_fee"], payment__isnull=False
    ).values_list("payment_id", "kind", "amount"):
        debits.setdefault(payment_id, []).append((kind, amount))
    payments = dict(Payment.objects.values_list("id", "amount"))
    wrong = 0
    for payment_id, paid in payments.items():
        lines = debits.get(payment_id, [])
        kinds = [kind for kind, _ in lines]
        if kinds.count("payment") != 1 or kinds.count("booking_fee") > 1:
            wrong += 1
        elif sum(amount for _, amount in lines) != -paid:
            wrong += 1
    return wrong
