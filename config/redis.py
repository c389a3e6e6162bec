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

from django.conf import settings
from redis.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError, TimeoutError

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
