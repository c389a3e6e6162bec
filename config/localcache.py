"""A per-process cache with a time limit, for rows that every request of a hot path reads and
that change rarely: a concert's queue settings, a schedule's concert. Each gunicorn worker
keeps its own copy for LOCAL_CACHE_SECONDS, so an operator's change reaches every worker
within that time, and the hot paths skip a database query per request. Never for what must
be exact (seat status, money): those are read from the database inside their transaction.
"""

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")


class LocalCache:
    instances: list["LocalCache"] = []

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, object]] = {}
        LocalCache.instances.append(self)

    @classmethod
    def clear_all(cls) -> None:
        """Forget everything (tests: ids repeat after a database flush)."""
        for cache in cls.instances:
            cache.clear()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The cached value of `key`, or build() (whose exceptions pass through uncached)."""
        seconds = settings.LOCAL_CACHE_SECONDS
        if seconds <= 0:
            return build()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]  # type: ignore[return-value]
        value = build()
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude, and enough: the hot set is a few concerts
        self._entries[key] = (now + seconds, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
