"""MariaDB and Redis: the scratch database and Redis key prefix a run makes and removes, and
what the database server itself counts (InnoDB counters, lock waits).

Both servers are shared (a test suite may use them at the same time): a run creates one
database of its own and writes Redis keys only under a random prefix, and removes exactly
those. It never drops another database or flushes Redis.
"""

from __future__ import annotations

import secrets
import threading
from urllib.parse import urlsplit

from bench.harness import log

MARIADB_URL = "mysql://root@127.0.0.1:3306"  # + /<database>: the run's DATABASE_URL
REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url(database: str) -> str:
    return f"{MARIADB_URL}/{database}"


def mysql_connect():
    import MySQLdb

    server = urlsplit(MARIADB_URL)
    return MySQLdb.connect(
        host=server.hostname,
        port=server.port or 3306,
        user=server.username or "root",
        passwd=server.password or "",
        connect_timeout=5,
    )


def create_database(name: str, *, drop_stale: bool) -> None:
    """A new, empty database. One left by a crashed run is dropped only with `drop_stale`:
    a run drops nothing it did not create."""
    conn = mysql_connect()
    try:
        cur = conn.cursor()
        cur.execute("SHOW DATABASES LIKE %s", [name])
        if cur.fetchone():
            if not drop_stale:
                raise SystemExit(
                    f"Database {name} already exists (a crashed earlier run?). The benchmark only "
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


def new_redis_prefix() -> str:
    return f"bench-{secrets.token_hex(6)}"


def delete_redis_prefix(prefix: str) -> int:
    """Delete the keys under `prefix:` (SCAN, then DELETE in batches). Returns how many."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deleted, batch = 0, []
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted


# Server-wide: every database on the server counts, not only the run's.
INNODB_COUNTERS = {
    "Innodb_deadlocks": "deadlocks",
    "Innodb_row_lock_waits": "row_lock_waits",
    "Innodb_row_lock_time": "row_lock_wait_ms",
    "Handler_rollback": "rollbacks",
}


def innodb_counters() -> dict:
    conn = mysql_connect()
    try:
        cur = conn.cursor()
        placeholders = ",".join(["%s"] * len(INNODB_COUNTERS))
        cur.execute(
            f"SHOW GLOBAL STATUS WHERE Variable_name IN ({placeholders})", list(INNODB_COUNTERS)
        )
        return {INNODB_COUNTERS[name]: int(value) for name, value in cur.fetchall()}
    finally:
        conn.close()


class LockWaitSampler:
    """What the database server does during a run, sampled every 50 ms on a connection of its
    own: lock waits (information_schema.INNODB_LOCK_WAITS) by table, index, wanted and held
    mode, and sessions busy on other databases. The InnoDB counters are server-wide, so when
    another database is busy (someone's test suite, say) they are not the run's alone. Waits
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

    def __init__(self, database: str, interval: float = 0.05):
        self.database, self.interval = database, interval
        self.samples = 0
        self.waits: dict[str, int] = {}
        self.other_busy_samples = 0
        self.other_databases: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample_until_stopped(self) -> None:
        conn = mysql_connect()
        try:
            cur = conn.cursor()
            while not self._stop.wait(self.interval):
                self.samples += 1
                cur.execute(self.WAITS)
                for table, index, wanted, held in cur.fetchall():
                    wait = f"{table.replace('`', '')} {index}: {wanted} waits for {held}"
                    self.waits[wait] = self.waits.get(wait, 0) + 1
                cur.execute(self.OTHERS, [self.database])
                busy = cur.fetchall()
                self.other_busy_samples += bool(busy)
                for database, _sessions in busy:
                    name = database or "(no database)"
                    self.other_databases[name] = self.other_databases.get(name, 0) + 1
        finally:
            conn.close()

    def report(self) -> dict:
        ours = {k: v for k, v in self.waits.items() if k.startswith(f"{self.database}.")}
        others = {k: v for k, v in self.waits.items() if k not in ours}
        return {
            "samples": self.samples,
            "waits": _most_first(ours),
            "waits_in_other_databases": _most_first(others),
            "other_databases_busy_samples": self.other_busy_samples,
            "other_databases_busy": self.other_databases,
        }


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
