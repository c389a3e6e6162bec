"""The production shape on servers of its own: a private MariaDB and Redis (ops/servers.py),
the schema migrated, then gunicorn (sync workers, DJANGO_ENV=production) behind nginx, and a
Celery worker and Celery beat, all from the working tree. Everything lives in one temporary
folder; down() stops it all, whatever state a fault left it in.

The web and Celery processes are bench/harness's (the same commands the benchmark measures);
this module adds what a fault needs of them: a gunicorn worker's pid, a Celery worker that can
be killed and started again.
"""

from __future__ import annotations

import os
import secrets
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.harness import ROOT, VENV
from bench.harness.processes import START_SECONDS, Celery, Gunicorn
from ops.nginx import Nginx
from ops.servers import SHARED_PORTS, PrivateMariaDB, PrivateRedis, free_port

DATABASE = "concerts_chaos"
REDIS_PREFIX = "chaos"
WORKERS = 2  # as the benchmark runs it (bench/__main__.py): one per core on the 2-core VM


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}Z] {message}", file=sys.stderr, flush=True)


def server_environment(*, database_url: str, redis_url: str) -> dict:
    """The environment of every process of the system (and of this one, for seeding and
    checks): production settings on the private servers. Nothing inherited may point at the
    machine's shared servers."""
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FAST_PASSWORD_HASHER", "PYTHONPATH")
        and not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "QUEUE_REDIS", "TEST_"))
    }
    env = {
        **inherited,
        "DJANGO_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_KEY_PREFIX": REDIS_PREFIX,
        "NUM_PROXIES": "1",  # behind nginx
        "ACCESS_LOG": "",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        port = int(env[name].rsplit(":", 1)[1].split("/")[0])
        if port in SHARED_PORTS:
            raise RuntimeError(f"{name} points at the machine's shared server: {env[name]}")
    return env


class RestartableCelery(Celery):
    """bench's Celery worker and beat, with a worker that can be SIGKILLed and started again
    while beat goes on (as a container runtime restarts a crashed worker)."""

    @property
    def worker(self) -> subprocess.Popen:
        return self.procs["worker"]

    def worker_pids(self) -> list[int]:
        """The worker's main process and its pool's (the one that runs the tasks)."""
        try:
            main = psutil.Process(self.worker.pid)
            return [main.pid, *(child.pid for child in main.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole session (main process and pool), nothing else."""
        if self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def restart_worker(self) -> float:
        """Start the worker again; returns the seconds until it said it is ready."""
        started = time.monotonic()
        readies = self._readies()
        self.procs["worker"] = subprocess.Popen(
            self.commands["worker"],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while self._readies() <= readies:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited again; see {self.log_path}")
            if time.monotonic() - started > START_SECONDS:
                raise RuntimeError(f"the Celery worker was not ready in {START_SECONDS} s")
            time.sleep(0.1)
        return time.monotonic() - started

    def _readies(self) -> int:
        return self.log_path.read_text(errors="replace").count(" ready.")


class Stack:
    """Private MariaDB and Redis, the schema, then (start_app) the web and Celery processes."""

    def __init__(self, folder: Path, *, workers: int = WORKERS):
        self.folder, self.workers = folder, workers
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.mariadb = PrivateMariaDB(folder / "mariadb")
        self.redis = PrivateRedis(folder / "redis")
        self.env = server_environment(
            database_url=self.mariadb.url(DATABASE), redis_url=self.redis.url
        )
        self.gunicorn: Gunicorn | None = None
        self.nginx: Nginx | None = None
        self.celery: RestartableCelery | None = None

    @property
    def url(self) -> str:
        return self.nginx.url

    def start_servers(self) -> None:
        self.mariadb.start()
        self.mariadb.create_database(DATABASE)
        self.redis.start()
        log(f"MariaDB at 127.0.0.1:{self.mariadb.port}, Redis at 127.0.0.1:{self.redis.port}")

    def migrate_and_set_up_django(self) -> None:
        """The schema, then Django in this process on the same settings (seeding, checks):
        the same SECRET_KEY, the private servers, the fast hasher for bulk customers."""
        started = time.monotonic()
        migrate = [str(VENV / "python"), "manage.py", "migrate", "--noinput", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=self.env, check=True)
        os.environ.update({**self.env, "FAST_PASSWORD_HASHER": "true"})
        import django

        django.setup()
        log(f"migrated {DATABASE} in {time.monotonic() - started:.1f} s")

    def start_app(self) -> None:
        self.gunicorn = Gunicorn(
            env=self.env, workers=self.workers, log_path=self.logs / "gunicorn.log", cwd=ROOT
        )
        self.gunicorn.start()
        self.nginx = Nginx(
            folder=self.folder / "nginx",
            listen=free_port(),
            upstreams=[f"127.0.0.1:{self.gunicorn.port}"],
        ).start()
        self.celery = RestartableCelery(
            env=self.env,
            log_path=self.logs / "celery.log",
            cwd=ROOT,
            beat_schedule=self.folder / "celerybeat-schedule",
        )
        self.celery.start()
        log(
            f"nginx at {self.nginx.url} in front of gunicorn ({self.workers} workers), "
            "Celery worker and beat up"
        )

    def gunicorn_workers(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.gunicorn.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def database_ports_of(self, pids: list[int]) -> dict[int, int]:
        """Local port -> pid of each connection these processes have open to our MariaDB: how
        the database's processlist (host 127.0.0.1:<port>) names its client process."""
        ports = {}
        for pid in pids:
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            for connection in connections:
                if connection.raddr and connection.raddr.port == self.mariadb.port:
                    ports[connection.laddr.port] = pid
        return ports

    def down(self) -> None:
        """Stop everything, in an order that lets each part end cleanly; a server a fault
        left paused or stopped is continued or skipped."""
        from django.db import connections

        try:
            connections.close_all()
        except Exception:  # Django never set up, or the database already gone
            pass
        for server in (self.redis, self.mariadb):
            if server.paused:
                server.resume()  # or the processes still talking to it would not stop
        for stop in (
            lambda: self.celery and self.celery.stop(),
            lambda: self.nginx and self.nginx.stop(),
            lambda: self.gunicorn and self.gunicorn.stop(),
            self.redis.close,
            self.mariadb.close,
        ):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                log(f"while stopping: {error!r}")
