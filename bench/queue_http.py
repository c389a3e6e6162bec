"""HTTP benchmark of the waiting room under gunicorn in the production shape, driven by wrk.

    /work/main/.venv/bin/python bench/queue_http.py            # ~3 minutes
    /work/main/.venv/bin/python bench/queue_http.py --sweep 2,3,4 --profile

Measures, each from many distinct customers (one Bearer token each):
  enter    POST /api/v1/concerts/{id}/queue          every request a new customer (201)
  status   GET  /api/v1/queue (+ X-Queue-Token)      1,000 customers at the END of a line of
                                                     10,000 and of 100,000 waiting entries
  me       GET  /api/v1/accounts/me                  the floor: auth (one token query) + JSON
and prints a markdown table; the same numbers go to bench/results/queue_http.json.

It sets everything up itself and removes only what it made: the MariaDB database
`concerts_bench` (root@127.0.0.1:3306, refused if it already exists), Redis keys under a random
prefix `bench-<hex>` (SCAN + DELETE, never FLUSH), and the gunicorn it started.
See bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    RESULTS,
    ROOT,
    BenchRun,
    Gunicorn,
    Profiler,
    cpu_delta,
    cpu_snapshot,
    create_concert,
    create_customers,
    get_json,
    log,
    parse_wrk,
    require_wrk,
    write_lines,
)
from _harness import run_wrk as _run_wrk

LUA = ROOT / "bench" / "wrk" / "cycle.lua"
DB_NAME = "concerts_bench"

# gunicorn processes. `--sweep 2,3,4` twice on the 2-core benchmark machine (AMD EPYC, 2 vCPUs,
# wrk, MariaDB and Redis on the same cores; 2026-11-24, code at eb796ee), req/s of run 1 / run 2
# and gunicorn CPU ms per request:
#   workers  enter      status@10k  status@100k  me           CPU ms/req (status)
#   2        765 / 725  796 / 828   747 / 822    1262 / 1221  1.9-2.1
#   3        776 / 747  830 / 746   836 / 736    1181 / 1127  2.0-2.3
#   4        732 / 637  694 / 689   779 / 780    1198 / 1029  2.1-2.4
# 2 and 3 tie within the noise (about 10 % run to run); 4 is slower and spends more CPU per
# request (more processes than cores). 2 it is. p99 is set by worker recycling (max_requests),
# not by the worker count.
DEFAULT_WORKERS = 2

USERS = 20_000  # customers (users + API tokens); enter uses a fresh one per request
POLLERS = 1_000  # customers polling their status, at the back of the line
SIZES = (10_000, 100_000)  # waiting entries in the line the pollers are at the back of
FILLER_BASE = 1_000_000_000  # user ids of filler entries (Redis only, no database rows)


# --- wrk -------------------------------------------------------------------------------------
def run_wrk(
    url: str, lines: Path, *, threads: int, connections: int, seconds: int
) -> tuple[list, str]:
    """wrk/cycle.lua over a customers file; each of `threads` threads takes its own slice."""
    return _run_wrk(
        url, LUA, [lines, threads], threads=threads, connections=connections, seconds=seconds
    )


# --- data ------------------------------------------------------------------------------------
def fill_line(concert_id: int, size: int, pollers: list[tuple[int, str]]) -> list[str]:
    """size - len(pollers) filler entries, then the pollers at the back: the ENTER script itself,
    pipelined a thousand at a time. Returns the pollers' queue tokens."""
    from django.utils import timezone

    from queueing.redis_queue import queue_redis, run_script, to_ms
    from queueing.tokens import token_issue

    client, now = queue_redis(), to_ms(timezone.now())
    entries = [(FILLER_BASE + i, f"{i:016x}") for i in range(size - len(pollers))]
    entries += [(uid, f"{uid:016x}") for uid, _ in pollers]
    for start in range(0, len(entries), 1000):
        pipe = client.pipeline(transaction=False)
        for uid, nonce in entries[start : start + 1000]:
            run_script("ENTER", concert_id, [uid, nonce, now, 0, 0], client=pipe)
        pipe.execute()
    return [
        token_issue(concert_id=concert_id, user_id=uid, nonce=f"{uid:016x}") for uid, _ in pollers
    ]


def waiting_count(concert_id: int) -> int:
    from queueing.redis_queue import queue_keys, queue_redis

    return queue_redis().zcard(queue_keys(concert_id)[0])


