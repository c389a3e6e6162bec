"""Plumbing shared by the queue's services and selectors: keys, client, scripts, time."""

from datetime import datetime

from django.conf import settings
from django_redis import get_redis_connection
from redis.commands.core import Script

from . import scripts

_registered: dict[str, Script] = {}


def queue_keys(concert_id: int) -> list[str]:
    """The keys of one concert's queue. `{<id>}` is a hash tag: all of them share one Redis
    Cluster slot, so each script can touch them all."""
    base = f"{settings.REDIS_KEY_PREFIX}:queue:{{{concert_id}}}"
    return [f"{base}:{name}" for name in scripts.KEY_NAMES]


def queue_redis():
    """The raw Redis client. Unlike the cache, queue calls do fail when Redis is down: the
    exception handler answers 503 with Retry-After, and nothing was written to the database."""
    return get_redis_connection("default")


def run_script(name: str, concert_id: int, args: list, *, client=None):
    """Run one of the queue scripts for a concert: EVALSHA, loading the script on first use."""
    client = client or queue_redis()
    script = _registered.get(name)
    if script is None:
        script = _registered[name] = client.register_script(getattr(scripts, name))
    return script(keys=queue_keys(concert_id), args=args, client=client)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
