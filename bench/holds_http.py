"""HTTP benchmark of holds, payments and wallet charges under gunicorn in the production shape,
driven by wrk, with the money and seat invariants checked in the database after every run.

    /work/main/.venv/bin/python bench/holds_http.py            # ~1.5 minutes
    /work/main/.venv/bin/python bench/holds_http.py --profile  # + py-spy: where the CPU goes

Every request is a write that must not repeat, so each run sends a prepared list once
(wrk/list.lua) and ends when the list does (wrk -d is only a cap):
  hold, contended    POST /api/v1/reservations      distinct customers, each admitted from the
                                                    queue, 1-2 random seats of a 50-seat schedule
  hold, uncontended  POST /api/v1/reservations      distinct customers, a distinct seat each of a
                                                    20,000-seat schedule
  payment            POST /api/v1/reservations/{id}/payment   distinct customers, each with a
                                                    funded wallet and one hold made beforehand
  wallet charge      POST /api/v1/wallet/charges    the payment customers again, 1-2 charges each
Each request has its own Idempotency-Key where the endpoint takes one. Prints a markdown table
and the checks; everything goes to bench/results/holds_http.json.

It sets everything up itself and removes only what it made: the MariaDB database
`concerts_bench_holds` (refused if it already exists), Redis keys under a random prefix
`bench-<hex>`, and the gunicorn it started. The machinery is shared with queue_http.py
(_harness.py); see bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    RESULTS,
    ROOT,
    VENV,
    BenchRun,
    Gunicorn,
    cpu_delta,
    cpu_snapshot,
    create_concert,
    create_customers,
    loadavg,
    log,
    mysql_connect,
    parse_wrk,
    require_wrk,
    run_wrk,
    write_lines,
)
from queue_http import DEFAULT_WORKERS  # 2 on the 2-core machine: see the numbers there

LIST_LUA = ROOT / "bench" / "wrk" / "list.lua"
CYCLE_LUA = ROOT / "bench" / "wrk" / "cycle.lua"
DB_NAME = "concerts_bench_holds"

# Requests per run, sized for ~15 s each at the rates of the 2-core machine (2 workers, quiet:
# contended holds ~310 req/s, uncontended ~230, payments ~200, charges ~340). A run ends when
# its list does; the cap (wrk -d) keeps a slow run from taking longer than that.
CONTENDED = 4_500
UNCONTENDED = 3_500
PAYMENTS = 3_000  # each needs a charge and a hold made beforehand: ~7 ms each, in 3 threads
CHARGES = 5_000  # spread over the payment customers, one or two each
CONTENDED_SEATS = 50
UNCONTENDED_SEATS = 20_000  # concerts.services.MAX_SEATS_PER_SCHEDULE
CAP_SECONDS = 40
PRICE = 50_000  # won per seat
FUNDS = 200_000  # each payment customer's wallet before the run
CHARGE = 10_000  # per charge request
PREP_THREADS = 3  # making the payment customers' holds and charges beforehand

# Server-wide InnoDB counters, read before and after each run (other databases on the server
# count too).
INNODB = {
    "Innodb_deadlocks": "deadlocks",
    "Innodb_row_lock_waits": "row_lock_waits",
    "Innodb_row_lock_time": "row_lock_wait_ms",
    "Handler_rollback": "rollbacks",
}


# --- data ------------------------------------------------------------------------------------
def sale_concert(title: str, seat_blocks: list):
    """A concert whose queue lets everyone in at once, with one schedule of these seats."""
    from concerts.services import seat_map_generate

    concert = create_concert(
        title,
        queue_max_active=1_000_000,
        queue_admit_per_minute=3_000_000,  # the token bucket holds a 2 s burst: 100,000
        queue_admitted_minutes=120,
        hold_minutes=60,
    )
    schedule = concert.schedules.get()
    seat_map_generate(schedule_ids=[schedule.id], blocks=seat_blocks)
    seat_ids = list(schedule.seats.order_by("id").values_list("id", flat=True))
    return concert, schedule, seat_ids


def seat_blocks(n: int) -> list:
    """n seats (a multiple of 10 up to 100 rows x 100 seats per section), sections A, B, ..."""
    from concerts.services import SeatBlock

    blocks, section = [], 0
    while n > 0:
        per_row = 100 if n >= 100 else 10
        rows = min(100, n // per_row)
        blocks.append(SeatBlock(chr(ord("A") + section), "R", PRICE, rows, per_row))
        n -= rows * per_row
        section += 1
    return blocks


def admit(concert, user_ids: list[int]) -> dict[int, str]:
    """Enter each customer in the concert's queue (the real ENTER script, pipelined) and let
    them all in with one admission tick. Returns their queue tokens."""
    from django.utils import timezone

    from queueing.redis_queue import queue_redis, run_script, to_ms
    from queueing.services import queue_admit_tick
    from queueing.tokens import token_issue

    client, now = queue_redis(), to_ms(timezone.now())
    for start in range(0, len(user_ids), 1000):
        pipe = client.pipeline(transaction=False)
        for uid in user_ids[start : start + 1000]:
            run_script("ENTER", concert.id, [uid, f"{uid:016x}", now, 0, 0], client=pipe)
        pipe.execute()
    tick = queue_admit_tick(concert=concert)
    if tick.admitted != len(user_ids) or tick.waiting != 0:
        raise RuntimeError(f"admitted {tick.admitted} of {len(user_ids)} ({tick})")
    return {
        uid: token_issue(concert_id=concert.id, user_id=uid, nonce=f"{uid:016x}")
        for uid in user_ids
    }


def in_threads(work, items: list, threads: int) -> list:
    """work(item) for every item, in a few threads, each with its own database connection."""
    from django.db import connection

    results: list = [None] * len(items)
    errors: list = []

    def run(offset: int) -> None:
        try:
            for i in range(offset, len(items), threads):
                results[i] = work(items[i])
        except Exception as error:  # reported below, after the other threads
            errors.append(error)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results


def prepare_payments(schedule, seat_ids: list[int], customers, tokens: dict[int, str]) -> list:
    """Each customer: a wallet charged with FUNDS and a hold of one seat, by the services."""
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

    return in_threads(one, list(zip(customers, seat_ids, strict=False)), PREP_THREADS)


def write_requests(path: Path, rows) -> Path:
    """A request list for wrk/list.lua: (method, path, body or None, {header: value})."""
    with path.open("w") as f:
        for method, url_path, body, headers in rows:
            fields = [
                method,
                url_path,
                "-" if body is None else json.dumps(body, separators=(",", ":")),
            ]
            fields += [f"{name}: {value}" for name, value in headers.items()]
            f.write("\t".join(fields) + "\n")
    return path


def hold_request(schedule_id: int, seats: list[int], bearer: str, queue_token: str):
    return (
        "POST",
        "/api/v1/reservations",
        {"schedule_id": schedule_id, "seat_ids": seats},
        {
            "Authorization": f"Bearer {bearer}",
            "X-Queue-Token": queue_token,
            "Content-Type": "application/json",
        },
    )


def request_lists(tmp: Path, rng: random.Random, *, contended, uncontended, paying, charges):
    """The four prepared lists (wrk/list.lua), by run name. `contended` and `uncontended`:
    (schedule id, its seat ids, customers, their queue tokens); `paying`: (user id, bearer,
    reservation id) of customers with a hold and a funded wallet; `charges`: how many."""
    c_schedule, c_seats, c_customers, c_tokens = contended
    u_schedule, u_seats, u_customers, u_tokens = uncontended

    def bearer_and_key(bearer: str) -> dict:
        return {"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())}

    return {
        "hold, contended": write_requests(
            tmp / "hold-contended.tsv",
            (
                hold_request(
                    c_schedule,
                    sorted(rng.sample(c_seats, rng.choice((1, 2)))),
                    bearer,
                    c_tokens[uid],
                )
                for uid, bearer in c_customers
            ),
        ),
        "hold, uncontended": write_requests(
            tmp / "hold-uncontended.tsv",
            (
                hold_request(u_schedule, [seat], bearer, u_tokens[uid])
                for (uid, bearer), seat in zip(
                    u_customers, rng.sample(u_seats, len(u_customers)), strict=True
                )
            ),
        ),
        "payment": write_requests(
            tmp / "payment.tsv",
            (
                ("POST", f"/api/v1/reservations/{reservation_id}/payment", None, bearer_and_key(b))
                for _, b, reservation_id in paying
            ),
        ),
        "wallet charge": write_requests(
            tmp / "charge.tsv",
            (
                (
                    "POST",
                    "/api/v1/wallet/charges",
                    {"amount": CHARGE},
                    {
                        **bearer_and_key(paying[i % len(paying)][1]),
                        "Content-Type": "application/json",
                    },
                )
                for i in range(charges)
            ),
        ),
    }


# --- measuring -------------------------------------------------------------------------------
def parse_list(out: str) -> dict:
    """What wrk/list.lua reports, on top of wrk's own latency numbers."""
    result = parse_wrk(out)
    result["wrk_requests_per_s"] = result["requests_per_s"]
    values = dict(re.findall(r"^BENCH (\w+) (\d+)$", out, re.M))
    codes = {
        k.replace("/", " "): int(n) for k, n in re.findall(r"^BENCH code (\S+) (\d+)$", out, re.M)
    }
    received = int(values.get("received", 0))
    seconds = (int(values.get("last_us", 0)) - int(values.get("first_us", 0))) / 1e6
    result.update(
        {
            "lines": int(values.get("lines", 0)),
            "sent": int(values.get("sent", 0)),
            "received": received,
            "fillers": int(values.get("fillers", 0)),
            "seconds": round(seconds, 2),
            # first request sent to last response received: wrk's own req/s divides by -d
            # when a run is cut by the cap, and by a little more than this otherwise
            "requests_per_s": round(received / seconds, 1) if seconds > 0 else None,
            "statuses": dict(sorted(codes.items())),
        }
    )
    return result


