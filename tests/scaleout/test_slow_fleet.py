"""SLOW (~10 s): four worker processes share one account's limit through Redis.

The workers (``_redis_fleet_worker.py``: redis-py on asyncio, coredis on asyncio, coredis on
trio twice) each run a Batcher paced by a RedisLimiter and post to one FakeAgileServer over
real TLS. Everything is measured from the fake provider's own timestamps. Select or skip
this module with ``-k slow`` / ``-k "not slow"``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

from agile_async.testing import FakeAgileServer, Fault
from tests._children import child_environment

pytest_plugins = ("tests._redis_server",)

pytest.importorskip("uvicorn")
pytest.importorskip("trustme")
pytest.importorskip("redis")
pytest.importorskip("coredis")

pytestmark = pytest.mark.slow

RATE = 500.0  # messages per second, for the four workers together
BURST = 100.0
BATCH = 50
STEADY = 3.0  # seconds of steady sending before the 429
RETRY_AFTER = 1.5  # the 429's pause
AFTER = 1.5  # seconds of sending after the pause
WORKERS = [
    ("redis-py", "asyncio"),
    ("coredis", "asyncio"),
    ("coredis", "trio"),
    ("coredis", "trio"),
]
WORKER = Path(__file__).with_name("_redis_fleet_worker.py")


@attrs.frozen
class Post:
    """One accepted request, by the fake's clock (seconds from the first accept)."""

    at: float
    messages: int


@attrs.frozen
class Fleet:
    posts: list[Post]  # in time order
    rejected_at: list[float]  # the 429s, same clock
    reports: list[dict[str, Any]]


def _seconds(when: datetime, origin: datetime) -> float:
    return (when - origin).total_seconds()


def _kill(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.kill()


def _drive(
    fake: FakeAgileServer, workers: list[tuple[subprocess.Popen[str], IO[str]]]
) -> list[Any]:
    """Start every worker at once, inject the 429 after STEADY seconds, collect the reports."""
    for worker, errors in workers:  # every worker is set up before any sends
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != "ready":
            errors.seek(0)
            pytest.fail(f"a worker did not start:\n{errors.read()[-3000:]}")
    for worker, _ in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"go {STEADY + RETRY_AFTER + AFTER}\n")
        worker.stdin.flush()
    time.sleep(STEADY)  # the workers send for STEADY seconds of real time: the rate measured
    fake.inject(Fault.rate_limited(retry_after=RETRY_AFTER), path="sms/send")
    reports = []
    for worker, errors in workers:
        out, _ = worker.communicate(timeout=30)
        if worker.returncode != 0:
            errors.seek(0)
            pytest.fail(f"a worker failed:\n{errors.read()[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def _run_fleet(redis_url: str) -> Fleet:
    fake = FakeAgileServer(credit=Decimal(1_000_000))
    with fake.serve_tls() as server:
        env = child_environment(**server.environment())
        args = [redis_url, "", "", str(RATE), str(BURST), str(BATCH), ""]
        with ExitStack() as stack:
            workers: list[tuple[subprocess.Popen[str], IO[str]]] = []
            for number, (kind, backend) in enumerate(WORKERS):
                args[1], args[2], args[6] = kind, backend, str(number + 1)
                errors = stack.enter_context(tempfile.TemporaryFile("w+"))
                worker = subprocess.Popen(
                    [sys.executable, str(WORKER), *args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    env=env,
                )
                stack.enter_context(worker)  # closes its pipes, waits for it
                stack.callback(_kill, worker)
                workers.append((worker, errors))
            reports = _drive(fake, workers)
    accepted = fake.accepted
    origin = min(m.accepted_at for m in accepted)
    by_request: dict[int, list[datetime]] = defaultdict(list)
    for message in accepted:
        by_request[message.request_index].append(message.accepted_at)
    posts = sorted(
        (Post(_seconds(min(t), origin), len(t)) for t in by_request.values()),
        key=lambda p: p.at,
    )
    rejected = [_seconds(r.received_at, origin) for r in fake.requests if r.status == 429]
    return Fleet(posts, rejected, reports)


@pytest.fixture(scope="module")
def fleet(redis_url: str) -> Fleet:
    return _run_fleet(redis_url)


def _window(posts: list[Post], start: float, end: float) -> list[Post]:
    return [p for p in posts if start <= p.at < end]


def test_every_worker_took_part(fleet: Fleet) -> None:
    assert sorted(r["kind"] for r in fleet.reports) == sorted(k for k, _ in WORKERS)
    assert all(r["accepted"] > 0 for r in fleet.reports), fleet.reports
    assert sum(r["limiter"]["penalties"] for r in fleet.reports) == 1
    assert len(fleet.rejected_at) == 1


def test_the_fleet_keeps_the_shared_rate(fleet: Fleet) -> None:
    steady = _window(fleet.posts, 1.0, fleet.rejected_at[0])
    assert len(steady) >= 10
    # Requests are evenly spaced: the rate is what was sent between the first and the last.
    span = steady[-1].at - steady[0].at
    rate = sum(p.messages for p in steady[:-1]) / span
    assert RATE * 0.95 < rate < RATE * 1.05, rate


def test_no_second_holds_more_than_burst_plus_rate(fleet: Fleet) -> None:
    most = max(sum(p.messages for p in _window(fleet.posts, s.at, s.at + 1.0)) for s in fleet.posts)
    assert most <= BURST + RATE
    assert most >= RATE  # the limit was really reached


def test_a_429_seen_by_one_worker_pauses_every_worker(fleet: Fleet) -> None:
    rejected = fleet.rejected_at[0]
    # What was booked before the 429 reached Redis may still go (four workers, one request
    # each: 0.4 s at most); after that, nothing from anyone until the pause ends.
    assert _window(fleet.posts, rejected + 0.5, rejected + RETRY_AFTER) == []
    # Then sending resumes, at about half the rate (plus the rejected request, retried).
    after = sum(p.messages for p in _window(fleet.posts, rejected + RETRY_AFTER, rejected + 2.5))
    assert 0.3 * RATE <= after <= 0.5 * RATE + 2 * BATCH, after
