"""A real 3-master Redis Cluster on loopback for the tests where clustering is the point.

Load it with ``pytest_plugins = ("tests.scaleout._redis_cluster",)`` and ask for ``redis_cluster``
(the running cluster) or ``cluster_url`` (a ``redis+cluster://`` URL naming one node). Three
``redis-server --cluster-enabled yes`` processes, joined by ``redis-cli --cluster create``,
one per session, stopped at the end. Like the single server, a missing binary skips on a
developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

__all__ = ["RedisCluster", "cluster_url", "redis_cluster", "start_redis_cluster"]

#: How long the cluster may take to agree on its slots, in seconds.
START_TIMEOUT = 20.0


@attrs.frozen
class RedisCluster:
    """Three running masters: their processes and ports."""

    processes: tuple[subprocess.Popen[bytes], ...]
    ports: tuple[int, ...]

    def url(self, scheme: str = "redis+cluster") -> str:
        """A URL for a client: one node is enough, the client discovers the others."""
        return f"{scheme}://127.0.0.1:{self.ports[0]}"

    def command(self, port: int, *args: str) -> bytes:
        """One inline command to one node; the raw reply."""
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(" ".join(args).encode() + b"\r\n")
            return sock.recv(65536)

    def node_of(self, key: str) -> int:
        """The port of the master that holds ``key``, as the cluster itself says."""
        slot = int(self.command(self.ports[0], "CLUSTER", "KEYSLOT", key).strip().lstrip(b":"))
        # CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> ... <slot ranges...>"
        for entry in self.command(self.ports[0], "CLUSTER", "NODES").decode().splitlines():
            fields = entry.split()
            for span in fields[8:]:
                first, _, last = span.partition("-")
                if first.isdigit() and int(first) <= slot <= int(last or first):
                    return int(fields[1].split("@")[0].rsplit(":", 1)[1])
        raise LookupError(f"no master holds slot {slot}")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback, each with its cluster-bus port (+10000) free too."""
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(20000, 45000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


def _binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        message = "redis-server/redis-cli are not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the Redis Cluster tests")
        pytest.skip(message)
    return server, cli


def start_redis_cluster(directory: Path) -> RedisCluster:
    """Start three cluster-enabled masters and join them; wait until the cluster is ok."""
    server, cli = _binaries()
    ports = _free_ports(3)
    processes = []
    for port in ports:
        node = directory / str(port)
        node.mkdir()
        log = (node / "redis.log").open("wb")
        arguments = [
            server,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node / "nodes.conf"),
            "--cluster-node-timeout", "2000",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(node),
        ]  # fmt: skip
        processes.append(subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    cluster = RedisCluster(tuple(processes), tuple(ports))
    try:
        _wait(cluster, lambda: all(_pong(cluster, port) for port in ports), "start")
        nodes = [f"127.0.0.1:{p}" for p in ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        _wait(cluster, lambda: all(_ok(cluster, port) for port in ports), "agree on its slots")
    except BaseException:
        stop_redis_cluster(cluster)
        raise
    return cluster


def _pong(cluster: RedisCluster, port: int) -> bool:
    try:
        return cluster.command(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


def _ok(cluster: RedisCluster, port: int) -> bool:
    return b"cluster_state:ok" in cluster.command(port, "CLUSTER", "INFO")


def _wait(cluster: RedisCluster, ready: object, what: str) -> None:
    assert callable(ready)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in cluster.processes):
            pytest.fail(f"the Redis Cluster did not {what} in time")
        time.sleep(0.05)  # three other processes: nothing to wait on but their answer


def stop_redis_cluster(cluster: RedisCluster) -> None:
    for process in cluster.processes:
        process.terminate()
    for process in cluster.processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One 3-master cluster for the whole session."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        stop_redis_cluster(cluster)


@pytest.fixture(scope="session")
def cluster_url(redis_cluster: RedisCluster) -> str:
    """The session's cluster, as a ``redis+cluster://`` URL naming its first node."""
    return redis_cluster.url()