def innodb_counters() -> dict:
    conn = mysql_connect()
    try:
        cur = conn.cursor()
        cur.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN (" + ",".join(["%s"] * len(INNODB)) + ")",
            list(INNODB),
        )
        return {INNODB[name]: int(value) for name, value in cur.fetchall()}
    finally:
        conn.close()


class LockWaitSampler:
    """What else the database server does during a run, sampled every 50 ms on a connection of
    its own: lock waits (information_schema.INNODB_LOCK_WAITS) by table, index, wanted and held
    mode, and sessions busy on other databases. The InnoDB counters are server-wide, so when
    another database is busy (someone's test suite, say) they are not this run's alone. Waits
    much shorter than 50 ms are mostly missed; a wait seen in n samples lasted ~n x 50 ms."""

    WAITS = (
        "SELECT r.lock_table, r.lock_index, r.lock_mode, b.lock_mode "
        "FROM information_schema.INNODB_LOCK_WAITS w "
        "JOIN information_schema.INNODB_LOCKS r ON r.lock_id = w.requested_lock_id "
        "JOIN information_schema.INNODB_LOCKS b ON b.lock_id = w.blocking_lock_id"
    )
    OTHERS = (
        "SELECT DB, COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE COMMAND NOT IN ('Sleep', 'Daemon') AND ID <> CONNECTION_ID() "
        "AND (DB IS NULL OR DB <> %s) GROUP BY DB"
    )

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.samples = 0
        self.waits: dict[str, int] = {}
        self.other_busy_samples = 0
        self.other_databases: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = mysql_connect()
        try:
            cur = conn.cursor()
            while not self._stop.wait(self.interval):
                self.samples += 1
                cur.execute(self.WAITS)
                for table, index, wanted, held in cur.fetchall():
                    table = table.replace("`", "")
                    key = f"{table} {index}: {wanted} waits for {held}"
                    self.waits[key] = self.waits.get(key, 0) + 1
                cur.execute(self.OTHERS, [DB_NAME])
                busy = cur.fetchall()
                if busy:
                    self.other_busy_samples += 1
                for db, _n in busy:
                    name = db or "(no database)"
                    self.other_databases[name] = self.other_databases.get(name, 0) + 1
        finally:
            conn.close()

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def report(self) -> dict:
        ours = {k: v for k, v in self.waits.items() if k.startswith(f"{DB_NAME}.")}
        return {
            "samples": self.samples,
            "waits": dict(sorted(ours.items(), key=lambda kv: -kv[1])),
            "waits_in_other_databases": dict(
                sorted(
                    ((k, v) for k, v in self.waits.items() if k not in ours),
                    key=lambda kv: -kv[1],
                )
            ),
            "other_databases_busy_samples": self.other_busy_samples,
            "other_databases_busy": self.other_databases,
        }


