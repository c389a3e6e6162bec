"""nginx, gunicorn and Celery as in production, started from the code snapshot (nginx from
this tree's ops/nginx: the proxy is the harness's, whatever code is measured).

Each process runs in a session of its own, so that stopping it ends exactly it and its
children, never a process someone else started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from bench.harness import VENV
from bench.harness.cpu import CpuMeter
from ops.nginx import Nginx

START_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], *, cwd: Path, env: dict, log_file) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM: gunicorn and Celery shut down gracefully and stop their own children."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)


def _wait_or_kill(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process's own session, nothing else
        proc.wait(timeout=10)


class Gunicorn:
    """gunicorn with config/gunicorn.conf.py on a free local port, `workers` sync workers."""

    def __init__(self, *, env: dict, workers: int, log_path: Path, cwd: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)}
        self.workers, self.log_path, self.cwd = workers, log_path, cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log_file = self.log_path.open("ab")
        command = [
            str(VENV / "gunicorn"),
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ]
        self.proc = _start(command, cwd=self.cwd, env=self.env, log_file=self._log_file)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            if self._healthy() and self._live_workers() >= self.workers:
                return
            time.sleep(0.25)
        raise RuntimeError(
            f"gunicorn did not answer /healthz in {START_SECONDS} s; see {self.log_path}"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _live_workers(self) -> int:
        try:
            return len(psutil.Process(self.proc.pid).children())
        except psutil.NoSuchProcess:
            return 0

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            _wait_or_kill(self.proc)
            self._log_file.close()
            self.proc = None


class Celery:
    """A Celery worker and Celery beat: the queue's admission tick every second, the hold
    sweep every 5 s, housekeeping."""

    def __init__(self, *, env: dict, log_path: Path, cwd: Path, beat_schedule: Path):
        celery = str(VENV / "celery")
        self.commands = {
            "worker": [
                *[celery, "-A", "config", "worker", "--loglevel=INFO", "--concurrency=1"],
                *["--without-gossip", "--without-mingle"],  # as in production
            ],
            "beat": [celery, "-A", "config", "beat", "--loglevel=INFO", "-s", str(beat_schedule)],
        }
        self.env, self.log_path, self.cwd = env, log_path, cwd
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self._log_file = self.log_path.open("ab")
        for name, command in self.commands.items():
            self.procs[name] = _start(command, cwd=self.cwd, env=self.env, log_file=self._log_file)
        deadline = time.monotonic() + START_SECONDS
        while "ready." not in self.log_path.read_text(errors="replace"):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"celery {name} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker was not ready in {START_SECONDS} s")
            time.sleep(0.25)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs.values()]

    def stop(self) -> None:
        for proc in self.procs.values():  # both at once: each takes a moment to shut down
            _terminate(proc)
        for proc in self.procs.values():
            _wait_or_kill(proc)
        if self.procs:
            self._log_file.close()
        self.procs = {}


class System:
    """The system under test: nginx in front of gunicorn (the production shape; `proxy=False`
    measures gunicorn alone), a Celery worker and Celery beat on one environment (the run's
    scratch database and Redis prefix), and the meter of their CPU."""

    def __init__(
        self,
        *,
        env: dict,
        workers: int,
        cwd: Path,
        logs: Path,
        beat_schedule: Path,
        scratch: Path,
        proxy: bool = True,
        nodes: int = 1,
    ):
        if nodes > 1 and not proxy:
            raise ValueError("several web nodes need the proxy in front of them")
        # Behind the proxy the client's address is the one it forwards (the signup throttle).
        self.env = {**env, "NUM_PROXIES": "1"} if proxy else env
        node_envs = [self.env] * nodes
        if env.get("METRICS_TOKEN") and not env.get("PROMETHEUS_MULTIPROC_DIR"):
            # Metrics on (`METRICS_TOKEN=... bin/bench`): gunicorn and the Celery worker count
            # into a folder of this run, as bin/run and production do (docs/metrics.md). Each
            # web node its own (its master empties it at start, as a machine's would); the
            # Celery worker shares the first node's.
            folders = [scratch / "metrics" / f"node-{i}" for i in range(nodes)]
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            node_envs = [{**self.env, "PROMETHEUS_MULTIPROC_DIR": str(f)} for f in folders]
            self.env = node_envs[0]
        # `nodes` gunicorns of `workers` processes each, as separate machines would run them:
        # each its own master, port and per-process caches; they share the database, Redis
        # and one log file (each line is written whole, so the log checks see every node).
        self.nodes = [
            Gunicorn(env=node_env, workers=workers, log_path=logs / "suite-gunicorn.log", cwd=cwd)
            for node_env in node_envs
        ]
        self.gunicorn = self.nodes[0]  # the log file, and what --profile attaches to
        self.celery = Celery(
            env=self.env, log_path=logs / "suite-celery.log", cwd=cwd, beat_schedule=beat_schedule
        )
        self.nginx = (
            Nginx(
                folder=scratch / "nginx",
                listen=_free_port(),
                upstreams=[f"127.0.0.1:{node.port}" for node in self.nodes],
            )
            if proxy
            else None
        )
        self.cpu: CpuMeter | None = None

    @property
    def url(self) -> str:
        return self.nginx.url if self.nginx else self.gunicorn.url

    def start(self) -> None:
        for log_path in (self.gunicorn.log_path, self.celery.log_path):
            log_path.write_bytes(b"")  # each run's logs alone
        for node in self.nodes:
            node.start()
        if self.nginx:
            self.nginx.start()
        self.celery.start()
        self.cpu = CpuMeter(
            gunicorn_pids=[node.proc.pid for node in self.nodes],
            nginx_pid=self.nginx.process.pid if self.nginx else None,
            celery_pids=self.celery.pids(),
            database_url=self.env["DATABASE_URL"],
            redis_url=self.env["REDIS_URL"],
        )

    def stop(self) -> None:
        self.celery.stop()
        if self.nginx:
            self.nginx.stop()
        for node in self.nodes:
            node.stop()
