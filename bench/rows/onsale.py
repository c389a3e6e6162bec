"""Row: the on-sale scenario. A crowd of customers arrives at once for one performance (Locust,
headless, against the running system with its Celery worker and beat), and each signs up,
tops up, queues, holds 1-4 seats and pays, cancels or walks away. Measures the time to sell
out and each step's answers, then checks in the database that nothing was oversold or
charged twice.

What each customer does is onsale_locustfile.py. Locust runs as its own process
(`.venv/bin/locust`, from the `bench` extra): it patches the standard library with gevent, so
nothing here imports it.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.harness import LOGS, VENV, log
from bench.harness.checks import check, invariant_checks
from bench.harness.code import loadavg
from bench.harness.data import create_concert, seat_blocks
from bench.harness.logs import count_events, error_samples, log_offset, read_since
from bench.harness.processes import System

ROWS = ("on-sale",)
LOCUSTFILE = Path(__file__).resolve().parent / "onsale_locustfile.py"

# The crowd and the hall. Signup hashes the password with the production PBKDF2: 0.23 s of
# CPU, and the 2 vCPUs of the benchmark machine hash at the speed of one (two hashes at once
# take 0.45 s each), so the signups take ~0.2 s x USERS, and gunicorn's listen queue is first
# come, first served: every other request waits behind them. The sale then takes ~15 s to
# take every seat (admission-bound, below) and ~60 s more for the holds of those who walked
# away to run out and sell again. Measured on the quiet machine (2026-11-24): 200 customers
# sold out at 111 and 112 s (first sale at 38 s), 300 at 126 and 142 s, too near the cap.
USERS = 200
SEATS = 200  # 1-4 seats a customer (2.5 on average): ~80 buyers, so most of the crowd loses
CAP_SECONDS = 160  # Locust's --run-time; the run ends earlier (see AFTER_SOLD_OUT_SECONDS)

# The concert's queue, chosen so that the line matters but the sale ends inside the cap: the
# crowd enters the line within ~3 s once the signups are through, 5 admissions a second let
# it in over ~40 s, and 60 shopping at once is below the ~100 customers it takes to sell
# 200 seats (with the ones who cancel or walk away). Admitted sessions last 3 minutes, longer
# than the run: nobody is sent back to the line. Holds last 1 minute, the least
# Concert.hold_minutes allows, so the seats of customers who walk away come back on sale
# within the run (lazy expiry at once, the Celery sweep within 5 s).
QUEUE = {
    "queue_max_active": 60,
    "queue_admit_per_minute": 300,
    "queue_admitted_minutes": 3,
    "hold_minutes": 1,
}
PRICES = {"VIP": 150_000, "R": 110_000}  # won; the first quarter of the rows is VIP
BOOKING_FEE = 2_000  # won a ticket: the concert's default
CHARGE = 4 * (PRICES["VIP"] + BOOKING_FEE)  # each customer's one top-up: enough for any hold
CANCEL_SHARE = 0.10  # customers who cancel their hold
WALK_AWAY_SHARE = 0.10  # customers who walk away and let the hold expire
SAMPLE_SECONDS = 0.5  # how often the database is watched during the run
# After the sell-out the rest of the line would only be let in, 5 a second, to find nothing:
# the run stops this long after it (the admitted customers see the sold-out map and leave).
AFTER_SOLD_OUT_SECONDS = 10

STEPS = ("signup", "charge", "enter", "poll", "seat map", "hold", "pay", "cancel", "leave")


# --- the concert -----------------------------------------------------------------------------
def prepare(*, seats: int = SEATS) -> dict:
    """A published concert on sale now, with the queue settings above and one performance
    of `seats` seats in rows of 10. Returns the run's context (ids and settings)."""
    from concerts.services import seat_map_generate

    if seats < 20 or seats % 10:
        raise ValueError(f"on-sale seats: a multiple of 10, at least 20 (not {seats})")
    concert = create_concert("On-sale rush", **QUEUE)
    schedule = concert.schedules.get()
    blocks = seat_blocks(seats, price=PRICES["R"], vip_price=PRICES["VIP"], row_width=10)
    seat_map_generate(schedule_ids=[schedule.id], blocks=blocks)
    log(f"on-sale: concert {concert.id}, schedule {schedule.id} with {seats} seats")
    return {
        "concert_id": concert.id,
        "schedule_id": schedule.id,
        "seats": seats,
        "queue": dict(QUEUE),
        "prices": dict(PRICES),
        "charge": CHARGE,
        "cancel_share": CANCEL_SHARE,
        "walk_away_share": WALK_AWAY_SHARE,
    }