LOG_PATTERNS = {
    "tracebacks": "Traceback",
    "error_lines": " ERROR ",
    "lock_conflicts": re.compile(r"Deadlock found|Lock wait timeout|\(1213|\(1205"),
    "worker_timeouts": "WORKER TIMEOUT",
    "worker_boots": "Booting worker",
    "worker_recycles": "Autorestarting worker",
}


def log_events(text: str) -> dict:
    """Counts in a slice of the gunicorn log. WARNING lines are django.request's one line per
    4xx answer (the production log level), grouped by message."""
    counts = {}
    for name, pattern in LOG_PATTERNS.items():
        if isinstance(pattern, str):
            counts[name] = text.count(pattern)
        else:
            counts[name] = len(pattern.findall(text))
    warnings: dict[str, int] = {}
    for line in text.splitlines():
        m = re.search(r" WARNING (\S+: .*)$", line)
        if m:
            message = re.sub(r"\d+", "N", m.group(1))
            warnings[message] = warnings.get(message, 0) + 1
    counts["warnings"] = dict(sorted(warnings.items(), key=lambda kv: -kv[1])[:5])
    samples = [
        line
        for line in text.splitlines()
        if " ERROR " in line or "Deadlock" in line or "Lock wait" in line or "CRITICAL" in line
    ]
    counts["error_samples"] = samples[:5]
    return counts


