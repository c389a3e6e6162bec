"""Plumbing shared by the queue's services and selectors: keys, client, scripts, time.

The queue runs on the default Redis (the cache's, through django-redis) unless
QUEUE_REDIS_URL names a Redis of its own: another standalone server, or a Redis Cluster
(docs/deployment.md). Every key of one concert carries the hash tag `{<concert id>}`, so all
of them live in one cluster slot and each script touches one shard; a pipeline of scripts for
several concerts (the operators' panel) goes to several shards, which `queue_pipeline()` does.
"""

from datetime import datetime

from django.conf import settings
from django_redis import get_redis_connection
from redis.cluster import ClusterPipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from config.redis import GuardedRedisCluster, redis_client_cached

from . import scripts

_registered: dict[str, Script] = {}


def queue_keys(concert_id: int) -> list[str]:
    """The keys of one concert's queue. `{<id>}` is a hash tag: all of them share one Redis
    Cluster slot, so each script can touch them all."""
    base = f"{settings.REDIS_KEY_PREFIX}:queue:{{{concert_id}}}"
    return [f"{base}:{name}" for name in scripts.KEY_NAMES]


def queue_redis():
    """The raw Redis client of the queue. Unlike the cache, queue calls do fail when Redis is
    down: the exception handler answers 503 with Retry-After, and nothing was written to the
    database. A cluster's failover errors arrive as ConnectionErrors too (config/redis.py)."""
    if not settings.QUEUE_REDIS_URL:
        return get_redis_connection("default")
    return redis_client_cached(settings.QUEUE_REDIS_URL)


def queue_pipeline():
    """A non-transactional pipeline of queue scripts (`run_script(..., client=pipe)`, then
    `pipe.execute()`): one round trip per server. On a cluster the scripts of different
    concerts go to different shards; redis-py's ClusterPipeline groups them per node."""
    client = queue_redis()
    if isinstance(client, GuardedRedisCluster):
        return ClusterScriptPipeline(client)
    return client.pipeline(transaction=False)


def _script(name: str, client) -> Script:
    script = _registered.get(name)
    if script is None:
        script = _registered[name] = client.register_script(getattr(scripts, name))
    return script


def run_script(name: str, concert_id: int, args: list, *, client=None):
    """Run one of the queue scripts for a concert: EVALSHA, loading the script on first use."""
    client = client or queue_redis()
    if isinstance(client, ClusterScriptPipeline):
        return client.add(_script(name, client.cluster), queue_keys(concert_id), args)
    if isinstance(client, ClusterPipeline):
        raise TypeError("queue scripts on a cluster are pipelined with queue_pipeline()")
    script = _script(name, client)
    return script(keys=queue_keys(concert_id), args=args, client=client)


class ClusterScriptPipeline:
    """Queue scripts pipelined on a Redis Cluster, each routed to its concert's shard.

    redis-py's ClusterPipeline sends EVALSHA and leaves a NOSCRIPT to the caller (it cannot
    load scripts): a shard may lack one, as a replica promoted by a failover does (SCRIPT
    LOAD is not replicated) or a node just added. A NOSCRIPT means the script did not run,
    so `execute()` loads the missing scripts on every primary and sends those calls again."""

    def __init__(self, cluster: GuardedRedisCluster):
        self.cluster = cluster
        self._calls: list[tuple[Script, list[str], list]] = []

    def add(self, script: Script, keys: list[str], args: list) -> "ClusterScriptPipeline":
        self._calls.append((script, keys, list(args)))
        return self

    def execute(self) -> list:
        calls, self._calls = self._calls, []
        replies = self._send(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
                self.cluster.script_load(script.script)  # to every primary
            for i, reply in zip(missing, self._send([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _send(self, calls: list) -> list:
        if not calls:
            return []
        pipe = self.cluster.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return self.cluster.pipeline_execute(pipe, raise_on_error=False)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
