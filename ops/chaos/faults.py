"""The faults, one function each: do it to the running system, wait for it to be over (the
server restarted, the process back), and say when it began and ended and what was seen.

Timing matters for three of them, so they wait for the right moment instead of striking at
random, watching the database's running statements (its processlist):
- the Celery worker is killed while its hold sweep runs a statement of its transaction
  (freeing the seats of lapsed holds, marking them expired);
- a gunicorn worker is killed while it runs a statement of a customer's payment (the only
  write in flight at that moment);
- the slow sockets stay open (opened again when nginx closes them) for the whole fault.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

from .client import Recorder
from .stack import DATABASE, Stack, log

REDIS_RESTART_DELAY = 1.0  # a supervisor restarts a crashed Redis about this fast
REDIS_STOP_SECONDS = 15
MARIADB_STOP_SECONDS = 20
CELERY_RESTART_DELAY = 2.0
CELERY_KILL_ATTEMPTS = 3
GUNICORN_KILLS = 3
GUNICORN_KILL_PATIENCE = 8.0  # seconds to wait for a payment mid-transaction, per kill
SLOW_SOCKETS = 50
SWEEP_TASK = "reservations.tasks.expire_lapsed_holds"


@dataclass
class Fault:
    started: float
    ended: float  # when it was over: the server answered again, the process was back
    measures: dict = field(default_factory=dict)


class Faults:
    def __init__(self, stack: Stack, recorder: Recorder):
        self.stack, self.recorder = stack, recorder

    def _clock(self) -> float:
        return self.recorder.now()

    def _observer(self):
        """A connection of the harness to our MariaDB, each statement on its own (no
        transaction of its own to show up among the ones it looks for)."""
        conn = self.stack.mariadb.connect(DATABASE)
        conn.autocommit(True)
        return conn

    # --- Redis ------------------------------------------------------------------------------
    def redis_kill(self, *, keep_data: bool) -> Fault:
        redis = self.stack.redis
        started = self._clock()
        redis.kill()
        try:
            time.sleep(REDIS_RESTART_DELAY)
        finally:  # (also when interrupted: the checks of what ran so far need it)
            restarting = time.monotonic()
            redis.start(keep_data=keep_data)
        return Fault(
            started,
            self._clock(),
            {
                "restart_s": round(time.monotonic() - restarting, 2),
                "data": "kept (append-only file)" if keep_data else "wiped",
            },
        )

    def redis_stop(self) -> Fault:
        started = self._clock()
        self.stack.redis.pause()
        try:
            time.sleep(REDIS_STOP_SECONDS)
        finally:
            self.stack.redis.resume()
        return Fault(started, self._clock(), {"stopped_s": REDIS_STOP_SECONDS})

    # --- MariaDB ----------------------------------------------------------------------------
    def mariadb_stop(self) -> Fault:
        mariadb = self.stack.mariadb
        started = self._clock()
        mariadb.stop()
        shutdown = self._clock() - started
        try:
            time.sleep(max(0.0, started + MARIADB_STOP_SECONDS - self._clock()))
        finally:
            restarting = time.monotonic()
            mariadb.start()
        return Fault(
            started,
            self._clock(),
            {
                "shutdown_s": round(shutdown, 2),
                "down_s": MARIADB_STOP_SECONDS,
                "restart_s": round(time.monotonic() - restarting, 2),
            },
        )

    def mariadb_kill(self) -> Fault:
        mariadb = self.stack.mariadb
        started = self._clock()
        mariadb.kill()
        mariadb.start()  # crash recovery from the redo log
        return Fault(started, self._clock(), {"restart_s": round(self._clock() - started, 2)})

    # --- Celery -----------------------------------------------------------------------------
    def celery_kill(self) -> Fault:
        """SIGKILL the worker while the hold sweep runs, start it again, and see the lapsed
        holds swept once it is back. A kill that lands just after the sweep committed leaves
        it nothing undone; then the worker, once back, is killed again at its next sweep (up
        to CELERY_KILL_ATTEMPTS times)."""
        celery = self.stack.celery
        started, attempts = None, []
        while len(attempts) < CELERY_KILL_ATTEMPTS:
            moment = self._sweep_moment()
            killed_at = self._clock()
            started = started if started is not None else killed_at
            celery.kill_worker()
            # What the killed sweep had to do (its transaction is rolled back by now).
            due = self._lapsed_holds()
            time.sleep(CELERY_RESTART_DELAY)
            ready_s = celery.restart_worker()
            attempts.append(
                moment
                | {
                    "at": round(killed_at, 2),
                    "worker_ready_s": round(ready_s, 2),
                    "lapsed_holds_at_kill": len(due),
                }
            )
            if due:
                break
        ended = self._clock()
        swept = self._swept(due, since=ended)
        return Fault(
            started,
            ended,
            attempts[-1] | {"kills": len(attempts), "lapsed_holds_swept_s_after_restart": swept},
        )

    def _sweep_moment(self, patience: float = 60) -> dict:
        """Wait until the worker's hold sweep is in its transaction; returns what was seen.
        The worker's log says when the sweep task arrives and when it is done (it runs 5-30
        ms); between the two, the database's running statements are watched for the sweep's
        (below). Celery's worker opens a new database connection for each task, so the
        sweep's statements are told apart from the web's by what they do and by not being on
        a gunicorn worker's connection. After `patience`, any moment of the sweep will do."""
        celery = self.stack.celery
        conn = self._observer()
        try:
            log_at = celery.log_path.stat().st_size
            deadline = time.monotonic() + patience
            halfway = time.monotonic() + patience / 2
            web, web_at = set(), 0.0
            sweeping: str | None = None  # the sweep task received and not yet done
            while True:
                if not sweeping and time.monotonic() - web_at > 0.5:
                    web = set(self.stack.database_ports_of(self.stack.gunicorn_workers()))
                    web_at = time.monotonic()
                log_at, lines = _read_from(celery.log_path, log_at)
                for task_id, event in _sweep_events(lines):
                    if event == "received":
                        sweeping = task_id
                    elif task_id == sweeping:
                        sweeping = None
                if sweeping:
                    # Best: the sweep freeing seats (it has work, and has done half of it);
                    # after half the patience, its claim will do.
                    wanted = _SWEEP_WRITES if time.monotonic() < halfway else _SWEEP_CLAIM
                    for port, statement in _running_statements(conn).items():
                        if port not in web and wanted.search(statement):
                            return {
                                "killed": "mid-sweep, running a statement of its transaction",
                                "statement": statement[:160],
                            }
                    if time.monotonic() > deadline:
                        return {"killed": "while the sweep task ran (no statement of it seen)"}
                time.sleep(0.0002 if sweeping else 0.002)
        finally:
            conn.close()

    def _lapsed_holds(self) -> set[int]:
        """Reservations still marked held whose hold has run out: the sweep's work."""
        conn = self._observer()
        try:
            cursor = conn.cursor()
            cursor.execute(
                "SELECT id FROM reservations_reservation "
                "WHERE status = 'held' AND expires_at <= UTC_TIMESTAMP(6)"
            )
            return {row[0] for row in cursor.fetchall()}
        finally:
            conn.close()

    def _swept(self, due: set[int], *, since: float, patience: float = 30) -> float | None:
        """Seconds after the restart until the restarted worker has swept every one of `due`
        (the sweep runs every 5 s)."""
        while self._clock() - since < patience:
            if not due & self._lapsed_holds():
                return round(self._clock() - since, 2)
            time.sleep(0.25)
        return None

    # --- gunicorn ---------------------------------------------------------------------------
    def gunicorn_kill(self) -> Fault:
        """SIGKILL a worker mid-payment, GUNICORN_KILLS times; gunicorn's master starts a new
        one each time. The customers retry their payment with the same Idempotency-Key."""
        kills = []
        started = None
        conn = self._observer()
        try:
            for _ in range(GUNICORN_KILLS):
                pid, how, statement = self._worker_mid_payment(conn)
                at = self._clock()
                started = started if started is not None else at
                _sigkill(pid)
                kills.append({"at": round(at, 2), "pid": pid, "how": how, "statement": statement})
                kills[-1]["replaced_s"] = self._wait_for_workers(pid, since=at)
                time.sleep(3)
        finally:
            conn.close()
        return Fault(started, self._clock(), {"kills": kills})

    def _worker_mid_payment(self, conn) -> tuple[int, str, str]:
        """A worker running a writing statement while a payment, and no other write, is in
        flight: a statement of the payment's transaction. After GUNICORN_KILL_PATIENCE, any
        worker while a payment is in flight."""
        deadline = time.monotonic() + GUNICORN_KILL_PATIENCE
        other_writes = ("charge", "hold", "cancel", "leave")
        owners, owners_at = {}, 0.0
        while True:
            # Which worker has which database connection, looked up ahead (psutil takes
            # milliseconds, longer than a payment's statements): connections are kept.
            if time.monotonic() - owners_at > 0.5:
                owners = self.stack.database_ports_of(self.stack.gunicorn_workers())
                owners_at = time.monotonic()
            if self.recorder.in_flight("pay") and not self.recorder.in_flight(*other_writes):
                for port, statement in _running_statements(conn).items():
                    if port in owners and _WRITING.search(statement):
                        return owners[port], "mid-payment, in its transaction", statement[:160]
                if time.monotonic() > deadline and owners:
                    worker = next(iter(owners.values()))
                    return worker, "a payment in flight (no statement of it seen)", ""
            time.sleep(0.0002)

    def _wait_for_workers(self, killed: int, *, since: float, patience: float = 30):
        """Seconds until gunicorn's master has replaced the killed worker."""
        while self._clock() - since < patience:
            workers = self.stack.gunicorn_workers()
            if killed not in workers and len(workers) >= self.stack.workers:
                return round(self._clock() - since, 2)
            time.sleep(0.02)
        return None

    # --- slow clients -----------------------------------------------------------------------
    def slow_sockets(self, seconds: float) -> Fault:
        sockets = SlowSockets(self.stack.nginx.listen, SLOW_SOCKETS)
        started = self._clock()
        sockets.start()
        time.sleep(seconds)
        sockets.stop()
        return Fault(started, self._clock(), sockets.report())