def measure(name: str, server: Gunicorn, lines: Path, args) -> dict:
    log(f"{name}: {len(lines.read_text().splitlines())} requests, {args.connections} connections")
    offset = server.log_path.stat().st_size
    innodb_before = innodb_counters()
    spy = RunProfiler(server, lines.with_suffix(".raw")) if args.profile else None
    before = cpu_snapshot(server.proc.pid)
    with LockWaitSampler() as sampler:
        command, out = run_wrk(
            server.url,
            LIST_LUA,
            [lines],
            threads=1,
            connections=args.connections,
            seconds=args.cap,
        )
    after = cpu_snapshot(server.proc.pid)
    profile = spy.stop() if spy else None
    innodb_after = innodb_counters()
    with server.log_path.open("rb") as f:
        f.seek(offset)
        log_text = f.read().decode(errors="replace")
    result = parse_list(out)
    row = {
        "run": name,
        "connections": args.connections,
        **result,
        "cut_by_cap": result["received"] < result["lines"],
        "cpu": cpu_delta(before, after, result["received"] + result["fillers"]),
        "innodb": {k: innodb_after[k] - innodb_before[k] for k in innodb_after},
        "lock_waits_sampled": sampler.report(),
        "gunicorn_log": log_events(log_text),
        "loadavg_after": loadavg(),
        "wrk_command": " ".join(command[:-1] + [lines.name]),
        "profile": profile,
    }
    s = row["statuses"]
    log(
        f"{name}: {row['requests_per_s']} req/s over {row['seconds']} s, p50 {row['p50_ms']} ms, "
        f"p99 {row['p99_ms']} ms, {s}, innodb {row['innodb']}, other cpu {row['cpu']['other_cores']}"
    )
    return row


# --- profile ---------------------------------------------------------------------------------
class RunProfiler:
    """py-spy over all gunicorn workers for one run (--profile), stopped when the run ends
    (_harness.Profiler runs for a fixed time): the share of request-handling samples by phase
    of the request, by layer, by function and by line of the project's code. py-spy takes CPU
    of its own on a small machine, so a profiled run's req/s and CPU ms/req are not comparable
    with an unprofiled one."""

    def __init__(self, server: Gunicorn, raw: Path):
        self.raw = raw
        py_spy = VENV / "py-spy"
        if not py_spy.exists():
            log("no .venv/bin/py-spy: skipping the profile (.venv/bin/pip install py-spy)")
            self.proc = None
            return
        self.proc = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(server.proc.pid),
                "--subprocesses",
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                "200",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)  # py-spy attaches to every worker before the first request

    def stop(self) -> dict | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)  # py-spy writes the file on SIGINT
        _, err = self.proc.communicate(timeout=60)
        if not self.raw.exists():
            log(f"py-spy produced nothing: {err.strip()[-500:]}")
            return None
        return summarize_profile(self.raw.read_text())


# Each sample goes to the first phase whose marker is anywhere in its stack (so the order
# matters: the innermost named phases first).
PHASES = [
    ("is_usable", "MySQL ping before the first query (CONN_HEALTH_CHECKS)"),
    ("authenticate (rest_framework/authentication.py", "token authentication"),
    ("queue_require_admitted", "queue token check (queueing)"),
    ("schedule_get", "schedule lookup"),
    ("_claim (payments/idempotency.py", "Idempotency-Key: claim"),
    ("_drop_claim", "Idempotency-Key: drop a failed claim"),
    ("reservation_hold", "service: reservation_hold"),
    ("payment_create", "service: payment_create"),
    ("wallet_charge", "service: wallet_charge"),
    ("reservation_cancel", "service: reservation_cancel"),
    ("reservation_get_for_user", "re-reading the reservation for the answer"),
    ("_work_and_record", "Idempotency-Key: lock the claim, record the answer, commit"),
    ("handle_exception", "error answer (exception handler)"),
    ("serializers.py", "DRF serializers (request validation, answer)"),
    ("renderers.py", "JSON rendering"),
    ("logging/", "logging"),
    ("close_old_connections", "request start/end signals (connection handling)"),
]
# Each sample goes to the layer of its innermost frame that names one: where the time is spent
# (Connection.query and the other MySQLdb frames include waiting for the database's answer).
LAYERS = [
    ("MySQLdb/", "MySQL driver: round trips and waiting for the answer"),
    ("redis/", "Redis client: round trips"),
    ("django/db/models/sql/", "ORM: building and compiling SQL"),
    ("django/db/", "ORM: querysets, models, transactions"),
    ("rest_framework/", "DRF"),
    ("django/", "Django: request, middleware, response"),
    ("logging/", "logging"),
    ("gunicorn/", "gunicorn"),
]


def _frame(frame: str) -> str:
    """`function (path:line)` -> `function (package/module.py)`. py-spy already shortens paths
    under sys.path; what is left absolute (the code snapshot, say) keeps its last two parts."""
    m = re.fullmatch(r"(.*) \((.*?)(?::\d+)?\)", frame)
    if m is None:
        return frame
    function, path = m.groups()
    if "site-packages/" in path:
        path = path.split("site-packages/")[-1]
    elif path.startswith("/"):
        path = "/".join(path.split("/")[-2:])
    return f"{function} ({path})"


