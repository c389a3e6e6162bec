"""Celery's side of the metrics: task runs and outcomes, and when each task last succeeded
(the lag of the beat ticks), counted in whichever process runs the task.

How they reach Prometheus (docs/metrics.md, "Celery"):
- a worker on the web's machine with the web's PROMETHEUS_MULTIPROC_DIR: its pool processes
  write into the same folder and the web's /metrics sums them in (bin/run does this);
- a worker elsewhere: METRICS_WORKER_PORT makes the worker's main process serve its own
  /metrics on that port (the same Bearer token), summing its pool processes through its own
  PROMETHEUS_MULTIPROC_DIR. Prometheus scrapes it as a second target.
"""

import hmac
import json
import logging
import os
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import task_postrun, worker_init, worker_process_shutdown
from django.conf import settings

from config.errors import NotAuthenticated, NotFound, PermissionDenied, error_body

from . import metrics

logger = logging.getLogger(__name__)


@task_postrun.connect(dispatch_uid="monitoring.task_postrun")
def _count_task_run(task=None, state=None, **kwargs) -> None:
    name = getattr(task, "name", None) or "unknown"
    outcome = (state or "unknown").lower()
    metrics.celery_task_runs.labels(name, outcome).inc()
    if outcome == "success":
        metrics.celery_task_last_success.labels(name).set(time.time())


@worker_process_shutdown.connect(dispatch_uid="monitoring.worker_process_shutdown")
def _pool_process_gone(pid=None, **kwargs) -> None:
    """A pool process's files stay (its counts are part of the totals); only live gauges of
    it are dropped, as gunicorn's child_exit does for web workers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@worker_init.connect(dispatch_uid="monitoring.worker_init")
def _serve_worker_metrics(**kwargs) -> None:
    port = settings.METRICS_WORKER_PORT
    if not port or not settings.METRICS_TOKEN:
        return
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        # The worker serving its own counts owns its folder: a new worker starts from zero,
        # before its pool processes fork (worker_init comes first), like gunicorn's master.
        Path(folder).mkdir(parents=True, exist_ok=True)
        for leftover in Path(folder).glob("*.db"):
            leftover.unlink(missing_ok=True)
    else:
        logger.warning(
            "METRICS_WORKER_PORT is set without PROMETHEUS_MULTIPROC_DIR: only the worker's "
            "main process is counted (right for --pool=solo, not for a prefork pool)"
        )
    worker_metrics_serve(bind=settings.METRICS_WORKER_BIND, port=port)
    logger.info("Worker metrics on %s:%s/metrics", settings.METRICS_WORKER_BIND, port)


def worker_metrics_serve(*, bind: str, port: int) -> WSGIServer:
    """GET /metrics on bind:port from a daemon thread of this process (stop: shutdown())."""
    server = make_server(
        bind,
        port,
        worker_metrics_app,
        server_class=_QuietThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def worker_metrics_app(environ, start_response):
    """GET /metrics with the Bearer token: this machine's Celery processes' counters."""
    from prometheus_client import generate_latest

    from .exposition import CONTENT_TYPE, process_registry

    def refuse(status: str, error) -> list[bytes]:
        body = json.dumps(error_body(error.code, str(error.message)), ensure_ascii=False)
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    if environ.get("PATH_INFO") != "/metrics":
        return refuse("404 Not Found", NotFound())
    scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return refuse("401 Unauthorized", NotAuthenticated())
    if not hmac.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode()):
        return refuse("403 Forbidden", PermissionDenied())
    start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
    return [generate_latest(process_registry())]


class _QuietThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every 15 s is not worth a log line
        pass