class SlowSockets(threading.Thread):
    """Clients that connect to nginx, send part of a request and then a byte every few
    seconds, forever: half stall in the headers, half in a body. One nginx closes (its
    client timeouts) is opened again at once, so `count` are open all the time."""

    TRICKLE_SECONDS = 3.0
    HEADERS = b"GET /api/v1/accounts/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x"
    BODY = (
        b"POST /api/v1/wallet/charges HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"
    )

    def __init__(self, port: int, count: int):
        super().__init__(name="slow-sockets", daemon=True)
        self.port, self.count = port, count
        self.opened = self.closed_by_server = self.failed_to_open = 0
        self.open_samples: list[int] = []
        self._halt = threading.Event()

    def run(self) -> None:
        slots: list[socket.socket | None] = [None] * self.count
        try:
            while not self._halt.is_set():
                for i in range(self.count):
                    slots[i] = self._keep_stalling(i, slots[i])
                self.open_samples.append(sum(s is not None for s in slots))
                self._halt.wait(self.TRICKLE_SECONDS)
        finally:
            for s in slots:
                if s is not None:
                    s.close()

    def _keep_stalling(self, i: int, sock: socket.socket | None) -> socket.socket | None:
        if sock is not None:
            try:
                sock.send(b"x")  # one more byte: never a whole request
                if _closed(sock):
                    raise ConnectionResetError
                return sock
            except OSError:
                self.closed_by_server += 1
                sock.close()
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(self.HEADERS if i % 2 else self.BODY)
            sock.setblocking(False)
            self.opened += 1
            return sock
        except OSError:
            self.failed_to_open += 1
            return None

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def report(self) -> dict:
        samples = self.open_samples or [0]
        return {
            "sockets": self.count,
            "opened": self.opened,
            "closed_by_nginx": self.closed_by_server,
            "failed_to_open": self.failed_to_open,
            "open_min": min(samples),
            "open_max": max(samples),
        }


