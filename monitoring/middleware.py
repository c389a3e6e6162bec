"""Counting every request, and answering GET /metrics (docs/metrics.md).

Installed by settings only when METRICS_TOKEN is set: with metrics off no request pays for
them, and /metrics is an unknown path (a 404 in the one error shape).
"""

import hmac
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import NotAuthenticated, PermissionDenied, error_body, read_only_refusal

from . import metrics
from .exposition import CONTENT_TYPE, scrape

PATH = "/metrics"


class MetricsMiddleware:
    """Right after the request id, before everything else: it answers /metrics itself, so
    a scrape never meets ALLOWED_HOSTS (Prometheus scrapes by address), sessions, the
    customers' Bearer tokens or their throttles; and it times every other request.

    Each request costs two dictionary lookups and two increments in shared memory: the
    counter and histogram children of a (route, method, status) are looked up once and kept
    (prometheus_client's labels() takes a lock and builds a key each call)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.token = settings.METRICS_TOKEN.encode()
        self._children: dict[tuple[str, str, int], tuple] = {}

    def __call__(self, request: HttpRequest):
        if request.path == PATH:
            return self.answer_scrape(request)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started

        match = getattr(request, "resolver_match", None)
        # The URL pattern, never the path: ids would make a series per seat and customer.
        if match is not None:
            route = match.route
        elif request.path == "/healthz":  # answered by its middleware before URL routing
            route = "healthz"
        else:
            route = "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        key = (route, method, response.status_code)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.http_requests.labels(route, method, str(response.status_code)),
                metrics.http_request_duration.labels(route, method),
            )
            if len(self._children) < MAX_KEPT_CHILDREN:
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        if response.status_code == 503:
            cause = getattr(response, "outage_cause", None) or (
                "health_check" if route == "healthz" else "other"
            )
            metrics.dependency_unavailable.labels(cause).inc()
        return response

    def answer_scrape(self, request: HttpRequest) -> HttpResponse:
        if (refused := read_only_refusal(request)) is not None:
            return refused
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            error = NotAuthenticated()
            response = JsonResponse(error_body(error.code, str(error.message)), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        # Constant time: how much of a guess was right must not show in the answer's timing.
        if not hmac.compare_digest(given.strip().encode(), self.token):
            error = PermissionDenied()
            return JsonResponse(error_body(error.code, str(error.message)), status=403)
        return HttpResponse(scrape(), content_type=CONTENT_TYPE)


# Methods a client can put in the request line are free text: anything else is "other", so a
# scanner cannot make a series per invented method.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Routes are the project's URL patterns and statuses a few dozen: far below this. A bound all
# the same, so that the cache can never grow without end.
MAX_KEPT_CHILDREN = 2_000
