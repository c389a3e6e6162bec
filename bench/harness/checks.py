"""Correctness after load: the contract's invariants over the whole scratch database.

A check is {"check": what, "value": measured, "expected": wanted, "ok": value == expected}.
"""

from __future__ import annotations


def check(name: str, value, expected) -> dict:
    return {"check": name, "value": value, "expected": expected, "ok": value == expected}


def invariant_checks() -> list[dict]:
    """The contract's invariants 1-3 (no seat sold or held twice, wallets equal their ledger,
    one payment per confirmed reservation); each value should be 0."""
    from django.db.models import Count, Exists, F, OuterRef, Q, Sum
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from concerts.models import Seat
    from payments.models import Payment, Wallet
    from reservations.models import Reservation, ReservationSeat

    live = Q(reservation__status="confirmed") | Q(
        reservation__status="held", reservation__expires_at__gt=timezone.now()
    )
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
        "held or sold seats without a live reservation covering them": Seat.objects.filter(
            status__in=["held", "sold"]
        )
        .exclude(Exists(covered))
        .count(),
        "wallets whose balance is not the sum of their ledger": Wallet.objects.annotate(
            total=Coalesce(Sum("entries__amount"), 0)
        )
        .exclude(balance=F("total"))
        .count(),
        "wallets below zero": Wallet.objects.filter(balance__lt=0).count(),
        "confirmed reservations without a payment": Reservation.objects.filter(
            status="confirmed", payment__isnull=True
        ).count(),
        "payments of reservations that are not confirmed": Payment.objects.exclude(
            reservation__status="confirmed"
        ).count(),
        "payments without exactly one ledger debit of their amount": _payments_not_debited_once(),
    }
    return [check(name, value, 0) for name, value in counts.items()]


def _payments_not_debited_once() -> int:
    from payments.models import LedgerEntry, Payment

    # A payment is one `payment` line (the tickets) and, since booking fees, a `booking_fee`
    # line: together they are the payment's amount.
    debits: dict[int, list[tuple[str, int]]] = {}
    for payment_id, kind, amount in LedgerEntry.objects.filter(
        kind__in=["payment", "booking_fee"]
    ).values_list("payment_id", "kind", "amount"):
        debits.setdefault(payment_id, []).append((kind, amount))
    payments = dict(Payment.objects.values_list("id", "amount"))
    wrong = sum(
        [kind for kind, _ in debits.get(pid, [])].count("payment") != 1
        or sum(amount for _, amount in debits.get(pid, [])) != -paid
        for pid, paid in payments.items()
    )
    return wrong + sum(pid not in payments for pid in debits)  # debits of no payment
