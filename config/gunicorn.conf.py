"""gunicorn settings shared by bin/run and the production image.

Sync workers, one per core plus one by default: the API is short requests to MySQL and Redis,
and sync workers keep each request's transaction on its own connection. Tune with
WEB_CONCURRENCY (processes) and WEB_THREADS (threads per process).
"""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from config.gunicorn_errors import install as install_json_errors

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("WEB_THREADS", 1))
timeout = int(os.environ.get("WEB_TIMEOUT", 30))
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-") or None  # ACCESS_LOG= (empty) turns it off
# Recycle workers now and then (a guard against slow leaks), but rarely: at ~800 requests/s a
# restart every 5,000 requests showed up as p99 spikes of 100-550 ms in the queue benchmark.
max_requests = 100_000
max_requests_jitter = 10_000

# gunicorn 23+ opens a control socket, by default in the home directory (read-only for the
# image's user, and shared by every gunicorn of that user on a machine). Off unless asked for.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "/tmp/gunicorn.ctl")
control_socket_disable = "GUNICORN_CONTROL_SOCKET" not in os.environ

# Requests gunicorn refuses itself (a request line or headers too large, a malformed request)
# are answered in the API's error shape, not gunicorn's HTML page.
install_json_errors()

# Metrics (docs/metrics.md): with METRICS_TOKEN set, every worker writes its counts to files in
# PROMETHEUS_MULTIPROC_DIR, and a scrape answered by any one worker sums them all. The folder
# must be in the environment before any process imports prometheus_client, so it is chosen
# here, in the master, before the workers fork: the one given, or a fresh one of this run's
# own (removed at exit).
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
metrics_dir_is_ours = False
if os.environ.get("METRICS_TOKEN") and metrics_dir is None:
    metrics_dir = tempfile.mkdtemp(prefix="concerts-metrics-")
    metrics_dir_is_ours = True
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir


def on_starting(server):
    """A new master starts from zero: counts a previous run left in the folder would be added
    to this run's (and their dead processes' files would pile up)."""
    if metrics_dir is not None:
        folder = Path(metrics_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.db"):
            leftover.unlink(missing_ok=True)


def child_exit(server, worker):
    """A worker that exited (recycled by max_requests, killed, timed out) keeps its counts in
    the totals; only its live gauges are dropped."""
    if metrics_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, metrics_dir)


def on_exit(server):
    if metrics_dir_is_ours:
        shutil.rmtree(metrics_dir, ignore_errors=True)
