"""Machinery shared by the HTTP benchmarks (queue_http.py, holds_http.py): a snapshot of the
code, gunicorn in the production shape, wrk, a scratch MariaDB database and Redis prefix, CPU
accounting, and bulk test data. Each benchmark is a script in this folder that imports this
module (the folder is on sys.path when a script here runs).
"""

from __future__ import annotations

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
VENV = ROOT / ".venv" / "bin"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}
REDIS_URL = "redis://127.0.0.1:6379/0"


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


def snapshot_code(ref: str, dest: Path) -> dict:
    """A copy of the code to run, so that edits made in the working tree while the benchmark
    runs (gunicorn recycles workers, which then import the files anew) cannot change it.
    `worktree`: the tracked and untracked, not ignored files as they are now; else a git ref."""
    dest.mkdir()
    if ref == "worktree":
        files = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, files):
            source = ROOT / name.decode()
            if source.is_file():
                (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name.decode())
        commit = git_state()["commit"]
    else:
        commit = subprocess.run(
            ["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "archive", commit], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return {"code": ref, "commit": commit}


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
    url: str,
    script: Path,
    script_args: list,
    *,
    threads: int,
    connections: int,
    seconds: int,
) -> tuple[list, str]:
    """wrk with a Lua script (`script_args` go after `--`); returns the command and stdout."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script.relative_to(ROOT)),
        url,
        "--",
        *map(str, script_args),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return command, proc.stdout


# --- gunicorn --------------------------------------------------------------------------------
class Gunicorn:
    """gunicorn with config/gunicorn.conf.py, run from `cwd` (the code snapshot), in its own
    session so that stop() can end exactly it."""

    def __init__(self, env: dict, workers: int, log_path: Path, cwd: Path = ROOT):
        self.cwd = cwd
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
            cwd=self.cwd,
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


class CeleryProcesses:
    """A Celery worker and Celery beat (the queue's admission tick every second, the hold
    sweep every 5 s, housekeeping), run from `cwd` (the code snapshot) with the server's
    environment, each in its own session so that stop() ends exactly them."""

    def __init__(self, env: dict, log_path: Path, cwd: Path, schedule_file: Path):
        self.env, self.log_path, self.cwd = env, log_path, cwd
        celery = str(VENV / "celery")
        self.commands = {
            "worker": [celery, "-A", "config", "worker", "--loglevel=INFO", "--concurrency=1"],
            "beat": [celery, "-A", "config", "beat", "--loglevel=INFO", "-s", str(schedule_file)],
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.log_file = self.log_path.open("ab")
        for name, command in self.commands.items():
            self.procs[name] = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=self.log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "ready." not in self.log_path.read_text(errors="replace"):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"celery {name} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker was not ready in 60 s; see {self.log_path}")
            time.sleep(0.25)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def log_counts(self) -> dict:
        text = self.log_path.read_text(errors="replace")
        return {
            "tasks_succeeded": text.count("succeeded in"),
            "tracebacks": text.count("Traceback"),
            "error_lines": sum(" ERROR" in line or "[ERROR" in line for line in text.splitlines()),
        }

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs = {}
        if hasattr(self, "log_file"):
            self.log_file.close()


# --- py-spy ----------------------------------------------------------------------------------
class Profiler:
    """py-spy over a gunicorn master and its workers for `seconds`, as a context around the
    load; afterwards `summary` tells where request handling spent its samples, by activity
    (database, Redis, ORM, rendering, ...) and by function. None without py-spy."""

    def __init__(self, pid: int, seconds: int, raw: Path):
        self.pid, self.seconds, self.raw = pid, max(1, seconds), raw
        self.summary: dict | None = None
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Profiler:
        py_spy = VENV / "py-spy"
        if not py_spy.exists():
            log("no .venv/bin/py-spy: no profile (the bench extra installs it)")
            return self
        self.proc = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(self.pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "200",
                "--duration",
                str(self.seconds),
                "--nonblocking",
                "-o",
                str(self.raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)  # attached before the load starts
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        _, err = self.proc.communicate(timeout=60)
        if not self.raw.exists():
            log(f"py-spy produced nothing: {err.strip()[-500:]}")
            return
        self.summary = summarize_profile(self.raw.read_text())


# Each sample goes to the first activity whose marker is anywhere in its stack.
ACTIVITIES = [
    ("is_usable", "MySQL ping before the first query (CONN_HEALTH_CHECKS)"),
    ("MySQLdb/", "MySQL queries (driver + round trip)"),
    ("redis/", "Redis (client + round trip)"),
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


def summarize_profile(raw: str, top: int = 12) -> dict:
    """py-spy's raw format (one stack and count a line) of request handling only."""
    self_fn: dict[str, int] = {}
    activity: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
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

    def ranked(counts: dict[str, int]) -> list[dict]:
        return [
            {"frame": name, "pct": round(100 * n / max(1, total), 1)}
            for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"samples": total, "activities": ranked(activity), "top_self": ranked(self_fn)}


# --- database and Redis ----------------------------------------------------------------------
def mysql_connect():
    import MySQLdb

    return MySQLdb.connect(**MYSQL, connect_timeout=5)


def create_database(name: str, drop_stale: bool) -> None:
    conn = mysql_connect()
    try:
        cur = conn.cursor()
        cur.execute("SHOW DATABASES LIKE %s", [name])
        if cur.fetchone():
            if not drop_stale:
                raise SystemExit(
                    f"Database {name} already exists (a crashed earlier run?). This script only "
                    f"drops what it created: drop it yourself, or pass --drop-stale."
                )
            log(f"dropping the stale {name} (--drop-stale)")
            cur.execute(f"DROP DATABASE `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def drop_database(name: str) -> None:
    conn = mysql_connect()
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
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


def create_concert(title: str, **fields):
    """A published concert on sale for an hour now, with one schedule a week ahead; `fields`
    override Concert fields (queue settings, hold_minutes)."""
    from concerts.models import Concert, Schedule

    now = datetime.now(UTC)
    concert = Concert.objects.create(
        title=title,
        artist="Bench",
        venue="Bench hall",
        is_published=True,
        sale_opens_at=now - timedelta(hours=1),
        **fields,
    )
    Schedule.objects.create(
        concert=concert, starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2)
    )
    return concert


def write_lines(path: Path, method: str, url_path: str, rows) -> Path:
    """A customers file for wrk/cycle.lua: METHOD, PATH, then each row's fields, tab-separated."""
    path.write_text("".join("\t".join((method, url_path, *row)) + "\n" for row in rows))
    return path


def get_json(url: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def server_environment(database: str, prefix: str) -> dict:
    """The environment of a production-shaped gunicorn on the scratch database and Redis prefix,
    with a fresh SECRET_KEY. The benchmark process takes it over too (see adopt_environment)."""
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    return {
        **{k: v for k, v in os.environ.items() if k not in ("FAST_PASSWORD_HASHER", "PYTHONPATH")},
        "DJANGO_ENV": "production",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{database}",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "ACCESS_LOG": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # the ceiling row's no-op endpoint (config/benchmark.py)
        "BENCHMARK_ENDPOINTS": "true",
    }


def adopt_environment(server_env: dict) -> None:
    """This process shares the server's settings (same SECRET_KEY: it issues queue tokens)."""
    os.environ.update({**server_env, "FAST_PASSWORD_HASHER": "true"})


def migrate(src: Path, database: str) -> None:
    t0 = time.monotonic()
    subprocess.run(
        [str(VENV / "python"), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=src,
        check=True,
        env=os.environ.copy(),
    )
    log(f"migrated {database} in {time.monotonic() - t0:.1f} s")


def enter_code_snapshot(ref: str, tmp: Path, invocation: str, prefix: str) -> tuple[dict, Path]:
    """Copy the code under test (the working tree, or a git ref) to tmp/src and run from
    there, so edits made while a benchmark runs cannot change what it measures.
    Returns the run's metadata (machine, git state, command) and the snapshot folder."""
    meta = {"machine": machine(), "git": git_state(), "command": invocation}
    src = tmp / "src"
    meta["git"].update(snapshot_code(ref, src))
    sys.path.insert(0, str(src))
    os.chdir(src)
    log(f"benchmarking a copy of the {ref} ({meta['git']['commit'][:12]}) in {src}")
    log(
        f"machine: {meta['machine']['nproc']} x {meta['machine']['cpu_model']}, "
        f"load {' '.join(meta['machine']['loadavg_at_start'])}; redis prefix {prefix}"
    )
    return meta, src


def setup_django_on(src: Path, database: str) -> None:
    """Migrate the benchmark's database and load Django from the snapshot (checked)."""
    migrate(src, database)
    import django

    django.setup()
    import concerts

    assert Path(concerts.__file__).is_relative_to(src), concerts.__file__


def new_redis_prefix() -> str:
    return f"bench-{secrets.token_hex(6)}"


def require_wrk() -> bool:
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk", file=sys.stderr
        )
        return False
    return True


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


# --- one run's lifecycle ---------------------------------------------------------------------
class BenchRun:
    """What every benchmark script does around its measurements: take a snapshot of the code,
    create a scratch database and Redis prefix, load Django from the snapshot on it; and on
    the way out, whatever happened (an error, Ctrl-C, SIGTERM), stop the processes it
    started, delete its Redis keys, drop its database and its temporary folder. An error
    inside the `with` block is logged and kept in `aborted`, not raised, so the script can
    still report what it measured; `meta` is None when it failed before measuring.

        with BenchRun(code=args.code, database=DB_NAME, ...) as run:
            server = run.start(Gunicorn(run.server_env, 2, log_path, cwd=run.src))
            ...
    """

    def __init__(self, *, code: str, database: str, invocation: str, drop_stale: bool):
        self.code, self.database, self.invocation = code, database, invocation
        self.drop_stale = drop_stale
        self.prefix = new_redis_prefix()
        self.server_env = server_environment(database, self.prefix)
        adopt_environment(self.server_env)  # same SECRET_KEY: this process issues queue tokens
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.meta: dict | None = None
        self.src: Path | None = None
        self.aborted: str | None = None
        self._created_db = False
        self._processes: list = []

    def __enter__(self) -> BenchRun:
        def on_term(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "logs").mkdir(exist_ok=True)
        try:
            meta, self.src = enter_code_snapshot(self.code, self.tmp, self.invocation, self.prefix)
            create_database(self.database, self.drop_stale)
            self._created_db = True
            setup_django_on(self.src, self.database)
        except BaseException as error:
            self._clean_up()
            raise SystemExit(f"aborted before measuring: {error!r}") from error
        self.meta = meta
        return self

    def start(self, process):
        """Start a Gunicorn or CeleryProcesses, stopped again on the way out."""
        self._processes.append(process)
        process.start()
        return process

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is KeyboardInterrupt:
            log("interrupted: cleaning up")
            self.aborted = "interrupted"
        elif exc is not None:
            log(f"aborted: {exc!r}")
            self.aborted = repr(exc)
        self._clean_up()
        if self.meta is not None:
            self.meta["machine"]["loadavg_at_end"] = loadavg()
        return exc_type is None or issubclass(exc_type, Exception | KeyboardInterrupt)

    def _clean_up(self) -> None:
        for process in reversed(self._processes):
            process.stop()  # (a no-op for one already stopped)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        log(f"deleted {delete_redis_prefix(self.prefix)} Redis keys under {self.prefix}:")
        if self._created_db:
            drop_database(self.database)
            log(f"dropped {self.database}")
        os.chdir(ROOT)
        shutil.rmtree(self.tmp, ignore_errors=True)
