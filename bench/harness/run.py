"""One run's lifecycle: what every benchmark does around its measurements.

    with BenchRun(code="HEAD", database="concerts_bench_suite", ...) as run:
        ...prepare data (Django is set up, on the scratch database)...
        system = run.start_system(workers=2)
        ...measure...

On the way in: a copy of the code under test, a scratch database and Redis prefix, Django
loaded from the copy and migrated. On the way out, whatever happened (an error, Ctrl-C,
SIGTERM): the processes it started stopped, its Redis keys deleted, its database dropped, its
temporary folder removed. An error inside the block is logged and kept in `aborted`, not
raised, so that what was measured until then is still reported.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.harness import LOGS, ROOT, VENV, log
from bench.harness.code import git_state, loadavg, machine, snapshot_code
from bench.harness.processes import System
from bench.harness.stores import (
    REDIS_URL,
    create_database,
    database_url,
    delete_redis_prefix,
    drop_database,
    new_redis_prefix,
)


def server_environment(database: str, prefix: str) -> dict:
    """The environment of the system under test: production settings, the scratch database
    and Redis prefix, a fresh SECRET_KEY, the ceiling's no-op endpoint mounted."""
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("FAST_PASSWORD_HASHER", "PYTHONPATH")
    }
    return {
        **inherited,
        "DJANGO_ENV": "production",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "DATABASE_URL": database_url(database),
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "ACCESS_LOG": "",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "BENCHMARK_ENDPOINTS": "true",  # the ceiling row (config/benchmark.py)
        # The queue status rows poll the same 1,000 customers as fast as wrk can: with the
        # poll gate on, nearly every poll would be a 429 (docs/queue.md, "Polling").
        "QUEUE_POLL_GATE": os.environ.get("QUEUE_POLL_GATE", "false"),
        # Customer emails are rendered and sent as in production, into memory: no SMTP
        # server here, and a mail server's time is not ours to measure.
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }


class BenchRun:
    def __init__(self, *, code: str, database: str, invocation: str, drop_stale: bool):
        self.code, self.database, self.invocation = code, database, invocation
        self.drop_stale = drop_stale
        self.prefix = new_redis_prefix()
        self.server_env = server_environment(database, self.prefix)
        # This process works on the same settings: the same SECRET_KEY issues valid queue
        # tokens, and the fast hasher makes thousands of customers in seconds.
        os.environ.update({**self.server_env, "FAST_PASSWORD_HASHER": "true"})
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.src = self.tmp / "src"
        self.meta: dict | None = None
        self.aborted: str | None = None
        self._created_database = False
        self._systems: list[System] = []

    def __enter__(self) -> BenchRun:
        signal.signal(signal.SIGTERM, _interrupt)
        LOGS.mkdir(parents=True, exist_ok=True)
        try:
            meta = self._snapshot_code()
            create_database(self.database, drop_stale=self.drop_stale)
            self._created_database = True
            self._set_up_django()
        except BaseException as error:
            self._clean_up()
            raise SystemExit(f"aborted before measuring: {error!r}") from error
        self.meta = meta
        return self

    def start_system(self, workers: int, proxy: bool = True, nodes: int = 1) -> System:
        """nginx, gunicorn and Celery (from the snapshot), stopped again on the way out."""
        system = System(
            env=self.server_env,
            workers=workers,
            cwd=self.src,
            logs=LOGS,
            beat_schedule=self.tmp / "celerybeat-schedule",
            scratch=self.tmp,
            proxy=proxy,
            nodes=nodes,
        )
        self._systems.append(system)
        system.start()
        front = "nginx in front of " if proxy else ""
        web = (
            f"{nodes} gunicorn nodes of {workers} workers"
            if nodes > 1
            else f"gunicorn ({workers} workers)"
        )
        log(f"{front}{web} at {system.url}, Celery worker and beat up")
        return system

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is KeyboardInterrupt:
            log("interrupted: cleaning up")
            self.aborted = "interrupted"
        elif exc is not None:
            log(f"aborted: {exc!r}")
            traceback.print_exception(exc, file=sys.stderr)  # where, for whoever runs it again
            self.aborted = repr(exc)
        self._clean_up()
        if self.meta is not None:
            self.meta["machine"]["loadavg_at_end"] = loadavg()
        return exc_type is None or issubclass(exc_type, Exception | KeyboardInterrupt)

    def _snapshot_code(self) -> dict:
        """Copy the code under test and import it from the copy: edits made in the tree while
        the run goes on cannot change what it measures."""
        meta = {"machine": machine(), "git": git_state(), "command": self.invocation}
        meta["git"].update(snapshot_code(self.code, self.src))
        sys.path.insert(0, str(self.src))
        os.chdir(self.src)
        m = meta["machine"]
        log(f"benchmarking a copy of the {self.code} ({meta['git']['commit'][:12]})")
        log(
            f"machine: {m['nproc']} x {m['cpu_model']}, load {' '.join(m['loadavg_at_start'])}; "
            f"database {self.database}, redis prefix {self.prefix}"
        )
        return meta

    def _set_up_django(self) -> None:
        started = time.monotonic()
        migrate = [str(VENV / "python"), "manage.py", "migrate", "--noinput", "-v0"]
        subprocess.run(migrate, cwd=self.src, check=True, env=os.environ.copy())
        log(f"migrated {self.database} in {time.monotonic() - started:.1f} s")
        import django

        django.setup()
        import concerts

        if not Path(concerts.__file__).is_relative_to(self.src):
            raise RuntimeError(f"the app code was imported from {concerts.__file__}, not the copy")

    def _clean_up(self) -> None:
        for system in reversed(self._systems):
            system.stop()  # (nothing to do for one already stopped)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django never set up: no connection to close
            pass
        log(f"deleted {delete_redis_prefix(self.prefix)} Redis keys under {self.prefix}:")
        if self._created_database:
            drop_database(self.database)
            log(f"dropped {self.database}")
        os.chdir(ROOT)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does
