"""Read-through cache for the public catalog, with one-step invalidation.

Every catalog key embeds a version token kept in Redis. An operator's change replaces the
token, which orphans every cached catalog page at once (they age out by TTL), instead of
hunting down each page/page-size combination that might hold the changed concert. The token
is a fresh timestamp rather than a counter, so an evicted token can never come back as an
old value and revive stale pages.
"""

import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

VERSION_KEY = "catalog:version"


def catalog_key(*parts: object) -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, time.time_ns(), timeout=None)
        version = cache.get(VERSION_KEY, 0)
    return "catalog:{}:{}".format(version, ":".join(str(part) for part in parts))


def catalog_cached(key: str, timeout: int, build: Callable[[], Any]) -> Any:
    payload = cache.get(key)
    if payload is None:
        payload = build()
        cache.set(key, payload, timeout=timeout)
    return payload


def catalog_invalidate() -> None:
    cache.set(VERSION_KEY, time.time_ns(), timeout=None)
