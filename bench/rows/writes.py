"""Rows: the writes, each a prepared list of requests sent exactly once (a repeat would measure
something else), each followed by checks of the database.

    hold, contended    POST /api/v1/reservations + X-Queue-Token   each customer once, 1-2
                                                                   random seats of 50
    hold, uncontended  POST /api/v1/reservations                   each customer a seat of
                                                                   their own
    payment            POST /api/v1/reservations/{id}/payment      each customer's own hold,
                       + Idempotency-Key                           made beforehand
    wallet charge      POST /api/v1/wallet/charges + Idempotency-Key   the payment customers

After each run: the contract's invariants over the whole database, no 5xx, nothing at ERROR,
every request answered, and that the 201s match what was written (reservations, held or sold
seats, ledger entries, money moved, Idempotency-Key records completed, no claim left open).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import log
from bench.harness.checks import check, invariant_checks
from bench.harness.data import admit, sale_concert, seat_blocks
from bench.harness.measure import Load, measure_list
from bench.harness.processes import System
from bench.harness.wrk import write_requests

ROWS = ("hold, contended", "hold, uncontended", "payment", "wallet charge")
# Requests of each run (the keys are the report's settings.write_requests), sized for
# ~8-15 s each on the 2-core machine; --scale multiplies them.
REQUESTS = {"hold, contended": 7_000, "hold, uncontended": 4_000, "payment": 3_000, "charge": 5_000}
CONTENDED_SEATS = 50
PRICE = 50_000  # won a seat
FUNDS = 200_000  # each payment customer's wallet before the run
CHARGE = 10_000  # won a charge request
PREP_THREADS = 3  # making the payment customers' holds and charges beforehand


@dataclass
class WriteRun:
    name: str
    kind: str  # hold, payment or charge: which checks follow
    requests: Path
    schedule_id: int | None = None
    expect: dict = field(default_factory=dict)


def sizes(scale: float) -> dict[str, int]:
    return {name: max(100, int(n * scale)) for name, n in REQUESTS.items()}


def customers_needed(selected: set[str], scale: float) -> int:
    wanted = {
        "hold, contended": "hold, contended",
        "hold, uncontended": "hold, uncontended",
        "payment": "payment",
        "wallet charge": "payment",  # the charges go to the payment customers' wallets
    }
    n = sizes(scale)
    return max((n[wanted[row]] for row in selected & set(ROWS)), default=0)


def prepare(
    selected: set[str],
    customers: list,
    *,
    scale: float,
    rng: random.Random,
    scratch: Path,
    preparation: dict,
) -> list[WriteRun]:
    """Seat maps, admitted customers, the payment customers' holds and wallets, the lists."""
    n = sizes(scale)
    runs = []
    if not selected & set(ROWS):
        return runs
    started = time.monotonic()
    if "hold, contended" in selected:
        runs.append(_contended_holds(customers[: n["hold, contended"]], rng, scratch))
    if "hold, uncontended" in selected:
        runs.append(_uncontended_holds(customers[: n["hold, uncontended"]], rng, scratch))
    if not selected & {"payment", "wallet charge"}:
        preparation["write_runs_data_s"] = round(time.monotonic() - started, 1)
        return runs

    paying = customers[: n["payment"]]
    concert, schedule, seats = sale_concert(
        "Payments", seat_blocks(-(-len(paying) // 10) * 10, price=PRICE)
    )
    tokens = admit(concert, [uid for uid, _ in paying])
    preparation["write_runs_data_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    held = _holds_and_wallets(schedule, seats, paying, tokens)
    preparation["payment_holds_s"] = round(time.monotonic() - started, 1)
    log(f"{len(held)} wallets charged and seats held in {preparation['payment_holds_s']} s")
    if "payment" in selected:
        runs.append(_payments(schedule.id, held, scratch))
    if "wallet charge" in selected:
        runs.append(_charges(held, n["charge"], scratch))
    return runs


def _contended_holds(customers: list, rng: random.Random, scratch: Path) -> WriteRun:
    concert, schedule, seats = sale_concert(
        "Contended holds", seat_blocks(CONTENDED_SEATS, price=PRICE)
    )
    tokens = admit(concert, [uid for uid, _ in customers])
    requests = (
        _hold(schedule.id, sorted(rng.sample(seats, rng.choice((1, 2)))), bearer, tokens[uid])
        for uid, bearer in customers
    )
    path = write_requests(scratch / "hold-contended.tsv", requests)
    return WriteRun("hold, contended", "hold", path, schedule.id, {"max_held": CONTENDED_SEATS})


def _uncontended_holds(customers: list, rng: random.Random, scratch: Path) -> WriteRun:
    seat_count = -(-len(customers) // 100) * 100  # rows of 100: a seat each, a few to spare
    concert, schedule, seats = sale_concert(
        "Uncontended holds", seat_blocks(seat_count, price=PRICE)
    )
    tokens = admit(concert, [uid for uid, _ in customers])
    requests = (
        _hold(schedule.id, [seat], bearer, tokens[uid])
        for (uid, bearer), seat in zip(customers, rng.sample(seats, len(customers)), strict=True)
    )
    path = write_requests(scratch / "hold-uncontended.tsv", requests)
    return WriteRun("hold, uncontended", "hold", path, schedule.id)


def _payments(schedule_id: int, held: list, scratch: Path) -> WriteRun:
    requests = (
        ("POST", f"/api/v1/reservations/{reservation_id}/payment", None, _idempotent(bearer))
        for _, bearer, reservation_id in held
    )
    return WriteRun(
        "payment", "payment", write_requests(scratch / "payment.tsv", requests), schedule_id
    )


def _charges(held: list, count: int, scratch: Path) -> WriteRun:
    """`count` charges spread over the payment customers, one or two each."""
    requests = (
        (
            "POST",
            "/api/v1/wallet/charges",
            {"amount": CHARGE},
            {**_idempotent(held[i % len(held)][1]), "Content-Type": "application/json"},
        )
        for i in range(count)
    )
    return WriteRun("wallet charge", "charge", write_requests(scratch / "charge.tsv", requests))


def _hold(schedule_id: int, seats: list[int], bearer: str, queue_token: str) -> tuple:
    headers = {
        "Authorization": f"Bearer {bearer}",
        "X-Queue-Token": queue_token,
        "Content-Type": "application/json",
    }
    return (
        "POST",
        "/api/v1/reservations",
        {"schedule_id": schedule_id, "seat_ids": seats},
        headers,
    )


def _idempotent(bearer: str) -> dict:
    return {"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())}


def _holds_and_wallets(schedule, seat_ids: list[int], customers: list, tokens: dict) -> list:
    """Each customer: a wallet charged with FUNDS and a hold of one seat, by the services.
    Returns (user id, bearer token, reservation id) of each."""
    from accounts.models import User
    from payments.services import wallet_charge
    from reservations.services import reservation_hold

    def one(item):
        (uid, bearer), seat_id = item
        user = User(id=uid)
        wallet_charge(user=user, amount=FUNDS)
        reservation = reservation_hold(
            user=user, schedule_id=schedule.id, seat_ids=[seat_id], queue_token=tokens[uid]
        )
        return uid, bearer, reservation.id

    return _in_threads(one, list(zip(customers, seat_ids, strict=False)), PREP_THREADS)


def _in_threads(work, items: list, threads: int) -> list:
    """work(item) for every item, in a few threads, each on its own database connection."""
    from django.db import connection

    results: list = [None] * len(items)
    errors: list = []

    def run(offset: int) -> None:
        try:
            for i in range(offset, len(items), threads):
                results[i] = work(items[i])
        except Exception as error:  # raised below, once every thread has ended
            errors.append(error)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


# --- measuring and checking ------------------------------------------------------------------
def measure(system: System, run: WriteRun, load: Load, database: str) -> dict:
    from django.db import connections

    before = state_counts()
    connections.close_all()  # no connection of ours held open while the run goes
    row = measure_list(system, run.name, run.requests, load, database)
    row |= {"row": run.name, "kind": "write"}
    row["checks"] = run_checks(run, row, before)
    connections.close_all()
    failed = [c for c in row["checks"] if not c["ok"]]
    log(
        f"{run.name}: {len(row['checks']) - len(failed)} of {len(row['checks'])} checks pass"
        + "".join(f"\n    FAILED {c['check']}: {c['value']} ({c['expected']})" for c in failed)
    )
    return row


def state_counts() -> dict:
    """What the writes change, counted before and after a run."""
    from django.db.models import Sum

    from payments.models import LedgerEntry, Payment, Wallet

    records = _idempotency_record_model()
    fields = {field.name for field in records._meta.get_fields()}
    # Until the records were written with the work (accounts 0003), a claim was a row of its
    # own with a `completed` flag; since, every committed record has its answer.
    if "completed" in fields:
        completed, open_claims = {"completed": True}, {"completed": False}
    else:
        completed, open_claims = {"response_status__isnull": False}, {"response_status": None}
    return {
        "ledger_charges": LedgerEntry.objects.filter(kind="charge").count(),
        "ledger_payments": LedgerEntry.objects.filter(kind="payment").count(),
        "balance_total": int(Wallet.objects.aggregate(s=Sum("balance"))["s"] or 0),
        "payments": Payment.objects.count(),
        "idempotency_completed": records.objects.filter(**completed).count(),
        "idempotency_open": records.objects.filter(**open_claims).count(),
    }


def _idempotency_record_model():
    """The model moved from payments to accounts (commit 5fdae4f); --code may name a commit
    from before."""
    from django.apps import apps

    for app in ("accounts", "payments"):
        try:
            return apps.get_model(app, "IdempotencyRecord")
        except LookupError:
            continue
    raise LookupError("no IdempotencyRecord model in accounts or payments")


def run_checks(run: WriteRun, row: dict, before: dict) -> list[dict]:
    """The invariants, plus what this run's answers say the database should now hold."""
    statuses = row["statuses"]
    created = statuses.get("201", 0)
    after = state_counts()
    fivexx = sum(n for status, n in statuses.items() if status.startswith("5"))
    gunicorn_log = row["gunicorn_log"]
    checks = invariant_checks() + [
        check("5xx answers", fivexx, 0),
        check(
            "tracebacks and ERROR lines in the gunicorn log",
            gunicorn_log["tracebacks"] + gunicorn_log["error_lines"],
            0,
        ),
        check("answers received of requests sent", row["received"], row["sent"]),
    ]
    if run.kind == "hold":
        checks += _hold_checks(run, statuses, created)
    elif run.kind == "payment":
        checks += _payment_checks(run, before, after, created)
    elif run.kind == "charge":
        checks += [
            check(
                "new ledger charges = 201 answers",
                after["ledger_charges"] - before["ledger_charges"],
                created,
            ),
            check(
                "money added = 201 answers x amount",
                after["balance_total"] - before["balance_total"],
                created * CHARGE,
            ),
        ]
    if run.kind in ("payment", "charge"):
        checks += [
            check(
                "new completed Idempotency-Key records = 201 answers",
                after["idempotency_completed"] - before["idempotency_completed"],
                created,
            ),
            check("Idempotency-Key claims left open", after["idempotency_open"], 0),
        ]
    return checks


def _hold_checks(run: WriteRun, statuses: dict, created: int) -> list[dict]:
    from concerts.models import Seat
    from reservations.models import Reservation, ReservationSeat

    held = Seat.objects.filter(schedule_id=run.schedule_id, status="held").count()
    checks = [
        check(
            "reservations on the schedule = 201 answers",
            Reservation.objects.filter(schedule_id=run.schedule_id).count(),
            created,
        ),
        check(
            "held seats on the schedule = seats of those reservations",
            held,
            ReservationSeat.objects.filter(reservation__schedule_id=run.schedule_id).count(),
        ),
    ]
    if "max_held" in run.expect:
        limit = run.expect["max_held"]
        checks.append(
            {
                "check": "held seats <= seats of the schedule",
                "value": held,
                "expected": f"<= {limit}",
                "ok": held <= limit,
            }
        )
    # (hold_limit_reached until the ticket limit replaced it: --code may name an older commit)
    over_the_limit = statuses.get("409 ticket_limit_reached", 0) + statuses.get(
        "409 hold_limit_reached", 0
    )
    checks.append(
        check("409 over the ticket limit (each request a new customer)", over_the_limit, 0)
    )
    return checks


def _booking_fee(schedule_id: int) -> int:
    """The concert's booking fee per ticket (0 for code from before booking fees)."""
    from concerts.models import Schedule

    concert = Schedule.objects.select_related("concert").get(id=schedule_id).concert
    return getattr(concert, "booking_fee", 0)


def _payment_checks(run: WriteRun, before: dict, after: dict, created: int) -> list[dict]:
    from concerts.models import Seat
    from payments.models import Payment
    from reservations.models import Reservation

    schedule_id = run.schedule_id
    return [
        check(
            "confirmed reservations on the schedule = 201 answers",
            Reservation.objects.filter(schedule_id=schedule_id, status="confirmed").count(),
            created,
        ),
        check(
            "payments for the schedule = 201 answers",
            Payment.objects.filter(reservation__schedule_id=schedule_id).count(),
            created,
        ),
        check(
            "sold seats on the schedule = 201 answers",
            Seat.objects.filter(schedule_id=schedule_id, status="sold").count(),
            created,
        ),
        check(
            "new ledger debits = 201 answers",
            after["ledger_payments"] - before["ledger_payments"],
            created,
        ),
        check(
            "money taken = 201 answers x (price + booking fee)",
            before["balance_total"] - after["balance_total"],
            created * (PRICE + _booking_fee(schedule_id)),
        ),
    ]
