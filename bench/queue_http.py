"""HTTP benchmark of the waiting room under gunicorn in the production shape, driven by wrk.

    /work/main/.venv/bin/python bench/queue_http.py            # ~3 minutes
    /work/main/.venv/bin/python bench/queue_http.py --sweep 2,3,4 --profile

Measures, each from many distinct customers (one Bearer token each):
  enter    POST /api/v1/concerts/{id}/queue          every request a new customer (201)
  status   GET  /api/v1/queue (+ X-Queue-Token)      1,000 customers at the END of a line of
                                                     10,000 and of 100,000 waiting entries
  me       GET  /api/v1/accounts/me                  the floor: auth (one token query) + JSON
and prints a markdown table; the same numbers go to bench/results/queue_http.json.

It sets everything up itself and removes only what it made: the MariaDB database
`concerts_bench` (root@127.0.0.1:3306, refused if it already exists), Redis keys under a random
prefix `bench-<hex>` (SCAN + DELETE, never FLUSH), and the gunicorn it started.
See bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "wrk" / "cycle.lua"
VENV = ROOT / ".venv" / "bin"
DB_NAME = "concerts_bench"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}
REDIS_URL = "redis://127.0.0.1:6379/0"

# gunicorn processes. On the 2-core benchmark machine (AMD EPYC, 2 vCPUs; wrk, MariaDB and
# Redis on the same cores) `--sweep 2,3,4 --profile` on 2026-xx gave, requests/s (p99 ms):
#   workers  enter        status@10k   status@100k   me
#   see bench/README.md "Worker count" — the numbers are filled in from the last sweep.
DEFAULT_WORKERS = 4

USERS = 20_000  # customers (users + API tokens); enter uses a fresh one per request
POLLERS = 1_000  # customers polling their status, at the back of the line
SIZES = (10_000, 100_000)  # waiting entries in the line the pollers are at the back of
FILLER_BASE = 1_000_000_000  # user ids of filler entries (Redis only, no database rows)


# --- small helpers ---------------------------------------------------------------------------
def log(message: str) -> None:
    # (UTC: django.setup() sets TZ to TIME_ZONE for the rest of the process)
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}Z] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return {
        "nproc": int(nproc or os.cpu_count() or 0),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "mem_gb": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def git_state() -> dict:
    def git(*args):
        return subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_files": len(git("status", "--porcelain").splitlines()),
    }


# --- CPU accounting: how busy the machine was, and how much of it was us ---------------------
CLK = os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int, with_children: bool = False) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    # after ")": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return kids


def _pids_named(*names: str) -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in names:
                pids.append(int(comm.parent.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return pids


def cpu_snapshot(gunicorn_pid: int | None) -> dict:
    total = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = total[3] + total[4]  # idle + iowait
    gunicorn = 0
    if gunicorn_pid:  # master with reaped (recycled) workers, plus the live workers
        gunicorn = _proc_ticks(gunicorn_pid, with_children=True)
        gunicorn += sum(_proc_ticks(pid) for pid in _children(gunicorn_pid))
    return {
        "time": time.monotonic(),
        "busy": sum(total) - idle,
        "all": sum(total),
        "gunicorn": gunicorn,
        "redis": sum(_proc_ticks(p) for p in _pids_named("redis-server")),
        "mariadb": sum(_proc_ticks(p) for p in _pids_named("mariadbd", "mysqld")),
        "wrk": int(
            (
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
            )
            * CLK
        ),
    }


def cpu_delta(before: dict, after: dict, requests: int) -> dict:
    seconds = after["time"] - before["time"]
    ncpu = os.cpu_count() or 1
    cores = {
        k: (after[k] - before[k]) / CLK / seconds for k in ("gunicorn", "redis", "mariadb", "wrk")
    }
    busy = (after["busy"] - before["busy"]) / max(1, after["all"] - before["all"]) * ncpu
    return {
        "machine_busy_cores": round(busy, 2),
        **{f"{k}_cores": round(v, 2) for k, v in cores.items()},
        "other_cores": round(max(0.0, busy - sum(cores.values())), 2),
        "gunicorn_cpu_ms_per_request": round(
            (after["gunicorn"] - before["gunicorn"]) / CLK * 1000 / max(1, requests), 3
        ),
    }


# --- wrk -------------------------------------------------------------------------------------
def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def parse_wrk(out: str) -> dict:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", out, re.M)
    percentiles = {p: _duration_ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    statuses = {int(c): int(n) for c, n in re.findall(r"^BENCH status (\d+) (\d+)$", out, re.M)}
    sock = re.search(r"^BENCH socket_errors (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    bench = dict(re.findall(r"^BENCH (wraps|p999_us|max_us) (\d+)$", out, re.M))
    return {
        "requests_per_s": float(rps.group(1)) if rps else None,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": percentiles.get("50"),
        "p90_ms": percentiles.get("90"),
        "p99_ms": percentiles.get("99"),
        "p99_9_ms": int(bench["p999_us"]) / 1000 if "p999_us" in bench else None,
        "max_ms": int(bench["max_us"]) / 1000 if "max_us" in bench else None,
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "statuses": dict(sorted(statuses.items())),
        "socket_errors": dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
        if sock
        else None,
        "wraps": int(bench.get("wraps", 0)),
    }


def run_wrk(
    url: str, lines: Path, *, threads: int, connections: int, seconds: int
) -> tuple[list, str]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA.relative_to(ROOT)),
        url,
        "--",
        str(lines),
        str(threads),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return command, proc.stdout


# --- gunicorn --------------------------------------------------------------------------------
class Gunicorn:
    def __init__(self, env: dict, workers: int, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)}
        self.workers = workers
        self.log_path = log_path
        self.command = [
            str(VENV / "gunicorn"),
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200 and len(_children(self.proc.pid)) >= self.workers:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; see {self.log_path}")

    def log_counts(self) -> dict:
        text = self.log_path.read_text(errors="replace")
        return {
            "worker_boots": text.count("Booting worker"),
            "worker_recycles": text.count("Autorestarting worker"),
            "worker_timeouts": text.count("WORKER TIMEOUT"),
            "tracebacks": text.count("Traceback"),
            "error_lines": sum(
                " ERROR " in line or "[ERROR]" in line for line in text.splitlines()
            ),
        }

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # graceful: gunicorn stops its workers
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
            self.proc.wait(timeout=10)
        self.log_file.close()


# --- database and Redis ----------------------------------------------------------------------
def mysql_connect():
    import MySQLdb

    return MySQLdb.connect(**MYSQL, connect_timeout=5)


def create_database(drop_stale: bool) -> None:
    conn = mysql_connect()
    try:
        cur = conn.cursor()
        cur.execute("SHOW DATABASES LIKE %s", [DB_NAME])
        if cur.fetchone():
            if not drop_stale:
                raise SystemExit(
                    f"Database {DB_NAME} already exists (a crashed earlier run?). This script only "
                    f"drops what it created: drop it yourself, or pass --drop-stale."
                )
            log(f"dropping the stale {DB_NAME} (--drop-stale)")
            cur.execute(f"DROP DATABASE `{DB_NAME}`")
        cur.execute(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def drop_database() -> None:
    conn = mysql_connect()
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
    finally:
        conn.close()


def delete_redis_prefix(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deleted = 0
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted


# --- data ------------------------------------------------------------------------------------
def create_customers(n: int) -> list[tuple[int, str]]:
    """n customers with API tokens, by bulk insert. Returns (user id, token key)."""
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from accounts.models import User

    password = make_password("bench-password")  # one hash for all (FAST_PASSWORD_HASHER)
    User.objects.bulk_create(
        (User(email=f"bench-{i}@example.com", password=password) for i in range(n)), batch_size=2000
    )
    users = list(
        User.objects.filter(email__startswith="bench-").order_by("id").values_list("id", flat=True)
    )
    tokens = [Token(key=secrets.token_hex(20), user_id=uid) for uid in users]
    Token.objects.bulk_create(tokens, batch_size=2000)
    return [(t.user_id, t.key) for t in tokens]


def create_concert(title: str):
    from concerts.models import Concert, Schedule

    now = datetime.now(UTC)
    concert = Concert.objects.create(
        title=title,
        artist="Bench",
        venue="Bench hall",
        is_published=True,
        sale_opens_at=now - timedelta(hours=1),
    )
    Schedule.objects.create(
        concert=concert, starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2)
    )
    return concert


def fill_line(concert_id: int, size: int, pollers: list[tuple[int, str]]) -> list[str]:
    """size - len(pollers) filler entries, then the pollers at the back: the ENTER script itself,
    pipelined a thousand at a time. Returns the pollers' queue tokens."""
    from django.utils import timezone

    from queueing.redis_queue import queue_redis, run_script, to_ms
    from queueing.tokens import token_issue

    client, now = queue_redis(), to_ms(timezone.now())
    entries = [(FILLER_BASE + i, f"{i:016x}") for i in range(size - len(pollers))]
    entries += [(uid, f"{uid:016x}") for uid, _ in pollers]
    for start in range(0, len(entries), 1000):
        pipe = client.pipeline(transaction=False)
        for uid, nonce in entries[start : start + 1000]:
            run_script("ENTER", concert_id, [uid, nonce, now, 0, 0], client=pipe)
        pipe.execute()
    return [
        token_issue(concert_id=concert_id, user_id=uid, nonce=f"{uid:016x}") for uid, _ in pollers
    ]