PROJECT_PACKAGES = ("accounts/", "concerts/", "config/", "payments/", "queueing/", "reservations/")


def _is_project(frame: str) -> bool:
    return "site-packages/" not in frame and any(
        f"/{p}" in frame or f"({p}" in frame for p in PROJECT_PACKAGES
    )


def _frame_line(frame: str) -> str:
    """Like _frame, keeping the line number."""
    m = re.fullmatch(r"(.*) \((.*?)(:\d+)?\)", frame)
    if m is None:
        return frame
    function, path, line = m.groups()
    if path.startswith("/"):
        path = "/".join(path.split("/")[-2:])
    return f"{function} ({path}{line or ''})"


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in LAYERS:
            if f"({marker}" in frame:
                return name
    return "other (the project's own code, the standard library)"


def summarize_profile(raw: str) -> dict:
    """py-spy's raw format: one `frame;frame;...;leaf count` line per distinct stack."""
    phases: dict[str, int] = {}
    layers: dict[str, int] = {}
    leaves: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    project_lines: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        raw_frames = stack.split(";")
        frames = [_frame(f) for f in raw_frames]
        n = int(count)
        if not any("handle_request" in f for f in frames):  # idle, or the master's loop
            continue
        total += n
        phase = next(
            (name for marker, name in PHASES if any(marker in f for f in frames)),
            "other: Django/DRF request handling (middleware, routing, parsing)",
        )
        phases[phase] = phases.get(phase, 0) + n
        layer = _layer(frames)
        layers[layer] = layers.get(layer, 0) + n
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        for frame in {_frame_line(f) for f in raw_frames if _is_project(f)}:
            project_lines[frame] = project_lines.get(frame, 0) + n

    def top(counts: dict[str, int], k: int) -> list[dict]:
        return [
            {"frame": name, "pct": round(100 * n / max(1, total), 1)}
            for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:k]
        ]

    return {
        "samples": total,
        "phases": top(phases, 20),
        "layers": top(layers, 10),
        "top_self": top(leaves, 15),
        "top_inclusive": top(inclusive, 60),
        # the project's own lines (with line numbers), including what they call
        "project_lines": top(project_lines, 60),
    }


# --- correctness -----------------------------------------------------------------------------
def state_counts() -> dict:
    from django.db.models import Sum

    from payments.models import IdempotencyRecord, LedgerEntry, Payment, Wallet

    return {
        "ledger_charges": LedgerEntry.objects.filter(kind="charge").count(),
        "ledger_payments": LedgerEntry.objects.filter(kind="payment").count(),
        "balance_total": int(Wallet.objects.aggregate(s=Sum("balance"))["s"] or 0),
        "payments": Payment.objects.count(),
        "idempotency_completed": IdempotencyRecord.objects.filter(completed=True).count(),
        "idempotency_open": IdempotencyRecord.objects.filter(completed=False).count(),
    }


def invariant_checks() -> list[dict]:
    """The contract's invariants 1-3 over the whole database; each value should be 0."""
    from django.db.models import Count, Exists, F, OuterRef, Q, Sum
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from concerts.models import Seat
    from payments.models import LedgerEntry, Payment, Wallet
    from reservations.models import Reservation, ReservationSeat

    now = timezone.now()
    live = Q(reservation__status="confirmed") | Q(
        reservation__status="held", reservation__expires_at__gt=now
    )
    live_items = ReservationSeat.objects.filter(live)
    checks = {
        "seats in two live (held, unexpired, or confirmed) reservations": live_items.values(
            "seat_id"
        )
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "seats of live reservations not held/sold by that reservation": live_items.exclude(
            seat__reservation_id=F("reservation_id")
        ).count()
        + live_items.filter(reservation__status="held").exclude(seat__status="held").count()
        + live_items.filter(reservation__status="confirmed").exclude(seat__status="sold").count(),
        "held or sold seats without a live reservation covering them": Seat.objects.filter(
            status__in=["held", "sold"]
        )
        .exclude(
            Exists(
                ReservationSeat.objects.filter(
                    live, reservation_id=OuterRef("reservation_id"), seat_id=OuterRef("id")
                )
            )
        )
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
    }
    # each payment: exactly one ledger debit of its amount
    debits: dict[int, list[int]] = {}
    for payment_id, amount in LedgerEntry.objects.filter(kind="payment").values_list(
        "payment_id", "amount"
    ):
        debits.setdefault(payment_id, []).append(amount)
    payments = dict(Payment.objects.values_list("id", "amount"))
    checks["payments without exactly one ledger debit of their amount"] = sum(
        debits.get(pid) != [-amount] for pid, amount in payments.items()
    ) + sum(pid not in payments for pid in debits)
    return [{"check": k, "value": v, "expected": 0, "ok": v == 0} for k, v in checks.items()]


