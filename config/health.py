import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django_redis import get_redis_connection

from .errors import RETRY_AFTER_SECONDS_ON_OUTAGE, error_body, read_only_refusal
from .redis import GuardedRedisCluster, redis_client_cached

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means "not reachable" to a load balancer
        logger.exception("Health check: database unreachable")
        return False


def _redis_ok() -> bool:
    try:
        return bool(get_redis_connection("default").ping())
    except Exception:
        logger.exception("Health check: Redis unreachable")
        return False


def _queue_redis_ok() -> bool:
    """The queue's own Redis (QUEUE_REDIS_URL). On a cluster, every primary is pinged: while
    a shard has no primary that answers (a failover under way), its concerts' queue calls
    answer 503, and so does this."""
    try:
        client = redis_client_cached(settings.QUEUE_REDIS_URL)
        if isinstance(client, GuardedRedisCluster):
            return bool(client.ping(target_nodes=GuardedRedisCluster.PRIMARIES))
        return bool(client.ping())
    except Exception:
        logger.exception("Health check: the queue's Redis unreachable")
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis (and the queue's Redis, when it is a separate one)
    answer, else 503 naming the one that did not."""
    if (refused := read_only_refusal(request)) is not None:
        return refused
    checks = {
        "database": "ok" if _database_ok() else "unreachable",
        "redis": "ok" if _redis_ok() else "unreachable",
    }
    if settings.QUEUE_REDIS_URL:
        checks["queue_redis"] = "ok" if _queue_redis_ok() else "unreachable"
    if all(state == "ok" for state in checks.values()):
        return JsonResponse({"status": "ok", "checks": checks})
    down = ", ".join(name for name, state in checks.items() if state != "ok")
    response = JsonResponse(
        error_body("service_unavailable", f"Unreachable: {down}.", checks), status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS_ON_OUTAGE)
    return response


class HealthCheckMiddleware:
    """Answers /healthz before any other middleware.

    Load balancers and container health checks call it by IP address, which ALLOWED_HOSTS
    would reject (CommonMiddleware validates the Host header); the answer reveals nothing
    that needs that protection.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path == "/healthz":
            return healthz(request)
        return self.get_response(request)
