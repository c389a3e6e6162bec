"""The waiting room on a real Redis Cluster (QUEUE_REDIS_URL=redis+cluster://...): what only a
cluster has. Scripts of several concerts pipelined across shards, shards that lack a script,
the health check, and a primary failing over to its replica with customers in line. (The
rest of tests/queueing runs on the cluster too: see conftest.py.)"""

import logging
import tempfile
import time
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from config.redis import ClusterUnavailable, cluster_startup_nodes
from ops.redis_cluster import LocalRedisCluster
from queueing.redis_queue import queue_keys, queue_redis
from queueing.selectors import queue_stats
from queueing.services import queue_admit_tick, queue_enter
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
logger = logging.getLogger(__name__)

FAILOVER_PATIENCE_SECONDS = 60


@pytest.fixture(autouse=True)
def queue_redis_kind(redis_cluster):
    """Every test here runs once, on the cluster (this overrides conftest's two kinds)."""
    with override_settings(QUEUE_REDIS_URL=redis_cluster.url):
        yield "cluster"


def shard_of(cluster: LocalRedisCluster, concert_id: int):
    return cluster.primary_of_key(queue_keys(concert_id)[0])


def concerts_on_every_shard(cluster: LocalRedisCluster) -> list:
    """One concert per primary: their queues live on three different shards."""
    by_shard = {}
    for _ in range(200):
        concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6_000)
        by_shard.setdefault(shard_of(cluster, concert.id).address, concert)
        if len(by_shard) == cluster.primaries:
            return list(by_shard.values())
    raise AssertionError("200 concerts and still a shard without one")


def test_the_cluster_url_names_its_startup_nodes():
    assert cluster_startup_nodes("redis+cluster://a:7000,b.example:7001/") == (
        "redis",
        [("a", 7000), ("b.example", 7001)],
        {},
    )
    assert cluster_startup_nodes("rediss+cluster://u:p%40ss@10.0.0.1:6380") == (
        "rediss",
        [("10.0.0.1", 6380)],
        {"username": "u", "password": "p@ss"},
    )
    with pytest.raises(ValueError):
        cluster_startup_nodes("redis+cluster://no-port/")


def test_the_operators_numbers_of_concerts_on_different_shards_come_in_one_call(
    redis_cluster,
):
    concerts = concerts_on_every_shard(redis_cluster)
    now = timezone.now()
    for place, concert in enumerate(concerts, start=1):
        for user_id in range(place * 3):
            queue_enter(concert_id=concert.id, user_id=user_id + 1, now=now)
        queue_admit_tick(concert=concert, now=now)

    stats = queue_stats(concert_ids=[c.id for c in concerts], now=now)

    assert [(stats[c.id].admitted, stats[c.id].waiting) for c in concerts] == [
        (2, 1),
        (2, 4),
        (2, 7),
    ]


def test_a_pipeline_reaching_shards_that_lack_the_scripts_loads_them(redis_cluster):
    """A promoted replica or a new node has no scripts (SCRIPT LOAD is not replicated), and
    redis-py's cluster pipeline answers NOSCRIPT instead of loading them."""
    concerts = concerts_on_every_shard(redis_cluster)
    now = timezone.now()
    for concert in concerts:
        queue_enter(concert_id=concert.id, user_id=1, now=now)
    for node in redis_cluster.nodes:
        node.client().script_flush()

    stats = queue_stats(concert_ids=[c.id for c in concerts], now=now)

    assert [stats[c.id].waiting for c in concerts] == [1, 1, 1]


def test_healthz_reports_the_queues_cluster(client, settings):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "queue_redis": "ok"}
    with override_settings(QUEUE_REDIS_URL="redis+cluster://127.0.0.1:1/"):
        down = client.get("/healthz")
    assert down.status_code == 503
    assert down["Retry-After"]
    assert down.json()["error"]["details"]["queue_redis"] == "unreachable"


