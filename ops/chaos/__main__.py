"""bin/chaos: the production shape on a MariaDB and a Redis of its own, a mixed on-sale load
that never stops, and one fault after another while it runs. After each: what the customers
got (no 5xx but 503s, every request answered), what the database holds (the invariants,
every acknowledged write), whether the queue kept everyone's place and its capacity, and
the measures of the issue's done-when. Results: bench/results/chaos.md and .json.

Each phase: steady load, the fault, the recovery (at least 15 s after the fault's end), then
the checks. A baseline phase without a fault comes first: the latency the others compare to.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import RESULTS
from bench.harness.code import git_state, machine
from bench.harness.logs import count_events, error_samples, log_offset, read_since

from .checks import database_checks, first_admissions
from .client import Recorder
from .faults import Fault, Faults
from .load import Load
from .report import PhaseRun, markdown, must, summarise, write
from .seed import LINE_QUEUE, SALE_QUEUE, keep_seats_on_sale, seed
from .stack import Stack, log
from .watch import QueueWatch, line_snapshot

STEADY_SECONDS = 10  # load without a fault before each one
RECOVERY_SECONDS = 15  # at least this long after a fault's end before the phase's checks
WARM_UP_SECONDS = 20  # before the first phase: the lines form, every path is warm

# name -> (what the table calls it, what to do; None: nothing). In the order they run: Redis
# losing its data goes last, as what it leaves behind (sessions restored from the database)
# lasts minutes and would colour the phases after it.
PHASES: dict[str, tuple[str, Callable[[Faults, float], Fault] | None]] = {
    "baseline": ("no fault (baseline)", None),
    "redis-stop": ("Redis SIGSTOP 15 s", lambda faults, seconds: faults.redis_stop()),
    "redis-kill": (
        "Redis SIGKILL + restart with its data",
        lambda faults, seconds: faults.redis_kill(keep_data=True),
    ),
    "mariadb-stop": ("MariaDB stopped 20 s", lambda faults, seconds: faults.mariadb_stop()),
    "mariadb-kill": (
        "MariaDB SIGKILL + restart",
        lambda faults, seconds: faults.mariadb_kill(),
    ),
    "celery-kill": (
        "Celery worker SIGKILL mid-sweep",
        lambda faults, seconds: faults.celery_kill(),
    ),
    "gunicorn-kill": (
        "gunicorn worker SIGKILL mid-payment (x3)",
        lambda faults, seconds: faults.gunicorn_kill(),
    ),
    "slow-sockets": (
        "50 slow sockets",
        lambda faults, seconds: faults.slow_sockets(seconds - STEADY_SECONDS - RECOVERY_SECONDS),
    ),
    "redis-kill-wipe": (
        "Redis SIGKILL + restart without its data",
        lambda faults, seconds: faults.redis_kill(keep_data=False),
    ),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    invocation = " ".join(["bin/chaos", *(argv if argv is not None else sys.argv[1:])])
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack(folder)
    try:
        report = run_suite(stack, args, invocation)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 1
    finally:
        # Whatever happened, nothing of ours may outlive the run; a second Ctrl-C must not
        # cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.down()
        if args.keep:
            log(f"kept {folder} (logs/, mariadb/, redis/, nginx/, chaos.md and .json)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    text = markdown(report["phases"], report["final"], report["meta"])
    print(text)
    if args.keep:
        write(report, text, folder / "chaos")
    stem = args.output or (None if args.only else "chaos")
    if stem:
        write(report, text, RESULTS / stem)
        log(f"results: bench/results/{stem}.md and .json")
    return 0 if report["ok"] else 1


def run_suite(stack: Stack, args: argparse.Namespace, invocation: str) -> dict:
    """Bring the system up, start the load, run the phases, stop, check once more. A phase
    that breaks (or Ctrl-C) ends the phases early; what ran is still checked and reported."""
    started = time.monotonic()
    log(f"bin/chaos: everything in {stack.folder}")
    stack.start_servers()
    stack.migrate_and_set_up_django()
    sale = seed(shoppers=args.customers * 6, keepers=args.keepers)
    log(
        f"seeded: {len(sale.shoppers)} shoppers, {len(sale.keepers)} line keepers, "
        f"concerts {sale.concert_id} (sale) and {sale.line_concert_id} (line)"
    )
    stack.start_app()
    recorder = Recorder()
    watch = QueueWatch(stack.redis.client(timeout=0.3), list(sale.capacity), recorder.now)
    load = Load(url=stack.url, sale=sale, recorder=recorder, threads=args.customers)
    load.start()
    watch.start()
    log(f"load on: {args.customers} shoppers, {args.keepers} line keepers, chargers")
    time.sleep(WARM_UP_SECONDS)

    names = ["baseline", *([args.only] if args.only else [n for n in PHASES if n != "baseline"])]
    faults = Faults(stack, recorder)
    runs: list[PhaseRun] = []
    aborted = None
    try:
        for name in names:
            runs.append(run_phase(name, stack, faults, recorder, sale, args.phase_seconds))
    except (KeyboardInterrupt, Exception) as error:
        aborted = "interrupted" if isinstance(error, KeyboardInterrupt) else repr(error)
        log(f"aborted ({aborted}): stopping the load, checking what was done so far")
        if not isinstance(error, KeyboardInterrupt):
            traceback.print_exc()
    load_errors = load.stop()
    watch.stop()
    stack.celery.stop()
    stack.gunicorn.stop()
    final = final_checks(recorder)
    meta = run_meta(
        invocation=invocation, started=started, aborted=aborted, load_errors=load_errors
    )
    return build_report(
        runs,
        recorder=recorder,
        watch=watch,
        sale=sale,
        final=final,
        meta=meta,
        settings=run_settings(args, sale),
    )


def run_phase(name, stack, faults, recorder, sale, phase_seconds) -> PhaseRun:
    title, inject = PHASES[name]
    added = keep_seats_on_sale(sale.concert_id)
    if added:
        log(f"the sale ran low on seats: performance {added} added")
    run = PhaseRun(name=name, title=title, started=recorder.now())
    offsets = {p: log_offset(p) for p in _logs(stack)}
    log(f"phase {name}: {title}")
    time.sleep(STEADY_SECONDS)
    run.lines_before = _lines(stack, sale, recorder)
    if inject is not None:
        run.fault = inject(faults, phase_seconds)
        log(f"  fault over after {run.fault.ended - run.fault.started:.1f} s")
    end_of_fault = run.fault.ended if run.fault else run.started
    time.sleep(max(run.started + phase_seconds, end_of_fault + RECOVERY_SECONDS) - recorder.now())
    run.lines_after = _lines(stack, sale, recorder)
    if run.fault is not None:
        since = recorder.wall(run.fault.ended)
        run.fault.measures["admission_resumed_s"] = first_admissions(list(sale.capacity), since)
    run.database = database_checks(recorder)
    run.ended = recorder.now()
    run.logs = {path.name: _log_events(path, offset) for path, offset in offsets.items()}
    lost = len(run.database["lost"]) + sum(not i["ok"] for i in run.database["invariants"])
    log(f"  checked: {lost} problems in the database")
    return run


def _lines(stack, sale, recorder) -> dict:
    client = stack.redis.client(timeout=0.5)
    return {
        concert_id: line_snapshot(client, concert_id, recorder.now) for concert_id in sale.capacity
    }


def _logs(stack) -> list[Path]:
    return [stack.gunicorn.log_path, stack.celery.log_path]


def _log_events(path: Path, offset: int) -> dict:
    text = read_since(path, offset)
    events = count_events(text, ("tracebacks", "error_lines", "worker_timeouts", "worker_boots"))
    # The tick's word when Redis lost a line (queueing/services.py, _queue_go_live).
    put_back = re.findall(r"Queue of concert (\d+): Redis had lost it; (\d+) admitted", text)
    return {**events, "sessions_put_back": put_back, "samples": error_samples(text)}


def final_checks(recorder: Recorder) -> dict:
    """The database once more, with the load and the application stopped: nothing may still
    be on its way."""
    database = database_checks(recorder)
    checks = [must(i["check"], i["value"], i["ok"], i["expected"]) for i in database["invariants"]]
    lost = database["lost"]
    checks.append(must("no acknowledged write lost or changed", len(lost), not lost, 0))
    return {**database, "checks": checks}


def build_report(runs: list[PhaseRun], *, recorder, watch, sale, final, meta, settings) -> dict:
    phases: list[dict] = []
    baseline = None  # what the faults' latencies compare to
    for run in runs:
        phase = summarise(
            run, recorder=recorder, watch=watch, capacity=sale.capacity, baseline=baseline
        )
        if run.name == "baseline":
            baseline = {"by_kind": phase["by_kind"], "all_p50_ms": phase["all_p50_ms"]}
        phases.append(phase)
    ok = (
        meta["aborted"] is None
        and not meta["load_errors"]
        and all(p["ok"] for p in phases)
        and all(c["ok"] for c in final["checks"])
    )
    return {
        "meta": meta,
        "settings": settings,
        "phases": phases,
        "final": final,
        "lost_places": recorder.lost_places,
        "finished_entries_revived": recorder.revived_entries,
        "ok": ok,
    }


def run_meta(*, invocation: str, started: float, aborted: str | None, load_errors) -> dict:
    git = git_state()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "command": invocation,
        "machine": "{nproc} x {cpu_model}".format(**machine()),
        "commit": git["commit"],
        "dirty": bool(git["dirty_files"]),
        "aborted": aborted,
        "load_errors": load_errors,  # customer threads that broke: a bug of the load
    }


def run_settings(args: argparse.Namespace, sale) -> dict:
    return {
        "phase_seconds": args.phase_seconds,
        "steady_s": STEADY_SECONDS,
        "recovery_at_least_s": RECOVERY_SECONDS,
        "shoppers_at_once": args.customers,
        "shoppers_in_pool": len(sale.shoppers),
        "line_keepers": args.keepers,
        "concerts": {"sale": sale.concert_id, "line": sale.line_concert_id},
        "max_active": sale.capacity,
        "queues": {"sale": SALE_QUEUE, "line": LINE_QUEUE},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/chaos",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults (for --only), in the order they run:\n"
        + "".join(f"  {name:<16} {title}\n" for name, (title, _) in PHASES.items())
        + "\nexamples:\n"
        + "  bin/chaos                       every fault, ~8 minutes\n"
        + "  bin/chaos --only redis-stop     the baseline and one fault\n",
    )
    add = parser.add_argument
    add(
        "--only",
        choices=[n for n in PHASES if n != "baseline"],
        help="one fault (after the baseline); prints the table, writes no results unless --output",
    )
    add("--phase-seconds", type=float, default=45, help="each phase's length (default 45)")
    add("--customers", type=int, default=32, help="shoppers at once (default 32)")
    add("--keepers", type=int, default=100, help="customers who wait in the line (default 100)")
    add("--output", help="bench/results/<output>.md and .json (default: chaos for a full run)")
    add("--keep", action="store_true", help="keep the temporary folder (logs, data) to look at")
    args = parser.parse_args(argv)
    if args.phase_seconds < STEADY_SECONDS + RECOVERY_SECONDS + 10:
        parser.error(f"--phase-seconds: at least {STEADY_SECONDS + RECOVERY_SECONDS + 10}")
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


if __name__ == "__main__":
    sys.exit(main())