def run_checks(kind: str, row: dict, schedule_id: int | None, before: dict, expect: dict) -> list:
    """Invariants, plus what this run's answers say the database should now hold."""
    from concerts.models import Seat
    from payments.models import Payment
    from reservations.models import Reservation, ReservationSeat

    statuses = row["statuses"]
    created = statuses.get("201", 0)
    after = state_counts()
    checks = invariant_checks()

    def check(name, value, expected):
        checks.append(
            {"check": name, "value": value, "expected": expected, "ok": value == expected}
        )

    fivexx = sum(n for code, n in statuses.items() if code.startswith("5"))
    check("5xx answers", fivexx, 0)
    check(
        "tracebacks and ERROR lines in the gunicorn log",
        row["gunicorn_log"]["tracebacks"] + row["gunicorn_log"]["error_lines"],
        0,
    )
    check("answers received of requests sent", row["received"], row["sent"])
    if kind == "hold":
        reservations = Reservation.objects.filter(schedule_id=schedule_id)
        check("reservations on the schedule = 201 answers", reservations.count(), created)
        check(
            "held seats on the schedule = seats of those reservations",
            Seat.objects.filter(schedule_id=schedule_id, status="held").count(),
            ReservationSeat.objects.filter(reservation__schedule_id=schedule_id).count(),
        )
        if "max_held" in expect:
            held = Seat.objects.filter(schedule_id=schedule_id, status="held").count()
            checks.append(
                {
                    "check": "held seats <= seats of the schedule",
                    "value": held,
                    "expected": f"<= {expect['max_held']}",
                    "ok": held <= expect["max_held"],
                }
            )
        check(
            "409 hold_limit_reached (each request a new customer)",
            statuses.get("409 hold_limit_reached", 0),
            0,
        )
    elif kind == "payment":
        check(
            "confirmed reservations on the schedule = 201 answers",
            Reservation.objects.filter(schedule_id=schedule_id, status="confirmed").count(),
            created,
        )
        check(
            "payments for the schedule = 201 answers",
            Payment.objects.filter(reservation__schedule_id=schedule_id).count(),
            created,
        )
        check(
            "sold seats on the schedule = 201 answers",
            Seat.objects.filter(schedule_id=schedule_id, status="sold").count(),
            created,
        )
        check(
            "new ledger debits = 201 answers",
            after["ledger_payments"] - before["ledger_payments"],
            created,
        )
        check(
            "money taken = 201 answers x price",
            before["balance_total"] - after["balance_total"],
            created * PRICE,
        )
    elif kind == "charge":
        check(
            "new ledger charges = 201 answers",
            after["ledger_charges"] - before["ledger_charges"],
            created,
        )
        check(
            "money added = 201 answers x amount",
            after["balance_total"] - before["balance_total"],
            created * CHARGE,
        )
    if kind in ("payment", "charge"):
        check(
            "new completed Idempotency-Key records = 201 answers",
            after["idempotency_completed"] - before["idempotency_completed"],
            created,
        )
        check("Idempotency-Key claims left open", after["idempotency_open"], 0)
    return checks