# --- profile ---------------------------------------------------------------------------------
def profile_status(server: Gunicorn, lines: Path, args, tmp: Path) -> dict | None:
    """py-spy over all workers while wrk polls the status; top functions and packages."""
    with Profiler(server.proc.pid, args.duration - 2, tmp / "status.raw") as profiler:
        run_wrk(
            server.url,
            lines,
            threads=args.threads,
            connections=args.connections,
            seconds=args.duration,
        )
    return profiler.summary


# --- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn processes")
    parser.add_argument("--sweep", help="comma-separated worker counts to compare, e.g. 2,3,4")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--pollers", type=int, default=POLLERS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="waiting-line sizes")
    parser.add_argument("--profile", action="store_true", help="py-spy the status endpoint")
    parser.add_argument(
        "--code",
        default="worktree",
        help="what to benchmark: worktree (a copy of the working tree taken at start, the "
        "default) or a git ref such as HEAD",
    )
    parser.add_argument("--drop-stale", action="store_true", help=f"drop a leftover {DB_NAME}")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.sweep.split(",")] if args.sweep else [args.workers]
    sizes = [int(s) for s in args.sizes.split(",")]

    if not require_wrk():
        return 2
    started = time.monotonic()
    invocation = " ".join([".venv/bin/python", "bench/queue_http.py", *sys.argv[1:]])

    runs: list[dict] = []
    profile = None
    with BenchRun(
        code=args.code, database=DB_NAME, invocation=invocation, drop_stale=args.drop_stale
    ) as run:
        tmp, server_env = run.tmp, run.server_env
        from django.db import connections

        t0 = time.monotonic()
        customers = create_customers(args.users)
        pollers = customers[: args.pollers]
        log(f"{len(customers)} customers with tokens in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        lines_status = {}
        for size in sizes:
            concert = create_concert(f"Status line of {size}")
            queue_tokens = fill_line(concert.id, size, pollers)
            assert waiting_count(concert.id) == size, waiting_count(concert.id)
            lines_status[size] = (
                concert.id,
                write_lines(
                    tmp / f"status-{size}.tsv",
                    "GET",
                    "/api/v1/queue",
                    [(bearer, qt) for (_, bearer), qt in zip(pollers, queue_tokens, strict=True)],
                ),
            )
        log(f"queue lines {sizes} filled in {time.monotonic() - t0:.1f} s")
        lines_me = write_lines(
            tmp / "me.tsv", "GET", "/api/v1/accounts/me", [(b,) for _, b in pollers]
        )
        connections.close_all()

        for workers in worker_counts:
            (RESULTS / "logs" / f"gunicorn-w{workers}.log").write_bytes(b"")
            server = run.start(
                Gunicorn(
                    server_env, workers, RESULTS / "logs" / f"gunicorn-w{workers}.log", cwd=run.src
                )
            )
            log(f"gunicorn up: {workers} workers at {server.url}")
            enter_concert = create_concert(f"Enter, {workers} workers")
            warm_concert = create_concert(f"Warm-up, {workers} workers")
            connections.close_all()
            lines_enter = write_lines(
                tmp / f"enter-{workers}.tsv",
                "POST",
                f"/api/v1/concerts/{enter_concert.id}/queue",
                [(b,) for _, b in customers],
            )
            lines_warm = write_lines(
                tmp / f"warm-{workers}.tsv",
                "POST",
                f"/api/v1/concerts/{warm_concert.id}/queue",
                [(b,) for _, b in customers],
            )
            plan = [("enter", None, lines_enter, lines_warm, args.connections)]
            plan += [
                ("status", size, lines_status[size][1], lines_status[size][1], args.connections)
                for size in sizes
            ]
            plan += [("me", None, lines_me, lines_me, args.connections)]
            # The same status poll with as many connections as workers: service time, not queueing.
            plan += [("status", sizes[-1], lines_status[sizes[-1]][1], None, workers)]

            for endpoint, size, lines, warm, conns in plan:
                if size is not None:  # where the pollers stand, asked over HTTP
                    _, bearer = pollers[-1]
                    qt = lines.read_text().splitlines()[-1].split("\t")[3]
                    code, body = get_json(
                        server.url + "/api/v1/queue",
                        {"Authorization": f"Bearer {bearer}", "X-Queue-Token": qt},
                    )
                    if code != 200 or body.get("position") != size:
                        raise RuntimeError(f"last poller: {code} {body} (expected position {size})")
                if warm and args.warmup:
                    run_wrk(
                        server.url,
                        warm,
                        threads=args.threads,
                        connections=conns,
                        seconds=args.warmup,
                    )
                log_before = server.log_counts()
                before = cpu_snapshot(server.proc.pid)
                command, out = run_wrk(
                    server.url,
                    lines,
                    threads=args.threads,
                    connections=conns,
                    seconds=args.duration,
                )
                result = parse_wrk(out)
                after = cpu_snapshot(server.proc.pid)
                log_after = server.log_counts()
                row = {
                    "endpoint": endpoint,
                    "waiting": size,
                    "workers": workers,
                    "connections": conns,
                    **result,
                    "cpu": cpu_delta(before, after, result["requests"]),
                    "gunicorn_log": {k: log_after[k] - log_before[k] for k in log_after},
                    "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
                    "wrk_command": " ".join(command[:-2] + [f"{endpoint}.tsv", command[-1]]),
                }
                if endpoint == "enter":
                    row["entered"] = waiting_count(enter_concert.id)
                runs.append(row)
                log(
                    f"w={workers} {endpoint:6} {size or '':>6} c={conns:<3} {result['requests_per_s']:8.1f} req/s  "
                    f"p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  statuses {result['statuses']}  "
                    f"other cpu {row['cpu']['other_cores']}"
                )

            if args.profile and workers == worker_counts[-1]:
                log("profiling the status endpoint with py-spy")
                profile = profile_status(server, lines_status[sizes[-1]][1], args, tmp)
            server.stop()

    elapsed = time.monotonic() - started
    report = {
        **run.meta,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "aborted": run.aborted,
        "settings": {
            "duration_s": args.duration,
            "wrk_threads": args.threads,
            "users": args.users,
            "pollers": args.pollers,
            "sizes": sizes,
            "worker_counts": worker_counts,
        },
        "runs": runs,
        "profile_status": profile,
    }
    (RESULTS / "queue_http.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 1 if run.aborted else 0


def markdown(report: dict) -> str:
    m = report["machine"]
    out = [
        f"## Queue HTTP benchmark ({report['when']})",
        "",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_gb']} GB; load average "
        f"{' '.join(m['loadavg_at_start'])} at start, {' '.join(m['loadavg_at_end'])} at end",
        f"- code: a copy of the {report['git']['code']} at {report['git']['commit'][:12]} "
        f"({report['git']['dirty_files']} files changed in the working tree at start)",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s)",
        f"- wrk: `{report['runs'][0]['wrk_command'] if report['runs'] else ''}`",
        "",
        "| endpoint | waiting | workers | conns | req/s | p50 ms | p99 ms | p99.9 ms | statuses | "
        "errors, events | CPU ms/req | other CPU (cores) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|--:|",
    ]
    for r in report["runs"]:
        name = {
            "enter": "POST /concerts/{id}/queue",
            "status": "GET /queue",
            "me": "GET /accounts/me",
        }[r["endpoint"]]
        errors = [f"{k} {v}" for k, v in (r["socket_errors"] or {}).items() if v]
        errors += [f"{k} {v}" for k, v in r["gunicorn_log"].items() if v]
        if r.get("wraps") and r["endpoint"] == "enter":
            errors.append(f"token file wrapped {r['wraps']}x")
        statuses = ", ".join(f"{c}: {n}" for c, n in r["statuses"].items())
        out.append(
            f"| {name} | {r['waiting'] or ''} | {r['workers']} | {r['connections']} | {r['requests_per_s']:.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['p99_9_ms']:.1f} | {statuses} | "
            f"{'; '.join(errors) or 'none'} | {r['cpu']['gunicorn_cpu_ms_per_request']:.2f} | "
            f"{r['cpu']['other_cores']:.2f} |"
        )
    p = report.get("profile_status")
    if p:
        out += [
            "",
            f"py-spy, GET /queue at {report['settings']['sizes'][-1]} waiting ({p['samples']} samples in "
            "request handling), where the time goes:",
            "",
        ]
        out += [f"- {x['frame']}: {x['pct']}%" for x in p["activities"][:8]]
        out += ["", "hottest functions (self time):", ""]
        out += [f"- {x['frame']}: {x['pct']}%" for x in p["top_self"][:8]]
    if report.get("aborted"):
        out += ["", f"**Aborted**: {report['aborted']}"]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