def test_a_cluster_nobody_answers_is_a_connection_error_not_a_crash():
    with override_settings(QUEUE_REDIS_URL="redis+cluster://127.0.0.1:1/"):
        with pytest.raises(ClusterUnavailable):
            queue_redis()


# --- a primary fails over to its replica --------------------------------------------------


@pytest.fixture
def own_cluster():
    """A cluster of this test's own: it kills one of its primaries."""
    with tempfile.TemporaryDirectory(prefix="redis-cluster-failover-") as folder:
        with LocalRedisCluster(Path(folder)) as cluster:
            # The test polls as often as it likes, not as told: no 429s from the poll gate.
            with override_settings(QUEUE_REDIS_URL=cluster.url, QUEUE_POLL_GATE=False):
                yield cluster


def poll(client, token):
    return client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)


def test_when_a_primary_fails_its_replica_takes_over_and_customers_keep_their_places(
    own_cluster, client
):
    cluster = own_cluster
    concert, elsewhere = concerts_on_every_shard(cluster)[:2]
    customers = [client_for(UserFactory()) for _ in range(6)]
    tokens = [c.post(f"/api/v1/concerts/{concert.id}/queue").json()["token"] for c in customers]
    queue_admit_tick(concert=concert)  # the first two are in (max_active 2); four wait
    before = [poll(c, t).json() for c, t in zip(customers, tokens, strict=True)]
    other = client_for(UserFactory())
    other_token = other.post(f"/api/v1/concerts/{elsewhere.id}/queue").json()["token"]
    primary = shard_of(cluster, concert.id)
    (replica,) = cluster.replicas_of(primary)
    # The replica has every write so far (replication is asynchronous: see docs/queue.md,
    # "On a Redis Cluster", for what a failover can lose when it does not).
    assert primary.client().execute_command("WAIT", 1, 5_000) == 1

    primary.kill()
    killed_at = time.monotonic()
    answers, others = [], []
    while time.monotonic() - killed_at < FAILOVER_PATIENCE_SECONDS:
        response = poll(customers[2], tokens[2])
        answers.append(response)
        others.append(poll(other, other_token).status_code)
        if response.status_code == 200:
            break
        time.sleep(0.1)
    failover_seconds = time.monotonic() - killed_at
    logger.warning("Queue back %.1f s after its primary was killed", failover_seconds)

    # During the failover: the one error shape, 503 with Retry-After; never a 500.
    refused = answers[:-1]
    assert refused, "the failover was not seen at all"
    assert {r.status_code for r in refused} == {503}
    assert {r.json()["error"]["code"] for r in refused} == {"service_unavailable"}
    assert all(int(r["Retry-After"]) > 0 for r in refused)
    assert answers[-1].status_code == 200
    # The concerts of the other shards went on throughout.
    assert set(others) == {200}
    # Afterwards: the replica serves the concert, and every place and session is as before.
    assert shard_of(cluster, concert.id) is replica
    assert client.get("/healthz").json()["checks"]["queue_redis"] == "ok"
    after = [poll(c, t).json() for c, t in zip(customers, tokens, strict=True)]
    place = ("status", "position", "ahead", "admitted_until")  # (poll_after_seconds varies)
    assert [{k: a[k] for k in place} for a in after] == [{k: b[k] for k in place} for b in before]
    assert [a["status"] for a in after] == ["admitted"] * 2 + ["waiting"] * 4
    assert [a["position"] for a in after[2:]] == [1, 2, 3, 4]
    # And the line moves on: a newcomer queues behind them, a leaver's slot goes to the next.
    newcomer = client_for(UserFactory()).post(f"/api/v1/concerts/{concert.id}/queue")
    assert newcomer.json()["position"] == 5
    assert customers[0].delete("/api/v1/queue", HTTP_X_QUEUE_TOKEN=tokens[0]).status_code == 204
    queue_admit_tick(concert=concert)
    assert poll(customers[2], tokens[2]).json()["status"] == "admitted"
    stats = queue_stats(concert_ids=[concert.id, elsewhere.id])
    assert (stats[concert.id].admitted, stats[concert.id].waiting) == (2, 4)
