"""CPU accounting: how busy the machine was during a row, and how much of it the run's own
processes used.

Each group is picked by what it is to this run, never by a process name: gunicorn and Celery
are the processes the run started, with their children; MariaDB and Redis are the processes
listening on the ports of the run's DATABASE_URL and REDIS_URL. Counting every `mariadbd` or
`redis-server` on the machine added a test suite's own Redis, or a second MariaDB, to the run's,
and one of those starting or stopping during a row made a group go negative ("mariadb -4.42
cores"). What is left of the machine's busy time is "other": well above 0.1 core on a 2-core
machine means something else ran and the row is noisy.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from bench.harness import log

GROUPS = ("gunicorn", "nginx", "celery", "redis", "mariadb")


class CpuMeter:
    """Snapshots of CPU time: the machine's, and each group's (`cpu_delta` compares two).

    gunicorn_pids (a master per web node), nginx_pid and celery_pids are the processes the run
    started; their children (gunicorn's and nginx's workers, the Celery worker's pool) count
    with them, also the ones that ended in between (a recycled worker). wrk is every child of
    this process that ended in between: measure takes its snapshots so that wrk is the only
    one."""

    def __init__(
        self,
        *,
        gunicorn_pids: list[int],
        celery_pids: list[int],
        nginx_pid: int | None = None,
        database_url: str,
        redis_url: str,
    ):
        self.pids = {
            "gunicorn": list(gunicorn_pids),
            "nginx": [nginx_pid] if nginx_pid else [],
            "celery": list(celery_pids),
            "redis": _listener_pids(redis_url, "Redis", default_port=6379),
            "mariadb": _listener_pids(database_url, "MariaDB", default_port=3306),
        }

    def snapshot(self) -> dict:
        busy, total = _machine_ticks()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "time": time.monotonic(),
            "busy": busy,
            "all": total,
            **{group: sum(map(_tree_seconds, self.pids[group])) for group in GROUPS},
            "wrk": children.ru_utime + children.ru_stime,
        }


def cpu_delta(before: dict, after: dict, requests: int) -> dict:
    """Cores used on average between two snapshots, by group; gunicorn's CPU per request."""
    seconds = after["time"] - before["time"]
    busy = (after["busy"] - before["busy"]) / max(1, after["all"] - before["all"])
    busy_cores = busy * (os.cpu_count() or 1)
    # A group's time only grows; max() keeps a process that vanished from making it negative.
    used = {group: max(0.0, after[group] - before[group]) for group in (*GROUPS, "wrk")}
    cores = {group: seconds_used / seconds for group, seconds_used in used.items()}
    return {
        "machine_busy_cores": round(busy_cores, 2),
        **{f"{group}_cores": round(value, 2) for group, value in cores.items()},
        "other_cores": round(max(0.0, busy_cores - sum(cores.values())), 2),
        "gunicorn_cpu_ms_per_request": round(used["gunicorn"] * 1000 / max(1, requests), 3),
    }


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every CPU since boot, from /proc/stat."""
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def _tree_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants, the ended (and reaped) ones included."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    seconds = 0.0
    for process in family:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:  # ended since the listing: its parent counts it now
            continue
        # children_*: descendants that ended and were reaped, which no listing shows
        seconds += t.user + t.system + t.children_user + t.children_system
    return seconds


def _listener_pids(url: str, server: str, *, default_port: int) -> list[int]:
    """The process listening where `url` points, when it runs on this machine."""
    address = urlsplit(url)
    port = address.port or default_port
    host = socket.gethostbyname(address.hostname or "127.0.0.1")
    # The server may listen on the address itself or on every address (IPv4 or dual-stack).
    addresses = {host, f"::ffff:{host}", "0.0.0.0", "::"}
    try:
        listeners = {
            conn.pid
            for conn in psutil.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN
            and conn.laddr.port == port
            and conn.laddr.ip in addresses
            and conn.pid
        }
    except psutil.AccessDenied:
        listeners = set()
    if not listeners:
        log(f"no process of this machine seen listening on {host}:{port}: {server} CPU not counted")
    return sorted(listeners)
