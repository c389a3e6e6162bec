"""CPU per request of the metrics middleware alone, in one process, with prometheus_client's
multiprocess mode on as under gunicorn (docs/metrics.md):

    flock /tmp/bench.lock .venv/bin/python bench/metrics_middleware.py

A view that does nothing, called bare and through the middleware; the difference is what the
middleware adds to every request.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REQUESTS, ROUNDS = 1000, 100


def main() -> None:
    # Before prometheus_client is first imported: it picks its storage then.
    folder = tempfile.mkdtemp(prefix="metrics-middleware-")
    os.environ.update(
        PROMETHEUS_MULTIPROC_DIR=folder,
        METRICS_TOKEN="x" * 40,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from monitoring.middleware import MetricsMiddleware

    match = resolve("/api/v1/queue")

    def view(request):
        request.resolver_match = match
        return HttpResponse(b"{}")

    wrapped = MetricsMiddleware(view)
    requests = [RequestFactory().get("/api/v1/queue") for _ in range(REQUESTS)]

    def cpu_us_per_request(handler) -> float:
        start = time.process_time()
        for _ in range(ROUNDS):
            for request in requests:
                handler(request)
        return (time.process_time() - start) / (ROUNDS * REQUESTS) * 1e6

    try:
        for _ in range(3):
            bare, measured = cpu_us_per_request(view), cpu_us_per_request(wrapped)
            print(
                f"bare {bare:.2f} us, through the middleware {measured:.2f} us: +{measured - bare:.2f} us"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
