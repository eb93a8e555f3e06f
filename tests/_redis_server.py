"""A real redis-server for the Redis tests: one per session, on a private Unix socket.

Load it from a test module with ``pytest_plugins = ("tests._redis_server",)`` and ask for the
``redis_url`` fixture (or ``redis_server``). The server keeps nothing on disk, listens on no
TCP port (so no port races) and is stopped at the end of the session.

A missing ``redis-server`` binary skips these tests on a developer's machine, but fails them
when ``CI=true``: a green CI run always means the Redis tests ran.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

__all__ = [
    "DURABLE",
    "KillableRedis",
    "RedisServer",
    "killable_redis",
    "redis_server",
    "redis_url",
    "start_redis_server",
]

#: How long the server may take to answer its first PING, in seconds.
START_TIMEOUT = 10.0
#: Unix socket paths are limited to 107 bytes on Linux (104 on macOS).
_MAX_SOCKET_PATH = 100
#: What the campaign's no-duplicate promise needs: every write in the AOF before the reply.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


@attrs.frozen
class RedisServer:
    """A running redis-server: its process, its socket and its working directory."""

    process: subprocess.Popen[bytes]
    socket_path: Path
    directory: Path

    @property
    def url(self) -> str:
        """A URL both redis-py and coredis accept."""
        return f"unix://{self.socket_path}"

    def command(self, *args: str) -> bytes:
        """Send one inline command on a fresh connection; the raw reply line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.socket_path))
            sock.sendall(" ".join(args).encode() + b"\r\n")
            return sock.recv(65536)


def _answers(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(
    directory: Path, *extra: str, socket_path: Path | None = None
) -> RedisServer:
    """Start ``redis-server`` in ``directory`` and wait until it answers PING.

    ``socket_path``: where to listen (a restart passes the previous server's). Skips the
    test when the binary is missing, unless ``CI=true`` (then it fails).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the Redis tests")
        pytest.skip(message)
    socket_path = socket_path or directory / "r.sock"
    if len(str(socket_path)) > _MAX_SOCKET_PATH:  # a deep pytest basetemp
        socket_path = Path(tempfile.mkdtemp(prefix="agile-redis-")) / "r.sock"
    log = (directory / "redis.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = (directory / "redis.log").read_text(errors="replace")
            pytest.fail(f"redis-server did not start:\n{output[-2000:]}")
        time.sleep(0.02)  # another process: nothing to wait on but its answer
    return RedisServer(process, socket_path, directory)


def stop_redis_server(server: RedisServer) -> None:
    """Terminate the server (SIGTERM), killing it if it lingers."""
    server.process.terminate()
    try:
        server.process.wait(5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)


class KillableRedis:
    """A test's own redis-server that can be SIGKILLed and started again on the same socket,
    keeping its data (the AOF, written before every reply: :data:`DURABLE`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server: RedisServer | None = start_redis_server(directory, *DURABLE)
        self.socket_path = self.server.socket_path
        self.url = self.server.url

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; clients see their connections drop."""
        assert self.server is not None
        self.server.process.kill()
        self.server.process.wait(5)
        self.server = None

    def start(self) -> None:
        """Start it again on the same socket, from its AOF."""
        assert self.server is None
        self.server = start_redis_server(self.directory, *DURABLE, socket_path=self.socket_path)

    def stop(self) -> None:
        if self.server is not None:
            stop_redis_server(self.server)
            self.server = None


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    """A redis-server of the test's own, to kill and restart (see :class:`KillableRedis`)."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = KillableRedis(directory)
    try:
        yield server
    finally:
        server.stop()


#: What coredis 6.9 warns about a connection that could not connect (see below).
COREDIS_LEAK = "Unclosed <MemoryObject"


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a test that let Redis be unreachable: coredis 6.9 leaves the memory streams of
    every connection that could not connect unclosed (made in its ``Connection.__init__``),
    one ResourceWarning each when the garbage collector gets to them. A test that expects
    this (it ignores :data:`COREDIS_LEAK` warnings) has them collected now, once its logs
    and exceptions have let go of them, rather than in some later test."""
    yield
    expected = any(
        COREDIS_LEAK in str(arg)
        for mark in item.iter_markers("filterwarnings")
        for arg in mark.args
    )
    if expected:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", COREDIS_LEAK, ResourceWarning)
            gc.collect()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis_server(server)


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, as a ``unix://`` URL."""
    return redis_server.url


@pytest.fixture
def redis_kind(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """``redis-py`` or ``coredis``: generated with the backend, in the pairs that can run
    (``tests/conftest.py``), so redis-py is never generated on trio."""
    pytest.importorskip("redis" if request.param == "redis-py" else "coredis")
    return str(request.param)


@pytest.fixture
async def redis(redis_kind: str, redis_url: str) -> AsyncIterator[Any]:
    """A client of the parametrised kind, open for the test."""
    if redis_kind == "coredis":
        import coredis

        async with coredis.Redis.from_url(redis_url) as client:
            yield client
    else:
        import redis.asyncio

        asyncio_client = redis.asyncio.Redis.from_url(redis_url)
        try:
            yield asyncio_client
        finally:
            await asyncio_client.aclose()