def waiting_count(concert_id: int) -> int:
    from queueing.redis_queue import queue_keys, queue_redis

    return queue_redis().zcard(queue_keys(concert_id)[0])


def write_lines(path: Path, method: str, url_path: str, rows) -> Path:
    path.write_text("".join("\t".join((method, url_path, *row)) + "\n" for row in rows))
    return path


def get_json(url: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# --- profile ---------------------------------------------------------------------------------
def profile_status(server: Gunicorn, lines: Path, args, tmp: Path) -> dict | None:
    """py-spy over all workers while wrk polls the status; top functions and packages."""
    py_spy = VENV / "py-spy"
    if not py_spy.exists():
        log("no .venv/bin/py-spy: skipping the profile (.venv/bin/pip install py-spy)")
        return None
    raw = tmp / "status.raw"
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(server.proc.pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(args.duration - 2),
            "--nonblocking",
            "-o",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    run_wrk(
        server.url, lines, threads=args.threads, connections=args.connections, seconds=args.duration
    )
    _, err = spy.communicate(timeout=60)
    if not raw.exists():
        log(f"py-spy produced nothing: {err.strip()[-500:]}")
        return None
    self_fn, activity, total = {}, {}, 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        # only request handling, not the gunicorn master's or an idle worker's loop
        if not any("handle_request" in f for f in frames):
            continue
        total += n
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        self_fn[leaf] = self_fn.get(leaf, 0) + n
        name = _activity(frames)
        activity[name] = activity.get(name, 0) + n

    def top(counts, k):
        return [
            {"frame": name, "pct": round(100 * n / total, 1)}
            for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:k]
        ]

    return {"samples": total, "activities": top(activity, 12), "top_self": top(self_fn, 12)}


# Each sample goes to the first activity whose marker is anywhere in its stack.
ACTIVITIES = [
    ("is_usable", "MySQL ping before the first query (CONN_HEALTH_CHECKS)"),
    ("MySQLdb/", "MySQL queries (driver + round trip)"),
    ("redis/", "Redis (EVALSHA of the queue script, client)"),
    ("django/db/", "Django ORM (building queries, rows to objects)"),
    ("rest_framework/renderers", "JSON rendering"),
    ("rest_framework/serializers", "DRF serializers"),
    ("rest_framework/fields", "DRF serializers"),
    ("hmac", "queue token MAC (hmac/hashlib)"),
]


def _activity(frames: list[str]) -> str:
    for marker, name in ACTIVITIES:
        if any(marker in frame for frame in frames):
            return name
    m = re.search(r"\((.+?):\d+\)$", frames[-1])
    path = m.group(1) if m else frames[-1]
    package = path.split("site-packages/")[-1].split("/")[0].removesuffix(".py")
    return f"other, in {package}"


# --- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn processes")
    parser.add_argument("--sweep", help="comma-separated worker counts to compare, e.g. 2,3,4")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--pollers", type=int, default=POLLERS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="waiting-line sizes")
    parser.add_argument("--profile", action="store_true", help="py-spy the status endpoint")
    parser.add_argument("--drop-stale", action="store_true", help=f"drop a leftover {DB_NAME}")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.sweep.split(",")] if args.sweep else [args.workers]
    sizes = [int(s) for s in args.sizes.split(",")]

    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    invocation = " ".join([".venv/bin/python", "bench/queue_http.py", *sys.argv[1:]])

    prefix = f"bench-{secrets.token_hex(6)}"
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    database_url = f"mysql://root@127.0.0.1:3306/{DB_NAME}"
    server_env = {
        **{k: v for k, v in os.environ.items() if k not in ("FAST_PASSWORD_HASHER", "PYTHONPATH")},
        "DJANGO_ENV": "production",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "ACCESS_LOG": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    # This process shares the settings (same SECRET_KEY: it issues the pollers' queue tokens).
    os.environ.update({**server_env, "FAST_PASSWORD_HASHER": "true"})
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    created_db = False
    server: Gunicorn | None = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "logs").mkdir(exist_ok=True)
    runs: list[dict] = []
    profile = None
    meta = {}

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        meta = {"machine": machine(), "git": git_state(), "command": invocation}
        log(
            f"machine: {meta['machine']['nproc']} x {meta['machine']['cpu_model']}, "
            f"load {' '.join(meta['machine']['loadavg_at_start'])}; redis prefix {prefix}"
        )
        create_database(args.drop_stale)
        created_db = True
        t0 = time.monotonic()
        subprocess.run(
            [str(VENV / "python"), "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            check=True,
            env=os.environ.copy(),
        )
        log(f"migrated {DB_NAME} in {time.monotonic() - t0:.1f} s")

        import django

        django.setup()
        from django.db import connections

        t0 = time.monotonic()
        customers = create_customers(args.users)
        pollers = customers[: args.pollers]
        log(f"{len(customers)} customers with tokens in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        lines_status = {}
        for size in sizes:
            concert = create_concert(f"Status line of {size}")
            queue_tokens = fill_line(concert.id, size, pollers)
            assert waiting_count(concert.id) == size, waiting_count(concert.id)
            lines_status[size] = (
                concert.id,
                write_lines(
                    tmp / f"status-{size}.tsv",
                    "GET",
                    "/api/v1/queue",
                    [(bearer, qt) for (_, bearer), qt in zip(pollers, queue_tokens, strict=True)],
                ),
            )
        log(f"queue lines {sizes} filled in {time.monotonic() - t0:.1f} s")
        lines_me = write_lines(
            tmp / "me.tsv", "GET", "/api/v1/accounts/me", [(b,) for _, b in pollers]
        )
        connections.close_all()

        for workers in worker_counts:
            server = Gunicorn(server_env, workers, RESULTS / "logs" / f"gunicorn-w{workers}.log")
            server.log_path.write_bytes(b"")
            server.start()
            log(f"gunicorn up: {workers} workers at {server.url}")
            enter_concert = create_concert(f"Enter, {workers} workers")
            warm_concert = create_concert(f"Warm-up, {workers} workers")
            connections.close_all()
            lines_enter = write_lines(
                tmp / f"enter-{workers}.tsv",
                "POST",
                f"/api/v1/concerts/{enter_concert.id}/queue",
                [(b,) for _, b in customers],
            )
            lines_warm = write_lines(
                tmp / f"warm-{workers}.tsv",
                "POST",
                f"/api/v1/concerts/{warm_concert.id}/queue",
                [(b,) for _, b in customers],
            )
            plan = [("enter", None, lines_enter, lines_warm, args.connections)]
            plan += [
                ("status", size, lines_status[size][1], lines_status[size][1], args.connections)
                for size in sizes
            ]
            plan += [("me", None, lines_me, lines_me, args.connections)]
            # The same status poll with as many connections as workers: service time, not queueing.
            plan += [("status", sizes[-1], lines_status[sizes[-1]][1], None, workers)]

            for endpoint, size, lines, warm, conns in plan:
                if size is not None:  # where the pollers stand, asked over HTTP
                    _, bearer = pollers[-1]
                    qt = lines.read_text().splitlines()[-1].split("\t")[3]
                    code, body = get_json(
                        server.url + "/api/v1/queue",
                        {"Authorization": f"Bearer {bearer}", "X-Queue-Token": qt},
                    )
                    if code != 200 or body.get("position") != size:
                        raise RuntimeError(f"last poller: {code} {body} (expected position {size})")
                if warm and args.warmup:
                    run_wrk(
                        server.url,
                        warm,
                        threads=args.threads,
                        connections=conns,
                        seconds=args.warmup,
                    )
                log_before = server.log_counts()
                before = cpu_snapshot(server.proc.pid)
                command, out = run_wrk(
                    server.url,
                    lines,
                    threads=args.threads,
                    connections=conns,
                    seconds=args.duration,
                )
                result = parse_wrk(out)
                after = cpu_snapshot(server.proc.pid)
                log_after = server.log_counts()
                row = {
                    "endpoint": endpoint,
                    "waiting": size,
                    "workers": workers,
                    "connections": conns,
                    **result,
                    "cpu": cpu_delta(before, after, result["requests"]),
                    "gunicorn_log": {k: log_after[k] - log_before[k] for k in log_after},
                    "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
                    "wrk_command": " ".join(command[:-2] + [f"{endpoint}.tsv", command[-1]]),
                }
                if endpoint == "enter":
                    row["entered"] = waiting_count(enter_concert.id)
                runs.append(row)
                log(
                    f"w={workers} {endpoint:6} {size or '':>6} c={conns:<3} {result['requests_per_s']:8.1f} req/s  "
                    f"p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  statuses {result['statuses']}  "
                    f"other cpu {row['cpu']['other_cores']}"
                )

            if args.profile and workers == worker_counts[-1]:
                log("profiling the status endpoint with py-spy")
                profile = profile_status(server, lines_status[sizes[-1]][1], args, tmp)
            server.stop()
            server = None
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        if server is not None:
            server.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        deleted = delete_redis_prefix(prefix)
        log(f"deleted {deleted} Redis keys under {prefix}:")
        if created_db:
            drop_database()
            log(f"dropped {DB_NAME}")
        shutil.rmtree(tmp, ignore_errors=True)

    elapsed = time.monotonic() - started
    meta["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report = {
        **meta,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "settings": {
            "duration_s": args.duration,
            "wrk_threads": args.threads,
            "users": args.users,
            "pollers": args.pollers,
            "sizes": sizes,
            "worker_counts": worker_counts,
        },
        "runs": runs,
        "profile_status": profile,
    }
    (RESULTS / "queue_http.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    m = report["machine"]
    out = [
        f"## Queue HTTP benchmark ({report['when']})",
        "",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_gb']} GB; load average "
        f"{' '.join(m['loadavg_at_start'])} at start, {' '.join(m['loadavg_at_end'])} at end",
        f"- code: {report['git']['commit'][:12]} ({report['git']['dirty_files']} files changed in the tree)",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s)",
        f"- wrk: `{report['runs'][0]['wrk_command'] if report['runs'] else ''}`",
        "",
        "| endpoint | waiting | workers | conns | req/s | p50 ms | p99 ms | p99.9 ms | statuses | "
        "errors | CPU ms/req | other CPU (cores) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|",
    ]
    for r in report["runs"]:
        name = {
            "enter": "POST /concerts/{id}/queue",
            "status": "GET /queue",
            "me": "GET /accounts/me",
        }[r["endpoint"]]
        errors = [f"{k} {v}" for k, v in (r["socket_errors"] or {}).items() if v]
        errors += [f"{k} {v}" for k, v in r["gunicorn_log"].items() if v]
        if r.get("wraps") and r["endpoint"] == "enter":
            errors.append(f"token file wrapped {r['wraps']}x")
        statuses = ", ".join(f"{c}: {n}" for c, n in r["statuses"].items())
        out.append(
            f"| {name} | {r['waiting'] or ''} | {r['workers']} | {r['connections']} | {r['requests_per_s']:.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99_9_ms']:.1f} | {statuses} | "
            f"{'; '.join(errors) or 'none'} | {r['cpu']['gunicorn_cpu_ms_per_request']:.2f} | "
            f"{r['cpu']['other_cores']:.2f} |"
        )
    p = report.get("profile_status")
    if p:
        out += [
            "",
            f"py-spy, GET /queue at {report['settings']['sizes'][-1]} waiting ({p['samples']} samples in "
            "request handling), where the time goes:",
            "",
        ]
        out += [f"- {x['frame']}: {x['pct']}%" for x in p["activities"][:8]]
        out += ["", "hottest functions (self time):", ""]
        out += [f"- {x['frame']}: {x['pct']}%" for x in p["top_self"][:8]]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
