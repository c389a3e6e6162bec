"""Row "on-sale large": the on-sale at real scale. 20,000 customers (made in bulk, with API
tokens and topped-up wallets: no signup) come for one performance of 2,000 seats: some before
the sale opens, half in its first 10 s, the rest over the next 50 s. Each enters the queue,
polls as the server says (poll_after_seconds; 429 and 503 at their Retry-After), and once
admitted reads the seat map, holds 1-4 seats (the better grades first, another try on a
conflict) and pays; 10 % cancel after paying, 10 % never pay (most hold and let the hold
expire, some never come back once admitted).

The crowd is onsale_large_crowd.py, an asyncio process of its own; the analysis (admission
order, the shuffle before opening, the ETAs) is onsale_large_analysis.py. This module seeds
the data, runs the crowd while it watches the seats and the queue, and then checks the
database and reports. Not in the default `bin/bench` run (up to ~20 minutes on the current
code): `bin/bench --onsale-large`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import resource
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import LOGS, VENV, log
from bench.harness.checks import check, invariant_checks
from bench.harness.code import loadavg
from bench.harness.cpu import cpu_delta
from bench.harness.data import create_concert, create_customers, seat_blocks
from bench.harness.logs import log_offset
from bench.harness.processes import System
from bench.queue_sim import poll_bound
from bench.rows import onsale_large_analysis as analysis
from bench.rows.onsale import database_outcome, log_problems, sale_checks, sale_sample

ROWS = ("on-sale large",)
CROWD = Path(__file__).resolve().parent / "onsale_large_crowd.py"
EMAIL_PREFIX = "crowd-"

CUSTOMERS = 20_000
SEATS = 2_000
# From the opening; the run ends earlier (AFTER_SOLD_OUT_SECONDS). The current code took more
# than 900 s to sell out (docs/performance.md): polls fill the server.
CAP_SECONDS = 1200
CONNECTIONS = 32  # the crowd's keep-alive connections to nginx, as wrk's in the other rows

# Arrivals, as shares of the crowd over seconds from the opening.
ARRIVALS = ((0.05, -20.0, 0.0), (0.50, 0.0, 10.0), (0.45, 10.0, 60.0))
START_DELAY_SECONDS = 5.0  # from writing the plan to the first arrival (the crowd's start-up)
# What each customer means to do once admitted; plans are drawn at random with these shares.
PLANS = (("pay", 0.80), ("cancel", 0.10), ("walk away", 0.07), ("no-show", 0.03))

# The queue, sized for a server that keeps up. 2,000 seats take ~1,000 admissions (2.5 seats a
# buyer, a fifth of the admitted not buying); at 600 a minute (10 a second, the pace of a big
# Korean on-sale's waiting room) that is under 2 minutes, and the walked-away holds come back
# a minute later: a sale of a few minutes. 400 shopping at once fill in the first 40 s and
# are a fifth of the buyers the seats need: enough contention for the good seats to matter,
# not the whole crowd on one seat map. With answers in milliseconds a buyer is done in
# seconds and admission stays rate-bound. On the current code the waiting customers' polls
# (20,000 every 3 s asked for, ~500 a second served) fill the server, every call waits tens
# of seconds for its turn, the slots stay taken for minutes, and the same sale takes far
# longer (docs/performance.md). Both scale with --onsale-large-seats.
MAX_ACTIVE_PER_2000_SEATS = 400
ADMIT_PER_MINUTE_PER_2000_SEATS = 600
QUEUE = {
    "queue_admitted_minutes": 5,  # longer than anyone needs to shop here, even at 20 s a call
    "queue_abandon_after_seconds": 300,  # the default
    "hold_minutes": 1,  # the least allowed: walked-away holds come back within the run
}
PRICES = {"VIP": 150_000, "R": 110_000}  # won; the first quarter of the rows is VIP
BOOKING_FEE = 2_000
FUNDS = 4 * (PRICES["VIP"] + BOOKING_FEE)  # each wallet, seeded: enough for any hold
SAMPLE_SECONDS = 0.5
AFTER_SOLD_OUT_SECONDS = 30  # then stop: more of the line admitted, to judge its order
POST_OPENING_BASE = 2**41  # order keys of arrivals after opening (queueing/scripts.py)
CALLS = ("enter", "status", "seat map", "hold", "pay", "cancel", "leave")


def queue_settings(
    seats: int,
    max_active: int | None,
    admit_per_minute: int | None,
    shopping_seconds: int | None = None,
) -> dict:
    scale = seats / 2000
    settings = {
        "queue_max_active": max_active or max(10, round(MAX_ACTIVE_PER_2000_SEATS * scale)),
        "queue_admit_per_minute": admit_per_minute
        or max(60, round(ADMIT_PER_MINUTE_PER_2000_SEATS * scale)),
        **QUEUE,
    }
    if shopping_seconds:  # the operator's usual shopping time (only then: older code lacks it)
        settings["queue_shopping_seconds"] = shopping_seconds
    return settings


# --- the data ----------------------------------------------------------------------------------
def prepare(
    *,
    customers: int = CUSTOMERS,
    seats: int = SEATS,
    max_active: int | None = None,
    admit_per_minute: int | None = None,
    shopping_seconds: int | None = None,
) -> dict:
    """The crowd's accounts (bulk: users, tokens, wallets with FUNDS and their ledger line), and
    a published concert whose sale opens only when the crowd comes (run() sets it), with one
    performance of `seats` seats in rows of 10."""
    from concerts.models import Concert
    from concerts.services import seat_map_generate

    if seats < 20 or seats % 10:
        raise ValueError(f"on-sale large seats: a multiple of 10, at least 20 (not {seats})")
    started = time.monotonic()
    people = create_customers(customers, prefix=EMAIL_PREFIX)
    _fund_wallets([uid for uid, _ in people])
    settings = queue_settings(seats, max_active, admit_per_minute, shopping_seconds)
    concert = create_concert("On-sale at scale", **settings)
    # Not on sale until the crowd is there: Celery's ticks leave it alone until then.
    Concert.objects.filter(id=concert.id).update(
        sale_opens_at=datetime.now(UTC) + timedelta(days=1)
    )
    schedule = concert.schedules.get()
    blocks = seat_blocks(seats, price=PRICES["R"], vip_price=PRICES["VIP"], row_width=10)
    seat_map_generate(schedule_ids=[schedule.id], blocks=blocks)
    log(
        f"on-sale large: {customers} customers with tokens and wallets, concert {concert.id}, "
        f"{seats} seats, in {time.monotonic() - started:.1f} s"
    )
    return {
        "concert_id": concert.id,
        "schedule_id": schedule.id,
        "customers": people,
        "seats": seats,
        "queue": settings,
        "prices": dict(PRICES),
        "funds": FUNDS,
    }


def _fund_wallets(user_ids: list[int]) -> None:
    """A wallet with FUNDS for each, and the charge in its ledger (balance = ledger)."""
    from payments.models import LedgerEntry, Wallet

    Wallet.objects.bulk_create(
        (Wallet(user_id=uid, balance=FUNDS) for uid in user_ids), batch_size=2000
    )
    wallet_ids = Wallet.objects.filter(user_id__in=user_ids).values_list("id", flat=True)
    LedgerEntry.objects.bulk_create(
        (
            LedgerEntry(wallet_id=wid, kind="charge", amount=FUNDS, balance_after=FUNDS)
            for wid in wallet_ids.iterator()
        ),
        batch_size=2000,
    )


def arrival_plan(customers: list, rng: random.Random) -> list[list]:
    """[user id, token, arrival (s from opening), plan, seats wanted] of each customer: the
    shares of ARRIVALS, uniform within each span, in a random order of customers."""
    people = list(customers)
    rng.shuffle(people)
    times: list[float] = []
    for i, (share, start, end) in enumerate(ARRIVALS):
        n = len(people) - len(times) if i == len(ARRIVALS) - 1 else round(share * len(people))
        times += [rng.uniform(start, end) for _ in range(n)]
    names, weights = zip(*PLANS, strict=True)
    return [
        [uid, token, round(at, 3), rng.choices(names, weights)[0], rng.randint(1, 4)]
        for (uid, token), at in zip(people, times, strict=True)
    ]


# --- the run -----------------------------------------------------------------------------------
def run(
    ctx: dict,
    system: System,
    *,
    scratch: Path,
    cap_seconds: int = CAP_SECONDS,
    connections: int = CONNECTIONS,
    seed: int = 1,
) -> dict:
    from django.db import connections as db_connections

    from concerts.models import Concert

    opens_at = time.time() + START_DELAY_SECONDS - ARRIVALS[0][1]
    Concert.objects.filter(id=ctx["concert_id"]).update(
        sale_opens_at=datetime.fromtimestamp(opens_at, UTC)
    )
    plan = {
        "base_url": system.url,
        "concert_id": ctx["concert_id"],
        "schedule_id": ctx["schedule_id"],
        "opens_at": opens_at,
        "connections": connections,
        "seed": seed,
        "customers": arrival_plan(ctx["customers"], random.Random(seed)),
    }
    plan_path, result_path = scratch / "crowd-plan.json", scratch / "crowd-result.json"
    plan_path.write_text(json.dumps(plan))
    logs = {"gunicorn": system.gunicorn.log_path, "celery": system.celery.log_path}
    offsets = {name: log_offset(path) for name, path in logs.items()}
    crowd_log = LOGS / "onsale-large-crowd.log"
    log(
        f"on-sale large: {len(plan['customers'])} customers, {ctx['seats']} seats, "
        f"{ctx['queue']['queue_max_active']} shopping at once, "
        f"{ctx['queue']['queue_admit_per_minute']} admitted a minute; opening in "
        f"{opens_at - time.time():.0f} s; log {crowd_log}"
    )
    cpu_before, self_before = system.cpu.snapshot(), _self_cpu()
    with crowd_log.open("ab") as out:
        proc = subprocess.Popen(
            [str(VENV / "python"), str(CROWD), str(plan_path), str(result_path)],
            cwd=scratch,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            watch = _watch(proc, ctx, opens_at, cap_seconds)
        finally:
            _stop(proc)
    cpu_after, self_after = system.cpu.snapshot(), _self_cpu()
    if not result_path.exists():
        raise RuntimeError(f"the crowd wrote no result; see {crowd_log}")
    crowd = json.loads(result_path.read_text())
    admissions = _admissions(ctx, opens_at)
    db = database_outcome(ctx, EMAIL_PREFIX)
    db_connections.close_all()
    result = summarise(ctx, crowd, admissions, db, watch, connections=connections)
    result["cpu"] = _cpu(cpu_before, cpu_after, self_after - self_before, crowd)
    result["logs"] = {name: log_problems(path, offsets[name]) for name, path in logs.items()}
    result["server_errors"] = _server_errors(result["calls"], result["logs"])
    result["checks"] = _checks(ctx, db, result, admissions)
    result["loadavg_at_end"] = loadavg()
    _keep_raw(crowd, admissions, watch)
    failed = [c for c in result["checks"] if not c["ok"]]
    log(
        f"on-sale large: sold out at {result['sold_out_s']} s, "
        f"{len(result['checks']) - len(failed)} of {len(result['checks'])} checks pass"
        + "".join(f"\n    FAILED {c['check']}: {c['value']} ({c['expected']})" for c in failed)
    )
    return result


def _watch(proc: subprocess.Popen, ctx: dict, opens_at: float, cap_seconds: int) -> dict:
    """Sample the seats and the queue until the crowd is done, AFTER_SOLD_OUT_SECONDS after
    the sell-out, or at the cap."""
    watch = {"timeline": [], "sold_out_s": None, "ended_by": "every customer done"}
    while proc.poll() is None:
        tick = time.monotonic()
        sample = sale_sample(ctx, opens_at)
        watch["timeline"].append(sample)
        if watch["sold_out_s"] is None and sample["sold"] >= ctx["seats"]:
            watch["sold_out_s"] = sample["t"]
            log(f"on-sale large: sold out {sample['t']:.1f} s after opening")
        if (
            watch["sold_out_s"] is not None
            and sample["t"] > watch["sold_out_s"] + AFTER_SOLD_OUT_SECONDS
        ):
            watch["ended_by"] = f"stopping the crowd {AFTER_SOLD_OUT_SECONDS} s after the sell-out"
            break
        if sample["t"] > cap_seconds:
            watch["ended_by"] = f"the cap ({cap_seconds} s after opening)"
            break
        time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - tick)))
    watch["timeline"].append(sale_sample(ctx, opens_at))
    return watch


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM: the crowd stops its customers and writes its result (20,000 customers' worth
    takes a few seconds); SIGKILL to its session if it does not."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _admissions(ctx: dict, opens_at: float) -> list[dict]:
    """Every admission of the concert in the order they were made (a tick admits in line
    order, and its rows are inserted in that order)."""
    from queueing.models import QueueAdmission

    rows = (
        QueueAdmission.objects.filter(concert_id=ctx["concert_id"])
        .order_by("admitted_at", "id")
        .values_list("user_id", "order", "admitted_at", "admitted_until", "ended_at")
    )
    return [
        {
            "user": uid,
            "order": order,
            "at": round(at.timestamp() - opens_at, 3),
            "until": round(until.timestamp() - opens_at, 3),
            "ended": None if ended is None else round(ended.timestamp() - opens_at, 3),
        }
        for uid, order, at, until, ended in rows
    ]


# --- the numbers -------------------------------------------------------------------------------
def summarise(
    ctx: dict, crowd: dict, admissions: list[dict], db: dict, watch: dict, *, connections: int
) -> dict:
    """The row's result from what the crowd, the database and the watcher saw."""
    q = ctx["queue"]
    customers = crowd["customers"]
    rank = {}
    admitted_at = {}
    for a in admissions:
        rank.setdefault(a["user"], len(rank))
        admitted_at.setdefault(a["user"], a["at"])
    entered = [c for c in customers if "order" in c]
    # Still in line at the end, or admitted: customers whose place the order is judged on
    # (not those whose entry ended while they waited: an error the checks report).
    in_line = [c for c in entered if c["user"] in rank or c.get("outcome") == "not done at the end"]
    after = [(c["order"], rank.get(c["user"])) for c in in_line if c["order"] >= POST_OPENING_BASE]
    before = [c for c in in_line if c["order"] < POST_OPENING_BASE]
    before_order = analysis.admission_order([(c["order"], rank.get(c["user"])) for c in before])
    # The pre-opening arrivals' ranks: admitted first in admission order, then the line's.
    before_ranked = sorted(
        before, key=lambda c: (c["user"] not in rank, rank.get(c["user"], 0), c["order"])
    )
    shuffle = analysis.shuffle_uniformity([(c["arrived"], i) for i, c in enumerate(before_ranked)])
    shown = [(c["user"], c["entered"], c["entry"][1]) for c in entered] + [
        (c["user"], t, eta) for c in entered for t, eta, _, state in c["polls"] if state != "a"
    ]
    samples = [(s["t"], s["admitted"]) for s in watch["timeline"]]
    all_taken_at = _milestones(watch["timeline"], ctx["seats"]).get("all taken")
    eta = analysis.eta_error(
        shown, admitted_at, samples, q["queue_max_active"], all_taken_at=all_taken_at
    )
    # What an operator reads off the queue panel after the sale (the usual shopping time for
    # the next one): the admitted sessions that ended, and how long they lasted.
    session_lengths = [a["ended"] - a["at"] for a in admissions if a["ended"] is not None]
    # Still running when the run stopped: counted to the end of their admitted session (the
    # walked-away ones will run to it; a few shoppers would have left sooner).
    to_their_end = [
        (a["ended"] if a["ended"] is not None else a["until"]) - a["at"] for a in admissions
    ]
    end = crowd["stopped_s"]
    polls_start = math.floor(crowd["started_s"])
    polls = analysis.per_second(crowd["status_answered_at"], start=polls_start, end=end)
    outcomes: dict[str, int] = {}
    for c in customers:
        outcomes[c.get("outcome") or "not arrived"] = (
            outcomes.get(c.get("outcome") or "not arrived", 0) + 1
        )
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": len(customers),
        "seats": ctx["seats"],
        "settings": {
            "queue": q,
            "arrivals": [
                {"share": share, "from_s": start, "to_s": end_s} for share, start, end_s in ARRIVALS
            ],
            "plans": dict(PLANS),
            "prices": ctx["prices"],
            "funds": ctx["funds"],
            "connections": connections,
        },
        "ended_by": watch["ended_by"]
        if crowd["ended_by"] != "every customer done"
        else crowd["ended_by"],
        "duration_s": end,
        "sold_out_s": watch["sold_out_s"],
        "milestones_s": _milestones(watch["timeline"], ctx["seats"]),
        "sold_at_end": db["sold"],
        "reservations": db["reservations"],
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        "admitted": len(rank),
        "calls": _calls(crowd, end - crowd["started_s"]),
        "admission_order_exact": analysis.admission_order(after)["exact"] if after else None,
        "admission_order": {
            "after_opening": analysis.admission_order(after),
            "before_opening_follows_the_shuffle": before_order,
            "entries_ended_while_waiting": len(entered) - len(in_line),
        },
        "shuffle_p_value": shuffle["p_value"],
        "shuffle": shuffle,
        "eta_error": eta,
        "eta_on_entry": analysis.eta_error(
            [(c["user"], c["entered"], c["entry"][1]) for c in entered],
            admitted_at,
            samples,
            q["queue_max_active"],
            all_taken_at=all_taken_at,
        ),
        "sessions": {
            "ended": len(session_lengths),
            "mean_s": round(sum(session_lengths) / len(session_lengths), 1)
            if session_lengths
            else None,
            "p50_s": analysis.percentile(session_lengths, 0.5),
            "p90_s": analysis.percentile(session_lengths, 0.9),
            "all": len(to_their_end),
            "all_mean_s": round(sum(to_their_end) / len(to_their_end), 1) if to_their_end else None,
        },
        "polls_per_s_max": max(polls, default=0),
        "polls_per_s_max_10s": max(
            (sum(polls[i : i + 10]) / 10 for i in range(max(1, len(polls) - 9))), default=0
        ),
        # The line's stated bound (docs/queue.md, "Polling") at its longest in the run.
        "poll_bound": round(
            poll_bound(
                admit_per_minute=q["queue_admit_per_minute"],
                waiting=max((s["waiting"] for s in watch["timeline"]), default=0),
                max_active=q["queue_max_active"],
                cap_s=_poll_cap_seconds(ctx["concert_id"]),
            ),
            1,
        ),
        "polls_per_s_from_s": polls_start,  # polls_per_s[i]: second polls_start + i
        "polls_per_s": polls,
        "max_admitted_at_once": {
            "sampled": max((s["admitted"] for s in watch["timeline"]), default=0),
            "from_admissions": analysis.max_overlap(
                (a["at"], a["ended"] if a["ended"] is not None else a["until"]) for a in admissions
            ),
        },
        "timeline": watch["timeline"],
        "generator": {
            "kind": "asyncio, standard library HTTP/1.1 client (bench/rows/onsale_large_crowd.py)",
            "cpu_seconds": crowd["cpu_seconds"],
            "connections_opened": crowd["connections_opened"],
            "stale_connection_retries": crowd["stale_connection_retries"],
        },
    }


