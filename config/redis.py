"""Talking to Redis without letting a slow or hung Redis stall the web processes.

Every Redis call of the web and Celery processes (cache, queue scripts, throttling) goes
through connections of this module's classes (settings.CACHES):
- short socket timeouts (REDIS_SOCKET_TIMEOUT, 0.5 s) and no client-side retries: a call to a
  hung Redis fails in half a second instead of the ~6 s of redis-py's defaults (a timeout
  and three retries with backoff);
- a circuit breaker per Redis server and process: after a failure, calls fail at once for
  REDIS_CIRCUIT_OPEN_SECONDS, then one is let through to try again. So during an outage a
  request that needs Redis answers 503 at once, and one that only uses Redis on the side
  (the cache, freeing a queue slot after a payment) loses no time to it.
The breaker logs once when a server stops answering and once when it answers again, instead
of a traceback per request.
"""

import logging
import threading
import time

import redis
from django.conf import settings
from redis import exceptions as redis_errors
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)


class CircuitOpen(ConnectionError):
    """Refused without asking Redis: it failed moments ago (the 503's cause in /metrics)."""


class CircuitBreaker:
    """Per process: is this Redis server worth asking now?"""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._down_since: float | None = None

    def check(self) -> None:
        if self._open_until and time.monotonic() < self._open_until:
            raise CircuitOpen(f"Redis at {self.name} is unavailable (circuit open)")

    def failed(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._open_until = now + settings.REDIS_CIRCUIT_OPEN_SECONDS
            if self._down_since is None:
                self._down_since = now
                logger.warning(
                    "Redis at %s is not answering (%s); calls to it fail at once for %s s at "
                    "a time until it does",
                    self.name,
                    error,
                    settings.REDIS_CIRCUIT_OPEN_SECONDS,
                )

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                logger.warning(
                    "Redis at %s answers again, after %.1f s",
                    self.name,
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
                self._open_until = 0.0


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(host: str, port: int) -> CircuitBreaker:
    name = f"{host}:{port}"
    breaker = _breakers.get(name)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(name, CircuitBreaker(name))
    return breaker


def breakers_reset() -> None:
    """Forget every outage (tests)."""
    _breakers.clear()


class _Guarded:
    """A redis-py connection that asks the breaker first and tells it how the call went."""

    @property
    def _breaker(self) -> CircuitBreaker:
        return breaker_for(self.host, self.port)

    def connect(self, *args, **kwargs):
        self._breaker.check()
        try:
            return super().connect(*args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            self._breaker.failed(error)
            raise

    def send_packed_command(self, *args, **kwargs):
        self._breaker.check()
        try:
            return super().send_packed_command(*args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            self._breaker.failed(error)
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            self._breaker.failed(error)
            raise
        self._breaker.succeeded()
        return response


class GuardedConnection(_Guarded, Connection):
    pass


class GuardedSSLConnection(_Guarded, SSLConnection):
    pass


def connection_class_for(url: str) -> type[Connection]:
    return GuardedSSLConnection if url.startswith("rediss://") else GuardedConnection


# --- A Redis of its own for the queue (QUEUE_REDIS_URL) ------------------------------------
# The queue may live apart from the cache and the Celery broker: on another standalone Redis
# (`redis://`, `rediss://`) or on a Redis Cluster (`redis+cluster://`, `rediss+cluster://`,
# then a comma-separated list of startup nodes; see docs/deployment.md). Its clients keep the
# fault behaviour above: the same short timeouts, no client-side retries, a breaker per server
# (per cluster node), and every way a cluster can say "not now" raised as a ConnectionError,
# which the API's exception handler answers with 503 and Retry-After.

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class ClusterUnavailable(ConnectionError):
    """The cluster cannot serve this call now: a failover is under way (CLUSTERDOWN, a slot
    without a primary, TRYAGAIN during a resharding) or no node answers."""


CLUSTER_OUTAGES = (
    redis_errors.ClusterDownError,  # also MASTERDOWN
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
)


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def cluster_startup_nodes(url: str) -> tuple[str, list[tuple[str, int]], dict]:
    """`redis+cluster://[user:password@]host1:port1,host2:port2/` -> (the scheme of each node,
    [(host, port), ...], credentials). Any one reachable node is enough to find all the
    others; listing several lets the client start while one of them is down."""
    from urllib.parse import unquote

    scheme, _, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: {url!r}")
    location = rest.split("/", 1)[0].split("?", 1)[0]
    credentials: dict = {}
    if "@" in location:
        userinfo, _, location = location.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if user:
            credentials["username"] = unquote(user)
        if has_password:
            credentials["password"] = unquote(password)
    nodes = []
    for node in filter(None, location.split(",")):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis Cluster node must be host:port, not {node!r} in {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError(f"no Redis Cluster node in {url!r}")
    return CLUSTER_SCHEMES[scheme], nodes, credentials


def _guarded_options(url: str) -> dict:
    return {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "connection_class": connection_class_for(url),
    }


def redis_client_for(url: str):
    """A client of the Redis at `url`, standalone or cluster, with our fault behaviour."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **_guarded_options(url))
    node_scheme, nodes, credentials = cluster_startup_nodes(url)
    try:
        return GuardedRedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            # One attempt: a call that meets a failover answers 503 at once (and asks for a
            # fresh slot map, which the next call uses) instead of sleeping through retries.
            retry=Retry(NoBackoff(), 0),
            **_guarded_options(f"{node_scheme}://"),
            **credentials,
        )
    except redis_errors.RedisClusterException as error:  # no startup node answered
        raise ClusterUnavailable(f"Redis Cluster at {url} cannot be reached: {error}") from error


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def redis_client_cached(url: str):
    """One client per URL and process, made on first use (so after gunicorn's fork). A
    cluster that cannot be reached now raises ClusterUnavailable; the next call tries again."""
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis_client_for(url)
    return client


def _translated(error: Exception) -> Exception:
    if isinstance(error, CLUSTER_OUTAGES):
        unavailable = ClusterUnavailable(f"Redis Cluster unavailable: {error}")
        unavailable.__cause__ = error
        return unavailable
    return error


class GuardedRedisCluster(RedisCluster):
    """redis-py's cluster client whose failover errors are ConnectionErrors (503s)."""

    def execute_command(self, *args, **kwargs):
        try:
            return super().execute_command(*args, **kwargs)
        except Exception as error:
            translated = _translated(error)
            if translated is error:
                raise
            raise translated from error

    def pipeline_execute(self, pipe, *, raise_on_error: bool = True) -> list:
        """pipe.execute() with the same translation (a ClusterPipeline is not this class)."""
        try:
            replies = pipe.execute(raise_on_error=raise_on_error)
        except Exception as error:
            translated = _translated(error)
            if translated is error:
                raise
            raise translated from error
        return [_translated(reply) if isinstance(reply, Exception) else reply for reply in replies]


def redis_url_check(url: str) -> None:
    """Refuse (at start) a URL that no Redis client can use."""
    from django.core.exceptions import ImproperlyConfigured

    scheme = url.partition("://")[0]
    if scheme not in ("redis", "rediss", *CLUSTER_SCHEMES):
        raise ImproperlyConfigured(
            f"{url!r}: a Redis URL starts with redis://, rediss://, redis+cluster:// or "
            "rediss+cluster://"
        )
    if scheme in CLUSTER_SCHEMES:
        try:
            cluster_startup_nodes(url)
        except ValueError as error:
            raise ImproperlyConfigured(str(error)) from error