# --- the run ---------------------------------------------------------------------------------
@dataclass
class Watch:
    """What the run's watcher saw: the schedule and queue every SAMPLE_SECONDS."""

    timeline: list[dict] = field(default_factory=list)
    sold_out_at: float | None = None  # epoch seconds
    stopped_after_sold_out: bool = False
    locust_cpu_seconds: float = 0.0


def run(
    ctx: dict,
    system: System,
    *,
    users: int = USERS,
    scratch: Path,
    cap_seconds: int = CAP_SECONDS,
    seed: int = 1,
) -> dict:
    """Run the crowd against the system, watching the schedule's seats, until every customer
    is done, AFTER_SOLD_OUT_SECONDS after the sell-out, or at `cap_seconds`; then the numbers
    and the checks, the gunicorn and Celery logs of the run included."""
    if not (VENV / "locust").exists():
        raise RuntimeError("Locust is missing: .venv/bin/pip install -e '.[bench]'")
    run_id = secrets.token_hex(4)
    email_prefix = f"onsale-{run_id}"  # the crowd's accounts: onsale-<run>-<n>@...
    report_path = scratch / f"onsale-{run_id}-report.json"
    csv_prefix = scratch / f"onsale-{run_id}"
    logs = {"gunicorn": system.gunicorn.log_path, "celery": system.celery.log_path}
    offsets = {name: log_offset(path) for name, path in logs.items()}
    locust_log = LOGS / "onsale-locust.log"
    log(f"on-sale: {users} customers, {ctx['seats']} seats, cap {cap_seconds} s; log {locust_log}")

    cpu_before = system.cpu.snapshot()
    started = time.time()
    with locust_log.open("ab") as out:
        # cwd: the scratch folder, so that Locust reads no locust.conf or pyproject.toml of ours
        proc = subprocess.Popen(
            _locust_command(users, cap_seconds, system.url, csv_prefix),
            cwd=scratch,
            env=_scenario_env(ctx, users, email_prefix, seed, report_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            watch = _watch(proc, ctx, started, cap_seconds)
        finally:
            _stop_locust(proc)
    cpu_after = system.cpu.snapshot()
    wall_s = round(time.time() - started, 1)
    watch.timeline.append(sale_sample(ctx, started))

    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    db = database_outcome(ctx, f"{email_prefix}-")
    # Times count from the crowd's arrival: Locust's start, as the locustfile saw it.
    locust_started = report.get("started_at") or started
    for sample in watch.timeline:
        sample["t"] = round(sample["t"] - (locust_started - started), 1)
    result = _settings(ctx, users=users, cap_seconds=cap_seconds)
    result |= _sales(ctx, db, report, watch, locust_started)
    result |= {
        "wall_s": wall_s,
        "ended_by": _ended_by(report, watch),
        "locust_exit_code": proc.returncode,
        "steps": _step_stats(report, Path(f"{csv_prefix}_stats.csv")),
        "customers": _customers(db, report, result["sold_out_s"], locust_started),
        "reservations": db["reservations"],
        "cpu": {
            "machine_busy_cores": _busy_cores(cpu_before, cpu_after),
            "locust_cores": round(
                watch.locust_cpu_seconds / (cpu_after["time"] - cpu_before["time"]), 2
            ),
        },
        "logs": {name: log_problems(path, offsets[name]) for name, path in logs.items()},
        "timeline": watch.timeline,
        "loadavg_at_end": loadavg(),
    }
    result["checks"] = _checks(db, report, result["logs"])
    failed = [c for c in result["checks"] if not c["ok"]]
    log(
        f"on-sale: sold out in {result['sold_out_s']} s, {result['sold_at_end']}/{ctx['seats']} "
        f"sold, {len(result['checks']) - len(failed)} of {len(result['checks'])} checks pass"
        + "".join(f"\n    FAILED {c['check']}: {c['value']} ({c['expected']})" for c in failed)
    )
    return result


def _locust_command(users: int, cap_seconds: int, base_url: str, csv_prefix: Path) -> list[str]:
    return [
        str(VENV / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),  # the whole crowd at once
        "--run-time",
        f"{cap_seconds}s",
        "--stop-timeout",
        "0",
        "--host",
        base_url,
        "--csv",
        str(csv_prefix),
        "--only-summary",
    ]


def _scenario_env(ctx: dict, users: int, email_prefix: str, seed: int, report: Path) -> dict:
    """The scenario, for the locustfile (its ONSALE_* settings)."""
    return {
        **os.environ,
        "ONSALE_CONCERT_ID": str(ctx["concert_id"]),
        "ONSALE_SCHEDULE_ID": str(ctx["schedule_id"]),
        "ONSALE_USERS": str(users),
        "ONSALE_EMAIL_PREFIX": email_prefix,
        "ONSALE_CHARGE": str(ctx["charge"]),
        "ONSALE_SEED": str(seed),
        "ONSALE_CANCEL_SHARE": str(ctx["cancel_share"]),
        "ONSALE_WALK_AWAY_SHARE": str(ctx["walk_away_share"]),
        "ONSALE_REPORT": str(report),
    }


def _watch(proc: subprocess.Popen, ctx: dict, started: float, cap_seconds: int) -> Watch:
    """Sample the sale until Locust ends, or stop it once the sale is over (or overdue)."""
    watch = Watch()
    deadline = started + cap_seconds + 60
    while proc.poll() is None:
        tick = time.monotonic()
        watch.locust_cpu_seconds = _cpu_seconds(proc.pid) or watch.locust_cpu_seconds
        sample = sale_sample(ctx, started)
        watch.timeline.append(sample)
        if watch.sold_out_at is None and sample["sold"] >= ctx["seats"]:
            watch.sold_out_at = time.time()
            log(f"on-sale: sold out ({sample['t']:.1f} s after starting Locust)")
        if (
            watch.sold_out_at is not None
            and time.time() > watch.sold_out_at + AFTER_SOLD_OUT_SECONDS
        ):
            log(f"on-sale: stopping Locust {AFTER_SOLD_OUT_SECONDS} s after the sell-out")
            watch.stopped_after_sold_out = True
            return watch
        if time.time() > deadline:
            log("on-sale: Locust did not end a minute after its cap: stopping it")
            return watch
        time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - tick)))
    return watch


