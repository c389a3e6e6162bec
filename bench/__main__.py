"""bin/bench: every hot path of the system in its production shape, each against the ceiling
of the framework, then the on-sale crowd; the database checked after every write.

One production-shaped system (gunicorn with config/gunicorn.conf.py, a Celery worker and beat,
MariaDB, Redis) on a scratch database and Redis prefix, from a copy of the code. Results:
bench/results/<output>.md and .json; logs in bench/results/logs/. It removes exactly what it
made (the database, the Redis keys under its prefix, its processes), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime

from bench.harness import RESULTS, log
from bench.harness.checks import invariant_checks
from bench.harness.code import WORKTREE
from bench.harness.data import create_customers
from bench.harness.measure import Load, measure_reads
from bench.harness.report import (
    all_checks,
    evaluate_targets,
    markdown,
    propagation_markdown,
    write_report,
)
from bench.harness.run import BenchRun
from bench.harness.wrk import require_wrk
from bench.rows import ceiling_and_queue, onsale, onsale_large, propagation, seat_map, writes

DATABASE = "concerts_bench_suite"
# The default run: every row but the on-sale at scale (~12 minutes alone: --onsale-large).
DEFAULT_ROWS = ceiling_and_queue.ROWS + seat_map.ROWS + writes.ROWS + propagation.ROWS + onsale.ROWS
ROWS = DEFAULT_ROWS + onsale_large.ROWS
# gunicorn sync workers. On the 2-core machine 2 and 3 workers tied and 4 lost (a sweep of
# `--workers 2`, `3`, `4`, bench/README.md): the hot paths are CPU-bound Python with
# sub-millisecond waits on MariaDB and Redis, so more processes than cores only add switching.
WORKERS = 2
CONNECTIONS = 32


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not require_wrk():
        return 2
    selected = selected_rows(args)
    started = time.monotonic()
    invocation = " ".join(["bin/bench", *sys.argv[1:]])
    preparation: dict = {}
    rows: list[dict] = []
    sale: dict | None = None
    probe: dict | None = None
    large: dict | None = None
    final_checks: list[dict] = []

    with BenchRun(
        code=args.code, database=DATABASE, invocation=invocation, drop_stale=args.drop_stale
    ) as run:
        from django.db import connections

        load = Load(
            connections=args.connections,
            read_seconds=args.duration,
            warmup_seconds=args.warmup,
            rounds=args.rounds,
            cap_seconds=args.cap,
            profile=frozenset(args.profile),
            scratch=run.tmp,
        )
        # 1. the data, before the system starts: admit() lets customers in with an admission
        #    tick of its own, which Celery beat's ticks would race
        customers = make_customers(selected, args.scale, preparation)
        reads = ceiling_and_queue.prepare(
            selected, customers, rounds=args.rounds, scratch=run.tmp, preparation=preparation
        )
        reads += seat_map.prepare(selected, customers, scratch=run.tmp)
        write_runs = writes.prepare(
            selected,
            customers,
            scale=args.scale,
            rng=random.Random(args.seed),
            scratch=run.tmp,
            preparation=preparation,
        )
        probe_ctx = propagation.prepare(selected)
        crowd = onsale.prepare(seats=args.onsale_seats) if "on-sale" in selected else None
        big_crowd = (
            onsale_large.prepare(
                customers=args.onsale_large_customers,
                seats=args.onsale_large_seats,
                max_active=args.onsale_large_max_active,
                admit_per_minute=args.onsale_large_admit_per_minute,
                shopping_seconds=args.onsale_large_shopping_seconds,
            )
            if "on-sale large" in selected
            else None
        )
        connections.close_all()
        preparation["seconds"] = round(time.monotonic() - started, 1)

        # 2. the system, then the rows: reads, writes, the on-sale crowd
        system = run.start_system(args.workers, proxy=not args.no_proxy, nodes=args.web_nodes)
        rows += measure_reads(system, reads, load)
        for write_run in write_runs:  # (one by one: an abort keeps the runs measured so far)
            rows.append(writes.measure(system, write_run, load, DATABASE))
        if probe_ctx is not None:
            probe = propagation.run(probe_ctx, system)
            connections.close_all()
        if crowd is not None:
            sale = onsale.run(
                crowd,
                system,
                users=args.onsale_users,
                scratch=run.tmp,
                cap_seconds=args.onsale_cap,
                seed=args.seed,
            )
            connections.close_all()
        if big_crowd is not None:
            large = onsale_large.run(
                big_crowd,
                system,
                scratch=run.tmp,
                cap_seconds=args.onsale_large_cap,
                connections=args.onsale_large_connections,
                seed=args.seed,
            )
            connections.close_all()

        # 3. the invariants once more, with nothing running that could still write
        system.stop()
        final_checks = invariant_checks()
        connections.close_all()

    report = {
        **run.meta,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "aborted": run.aborted,
        "settings": settings(args, selected),
        "preparation": preparation,
        "rows": rows,
        "targets": evaluate_targets(rows),
        "propagation": probe,
        "onsale": sale,
        "onsale_large": large,
        "final_checks": final_checks,
    }
    sections = [propagation_markdown(probe)] if probe else []
    sections += [onsale.markdown(sale)] if sale else []
    sections += [onsale_large.markdown(large)] if large else []
    text = markdown(report, sections)
    write_report(report, text, RESULTS, args.output)
    print(text)
    return 1 if run.aborted or not all(c["ok"] for c in all_checks(report)) else 0


def make_customers(selected: set[str], scale: float, preparation: dict) -> list:
    """As many customers as the most demanding selected row needs (the on-sale crowd signs
    up its own)."""
    needed = max(
        ceiling_and_queue.customers_needed(selected),
        seat_map.customers_needed(selected),
        writes.customers_needed(selected, scale),
    )
    if not needed:
        return []
    t0 = time.monotonic()
    customers = create_customers(needed)
    preparation["customers_s"] = round(time.monotonic() - t0, 1)
    log(f"{len(customers)} customers with tokens in {preparation['customers_s']} s")
    return customers


def settings(args: argparse.Namespace, selected: set[str]) -> dict:
    with_onsale, with_large = "on-sale" in selected, "on-sale large" in selected
    return {
        "workers": args.workers,
        "web_nodes": args.web_nodes,
        "proxy": "none" if args.no_proxy else "nginx",
        "connections": args.connections,
        "read_seconds": args.duration,
        "warmup_seconds": args.warmup,
        "read_rounds": args.rounds,
        "write_requests": writes.sizes(args.scale),
        "onsale_users": args.onsale_users if with_onsale else None,
        "onsale_seats": args.onsale_seats if with_onsale else None,
        "onsale_large_customers": args.onsale_large_customers if with_large else None,
        "onsale_large_seats": args.onsale_large_seats if with_large else None,
    }


def selected_rows(args: argparse.Namespace) -> set[str]:
    selected = set(args.only or DEFAULT_ROWS)
    if args.skip_writes:
        selected -= set(writes.ROWS)
    if args.skip_onsale:
        selected -= set(onsale.ROWS)
    return selected


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    families = (ceiling_and_queue, seat_map, writes, propagation, onsale, onsale_large)
    parser = argparse.ArgumentParser(
        prog="bin/bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="rows (for --only and --profile):\n"
        + "".join(f"  {'; '.join(family.ROWS)}\n" for family in families)
        + "\nexamples:\n"
        + "  bin/bench --skip-onsale --skip-writes         the read rows only\n"
        + "  bin/bench --only 'ceiling;payment' --code HEAD\n"
        + "  bin/bench --only on-sale --onsale-users 100 --onsale-seats 60\n"
        + "  bin/bench --only 'propagation;on-sale' --web-nodes 3 --workers 1\n"
        + "  bin/bench --onsale-large                      20,000 customers for 2,000 seats\n"
        + "  bin/bench --onsale-large --onsale-large-customers 2000 --onsale-large-seats 200",
    )
    add = parser.add_argument
    add(
        "--only",
        type=_row_names,
        help="the rows to run, separated by ';', e.g. 'ceiling;payment' or 'on-sale' (results/suite-only unless --output)",
    )
    add("--skip-onsale", action="store_true", help="no Locust scenario")
    add("--skip-writes", action="store_true", help="reads only (quicker)")
    add(
        "--profile",
        type=_row_names,
        default=[],
        help="rows to profile with py-spy, separated by ';', e.g. 'queue status 1M;payment' (slows them ~10 %%)",
    )
    add(
        "--code",
        default=WORKTREE,
        help="what to benchmark: worktree (a copy of the working tree taken at start, the default) or a git ref such as HEAD",
    )
    add("--output", help="results/<output>.md and .json (default: suite)")
    add("--workers", type=int, default=WORKERS, help=f"gunicorn processes (default {WORKERS})")
    add(
        "--web-nodes",
        type=int,
        default=1,
        help="gunicorn instances behind nginx, each on its own port with --workers processes, "
        "as separate machines would run them (default 1), e.g. --web-nodes 3 --workers 1",
    )
    add(
        "--no-proxy",
        action="store_true",
        help="wrk straight at gunicorn, without nginx in front (the shape before the proxy)",
    )
    add(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help=f"wrk connections (default {CONNECTIONS}); as many as --workers shows the service time without queueing",
    )
    add("--duration", type=int, default=10, help="seconds per read row")
    add("--warmup", type=int, default=2, help="seconds of warm-up per read row")
    add("--rounds", type=int, default=2, help="rounds of the read rows (the best kept)")
    add("--cap", type=int, default=40, help="longest write run, seconds")
    add("--scale", type=float, default=1.0, help="multiply the write lists")
    add("--onsale-users", type=int, default=onsale.USERS, help="Locust customers")
    add("--onsale-seats", type=int, default=onsale.SEATS, help="seats on sale (a multiple of 10)")
    add("--onsale-cap", type=int, default=onsale.CAP_SECONDS, help="longest on-sale run, seconds")
    add(
        "--onsale-large",
        action="store_true",
        help="the on-sale at scale alone (results/onsale-large unless --output); with --only, "
        "added to those rows. Not in the default run",
    )
    add(
        "--onsale-large-customers",
        type=int,
        default=onsale_large.CUSTOMERS,
        help=f"the crowd at scale (default {onsale_large.CUSTOMERS:,})",
    )
    add(
        "--onsale-large-seats",
        type=int,
        default=onsale_large.SEATS,
        help=f"its seats, a multiple of 10 (default {onsale_large.SEATS:,}); the queue settings scale with them",
    )
    add(
        "--onsale-large-max-active",
        type=int,
        help=f"customers shopping at once (default {onsale_large.MAX_ACTIVE_PER_2000_SEATS} per 2,000 seats)",
    )
    add(
        "--onsale-large-admit-per-minute",
        type=int,
        help=f"admissions a minute (default {onsale_large.ADMIT_PER_MINUTE_PER_2000_SEATS} per 2,000 seats)",
    )
    add(
        "--onsale-large-shopping-seconds",
        type=int,
        help="the concert's usual shopping time, the ETA's prior (default: none, 70 %% of the "
        "admitted session); an operator takes it from the last sale, as the report's "
        "'sessions' gives it",
    )
    add(
        "--onsale-large-cap",
        type=int,
        default=onsale_large.CAP_SECONDS,
        help="longest run of the crowd at scale, seconds after opening",
    )
    add(
        "--onsale-large-connections",
        type=int,
        default=onsale_large.CONNECTIONS,
        help=f"the crowd's keep-alive connections (default {onsale_large.CONNECTIONS})",
    )
    add("--seed", type=int, default=1, help="for the random seats and the crowd's choices")
    add("--drop-stale", action="store_true", help=f"drop a {DATABASE} left by a crashed run")
    args = parser.parse_args(argv)
    if args.onsale_large:
        # The crowd polls as told, so the queue's poll gate stays on as in production (the
        # status rows turn it off: they poll the same customers in a loop).
        os.environ.setdefault("QUEUE_POLL_GATE", "true")
        args.output = args.output or ("onsale-large" if not args.only else None)
        args.only = [*(args.only or []), *onsale_large.ROWS]
    if args.output is None:
        args.output = "suite-only" if args.only else "suite"
    if args.web_nodes > 1 and args.no_proxy:
        parser.error("--web-nodes: several nodes need the proxy in front of them")
    if args.web_nodes > 1 and args.profile:
        parser.error("--profile follows one gunicorn: use it with one web node")
    if {"on-sale", "on-sale large"} & set(args.profile):
        parser.error("--profile: the on-sale crowds cannot be profiled, only the wrk rows")
    return args


def _row_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(";") if name.strip()]
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        raise argparse.ArgumentTypeError(f"no row {unknown}; the rows: {'; '.join(ROWS)}")
    return names


if __name__ == "__main__":
    sys.exit(main())
