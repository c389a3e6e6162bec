"""Measuring a row against the running system.

Reads run for a fixed time over a file of customers (wrk/cycle.lua), in rounds: this VM's speed
drifts by 10-25 % from one minute to the next whoever else runs, so every read row runs once a
round, the rounds interleaved, and keeps its best round (the least disturbed); all rounds stay
in the JSON. Writes send a prepared list once (wrk/list.lua) and end when the list does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import log
from bench.harness.checks import check
from bench.harness.code import loadavg
from bench.harness.cpu import cpu_delta
from bench.harness.logs import (
    count_events,
    error_samples,
    log_offset,
    read_since,
    warnings_by_message,
)
from bench.harness.processes import System
from bench.harness.profile import Profiler
from bench.harness.stores import LockWaitSampler, innodb_counters
from bench.harness.wrk import CYCLE_LUA, LIST_LUA, parse_list, parse_wrk, run_wrk

READ_THREADS = 2  # wrk threads of a read row, each with its own slice of the customers
# The gunicorn log events of a read row (a write run keeps them all, with the WARNING lines)
READ_ROW_EVENTS = (
    "worker_boots",
    "worker_recycles",
    "worker_timeouts",
    "tracebacks",
    "error_lines",
)


@dataclass(frozen=True)
class Load:
    """How hard and how long the rows load the system (the suite's options)."""

    connections: int
    read_seconds: int
    warmup_seconds: int
    rounds: int
    cap_seconds: int  # the longest a write run may take
    profile: frozenset[str]  # names of the rows to profile
    scratch: Path  # where py-spy writes


@dataclass
class ReadRow:
    """A read row: its customers file for each round (one file for a row whose requests may
    repeat), what the warm-up reads (default: the row's own file), a check that the data is
    as prepared (given the server URL, raises if not), and extra keys for the row's JSON
    (given the round index)."""

    name: str
    customers: list[Path]
    warm_up: Path | None = None
    before: Callable[[str], None] | None = None
    extra: Callable[[int], dict] | None = None

    def customers_of_round(self, i: int) -> Path:
        return self.customers[i % len(self.customers)]


def measure_reads(system: System, rows: list[ReadRow], load: Load) -> list[dict]:
    """Every read row once a round; each row's best round, with all its rounds in it."""
    rounds: dict[str, list[dict]] = {row.name: [] for row in rows}
    for i in range(load.rounds if rows else 0):
        log(f"reads, round {i + 1} of {load.rounds}")
        for row in rows:
            if row.before:
                row.before(system.url)
            result = measure_read(system, row, i, load)
            rounds[row.name].append(result | {"round": i + 1} | (row.extra(i) if row.extra else {}))
    return [best_of_rounds(tries) for tries in rounds.values() if tries]


def measure_read(system: System, row: ReadRow, round_index: int, load: Load) -> dict:
    customers = row.customers_of_round(round_index)
    wrk_args = dict(threads=READ_THREADS, connections=load.connections)
    if load.warmup_seconds:
        warm_up = row.warm_up or customers
        run_wrk(
            system.url, CYCLE_LUA, [warm_up, READ_THREADS], **wrk_args, seconds=load.warmup_seconds
        )
    offset = log_offset(system.gunicorn.log_path)
    before = system.cpu.snapshot()
    with profiling(row.name, system, load) as profiler:
        command, out = run_wrk(
            system.url, CYCLE_LUA, [customers, READ_THREADS], **wrk_args, seconds=load.read_seconds
        )
        after = system.cpu.snapshot()  # before py-spy ends: wrk is then the only child ended
    events = count_events(read_since(system.gunicorn.log_path, offset), READ_ROW_EVENTS)
    result = {"row": row.name, "kind": "read", **parse_wrk(out)}
    fivexx = sum(n for status, n in result["statuses"].items() if status >= 500)
    result |= {
        "cpu": cpu_delta(before, after, result["requests"]),
        "gunicorn_log": events,
        "wrk_command": " ".join(command[:-2] + [customers.name, str(READ_THREADS)]),
        "wrk_output": out,
        "profile": profiler.summary if profiler else None,
        "checks": [
            check("5xx answers", fivexx, 0),
            check("tracebacks in the gunicorn log", events["tracebacks"], 0),
        ],
    }
    log(
        f"{row.name}: {result['requests_per_s']:.0f} req/s, p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, {result['statuses']}, "
        f"CPU {result['cpu']['gunicorn_cpu_ms_per_request']} ms/req, "
        f"other cpu {result['cpu']['other_cores']}"
    )
    return result


def best_of_rounds(tries: list[dict]) -> dict:
    best = max(tries, key=lambda r: r["requests_per_s"] or 0)
    best["rounds"] = [
        {k: r[k] for k in ("round", "requests_per_s", "p50_ms", "p99_ms", "statuses")}
        | {"cpu_ms_per_request": r["cpu"]["gunicorn_cpu_ms_per_request"]}
        for r in tries
    ]
    best["checks"] = [c for r in tries for c in r["checks"]]
    return best


def measure_list(system: System, name: str, requests: Path, load: Load, database: str) -> dict:
    """A prepared list of requests sent once, one wrk thread; what the database server and
    the gunicorn log saw meanwhile."""
    lines = len(requests.read_text().splitlines())
    log(f"{name}: {lines} requests, {load.connections} connections")
    offset = log_offset(system.gunicorn.log_path)
    innodb_before = innodb_counters()
    before = system.cpu.snapshot()
    with profiling(name, system, load) as profiler, LockWaitSampler(database) as sampler:
        command, out = run_wrk(
            system.url,
            LIST_LUA,
            [requests],
            threads=1,
            connections=load.connections,
            seconds=load.cap_seconds,
        )
        after = system.cpu.snapshot()
    innodb_after = innodb_counters()
    log_text = read_since(system.gunicorn.log_path, offset)
    result = parse_list(out)
    run = {
        "run": name,
        "connections": load.connections,
        **result,
        "cut_by_cap": result["received"] < result["lines"],
        "cpu": cpu_delta(before, after, result["received"] + result["fillers"]),
        "innodb": {k: innodb_after[k] - innodb_before[k] for k in innodb_after},
        "lock_waits_sampled": sampler.report(),
        "gunicorn_log": {
            **count_events(log_text),
            "warnings": warnings_by_message(log_text),
            "error_samples": error_samples(log_text),
        },
        "loadavg_after": loadavg(),
        "wrk_command": " ".join(command[:-1] + [requests.name]),
        "profile": profiler.summary if profiler else None,
    }
    log(
        f"{name}: {run['requests_per_s']} req/s over {run['seconds']} s, p50 {run['p50_ms']} ms, "
        f"p99 {run['p99_ms']} ms, {run['statuses']}, innodb {run['innodb']}, "
        f"other cpu {run['cpu']['other_cores']}"
    )
    return run


@contextlib.contextmanager
def profiling(name: str, system: System, load: Load):
    """py-spy during the row when --profile names it; else nothing (yields None)."""
    if name not in load.profile:
        yield None
        return
    with Profiler(system.gunicorn.proc.pid, load.scratch / "profile.raw") as profiler:
        yield profiler
    log(f"{name}: profile: {profiler.summary and profiler.summary['activities'][:6]}")
