"""A Redis outage is waited out up to ``redis_timeout``, then one typed error; never a failure.

A real redis-server of each test's own (AOF, fsync always) is SIGKILLed and started again on
the same socket. Every test runs on asyncio with redis-py and coredis, and on trio with
coredis.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

from agile_async import ConfigurationError, Cost, RateLimit
from agile_async.campaigns import Campaign, CampaignProgress
from agile_async.scaleout import (
    DEFAULT_REDIS_TIMEOUT,
    RedisCampaign,
    RedisLimiter,
    RedisUnavailableError,
    WorkResult,
    account_key,
    work,
)
from agile_async.testing import FakeAgileServer, Fault, Hold

if TYPE_CHECKING:
    from tests._redis_server import KillableRedis

pytest_plugins = ("tests._redis_server",)
pytestmark = [
    pytest.mark.anyio,
    # coredis 6.9 leaves the memory streams of a connection that could not connect unclosed
    # (its Connection makes them in __init__): a ResourceWarning per try while Redis is
    # down, whenever the garbage collector gets to them (tests/_redis_server.py collects
    # what is left after each test that ignores them).
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
]

ONE = Cost(messages=1, parts=1)


@pytest.fixture
async def client(redis_kind: str, killable_redis: KillableRedis) -> AsyncIterator[Any]:
    """A client of the parametrised kind on the test's own (killable) server."""
    if redis_kind == "coredis":
        import coredis

        async with coredis.Redis.from_url(killable_redis.url) as coredis_client:
            yield coredis_client
    else:
        import redis.asyncio

        asyncio_client = redis.asyncio.Redis.from_url(killable_redis.url)
        try:
            yield asyncio_client
        finally:
            await asyncio_client.aclose()


async def restart_after(server: KillableRedis, seconds: float) -> None:
    await anyio.sleep(seconds)  # an outage of real time, as the tolerance is real time
    await anyio.to_thread.run_sync(server.start)


