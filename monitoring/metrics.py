"""The metrics each process counts for itself: requests, 503s by cause, Celery task runs.

Under gunicorn (and a Celery prefork pool) each process writes its values to files in
PROMETHEUS_MULTIPROC_DIR and a scrape sums them (prometheus_client's multiprocess mode,
docs/metrics.md). Which mode a metric uses is fixed when prometheus_client is first imported:
the variable must be in the environment before the process starts, never set later.

The sale's numbers (waiting, sold, revenue...) are not counted here: they live in the database
and Redis, and monitoring/collector.py reads them at scrape time.
"""

from prometheus_client import Counter, Gauge, Histogram

# Request latency buckets (seconds): the API answers in milliseconds; a queue poll near 5 ms,
# a payment near 50 ms. 10 s is past gunicorn's patience (WEB_TIMEOUT 30 s is the hard stop).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_requests = Counter(
    "concerts_http_requests",
    "Requests answered, by URL pattern (never the raw path), method and status.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "concerts_http_request_duration_seconds",
    "Time from the metrics middleware receiving a request to its answer, by URL pattern.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
dependency_unavailable = Counter(
    "concerts_dependency_unavailable",
    "503 answers by their cause: a dependency (Redis, the database) could not answer.",
    ["cause"],
)

celery_task_runs = Counter(
    "concerts_celery_task_runs",
    "Celery task runs finished, by task name and outcome (success, failure, retry...).",
    ["task", "outcome"],
)
celery_task_last_success = Gauge(
    "concerts_celery_task_last_success_timestamp_seconds",
    "Unix time a task last finished without an error: time() minus it is the lag of a beat "
    "tick (the admission tick every 1 s, the hold sweep every 5 s).",
    ["task"],
    # The latest of every process that ever ran it, dead ones included (a restarted worker
    # does not make the tick look as if it had never run).
    multiprocess_mode="max",
)