# --- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn processes")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--cap", type=int, default=CAP_SECONDS, help="longest run, seconds")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of GET /accounts/me first")
    parser.add_argument("--contended", type=int, default=CONTENDED, help="requests")
    parser.add_argument("--uncontended", type=int, default=UNCONTENDED, help="requests")
    parser.add_argument("--payments", type=int, default=PAYMENTS, help="requests")
    parser.add_argument("--charges", type=int, default=CHARGES, help="requests")
    parser.add_argument("--seed", type=int, default=1, help="for the random seats")
    parser.add_argument(
        "--code",
        default="worktree",
        help="what to benchmark: worktree (a copy of the working tree taken at start, the "
        "default) or a git ref such as HEAD",
    )
    parser.add_argument("--drop-stale", action="store_true", help=f"drop a leftover {DB_NAME}")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every run (its req/s then runs slower)"
    )
    args = parser.parse_args()
    if args.uncontended > UNCONTENDED_SEATS:
        parser.error(f"--uncontended: at most {UNCONTENDED_SEATS} (one seat each)")
    if not require_wrk():
        return 2
    started = time.monotonic()
    invocation = " ".join([".venv/bin/python", "bench/holds_http.py", *sys.argv[1:]])
    rng = random.Random(args.seed)

    runs: list[dict] = []
    final_checks: list[dict] = []
    prep: dict = {}
    with BenchRun(
        code=args.code, database=DB_NAME, invocation=invocation, drop_stale=args.drop_stale
    ) as run:
        src, server_env, tmp = run.src, run.server_env, run.tmp
        from django.db import connections

        t0 = time.monotonic()
        n_customers = max(args.contended, args.uncontended, args.payments, 1000)
        customers = create_customers(n_customers)
        log(f"{len(customers)} customers with tokens in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        _, contended_schedule, contended_seats = sale_concert(
            "Contended holds", seat_blocks(CONTENDED_SEATS)
        )
        _, open_schedule, open_seats = sale_concert(
            "Uncontended holds", seat_blocks(UNCONTENDED_SEATS)
        )
        pay_concert, pay_schedule, pay_seats = sale_concert(
            "Payments", seat_blocks(-(-args.payments // 10) * 10)
        )
        log(f"seat maps in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        contended_customers = customers[: args.contended]
        open_customers = customers[: args.uncontended]
        pay_customers = customers[: args.payments]
        contended_tokens = admit(contended_schedule.concert, [u for u, _ in contended_customers])
        open_tokens = admit(open_schedule.concert, [u for u, _ in open_customers])
        pay_tokens = admit(pay_concert, [u for u, _ in pay_customers])
        log(f"customers admitted from three queues in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        paying = prepare_payments(pay_schedule, pay_seats, pay_customers, pay_tokens)
        prep["payment_holds_s"] = round(time.monotonic() - t0, 1)
        log(
            f"{len(paying)} wallets charged and seats held by the services in "
            f"{prep['payment_holds_s']} s ({PREP_THREADS} threads)"
        )

        lists = request_lists(
            tmp,
            rng,
            contended=(
                contended_schedule.id,
                contended_seats,
                contended_customers,
                contended_tokens,
            ),
            uncontended=(open_schedule.id, open_seats, open_customers, open_tokens),
            paying=paying,
            charges=args.charges,
        )
        warm_lines = write_lines(
            tmp / "me.tsv", "GET", "/api/v1/accounts/me", [(b,) for _, b in customers[:1000]]
        )
        connections.close_all()
        prep["seconds"] = round(time.monotonic() - started, 1)

        (RESULTS / "logs" / "holds-gunicorn.log").write_bytes(b"")
        server = run.start(
            Gunicorn(server_env, args.workers, RESULTS / "logs" / "holds-gunicorn.log", cwd=src)
        )
        log(f"gunicorn up: {args.workers} workers at {server.url}")
        if args.warmup:
            run_wrk(
                server.url,
                CYCLE_LUA,
                [warm_lines, 2],
                threads=2,
                connections=args.connections,
                seconds=args.warmup,
            )

        plan = [
            ("hold, contended", "hold", contended_schedule.id, {"max_held": CONTENDED_SEATS}),
            ("hold, uncontended", "hold", open_schedule.id, {}),
            ("payment", "payment", pay_schedule.id, {}),
            ("wallet charge", "charge", None, {}),
        ]
        for name, kind, schedule_id, expect in plan:
            before = state_counts()
            connections.close_all()
            row = measure(name, server, lists[name], args)
            row["checks"] = run_checks(kind, row, schedule_id, before, expect)
            connections.close_all()
            failed = [c for c in row["checks"] if not c["ok"]]
            log(
                f"{name}: {len(row['checks']) - len(failed)} of {len(row['checks'])} checks pass"
                + "".join(
                    f"\n    FAILED {c['check']}: {c['value']} (expected {c['expected']})"
                    for c in failed
                )
            )
            runs.append(row)

        server.stop()
        final_checks = invariant_checks()
        connections.close_all()

    elapsed = time.monotonic() - started
    report = {
        **run.meta,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "aborted": run.aborted,
        "settings": {
            "workers": args.workers,
            "connections": args.connections,
            "cap_s": args.cap,
            "requests": {
                "hold, contended": args.contended,
                "hold, uncontended": args.uncontended,
                "payment": args.payments,
                "wallet charge": args.charges,
            },
            "contended_seats": CONTENDED_SEATS,
            "uncontended_seats": UNCONTENDED_SEATS,
            "price": PRICE,
            "funds": FUNDS,
            "charge": CHARGE,
        },
        "preparation": prep,
        "runs": runs,
        "final_checks": final_checks,
    }
    (RESULTS / "holds_http.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    all_ok = all(c["ok"] for r in runs for c in r["checks"]) and all(c["ok"] for c in final_checks)
    return 1 if run.aborted or not all_ok else 0


def markdown(report: dict) -> str:
    m = report["machine"]
    out = [
        f"## Holds and payments HTTP benchmark ({report['when']})",
        "",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_gb']} GB; load average "
        f"{' '.join(m['loadavg_at_start'])} at start, {' '.join(m['loadavg_at_end'])} at end",
        f"- code: a copy of the {report['git']['code']} at {report['git']['commit'][:12]} "
        f"({report['git']['dirty_files']} files changed in the working tree at start)",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s, of which "
        f"{report['preparation'].get('seconds', 0):.0f} s preparing data)",
        f"- gunicorn: {report['settings']['workers']} sync workers; wrk: "
        f"`{report['runs'][0]['wrk_command'] if report['runs'] else ''}` (one list per run, "
        "each request sent once)",
        "",
        "| run | requests | s | req/s | p50 ms | p99 ms | p99.9 ms | statuses | errors, events | "
        "InnoDB lock waits / deadlocks (server-wide) | CPU ms/req | other CPU (cores) | checks |",
        "|---|--:|--:|--:|--:|--:|--:|---|---|--:|--:|--:|---|",
    ]
    for r in report["runs"]:
        errors = [f"{k} {v}" for k, v in (r["socket_errors"] or {}).items() if v]
        g = r["gunicorn_log"]
        errors += [
            f"{k} {g[k]}"
            for k in (
                "tracebacks",
                "error_lines",
                "lock_conflicts",
                "worker_timeouts",
                "worker_boots",
                "worker_recycles",
            )
            if g[k]
        ]
        if r["fillers"]:
            errors.append(f"{r['fillers']} fillers")
        if r["cut_by_cap"]:
            errors.append(f"cut by the {report['settings']['cap_s']} s cap")
        statuses = ", ".join(f"{c}: {n}" for c, n in r["statuses"].items())
        failed = [c for c in r["checks"] if not c["ok"]]
        checks = f"{len(r['checks'])} ok" if not failed else f"**{len(failed)} FAILED**"
        i = r["innodb"]
        sampled = r["lock_waits_sampled"]
        busy = sampled["other_databases_busy_samples"] / max(1, sampled["samples"])
        if busy >= 0.05:
            errors.append(
                f"other databases busy in {busy:.0%} of samples: InnoDB counters not ours alone"
            )
        out.append(
            f"| {r['run']} | {r['received']} / {r['lines']} | {r['seconds']:.1f} | "
            f"{r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['p99_9_ms']:.1f} | {statuses} | {'; '.join(errors) or 'none'} | "
            f"{i['row_lock_waits']} / {i['deadlocks']} | "
            f"{r['cpu']['gunicorn_cpu_ms_per_request']:.2f} | {r['cpu']['other_cores']:.2f} | {checks} |"
        )
    out += ["", "Checks in the database after each run (value, expected):", ""]
    for r in report["runs"]:
        out.append(f"- **{r['run']}**")
        out += [
            f"  - {'ok' if c['ok'] else '**FAILED**'}: {c['check']}: {c['value']} ({c['expected']})"
            for c in r["checks"]
        ]
    if report["final_checks"]:
        bad = [c for c in report["final_checks"] if not c["ok"]]
        out += [
            "",
            f"After the last run, with gunicorn stopped: {len(report['final_checks']) - len(bad)} "
            f"of {len(report['final_checks'])} invariant checks pass"
            + "".join(f"; **FAILED** {c['check']}: {c['value']}" for c in bad),
        ]
    if any(
        r["lock_waits_sampled"]["waits"] or r["lock_waits_sampled"]["waits_in_other_databases"]
        for r in report["runs"]
    ):
        out += [
            "",
            "Lock waits seen in information_schema.INNODB_LOCK_WAITS (sampled every 50 ms; "
            "samples in which a wait was seen):",
            "",
        ]
        for r in report["runs"]:
            sampled = r["lock_waits_sampled"]
            for wait, n in list(sampled["waits"].items())[:4]:
                out.append(f"- {r['run']}: {n} of {sampled['samples']} samples: `{wait}`")
            for wait, n in list(sampled["waits_in_other_databases"].items())[:2]:
                out.append(
                    f"- {r['run']}: {n} of {sampled['samples']} samples: `{wait}` "
                    "(another database, not this benchmark)"
                )
    warned = {k: v for r in report["runs"] for k, v in r["gunicorn_log"]["warnings"].items()}
    if warned:
        out += ["", "gunicorn log, WARNING lines (django.request logs every 4xx answer):", ""]
        for r in report["runs"]:
            for message, n in r["gunicorn_log"]["warnings"].items():
                out.append(f"- {r['run']}: {n} x `{message}`")
    for r in report["runs"]:
        p = r.get("profile")
        if not p:
            continue
        out += [
            "",
            f"py-spy, {r['run']} ({p['samples']} samples in request handling; profiled, so "
            "slower than unprofiled): by phase, by layer, hottest functions (self time)",
            "",
        ]
        out += [f"- {x['frame']}: {x['pct']}%" for x in p["phases"]]
        out += [""] + [f"- {x['frame']}: {x['pct']}%" for x in p["layers"]]
        out += [""] + [f"- {x['frame']}: {x['pct']}%" for x in p["top_self"][:10]]
    if report.get("aborted"):
        out += ["", f"**Aborted**: {report['aborted']}"]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