def sale_sample(ctx: dict, started: float) -> dict:
    """Seats of the schedule by status, and the concert's queue, now."""
    from django.db.models import Count

    from concerts.models import Seat
    from queueing.selectors import queue_stats

    seats = dict(
        Seat.objects.filter(schedule_id=ctx["schedule_id"])
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    queue = queue_stats(concert_ids=[ctx["concert_id"]])[ctx["concert_id"]]
    return {
        "t": round(time.time() - started, 2),
        "sold": seats.get("sold", 0),
        "held": seats.get("held", 0),
        "waiting": queue.waiting,
        "admitted": queue.admitted,
    }


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def _stop_locust(proc: subprocess.Popen) -> None:
    """SIGTERM: Locust stops its users and writes its stats; SIGKILL to its session if not."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- the numbers -----------------------------------------------------------------------------
def _settings(ctx: dict, *, users: int, cap_seconds: int) -> dict:
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "users": users,
        "seats": ctx["seats"],
        "cap_s": cap_seconds,
        "settings": {k: ctx[k] for k in ("queue", "prices", "charge")}
        | {"cancel_share": ctx["cancel_share"], "walk_away_share": ctx["walk_away_share"]},
    }


def _sales(ctx: dict, db: dict, report: dict, watch: Watch, locust_started: float) -> dict:
    """When the seats sold, in seconds from the crowd's arrival."""
    # Seats become sold only by a payment, and none is refunded here: the payments' times
    # say when each share of the seats was sold, the last one when the schedule sold out.
    milestones = _milestones(db["sales"], ctx["seats"], locust_started)
    # Every seat sold or held: how long the rush itself took, before the holds of customers
    # who walked away run out (sampled, to within SAMPLE_SECONDS).
    milestones["all taken"] = next(
        (x["t"] for x in watch.timeline if x["sold"] + x["held"] >= ctx["seats"]), None
    )
    return {
        "sold_out_s": milestones.get("sold out"),
        "sold_out_seen_by_sampler_s": None
        if watch.sold_out_at is None
        else round(watch.sold_out_at - locust_started, 1),
        "sold_at_end": db["sold"],
        "milestones_s": milestones,
        "duration_s": round((report.get("stopped_at") or time.time()) - locust_started, 1),
    }


def _ended_by(report: dict, watch: Watch) -> str:
    if report.get("quit_early"):
        return "every customer done"
    if watch.stopped_after_sold_out:
        return f"stopping it {AFTER_SOLD_OUT_SECONDS} s after the sell-out"
    return "the cap"


def _customers(db: dict, report: dict, sold_out_s: float | None, locust_started: float) -> dict:
    """How the crowd fared. Conversion counts the customers admitted before the sell-out:
    the ones who could still buy."""
    admitted_at = report.get("admitted_at", [])
    if sold_out_s is not None:
        admitted_at = [at for at in admitted_at if at <= locust_started + sold_out_s]
    admitted_in_time = len(admitted_at)
    return {
        "signed_up": db["customers"],
        # admitted: customers who saw their queue status turn `admitted` (the locustfile)
        "admitted": report.get("admitted"),
        "admitted_before_sold_out": admitted_in_time,
        "held": db["customers_with_holds"],
        "paid": db["customers_paid"],  # customers with a confirmed reservation
        "admitted_to_paid": round(db["customers_paid"] / admitted_in_time, 3)
        if admitted_in_time
        else None,
        "outcomes": dict(sorted(report.get("outcomes", {}).items(), key=lambda kv: -kv[1])),
        "unfinished": report.get("unfinished", {}),
        "queue_wait_s": report.get("queue_wait_s"),
        "hold_conflicts": report.get("hold_conflicts"),
        "customers_with_hold_conflicts": report.get("customers_with_hold_conflicts"),
        "waited_for_returned_seats": report.get("waited_for_returned_seats"),
    }


def _busy_cores(before: dict, after: dict) -> float:
    busy = (after["busy"] - before["busy"]) / max(1, after["all"] - before["all"])
    return round(busy * (os.cpu_count() or 1), 2)


def log_problems(path: Path, offset: int) -> dict:
    text = read_since(path, offset)
    return {
        **count_events(text, ("tracebacks", "error_lines", "worker_timeouts")),
        "samples": error_samples(text),
    }


def _milestones(sales: list[tuple[float, int]], seats: int, started: float) -> dict:
    """Seconds from `started` until the first sale and until 50, 90 and 100 % of the seats
    were sold, from (time, seats) of each payment in time order."""
    marks: dict[str, float] = {}
    sold = 0
    for at, n in sales:
        sold += n
        marks.setdefault("first sale", round(at - started, 1))
        for share, name in ((50, "50% sold"), (90, "90% sold"), (100, "sold out")):
            if name not in marks and sold * 100 >= seats * share:
                marks[name] = round(at - started, 1)
    return marks


def _step_stats(report: dict, csv_path: Path) -> list[dict]:
    """Per step: Locust's final numbers from the locustfile's report, or else (Locust died
    before writing it) its stats CSV, which may be up to a second behind."""
    rows = report.get("steps")
    if rows is None and csv_path.exists():
        with csv_path.open() as f:
            rows = {
                row["Name"]: {
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "requests_per_s": float(row["Requests/s"]),
                    "p50_ms": None if row["50%"] == "N/A" else float(row["50%"]),
                    "p99_ms": None if row["99%"] == "N/A" else float(row["99%"]),
                    "max_ms": float(row["Max Response Time"]),
                }
                for row in csv.DictReader(f)
                if row["Name"] != "Aggregated"
            }
    rows = rows or {}
    answers = report.get("answers", {})
    return [
        {
            "step": name,
            **{k: v for k, v in rows[name].items() if k != "method"},
            "answers": dict(sorted(answers.get(name, {}).items())),
        }
        for name in [s for s in STEPS if s in rows] + sorted(set(rows) - set(STEPS))
    ]


# --- the database after the run ---------------------------------------------------------------
def database_outcome(ctx: dict, email_prefix: str) -> dict:
    from django.db.models import Count, F, Sum
    from django.utils import timezone

    from accounts.models import User
    from concerts.models import Seat
    from payments.models import LedgerEntry, Payment
    from reservations.models import Reservation, ReservationSeat

    now = timezone.now()
    schedule_id = ctx["schedule_id"]
    reservations = Reservation.objects.filter(schedule_id=schedule_id)
    by_status = dict(reservations.values_list("status").annotate(n=Count("id")))
    lapsed = reservations.filter(status="held", expires_at__lte=now).count()
    customers = User.objects.filter(email__startswith=email_prefix)
    confirmed_seats = ReservationSeat.objects.filter(
        reservation__schedule_id=schedule_id, reservation__status="confirmed"
    )
    # What each customer of the run was debited, against what their confirmed holds cost.
    debited = dict(
        LedgerEntry.objects.filter(kind__in=["payment", "booking_fee"], wallet__user__in=customers)
        .values_list("wallet__user_id")
        .annotate(total=Sum("amount"))
        .values_list("wallet__user_id", "total")
    )
    # The tickets, and their booking fees where the code under test has them.
    fields = {field.name for field in Reservation._meta.get_fields()}
    price = (
        F("total_price") + F("booking_fee_total")
        if "booking_fee_total" in fields
        else F("total_price")
    )
    cost = dict(
        Reservation.objects.filter(user__in=customers, status="confirmed")
        .values_list("user_id")
        .annotate(total=Sum(price))
        .values_list("user_id", "total")
    )
    charges = dict(
        LedgerEntry.objects.filter(kind="charge", wallet__user__in=customers)
        .values_list("wallet__user_id")
        .annotate(n=Count("id"))
        .values_list("wallet__user_id", "n")
    )
    sales = (
        Payment.objects.filter(reservation__schedule_id=schedule_id)
        .annotate(seats=Count("reservation__items"))
        .order_by("created_at")
        .values_list("created_at", "seats")
    )
    return {
        "sold": Seat.objects.filter(schedule_id=schedule_id, status="sold").count(),
        "confirmed_seats": confirmed_seats.count(),
        "seats_in_two_confirmed": confirmed_seats.values("seat_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "sales": [(at.timestamp(), seats) for at, seats in sales],
        "customers": customers.count(),
        "customers_with_holds": reservations.values("user_id").distinct().count(),
        "customers_paid": reservations.filter(status="confirmed")
        .values("user_id")
        .distinct()
        .count(),
        "reservations": {
            "held (live)": by_status.get("held", 0) - lapsed,
            "confirmed": by_status.get("confirmed", 0),
            "cancelled": by_status.get("cancelled", 0),
            # the sweep marks lapsed holds expired; reads treat them so before it runs
            "expired": by_status.get("expired", 0) + lapsed,
            "expired, not yet swept": lapsed,
        },
        "reservations_debited_twice": LedgerEntry.objects.filter(
            kind="payment", payment__reservation__schedule_id=schedule_id
        )
        .values("payment__reservation_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "customers_debited_not_their_cost": sum(
            -debited.get(uid, 0) != cost.get(uid, 0) for uid in set(debited) | set(cost)
        ),
        "customers_charged_twice": sum(n > 1 for n in charges.values()),
    }


def sale_checks(db: dict) -> list[dict]:
    """The sale's own invariants, from database_outcome: no seat sold twice, every sold seat
    in a confirmed reservation, no reservation paid twice (both on-sale rows)."""
    return [
        check(
            "oversold: seats in two confirmed reservations of the schedule",
            db["seats_in_two_confirmed"],
            0,
        ),
        check(
            "sold seats of the schedule = seats of its confirmed reservations",
            db["sold"],
            db["confirmed_seats"],
        ),
        check(
            "double-charged: reservations with two payment debits",
            db["reservations_debited_twice"],
            0,
        ),
    ]


def _checks(db: dict, report: dict, logs: dict) -> list[dict]:
    answers = report.get("answers", {})
    fivexx = sum(n for counts in answers.values() for k, n in counts.items() if k[:1] == "5")
    unexpected = {
        k: n for k, n in report.get("unexpected", {}).items() if k.split(": ")[1][:1] != "5"
    }
    return [
        *invariant_checks(),
        *sale_checks(db),
        check(
            "customers debited other than what their confirmed reservations cost",
            db["customers_debited_not_their_cost"],
            0,
        ),
        check(
            "customers charged more than once (one top-up request each)",
            db["customers_charged_twice"],
            0,
        ),
        check("Locust's report of the answers", "written" if report else "missing", "written"),
        check("5xx answers", fivexx, 0),
        check(
            "other unexpected answers (connection errors, 4xx the scenario does not expect)",
            unexpected,
            {},
        ),
        *(
            check(
                f"tracebacks and ERROR lines in the {name} log during the run",
                problems["tracebacks"] + problems["error_lines"],
                0,
            )
            for name, problems in logs.items()
        ),
    ]


# --- markdown --------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(result: dict) -> str:
    q = result["settings"]["queue"]
    c = result["customers"]
    r = result["reservations"]
    if result["sold_out_s"] is not None:
        sold = f"**sold out in {result['sold_out_s']:.1f} s**"
    else:
        sold = (
            f"**not sold out** within the {result['cap_s']} s cap: "
            f"{result['sold_at_end']} of {result['seats']} seats sold"
        )
    marks = result["milestones_s"]
    wait = c.get("queue_wait_s") or {}
    out = [
        f"## On-sale: {result['users']} customers, {result['seats']} seats ({result['when']})",
        "",
        f"- {sold} from the crowd's arrival (Locust's start; the last payment's time). First "
        f"sale at {_seconds(marks.get('first sale'))} s, every seat sold or held at "
        f"{_seconds(marks.get('all taken'))} s, half sold at {_seconds(marks.get('50% sold'))} s, "
        f"90 % at {_seconds(marks.get('90% sold'))} s; the run took {result['duration_s']:.0f} s, "
        f"ended by {result['ended_by']}",
        f"- queue: {q['queue_max_active']} shopping at once, {q['queue_admit_per_minute']} "
        f"admitted a minute; holds last {q['hold_minutes']} min; "
        f"{result['settings']['cancel_share']:.0%} of customers cancel their hold and "
        f"{result['settings']['walk_away_share']:.0%} walk away",
        f"- customers: {c['signed_up']} signed up, {c['admitted']} admitted "
        f"({c['admitted_before_sold_out']} before the sell-out), {c['held']} held seats, "
        f"{c['paid']} paid: admitted (before the sell-out) to paid "
        + ("-" if c["admitted_to_paid"] is None else f"{c['admitted_to_paid']:.0%}")
        + f"; queue wait p50 {_seconds(wait.get('p50'))} s, p90 {_seconds(wait.get('p90'))} s, "
        f"max {_seconds(wait.get('max'))} s",
        "- outcomes: "
        + ", ".join(f"{k} {v}" for k, v in c["outcomes"].items())
        + (
            "; not done when the run ended: "
            + ", ".join(f"{k} {v}" for k, v in c["unfinished"].items())
            if c["unfinished"]
            else ""
        ),
        f"- reservations: {r['confirmed']} confirmed, {r['cancelled']} cancelled, "
        f"{r['expired']} expired, {r['held (live)']} still held; {c['hold_conflicts']} holds "
        f"answered 409 seats_unavailable ({c['customers_with_hold_conflicts']} customers), "
        f"{c['waited_for_returned_seats']} customers waited for returned seats",
        f"- CPU: the machine {result['cpu']['machine_busy_cores']} cores busy on average, "
        f"Locust {result['cpu']['locust_cores']}",
        "",
        "| step | requests | failures | req/s | p50 ms | p99 ms | answers |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for s in result["steps"]:
        answers = ", ".join(f"{k}: {n}" for k, n in s["answers"].items())
        out.append(
            f"| {s['step']} | {s['requests']} | {s['failures']} | {s['requests_per_s']:.1f} | "
            f"{_seconds(s['p50_ms'])} | {_seconds(s['p99_ms'])} | {answers} |"
        )
    failed = [ch for ch in result["checks"] if not ch["ok"]]
    out += [
        "",
        "req/s: the step's requests over the whole run (Locust's figure); p50/p99: Locust's "
        "response times (rounded to 2 significant digits above 100 ms), waits in gunicorn's "
        "listen queue included.",
        "",
        f"Checks ({len(result['checks']) - len(failed)} of {len(result['checks'])} pass):",
        "",
    ]
    out += [
        f"- {'ok' if ch['ok'] else '**FAILED**'}: {ch['check']}: {ch['value']} ({ch['expected']})"
        for ch in result["checks"]
    ]
    for name, problems in result["logs"].items():
        for line in problems["samples"]:
            out.append(f"- {name} log: `{line[:200]}`")
    return "\n".join(out)
