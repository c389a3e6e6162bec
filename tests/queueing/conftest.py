"""Every test of the waiting room runs twice: on the standalone Redis the cache uses (the
default, QUEUE_REDIS_URL unset) and on a real Redis Cluster of 3 primaries and 3 replicas
(QUEUE_REDIS_URL=redis+cluster://...), started once per test run (ops/redis_cluster.py).
One kind alone: `bin/test tests/queueing -k standalone` or `-k cluster`."""

from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import override_settings

from ops.redis_cluster import LocalRedisCluster

# A cluster URL nothing answers at: what the queue sees when every node is down.
DEAD_CLUSTER_URL = "redis+cluster://127.0.0.1:1/"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    # A generous node timeout: a node starved of CPU for a moment on a busy test machine must
    # not be failed over under the other tests. (The failover test has a quick one of its own.)
    folder = tmp_path_factory.mktemp("redis-cluster")
    with LocalRedisCluster(folder, node_timeout_ms=5_000) as cluster:
        yield cluster


@pytest.fixture(autouse=True, params=["standalone", "cluster"])
def queue_redis_kind(request):
    """Which Redis the queue runs on in this test."""
    if request.param == "standalone":
        yield "standalone"
        return
    cluster = request.getfixturevalue("redis_cluster")
    with override_settings(QUEUE_REDIS_URL=cluster.url):
        yield "cluster"


@pytest.fixture
def redis_down(queue_redis_kind):
    """redis_down() -> a context in which no Redis answers: the cache's, and the queue's
    (the same server, or the cluster)."""

    @contextmanager
    def down():
        dead = {
            name: {**config, "LOCATION": "redis://127.0.0.1:1/0"}
            for name, config in settings.CACHES.items()
        }
        queue_url = DEAD_CLUSTER_URL if queue_redis_kind == "cluster" else ""
        with override_settings(CACHES=dead, QUEUE_REDIS_URL=queue_url):
            yield

    return down