def _calls(crowd: dict, seconds: float) -> dict:
    """Per call kind: count, req/s, latency (with the wait for a pooled connection: what the
    customer saw) and that wait alone, the answers, 5xx and 429."""
    out = {}
    for kind in [k for k in CALLS if k in crowd["answers"]] + sorted(
        set(crowd["answers"]) - set(CALLS)
    ):
        answers = crowd["answers"][kind]
        latencies = [ms / 1000 for ms in crowd["latencies_ms"].get(kind, [])]
        waits = [ms / 1000 for ms in crowd["slot_waits_ms"].get(kind, [])]
        out[kind] = {
            **analysis.latency_summary(latencies),
            "requests_per_s": round(len(latencies) / max(1.0, seconds), 1),
            "connection_wait_p50_ms": analysis.latency_summary(waits)["p50_ms"],
            "5xx": sum(n for key, n in answers.items() if key[:1] == "5"),
            "429": sum(n for key, n in answers.items() if key[:3] == "429"),
            "answers": dict(sorted(answers.items())),
        }
    return out


def _milestones(timeline: list[dict], seats: int) -> dict:
    marks: dict[str, float] = {}
    for sample in timeline:
        for share, name in (
            (1, "first sale"),
            (50, "50% sold"),
            (90, "90% sold"),
            (100, "sold out"),
        ):
            threshold = 1 if share == 1 else seats * share / 100
            if name not in marks and sample["sold"] >= threshold:
                marks[name] = sample["t"]
        if "all taken" not in marks and sample["sold"] + sample["held"] >= seats:
            marks["all taken"] = sample["t"]
    return marks


