"""What every benchmark row stands on, one module per concern:

    run         one run's lifecycle: code snapshot, scratch database and Redis prefix, cleanup
    code        the machine and the code under test (a snapshot of the tree or a git ref)
    stores      MariaDB and Redis: the scratch database and key prefix, InnoDB's own counters
    processes   gunicorn and Celery as in production, started from the snapshot
    cpu         CPU time of the run's own processes, and of everything else
    wrk         the load generator: customer files, request lists, its output
    measure     a read row (fixed time, best of rounds) and a write run (a list sent once)
    logs        what the gunicorn and Celery logs say happened
    data        customers, concerts, seat maps, admitted customers
    checks      the contract's invariants over the whole database
    profile     py-spy over the gunicorn workers, summarised
    report      targets, the markdown table, the JSON file

Nothing here imports Django at module level: Django is set up from the code snapshot
(run.BenchRun) before any row prepares its data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
VENV = ROOT / ".venv" / "bin"


def log(message: str) -> None:
    # UTC: django.setup() sets TZ to TIME_ZONE for the rest of the process
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}Z] {message}", file=sys.stderr, flush=True)
