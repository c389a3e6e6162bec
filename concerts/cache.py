"""Read-through cache for the public catalog, with one-step invalidation.

Every catalog key embeds a version token kept in Redis. An operator's change replaces the
token, which orphans every cached catalog page at once (they age out by TTL), instead of
hunting down each page/page-size combination that might hold the changed concert. The token
is a fresh timestamp rather than a counter, so an evicted token can never come back as an
old value and revive stale pages.
"""

import math
import time
from collections.abc import Callable, Container
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from .models import SeatStatus
from .selectors import seat_map_build

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


# --- Seat maps -------------------------------------------------------------------------------
# A schedule's seats, rendered once as JSON and shared by every admitted buyer until a seat of
# the schedule changes. Two keys per schedule, hash-tagged to one Redis Cluster slot so one
# MGET reads both:
#   seatmap:{<id>}:version  a token replaced after every committed change to the seats
#   seatmap:{<id>}:body     (token it was built under, JSON bytes)
# A body is served only under the token it was built with. A reader takes the token before
# it reads the database, so a body built from rows older than a change carries an older token
# and is never served after that change's new token is in place.


def _seat_map_keys(schedule_id: int) -> tuple[str, str]:
    return f"seatmap:{{{schedule_id}}}:version", f"seatmap:{{{schedule_id}}}:body"


def seat_map_cached(
    schedule_id: int, build: Callable[[], tuple[bytes, datetime | None]], *, now: datetime
) -> bytes:
    """The seat map body of a schedule. build() returns (JSON bytes, the instant it stops
    being true without a write: when the first hold in it runs out; None: never). A body is
    served only before that instant, by the clock of the reader (`now`), so a hold shows free
    the moment it runs out whatever Redis's own expiry of the key."""
    version_key, body_key = _seat_map_keys(schedule_id)
    found = cache.get_many([version_key, body_key])
    version, cached = found.get(version_key), found.get(body_key)
    if version is None:
        cache.add(version_key, time.time_ns(), timeout=None)
        version = cache.get(version_key)
    elif cached is not None:
        built_under, true_until, body = cached
        if built_under == version and (true_until is None or now < true_until):
            return body
    body, true_until = build()
    timeout = settings.SEAT_MAP_CACHE_SECONDS
    if true_until is not None:
        timeout = min(timeout, math.ceil((true_until - now).total_seconds()))
    if version is not None and timeout > 0:
        cache.set(body_key, (version, true_until, body), timeout=timeout)
    return body


_JSON = JSONRenderer()


def seat_map_json(
    schedule_id: int,
    *,
    schedule_part: dict,
    now: datetime | None = None,
    held_back: Callable[[], Container[str]] | None = None,
) -> bytes:
    """The seat map answer: `{"schedule": schedule_part, "available_seats", "total_seats",
    "seats"}` as JSON bytes, as of `now`. Everything after the schedule is rendered once per
    change of the seats and shared by every buyer (seat_map_cached); the small schedule part,
    which changes with the catalog, not with the seats, is put in front of it per request."""
    now = now or timezone.now()

    def build() -> tuple[bytes, datetime | None]:
        seats, true_until = seat_map_build(schedule_id=schedule_id, now=now, held_back=held_back)
        available = sum(seat["status"] == SeatStatus.AVAILABLE for seat in seats)
        rest = {"available_seats": available, "total_seats": len(seats), "seats": seats}
        return _JSON.render(rest), true_until

    seats_part = seat_map_cached(schedule_id, build, now=now)  # b'{"available_seats":...}'
    return b'{"schedule":' + _JSON.render(schedule_part) + b"," + seats_part[1:]


def seat_maps_invalidate(schedule_ids) -> None:
    """Retire the cached seat maps of these schedules (after the change has committed)."""
    cache.set_many(
        {_seat_map_keys(schedule_id)[0]: time.time_ns() for schedule_id in set(schedule_ids)},
        timeout=None,
    )