def _closed(sock: socket.socket) -> bool:
    """Has nginx closed this non-blocking socket, or answered it (a 408 or 400 it is about
    to close after)?"""
    try:
        sock.recv(4096)
    except BlockingIOError:
        return False  # nothing to read: still waiting for the rest of the request
    return True


def _running_statements(conn) -> dict[int, str]:
    """Client port -> statement, for each database session running one right now. (The
    processlist is live; information_schema.INNODB_TRX is a cache that polling faster than
    every 100 ms never lets refresh.)"""
    cursor = conn.cursor()
    cursor.execute(
        "SELECT HOST, INFO FROM information_schema.PROCESSLIST "
        "WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO IS NOT NULL"
    )
    return {int(host.rsplit(":", 1)[1]): info for host, info in cursor.fetchall() if ":" in host}


# A statement of a transaction that writes: what a payment runs (and a sweep, and a hold),
# never what a read-only call does.
_WRITING = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b|\bFOR UPDATE\b", re.IGNORECASE)
# The sweep claims due holds with SKIP LOCKED (nothing else uses it), frees their seats, then
# marks them expired and commits. Freeing the seats is its first write: a kill then leaves
# the transaction half done, with the rest still to come.
_SWEEP_CLAIM = re.compile(r"SKIP LOCKED")
_SWEEP_WRITES = re.compile(r"^UPDATE `concerts_seat` SET `status` = 'available'")


def _read_from(path, offset: int) -> tuple[int, list[str]]:
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    # A line still being written stays for the next read.
    complete = data[: data.rfind(b"\n") + 1]
    return offset + len(complete), complete.decode(errors="replace").splitlines()


_SWEEP_EVENT = re.compile(re.escape(SWEEP_TASK) + r"\[([0-9a-f-]+)\] (received|succeeded|raised)")


def _sweep_events(lines: list[str]):
    for line in lines:
        found = _SWEEP_EVENT.search(line)
        if found:
            yield found.group(1), found.group(2)


def _sigkill(pid: int) -> None:
    log(f"SIGKILL gunicorn worker {pid}")
    os.kill(pid, signal.SIGKILL)
