"""What the database must hold after a fault, read while the load goes on: every query of one
check in one consistent snapshot (REPEATABLE READ, started by the first read), so a purchase
committing meanwhile cannot look half-done.

- The contract's invariants (bench/harness/checks.py, shared with the benchmark), with lazy
  expiry taken into account: a held seat past its hold's end is free, and its reservation,
  swept or not, is over.
- Every write a customer was told succeeded (201 for a hold, a payment, a charge; 204 for a
  cancellation) before the snapshot is there, as it was told, whatever crashed since; and no
  reservation is in a state nobody asked for (paid without a payment call, say), nor paid
  after its payment call was definitely refused.
"""

from __future__ import annotations

from bench.harness.checks import invariant_checks

from .client import Recorder


def database_checks(recorder: Recorder) -> dict:
    from django.db import connection, connections, transaction
    from django.utils import timezone

    connections.close_all()  # the server may have restarted since the last check
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cutoff = recorder.now()  # writes acknowledged before this are committed before the snapshot
    try:
        with transaction.atomic():
            now = timezone.now()
            invariants = invariant_checks(now)
            writes = acknowledged_writes(recorder, cutoff)
    finally:
        connections.close_all()  # back to the settings' isolation on the next connection
    return {"at": round(cutoff, 2), "invariants": invariants, **writes}


def acknowledged_writes(recorder: Recorder, cutoff: float) -> dict:
    """Every acknowledged write, looked up: `lost` lists what is missing or not as told."""
    from payments.models import LedgerEntry, Payment
    from reservations.models import Reservation, ReservationSeat

    acks = [a for a in list(recorder.acks) if a["at"] < cutoff]
    holds = {a["reservation_id"]: a for a in acks if a["kind"] == "hold"}
    paid = {a["reservation_id"]: a for a in acks if a["kind"] == "payment"}
    cancelled = {a["reservation_id"] for a in acks if a["kind"] == "cancel"}
    charges = {a["entry_id"]: a for a in acks if a["kind"] == "charge"}
    pay_chains = [c for c in list(recorder.chains) if c.kind == "pay" and c.attempts]
    paying = {c.subject for c in pay_chains}
    refused = {
        c.subject: c.outcome
        for c in pay_chains
        if c.outcome not in (None, "201", "gave up") and c.attempts[-1].ended < cutoff
    }

    reservations = {
        rid: (user_id, status, total)
        for rid, user_id, status, total in Reservation.objects.filter(
            id__in=holds.keys() | paid.keys()
        ).values_list("id", "user_id", "status", "total_price")
    }
    seats_of: dict[int, list[int]] = {}
    for rid, seat_id in ReservationSeat.objects.filter(reservation_id__in=holds.keys()).values_list(
        "reservation_id", "seat_id"
    ):
        seats_of.setdefault(rid, []).append(seat_id)
    payments = {
        pid: (rid, amount, status)
        for pid, rid, amount, status in Payment.objects.filter(
            id__in=[a["payment_id"] for a in paid.values()]
        ).values_list("id", "reservation_id", "amount", "status")
    }
    entries = {
        eid: (kind, amount, user_id)
        for eid, kind, amount, user_id in LedgerEntry.objects.filter(
            id__in=charges.keys()
        ).values_list("id", "kind", "amount", "wallet__user_id")
    }
    paid_anyway = set(
        Payment.objects.filter(reservation_id__in=refused.keys()).values_list(
            "reservation_id", flat=True
        )
    )

    lost: list[dict] = []

    def wrong(write: str, problem: str) -> None:
        lost.append({"write": write, "problem": problem})

    for rid, hold in holds.items():
        found = reservations.get(rid)
        if found is None:
            wrong(f"hold {rid}", "no such reservation")
            continue
        user_id, status, total = found
        if user_id != hold["user_id"] or total != hold["total"]:
            wrong(f"hold {rid}", f"customer {user_id}, total {total}: not as answered")
        if sorted(seats_of.get(rid, [])) != hold["seat_ids"]:
            wrong(f"hold {rid}", f"seats {sorted(seats_of.get(rid, []))}, not {hold['seat_ids']}")
        expected = _expected_statuses(rid, paid, cancelled, paying, recorder.cancel_requested)
        if status not in expected:
            wrong(f"hold {rid}", f"status {status}, expected {' or '.join(sorted(expected))}")
    for rid, payment in paid.items():
        found = payments.get(payment["payment_id"])
        if found != (rid, payment["amount"], "completed"):
            wrong(f"payment {payment['payment_id']}", f"found {found}")
    for eid, charge in charges.items():
        if entries.get(eid) != ("charge", charge["amount"], charge["user_id"]):
            wrong(f"charge {eid}", f"found {entries.get(eid)}")
    for rid in paid_anyway:
        wrong(f"payment of reservation {rid}", f"paid, though its call was refused: {refused[rid]}")
    return {
        "acknowledged": {
            "holds": len(holds),
            "payments": len(paid),
            "charges": len(charges),
            "cancellations": len(cancelled),
        },
        "lost": lost,
    }


def _expected_statuses(rid, paid, cancelled, paying, cancel_requested) -> set[str]:
    """The statuses a held reservation may have now, given what its customer did."""
    if rid in paid:
        return {"confirmed"}
    if rid in cancelled:
        return {"cancelled"}
    expected = {"held", "expired"}  # held past its end reads expired (lazy expiry)
    if rid in paying:
        expected.add("confirmed")  # its payment call may still be on its way
    if rid in cancel_requested:
        expected.add("cancelled")
    return expected


def first_admissions(concert_ids, since) -> dict[int, float | None]:
    """Per concert: seconds from `since` (an aware datetime) to the first customer the
    admission tick let in after it, as the tick recorded it (QueueAdmission.admitted_at)."""
    from django.db import connections
    from django.db.models import Min

    from queueing.models import QueueAdmission

    connections.close_all()  # the server may have restarted since the last query
    firsts = dict(
        QueueAdmission.objects.filter(concert_id__in=concert_ids, admitted_at__gte=since)
        .values("concert_id")
        .annotate(first=Min("admitted_at"))
        .values_list("concert_id", "first")
    )
    return {
        concert_id: round((firsts[concert_id] - since).total_seconds(), 2)
        if concert_id in firsts
        else None
        for concert_id in concert_ids
    }
