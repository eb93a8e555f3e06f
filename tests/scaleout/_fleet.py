"""The fleet tests' process helpers: ``agile-sms campaign ...`` children against the fake
provider served over TLS, and what they say when they finish.

One home for what the multi-process Redis tests (``test_campaign_fleet.py``,
``test_fleet_controls.py``, ``test_cluster.py``) share, rather than a test module imported by
the others.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agile_async.testing import FakeAgileServer, Fault, Hold
from tests._children import child_environment

__all__ = [
    "LEASE",
    "assert_sent_once",
    "cli",
    "enqueue",
    "finish",
    "hold_next_send",
    "recipients",
    "serving",
    "states",
    "stop",
    "worker",
]

#: The workers' lease, in seconds: short, so that a dead worker's chunk is taken over soon.
LEASE = 1.5


@contextmanager
def serving(fake: FakeAgileServer) -> Iterator[dict[str, str]]:
    """Serve ``fake`` over TLS; the environment that points a child ``agile-sms`` at it."""
    with fake.serve_tls() as server:
        yield child_environment(**server.environment())


def hold_next_send(fake: FakeAgileServer, hold: Hold) -> None:
    """The next send is accepted (its messages are in ``fake.accepted``), then its answer
    waits until ``hold`` is released."""
    fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")


def stop(process: subprocess.Popen[str]) -> None:
    """Kill a process the test left running (after a failure)."""
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=5)


def cli(env: dict[str, str], *args: str, backend: str | None = None) -> subprocess.Popen[str]:
    """``agile-sms [--backend BACKEND] campaign ARGS`` in a child process (trio runs coredis,
    asyncio redis-py)."""
    chosen = ["--backend", backend] if backend is not None else []
    return subprocess.Popen(
        [sys.executable, "-m", "agile_async._cli", *chosen, "campaign", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str], *, timeout: float = 20) -> tuple[int, Any]:
    """Wait for the child; its exit code and its ``--json`` document (``None`` without one).
    A child that printed no document fails the test with its output, unless it exited 0 or
    was killed by the test."""
    out, err = process.communicate(timeout=timeout)
    try:
        document = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        document = None
    if document is None and process.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"exit {process.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
    return process.returncode, document


def recipients(path: Path, count: int) -> Path:
    """A recipients file of ``count`` distinct destinations."""
    lines = ["destination"] + [f"+3934{i:08d}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def enqueue(
    env: dict[str, str], url: str, name: str, source: Path, *extra: str
) -> subprocess.Popen[str]:
    return cli(env, "enqueue", "--redis", url, str(source), "--name", name, "--sender",
               "Shop", "--body", "Hi", "--chunk-size", "20", "--json", *extra)  # fmt: skip


def worker(env: dict[str, str], url: str, name: str, *extra: str) -> subprocess.Popen[str]:
    return cli(env, "work", "--redis", url, name, "--batch-size", "5", "--max-in-flight", "1",
               "--lease", str(LEASE), "--json", *extra)  # fmt: skip


def states(url: str, name: str) -> str:
    """The campaign's row states, as the Redis campaign keeps them."""
    import redis

    with redis.Redis.from_url(url) as client:
        return (client.get(f"{{agile:c:{name}}}:s") or b"").decode()


def assert_sent_once(fake: FakeAgileServer) -> Counter[str]:
    """Every id the provider accepted, each exactly once."""
    ids = Counter(message.message_id for message in fake.accepted)
    assert ids, "nothing was sent"
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    return ids