def _cpu(before: dict, after: dict, harness_seconds: float, crowd: dict) -> dict:
    """Cores per process group; the crowd (the load generator) shares the two cores."""
    cpu = cpu_delta(before, after, requests=sum(len(v) for v in crowd["latencies_ms"].values()))
    seconds = after["time"] - before["time"]
    cpu["crowd_cores"] = round(crowd["cpu_seconds"] / seconds, 2)
    cpu.pop("wrk_cores", None)  # (the crowd is the child process that ended: the same time)
    cpu["harness_sampler_cores"] = round(harness_seconds / seconds, 2)
    cpu["other_cores"] = round(max(0.0, cpu["other_cores"] - cpu["harness_sampler_cores"]), 2)
    cpu["seconds"] = round(seconds, 1)
    return cpu


def _server_errors(calls: dict, logs: dict) -> dict:
    return {
        "5xx": sum(c["5xx"] for c in calls.values()),
        "tracebacks": sum(p["tracebacks"] for p in logs.values()),
        "error_lines": sum(p["error_lines"] for p in logs.values()),
        "worker_timeouts": logs["gunicorn"]["worker_timeouts"],
    }


def _checks(ctx: dict, db: dict, result: dict, admissions: list[dict]) -> list[dict]:
    unexpected = {
        f"{kind}: {key}": n
        for kind, c in result["calls"].items()
        for key, n in c["answers"].items()
        if key in ("connection error", "timeout")
    }
    crowd_errors = {
        k: n for k, n in result["outcomes"].items() if k.startswith(("error", "crowd error"))
    }
    most = result["max_admitted_at_once"]
    return [
        *invariant_checks(),
        *sale_checks(db),
        check("5xx answers", result["server_errors"]["5xx"], 0),
        check("requests without an answer (connection errors, timeouts)", unexpected, {}),
        check(
            "customers whose journey went wrong (an answer the crowd does not expect)",
            crowd_errors,
            {},
        ),
        # Redis's own count (the sampler): the admissions' rows cannot say it exactly, their
        # times are taken when a tick or a payment starts, not when the script frees or fills
        # the slot (max_admitted_at_once.from_admissions, a few above max_active at times).
        check(
            "most customers shopping at once (Redis's count, sampled every 0.5 s) <= max_active",
            most["sampled"] <= ctx["queue"]["queue_max_active"],
            True,
        ),
        # The bound is on the line's rate; one second's count also carries the jitter of
        # polls delayed a moment and answered together (a 2,000-customer run: 31, 70, 42 in
        # three seconds around a bound of 67), so the rate is taken over 10 s. The busiest
        # single second is reported beside it.
        check(
            "most polls a second over 10 s (served) <= the line's stated bound (docs/queue.md)",
            result["polls_per_s_max_10s"],
            f"<= {result['poll_bound']}",
            ok=result["polls_per_s_max_10s"] <= result["poll_bound"],
        ),
        *(
            check(
                f"tracebacks and ERROR lines in the {name} log during the run",
                problems["tracebacks"] + problems["error_lines"],
                0,
            )
            for name, problems in result["logs"].items()
        ),
    ]