def outage_lines(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    lines = Counter[str]()
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("Redis unavailable ("):
            lines["down"] += 1
        elif message.startswith("Redis is back after"):
            lines["back"] += 1
    return lines


def recipients(path: Path, count: int) -> Path:
    lines = ["destination"] + [f"+3934{i:08d}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


async def enqueue(client: Any, name: str, source: Path) -> RedisCampaign:
    journal = RedisCampaign(client, name, chunk_size=10)
    async with await Campaign.create(journal, source, body="Hi", sender="Shop") as campaign:
        await campaign.load()
    return journal


def test_the_default_tolerance_is_a_minute() -> None:
    assert DEFAULT_REDIS_TIMEOUT == 60.0


@pytest.mark.parametrize("bad", [-1, float("nan"), "60"])
def test_a_senseless_tolerance_is_refused(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="redis_timeout"):
        RedisLimiter("redis://localhost", RateLimit(rate=1), account="a" * 16, redis_timeout=bad)
    with pytest.raises(ConfigurationError, match="redis_timeout"):
        RedisCampaign(object(), "c", redis_timeout=bad)  # type: ignore[arg-type]


async def test_the_limiter_waits_out_a_restart(
    client: Any, killable_redis: KillableRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "agile_async")
    limit = RateLimit(rate=1000, burst=10)
    async with RedisLimiter(client, limit, account="a" * 16, redis_timeout=30) as limiter:
        await limiter.acquire(ONE)
        killable_redis.kill()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(restart_after, killable_redis, 0.6)
            await limiter.acquire(ONE)  # waits for Redis, then is granted
        await limiter.acquire(ONE)
    assert limiter.statistics().granted == 3
    assert limiter.statistics().redis_retries >= 1
    assert outage_lines(caplog) == {"down": 1, "back": 1}


async def test_a_longer_outage_raises_one_typed_error_then_recovers(
    client: Any, killable_redis: KillableRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "agile_async")
    limit = RateLimit(rate=1000, burst=10)
    async with RedisLimiter(client, limit, account="b" * 16, redis_timeout=0.3) as limiter:
        killable_redis.kill()
        with pytest.raises(RedisUnavailableError, match=r"tolerance of 0\.3 s") as caught:
            await limiter.acquire(ONE)
        assert caught.value.waited >= 0.3
        with pytest.raises(RedisUnavailableError):  # the outage goes on: no new tolerance
            await limiter.acquire(ONE)
        killable_redis.start()
        await limiter.acquire(ONE)  # back: the limiter works again
    assert limiter.statistics().granted == 1
    assert outage_lines(caplog) == {"down": 1, "back": 1}


async def test_the_journal_waits_out_a_restart_in_every_call(
    client: Any, killable_redis: KillableRedis, tmp_path: Path
) -> None:
    name = f"o-{uuid.uuid4().hex[:8]}"
    await enqueue(client, name, recipients(tmp_path / "r.csv", 20))
    journal = RedisCampaign(client, name, redis_timeout=30)
    rows = await journal.next_rows(10)
    seqs = [row.seq for row in rows]
    for step in range(3):
        killable_redis.kill()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(restart_after, killable_redis, 0.3)
            if step == 0:
                await journal.mark_in_flight(seqs[:5], "g1")
            elif step == 1:
                await journal.release(seqs[:5])
            else:
                assert await journal.heartbeat() == []
    await journal.mark_in_flight(seqs, "g2")
    from agile_async import RequestTotals

    killable_redis.kill()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(restart_after, killable_redis, 0.3)
        await journal.record_accepted(seqs, RequestTotals("g2", 10, 10, Decimal(5)))
    counts = await journal.counts()
    assert (counts.accepted, counts.pending, counts.in_flight, counts.failed) == (10, 10, 0, 0)


class OutageAt:
    """A worker's ``on_progress``: kills Redis once the worker has ``accepted`` messages
    accepted, and starts it again ``after`` seconds later (in ``tasks``), if given."""

    def __init__(
        self, server: KillableRedis, accepted: int, tasks: Any = None, after: float = 0
    ) -> None:
        self.server, self.accepted, self.tasks, self.after = server, accepted, tasks, after
        self.done = False

    def __call__(self, progress: CampaignProgress) -> None:
        if self.done or progress.accepted < self.accepted:
            return
        self.done = True
        self.server.kill()
        if self.tasks is not None:
            self.tasks.start_soon(restart_after, self.server, self.after)


async def test_a_worker_rides_out_a_restart(
    client: Any, killable_redis: KillableRedis, tmp_path: Path
) -> None:
    name = f"w-{uuid.uuid4().hex[:8]}"
    total = 200
    await enqueue(client, name, recipients(tmp_path / "r.csv", total))
    fake = FakeAgileServer(credit=Decimal(1000))
    journal = RedisCampaign(client, name, poll=0.02, lease=30)
    async with fake.client() as agile:
        limit = RateLimit(rate=200, burst=10)
        account = account_key(fake.base_url, name)
        async with (
            RedisLimiter(client, limit, account=account) as limiter,
            anyio.create_task_group() as tasks,
        ):
            outage = OutageAt(killable_redis, 40, tasks, after=0.8)
            result = await work(
                agile,
                journal,
                limiter=limiter,
                max_messages=5,
                on_progress=outage,
                progress_interval=0.02,
            )
    assert outage.done
    assert result.stopped_by is None
    assert result.finished
    assert (result.counts.accepted, result.counts.failed, result.counts.unknown) == (total, 0, 0)
    ids = Counter(message.message_id for message in fake.accepted)
    assert len(ids) == total
    assert max(ids.values()) == 1


async def test_a_worker_stops_cleanly_when_redis_stays_away(
    client: Any, killable_redis: KillableRedis, tmp_path: Path
) -> None:
    name = f"x-{uuid.uuid4().hex[:8]}"
    total = 200
    await enqueue(client, name, recipients(tmp_path / "r.csv", total))
    fake = FakeAgileServer(credit=Decimal(1000))
    journal = RedisCampaign(client, name, poll=0.02, lease=1, redis_timeout=0.5)
    async with fake.client() as agile:
        limit = RateLimit(rate=200, burst=10)
        account = account_key(fake.base_url, name)
        async with RedisLimiter(client, limit, account=account, redis_timeout=0.5) as limiter:
            outage = OutageAt(killable_redis, 40)
            with pytest.raises(RedisUnavailableError):
                await work(
                    agile,
                    journal,
                    limiter=limiter,
                    max_messages=5,
                    on_progress=outage,
                    progress_interval=0.02,
                )
            sent = len(fake.accepted)
            killable_redis.start()
            counts = await journal.counts()
            assert (counts.failed, counts.unknown) == (0, 0)
            assert counts.pending + counts.in_flight + counts.accepted == total
            # A later worker (after the lease) finishes the campaign; nothing went twice.
            later = RedisCampaign(client, name, poll=0.02, lease=1)
            result = await work(agile, later, limiter=limiter, max_messages=5)
    assert sent < total
    assert result.finished
    assert result.counts.failed == 0
    assert result.counts.accepted + result.counts.unknown == total
    assert result.counts.unknown == counts.in_flight  # only rows whose outcome was lost
    ids = Counter(message.message_id for message in fake.accepted)
    assert max(ids.values()) == 1
    assert len(ids) >= result.counts.accepted


async def outcome_during_outage(
    client: Any, server: KillableRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkResult:
    """A request is accepted while Redis is down for 1 s (tolerance 10 s). The Batcher's
    grace for recording an outcome (30 s, for a cancelled batcher only) is scaled down to
    0.3 s: were it applied to a running one, the outcome would be cut short."""
    monkeypatch.setattr("agile_async._reporting.REPORT_GRACE", 0.3)
    name = f"g-{uuid.uuid4().hex[:8]}"
    await enqueue(client, name, recipients(tmp_path / "r.csv", 20))
    fake = FakeAgileServer(credit=Decimal(1000))
    journal = RedisCampaign(client, name, poll=0.02, lease=30, redis_timeout=10)
    results = []
    with Hold() as hold:
        fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
        async with fake.client() as agile, anyio.create_task_group() as tasks:

            async def run() -> None:
                results.append(await work(agile, journal, max_messages=5, max_in_flight=1))

            tasks.start_soon(run)
            await hold.wait_held()  # the provider has the first 5; the worker waits
            server.kill()
            hold.release()  # its outcome now waits for Redis...
            await anyio.sleep(1.0)  # ...longer than the grace, well within the tolerance
            server.start()
    [result] = results
    return result


async def test_an_outcome_not_recorded_in_time_never_hangs_the_worker(
    client: Any, killable_redis: KillableRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Had a recording been cut short and the worker gone on, its chunk would hold rows in
    # flight for ever: the Runner stops instead. Either way, the worker returns.
    result = await outcome_during_outage(client, killable_redis, tmp_path, monkeypatch)
    assert result.counts.failed == 0
    assert result.finished or result.stopped_by is not None


async def test_an_outcome_waits_for_redis_as_long_as_the_tolerance(
    client: Any, killable_redis: KillableRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await outcome_during_outage(client, killable_redis, tmp_path, monkeypatch)
    assert result.finished
    assert result.counts.accepted == 20


async def test_no_password_in_the_outage_lines_or_the_error(
    caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    pytest.importorskip("coredis" if anyio_backend == "trio" else "redis")
    caplog.set_level(logging.INFO, "agile_async")
    secret = f"pw-{uuid.uuid4().hex}"
    url = f"redis://user:{secret}@127.0.0.1:1/0"  # nothing listens on port 1
    limiter = RedisLimiter(url, RateLimit(rate=1), account="c" * 16, redis_timeout=0.2)
    with pytest.raises(RedisUnavailableError) as caught:  # itself, on trio too
        async with limiter:
            pass
    error = caught.value
    assert isinstance(error, RedisUnavailableError)
    assert secret not in str(error)
    assert outage_lines(caplog)["down"] == 1
    assert secret not in caplog.text