def _keep_raw(crowd: dict, admissions: list[dict], watch: dict) -> None:
    """Every customer's record and every admission, for a look after the run (not in git)."""
    path = LOGS / "onsale-large-raw.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(
            {
                "customers": crowd["customers"],
                "admissions": admissions,
                "timeline": watch["timeline"],
            },
            f,
            separators=(",", ":"),
        )
    log(f"on-sale large: every customer's record in {path}")


# --- markdown ----------------------------------------------------------------------------------
def _n(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}" if value < 0 else f"{value:.0%}"


def _shopping(q: dict) -> str:
    seconds = q.get("queue_shopping_seconds")
    return f"{seconds} s" if seconds else "not given (70 % of the session)"


def markdown(result: dict) -> str:
    q = result["settings"]["queue"]
    cpu = result["cpu"]
    eta = result["eta_error"]
    order = result["admission_order"]["after_opening"]
    shuffle = result["shuffle"]
    marks = result["milestones_s"]
    sessions = result.get("sessions", {})
    out = [
        f"## On-sale at scale: {result['customers']:,} customers, {result['seats']:,} seats "
        f"({result['when']})",
        "",
        f"- **sold out {_n(result['sold_out_s'])} s after opening** (first sale "
        f"{_n(marks.get('first sale'))} s, half {_n(marks.get('50% sold'))} s, 90 % "
        f"{_n(marks.get('90% sold'))} s, every seat sold or held {_n(marks.get('all taken'))} s); "
        f"{result['sold_at_end']:,} sold at the end; the run took {result['duration_s']:.0f} s from "
        f"opening, ended by {result['ended_by']}",
        f"- queue: {q['queue_max_active']} shopping at once, {q['queue_admit_per_minute']} admitted "
        f"a minute, sessions of {q['queue_admitted_minutes']} min, holds of {q['hold_minutes']} min, "
        f"usual shopping time {_shopping(q)}; "
        f"{result['admitted']:,} admitted; at once at most {result['max_admitted_at_once']['sampled']} "
        f"(sampled), {result['max_admitted_at_once']['from_admissions']} (from the admissions)",
        "- outcomes: " + ", ".join(f"{k} {v:,}" for k, v in result["outcomes"].items()),
        f"- **admission order exact: {result['admission_order_exact']}** ({order['admitted']:,} of "
        f"{order['customers']:,} post-opening customers admitted, {order['inversions']} inversions, "
        f"{order['skipped']} skipped); pre-opening shuffle: chi-square {_n(shuffle['chi2'])} on "
        f"{shuffle['dof']} dof over {shuffle['customers']:,} customers, **p = {shuffle['p_value']}**",
        f"- **ETA error** (|shown - actual| / actual over {eta['polls']:,} answers): p50 "
        f"{_pct(eta['p50'])}, p90 {_pct(eta['p90'])}, signed median {_pct(eta['signed_p50'])}, "
        f"optimistic {_pct(eta['optimistic_share'])}; on entry: p50 "
        f"{_pct(result['eta_on_entry']['p50'])}, signed median "
        f"{_pct(result['eta_on_entry']['signed_p50'])}; waits under "
        f"{_n(eta['short_waits']['under_s'])} s judged in seconds: "
        f"{eta['short_waits']['answers']:,} answers, |error| p50 "
        f"{_n(eta['short_waits']['abs_error_p50_s'])} s, p90 "
        f"{_n(eta['short_waits']['abs_error_p90_s'])} s",
        f"- admitted sessions that ended: {sessions.get('ended', 0):,}, mean "
        f"{_n(sessions.get('mean_s'))} s, p50 {_n(sessions.get('p50_s'))} s, p90 "
        f"{_n(sessions.get('p90_s'))} s; all {sessions.get('all', 0):,}, those still running "
        f"counted to their end: mean {_n(sessions.get('all_mean_s'))} s (what the queue panel "
        "shows once they have ended: the usual shopping time for the next sale, "
        "`--onsale-large-shopping-seconds`)",
        "- polls: at most "
        f"{result['polls_per_s_max']:,} a second ({_n(result['polls_per_s_max_10s'])} over 10 s); "
        f"bound stated by the server: {_n(result['poll_bound'])}",
        f"- CPU (cores of 2, {cpu['seconds']:.0f} s): machine {cpu['machine_busy_cores']}, "
        f"gunicorn {cpu['gunicorn_cores']}, nginx {cpu['nginx_cores']}, celery {cpu['celery_cores']}, "
        f"mariadb {cpu['mariadb_cores']}, redis {cpu['redis_cores']}, **the crowd "
        f"{cpu['crowd_cores']}**, the sampler {cpu['harness_sampler_cores']}, other "
        f"{cpu['other_cores']}; gunicorn {cpu['gunicorn_cpu_ms_per_request']} ms a request",
        "",
        "| phase | answers | p50 | p90 | signed p50 | optimistic |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for phase, s in eta["by_phase"].items():
        out.append(
            f"| {phase} | {s['polls']:,} | {_pct(s['p50'])} | {_pct(s['p90'])} | "
            f"{_pct(s['signed_p50'])} | {_pct(s['optimistic_share'])} |"
        )
    out += [
        "",
        "| call | requests | req/s | p50 ms | p95 ms | p99 ms | waiting for a connection p50 ms | 5xx | 429 | answers |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for kind, c in result["calls"].items():
        answers = ", ".join(f"{k}: {n:,}" for k, n in c["answers"].items())
        out.append(
            f"| {kind} | {c['count']:,} | {c['requests_per_s']} | {_n(c['p50_ms'])} | "
            f"{_n(c['p95_ms'])} | {_n(c['p99_ms'])} | {_n(c['connection_wait_p50_ms'])} | "
            f"{c['5xx']} | {c['429']} | {answers} |"
        )
    out += [
        "",
        "| s after opening | polls/s served | waiting | shopping | sold | held |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    polls = result["polls_per_s"]
    for sample in result["timeline"][:: max(1, int(30 / SAMPLE_SECONDS))]:
        second = math.floor(sample["t"]) - result["polls_per_s_from_s"]
        window = polls[max(0, second - 5) : second + 5]
        rate = sum(window) / len(window) if window else 0
        out.append(
            f"| {sample['t']:.0f} | {rate:,.0f} | {sample['waiting']:,} | {sample['admitted']:,} | "
            f"{sample['sold']:,} | {sample['held']:,} |"
        )
    failed = [c for c in result["checks"] if not c["ok"]]
    out += [
        "",
        f"Checks ({len(result['checks']) - len(failed)} of {len(result['checks'])} pass):",
        "",
    ]
    out += [
        f"- {'ok' if c['ok'] else '**FAILED**'}: {c['check']}: {c['value']} ({c['expected']})"
        for c in result["checks"]
    ]
    for name, problems in result["logs"].items():
        for line in problems["samples"]:
            out.append(f"- {name} log: `{line[:200]}`")
    return "\n".join(out)


def _poll_cap_seconds(concert_id: int) -> int:
    from concerts.models import Concert
    from queueing.selectors import poll_cap_seconds

    return poll_cap_seconds(Concert.objects.get(id=concert_id))
