"""RedisLimiter against a real redis-server: the scripts' arithmetic, and the limiter's behaviour.

The arithmetic runs the production Lua bodies on a frozen clock (a key the test sets), so
every wait is exact. The rest runs on the real clock with tolerances. Every async test runs
on asyncio with redis-py and coredis, and on trio with coredis (redis-py cannot run on trio).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agile_async import (
    AgileClient,
    BatchSettings,
    ConfigurationError,
    Cost,
    Message,
    RateLimit,
    RateLimiter,
    RetryPolicy,
)
from agile_async._scaleout import _redis_client, _scripts
from agile_async._scaleout._redis_client import TRIO_NEEDS_COREDIS, adapt
from agile_async.scaleout import RedisLimiter, RedisUnavailableError, account_key
from agile_async.testing import FakeAgileServer, Fault

if TYPE_CHECKING:
    from tests._redis_server import RedisServer

pytest_plugins = ("tests._redis_server",)
pytestmark = pytest.mark.anyio

BASE_URL = "https://fake.agiletelecom.test/services/"
T0 = 1_800_000_000_000_000  # a frozen "now", µs since the epoch


@pytest.fixture
def account() -> str:
    """A fresh account per test: tests never see each other's keys."""
    return account_key(BASE_URL, uuid.uuid4().hex)


class Raw:
    """Any Redis command through a one-line script: the same call on both clients."""

    def __init__(self, client: Any) -> None:
        self._call = adapt(client).script("return redis.call(unpack(ARGV))")

    async def __call__(self, *args: object) -> Any:
        return await self._call((), [str(a) for a in args])

    async def number(self, *args: object) -> int | None:
        reply = await self(*args)
        return None if reply is None else int(reply)


class Lab:
    """The production scripts on a frozen clock: ``at(t)`` sets the server's "now" (µs)."""

    def __init__(
        self,
        client: Any,
        account: str,
        limits: Sequence[RateLimit],
        *,
        idle_ttl: float = 60,
    ) -> None:
        self.limiter = RedisLimiter(client, limits, account=account, idle_ttl=idle_ttl)
        self.raw = Raw(client)
        self.clock_key = f"{self.limiter.key_prefix}:now"
        clock = (
            f"local function now_us() return tonumber(redis.call('GET', '{self.clock_key}')) end"
        )
        host = adapt(client)
        self._reserve = host.script(_scripts.build(_scripts.RESERVE_BODY, clock=clock))
        self._penalize = host.script(_scripts.build(_scripts.PENALIZE_BODY, clock=clock))
        self._configure = host.script(_scripts.build(_scripts.CONFIGURE_BODY, clock=clock))
        self.spec = self.limiter.spec
        self.ttl_ms = str(int(idle_ttl * 1000))
        self.recovery_us = str(int(self.limiter.recovery * 1_000_000))

    @property
    def keys(self) -> tuple[str, ...]:
        return self.limiter.keys

    async def at(self, now: int) -> None:
        await self.raw("SET", self.clock_key, now)

    def _head(self) -> list[str]:
        return [self.spec, self.ttl_ms, self.recovery_us]

    async def reserve(self, *costs: int, max_wait: int = 10**12) -> list[Any]:
        args = [*self._head(), str(max_wait)]
        for cost, limit in zip(costs, self.limiter.limits, strict=True):
            args += [str(cost), repr(float(limit.capacity)), repr(float(limit.rate))]
        return list(await self._reserve(self.keys, args))

    async def penalize(self, pause_us: int, *, min_ppm: int = 62_500) -> list[Any]:
        args = [*self._head(), str(pause_us), str(min_ppm)]
        for limit in self.limiter.limits:
            args += [repr(float(limit.capacity)), repr(float(limit.rate))]
        return list(await self._penalize(self.keys, args))

    async def configure(self) -> list[Any]:
        return list(await self._configure(self.keys, self._head()))

    async def tats(self) -> list[int | None]:
        return [await self.raw.number("GET", key) for key in self.keys[1:]]


# -- the scripts' arithmetic (frozen clock) ---------------------------------------------------


async def test_reserve_spends_the_burst_first_then_waits_cost_times_interval(
    redis: Any, account: str
) -> None:
    # 100,000 µs per token: bucket keys expire on the real clock once full again, so they
    # must outlive the test's reads by far (at 1000/s they lived 10 ms: flaky under load).
    lab = Lab(redis, account, [RateLimit(rate=10, burst=10)])
    await lab.at(T0)
    assert await lab.reserve(5) == [1, 0]
    assert await lab.reserve(5) == [1, 0]  # the burst is spent
    assert await lab.reserve(5) == [1, 500_000]
    assert await lab.reserve(1) == [1, 600_000]
    assert await lab.tats() == [T0 + 1_600_000]
    await lab.at(T0 + 2_600_000)  # the bucket is full again
    assert await lab.reserve(10) == [1, 0]
    assert await lab.reserve(3) == [1, 300_000]


async def test_a_slow_rate_rounds_towards_the_safe_side(redis: Any, account: str) -> None:
    lab = Lab(redis, account, [RateLimit(rate=3, burst=1)])  # 333,333.3 µs per token
    await lab.at(T0)
    assert await lab.reserve(1) == [1, 1]  # emission rounds up, the tolerance down
    assert await lab.reserve(1) == [1, 333_335]
    assert await lab.tats() == [T0 + 2 * 333_334]


async def test_a_cost_beyond_the_burst_is_refused_and_reserves_nothing(
    redis: Any, account: str
) -> None:
    lab = Lab(redis, account, [RateLimit(rate=1000, burst=10)])
    await lab.at(T0)
    assert await lab.reserve(11) == [-1, 1]
    assert await lab.tats() == [None]


async def test_buckets_are_all_or_nothing(redis: Any, account: str) -> None:
    # Slow rates: bucket keys expire on the real clock (PX), so they must outlive the test.
    limits = [
        RateLimit(rate=1, burst=10),  # messages: 1 s per token
        RateLimit(rate=2, per="parts", burst=20),  # 0.5 s per part
        RateLimit(rate=0.1, per="requests", burst=2),  # 10 s per request
    ]
    lab = Lab(redis, account, limits)
    await lab.at(T0)
    assert await lab.reserve(1, 2, 1) == [1, 0]
    assert await lab.reserve(1, 2, 1) == [1, 0]
    before = await lab.tats()
    assert before == [T0 + 2_000_000, T0 + 2_000_000, T0 + 20_000_000]
    # The requests bucket is empty: 10 s, beyond a 5 s max wait: nothing is reserved.
    assert await lab.reserve(1, 2, 1, max_wait=5_000_000) == [0, 10_000_000]
    assert await lab.tats() == before
    # A cost beyond one bucket's burst reserves nothing in the others either.
    assert await lab.reserve(1, 21, 1) == [-1, 2]
    assert await lab.tats() == before
    # The wait is the longest any bucket asks for; every bucket is charged.
    assert await lab.reserve(5, 4, 1) == [1, 10_000_000]
    assert await lab.tats() == [T0 + 7_000_000, T0 + 4_000_000, T0 + 30_000_000]


async def test_keys_expire_once_their_bucket_is_full_again(redis: Any, account: str) -> None:
    lab = Lab(redis, account, [RateLimit(rate=1000, burst=10)], idle_ttl=60)
    await lab.at(T0)
    await lab.reserve(7)  # TAT 7 ms ahead of the clock
    assert 0 < await lab.raw.number("PTTL", lab.keys[1]) <= 7  # type: ignore[operator]
    assert 59_000 < await lab.raw.number("PTTL", lab.keys[0]) <= 60_000  # type: ignore[operator]
    # On the real clock: a bucket key vanishes once it holds nothing the next caller needs.
    fresh = account_key(BASE_URL, uuid.uuid4().hex)
    limiter = RedisLimiter(redis, RateLimit(rate=1000, burst=10), account=fresh)
    async with limiter:
        await limiter.acquire(Cost(messages=10, parts=10))
        assert await lab.raw.number("EXISTS", limiter.keys[1]) == 1
        await anyio.sleep(0.05)  # Redis expires the key by its own clock
        assert await lab.raw.number("EXISTS", limiter.keys[1]) == 0


async def test_penalize_pauses_empties_and_halves_once_per_pause(redis: Any, account: str) -> None:
    lab = Lab(redis, account, [RateLimit(rate=1000, burst=10, recovery=30)])
    await lab.at(T0)
    assert await lab.reserve(4) == [1, 0]
    assert await lab.penalize(2_000_000) == [1, 500_000, 2_000_000]
    # Paused for 2 s, then empty at half the rate: 2000 µs per token, 10 tokens of tolerance.
    assert await lab.tats() == [T0 + 2_000_000 + 20_000]
    # More 429s during the pause extend it but halve nothing.
    await lab.at(T0 + 1_000_000)
    assert await lab.penalize(3_000_000) == [1, 500_000, 3_000_000]
    assert await lab.tats() == [T0 + 4_000_000 + 20_000]
    # Every worker's next booking waits out the pause; at the end one token takes 2 ms.
    assert await lab.reserve(1) == [1, 3_000_000 + 2_000]
    # From the end of the pause the factor climbs linearly, by 1.0 per `recovery` (30 s), as
    # TokenBucket's does: half-way back after 7.5 s, whole after 15 s.
    await lab.at(T0 + 4_000_000 + 7_500_000)
    assert await lab.configure() == [1, 750_000, 0]
    await lab.at(T0 + 4_000_000 + 15_000_000)
    assert await lab.configure() == [1, 1_000_000, 0]


async def test_the_factor_never_falls_below_a_sixteenth(redis: Any, account: str) -> None:
    lab = Lab(redis, account, [RateLimit(rate=1000, burst=10, recovery=30)])
    factors = []
    for i in range(6):
        await lab.at(T0 + i)  # each 429 1 µs after the previous (zero-length) pause
        factors.append((await lab.penalize(0))[1])
    assert factors == [500_000, 250_000, 125_000, 62_500, 62_500, 62_500]


async def test_a_different_config_is_refused_and_changes_nothing(redis: Any, account: str) -> None:
    # A slow rate: the bucket key expires when the bucket is full again, after 5 s of real
    # time here (5 ms at 1000/s made the last read race the expiry under load).
    lab = Lab(redis, account, [RateLimit(rate=1, burst=10)])
    await lab.at(T0)
    assert await lab.reserve(5) == [1, 0]
    other = Lab(redis, account, [RateLimit(rate=2, burst=10)])
    await other.at(T0)
    for reply in (await other.reserve(5), await other.penalize(1), await other.configure()):
        assert reply[0] == -2
        assert reply[1] in (lab.spec, lab.spec.encode())
    assert await lab.tats() == [T0 + 5_000_000]


# -- the limiter on the real clock ------------------------------------------------------------


async def test_acquire_lets_the_burst_through_then_paces(redis: Any, account: str) -> None:
    async with RedisLimiter(redis, RateLimit(rate=200, burst=10), account=account) as limiter:
        start = time.monotonic()
        for _ in range(2):
            await limiter.acquire(Cost(messages=5, parts=5))
        burst = time.monotonic() - start
        for _ in range(4):
            await limiter.acquire(Cost(messages=5, parts=5))  # 25 ms each
        paced = time.monotonic() - start
    assert burst < 0.05
    assert 0.095 < paced < 0.2
    stats = limiter.statistics()
    assert stats.granted == 6
    assert stats.deferred == 0
    assert 0.09 < stats.waited < 0.2


async def test_only_a_limit_per_part_has_the_batcher_count_parts(redis: Any, account: str) -> None:
    # A worker's batcher counts each message's SMS parts before sending only for a limiter
    # that charges them (test_bulk.py: a limiter that does not is given none).
    per_message = RedisLimiter(redis, RateLimit(rate=200), account=account)
    per_request = RedisLimiter(redis, RateLimit(rate=5, per="requests"), account=account)
    both = RedisLimiter(
        redis, [RateLimit(rate=200), RateLimit(rate=500, per="parts")], account=account
    )
    assert (per_message.charges_parts, per_request.charges_parts, both.charges_parts) == (
        False,
        False,
        True,
    )


async def test_an_error_in_the_limiters_block_comes_out_as_itself(redis: Any, account: str) -> None:
    """Not wrapped in the ExceptionGroup of the limiter's own task group."""
    limiter = RedisLimiter(redis, RateLimit(rate=200, burst=10), account=account)

    async def use_then_fail() -> None:
        async with limiter:
            await limiter.acquire(Cost(messages=1, parts=1))
            raise LookupError("the caller's own error")

    with pytest.raises(LookupError, match="caller's own"):
        await use_then_fail()


async def test_two_workers_share_one_limit(redis: Any, account: str) -> None:
    limit = RateLimit(rate=200, burst=10)
    first = RedisLimiter(redis, limit, account=account)
    second = RedisLimiter(redis, limit, account=account)
    async with first, second:
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for limiter in (first, second, first, second, first, second):
                tg.start_soon(limiter.acquire, Cost(messages=5, parts=5))
        elapsed = time.monotonic() - start
    # 30 messages: the burst of 10, then 20 at 200/s.
    assert 0.095 < elapsed < 0.2


async def test_a_long_wait_is_not_booked_but_asked_again(redis: Any, account: str) -> None:
    limit = RateLimit(rate=50, burst=5)  # 20 ms per message
    async with RedisLimiter(redis, limit, account=account, max_wait=0.03) as limiter:
        start = time.monotonic()
        await limiter.acquire(Cost(messages=5, parts=5))
        await limiter.acquire(Cost(messages=5, parts=5))  # 100 ms away: too far to book
        elapsed = time.monotonic() - start
    assert 0.095 < elapsed < 0.2
    assert limiter.statistics().deferred >= 1


async def test_a_429_seen_by_one_worker_pauses_every_worker(redis: Any, account: str) -> None:
    limit = RateLimit(rate=1000, burst=10)
    raw = Raw(redis)
    first = RedisLimiter(redis, limit, account=account)
    second = RedisLimiter(redis, limit, account=account)
    async with first, second:
        first.penalize(0.3)
        for _ in range(400):  # the first worker's own task tells Redis at once
            if await raw("HGET", first.keys[0], "pause") not in (b"0", "0"):
                break
            await anyio.sleep(0.005)  # the limiter's own task writes it, over Redis
        else:
            pytest.fail("the 429 never reached Redis")
        start = time.monotonic()
        await second.acquire(Cost(messages=1, parts=1))
        elapsed = time.monotonic() - start
    assert 0.25 < elapsed < 0.5
    assert first.statistics().penalties == 1
    assert second.statistics().penalties == 0


async def test_a_429_cuts_short_a_booked_wait(redis: Any, account: str) -> None:
    """A booking made before the 429 is forfeited: nobody sends during the pause."""
    async with RedisLimiter(redis, RateLimit(rate=20, burst=1), account=account) as limiter:
        await limiter.acquire(Cost(messages=1, parts=1))
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.acquire, Cost(messages=1, parts=1))  # booked 50 ms ahead
            await anyio.sleep(0.01)  # its booking goes to Redis and back: a round trip
            limiter.penalize(0.3)
        elapsed = time.monotonic() - start
    # The pause (0.3 s), then one token at half the rate (0.1 s).
    assert 0.38 < elapsed < 0.6


async def test_a_cost_beyond_the_burst_is_a_clear_error(redis: Any, account: str) -> None:
    async with RedisLimiter(redis, RateLimit(rate=100, burst=10), account=account) as limiter:
        with pytest.raises(ConfigurationError, match=r"costing 11 messages.*burst is 10"):
            await limiter.acquire(Cost(messages=11, parts=11))


async def test_a_worker_with_other_limits_refuses_to_start(redis: Any, account: str) -> None:
    async with RedisLimiter(redis, RateLimit(rate=100, burst=10), account=account):
        other = RedisLimiter(redis, RateLimit(rate=100, burst=20), account=account)
        with pytest.raises(ConfigurationError, match="differs from this worker's") as info:
            async with other:
                pass
        message = str(info.value)
        assert "messages=100.0/s burst=10.0" in message
        assert "messages=100.0/s burst=20.0" in message


async def test_limits_changed_under_a_running_worker_stop_it(redis: Any, account: str) -> None:
    async with RedisLimiter(redis, RateLimit(rate=100, burst=10), account=account) as limiter:
        await Raw(redis)("HSET", limiter.keys[0], "spec", "someone else's")
        with pytest.raises(ConfigurationError, match="someone else's"):
            await limiter.acquire(Cost(messages=1, parts=1))


async def test_the_config_lives_while_a_worker_runs(redis: Any, account: str) -> None:
    raw = Raw(redis)
    async with RedisLimiter(redis, RateLimit(rate=100), account=account, idle_ttl=1.2) as limiter:
        await anyio.sleep(0.8)  # the heartbeat (every idle_ttl / 3) keeps it alive
        assert await raw.number("PTTL", limiter.keys[0]) > 600  # type: ignore[operator]
    assert 0 < await raw.number("PTTL", limiter.keys[0]) <= 1200  # type: ignore[operator]


async def test_connection_blips_are_retried(
    redis: Any, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = RateLimit(rate=100, burst=10)
    async with RedisLimiter(redis, limit, account=account, redis_timeout=0.3) as limiter:
        real = limiter._reserve
        assert real is not None
        failures = iter([ConnectionError("blip"), TimeoutError("blip")])

        async def flaky(keys: Sequence[str], args: Sequence[str]) -> Any:
            error = next(failures, None)
            if error is not None:
                raise error
            return await real(keys, args)

        monkeypatch.setattr(limiter, "_reserve", flaky)
        await limiter.acquire(Cost(messages=1, parts=1))
        assert limiter.statistics().redis_retries == 2

        async def down(keys: Sequence[str], args: Sequence[str]) -> Any:
            raise ConnectionError("down")

        monkeypatch.setattr(limiter, "_reserve", down)
        with pytest.raises(RedisUnavailableError, match=r"tolerance of 0\.3 s") as caught:
            await limiter.acquire(Cost(messages=1, parts=1))
        assert isinstance(caught.value.__cause__, ConnectionError)  # the last error
        assert limiter.statistics().redis_retries > 2


async def test_a_killed_connection_is_survived(
    redis: Any, account: str, redis_server: RedisServer
) -> None:
    async with RedisLimiter(redis, RateLimit(rate=1000, burst=10), account=account) as limiter:
        await limiter.acquire(Cost(messages=1, parts=1))
        killed = await anyio.to_thread.run_sync(
            redis_server.command, "CLIENT", "KILL", "TYPE", "normal"
        )
        assert int(killed[1:]) >= 1
        await limiter.acquire(Cost(messages=1, parts=1))
    assert limiter.statistics().granted == 2


async def test_no_secret_reaches_redis(redis: Any) -> None:
    raw = Raw(redis)
    secret = f"api-key-{uuid.uuid4().hex}"
    password = f"password-{uuid.uuid4().hex}"
    user = f"user-{uuid.uuid4().hex}"
    clients = [
        AgileClient(api_key=secret, base_url=BASE_URL),
        AgileClient(username=user, password=password, base_url=BASE_URL),
    ]
    expected = [account_key(BASE_URL, secret), account_key(BASE_URL, user)]
    for client, account in zip(clients, expected, strict=True):
        async with RedisLimiter(redis, RateLimit(rate=100), account=client) as limiter:
            assert limiter.account == account
            await limiter.acquire(Cost(messages=1, parts=1))
            stored = repr([await raw("HGETALL", limiter.keys[0])])
            stored += repr([await raw("GET", key) for key in limiter.keys[1:]])
            assert all(account in key for key in limiter.keys)
            assert secret not in stored
            assert password not in stored
            assert secret not in repr(limiter)
        await client.aclose()
    everything = repr(await raw("KEYS", "*"))
    assert secret not in everything
    assert password not in everything
    assert user not in everything


async def test_a_limiter_opens_its_own_client_from_a_url(
    redis_url: str, account: str, anyio_backend: str
) -> None:
    pytest.importorskip("coredis")
    async with RedisLimiter(redis_url, RateLimit(rate=100), account=account) as limiter:
        await limiter.acquire(Cost(messages=1, parts=1))
        assert limiter._host is not None
        assert limiter._host.kind == ("coredis" if anyio_backend == "trio" else "redis-py")


async def test_the_batcher_paces_through_the_shared_limit(redis: Any, account: str) -> None:
    fake = FakeAgileServer(credit=Decimal("1000"))
    limit = RateLimit(rate=200, burst=10)
    fake.inject(Fault.rate_limited(retry_after=0.1))
    async with (
        fake.client(retry=RetryPolicy(attempts=3)) as client,
        RedisLimiter(redis, limit, account=account) as limiter,
    ):
        settings = BatchSettings(max_messages=10, max_latency=0)
        limiter.check_settings(settings)
        start = time.monotonic()
        async with (
            client.batcher(settings, limiter=limiter) as batcher,
            anyio.create_task_group() as tg,
        ):
            for i in range(40):
                message = Message(destinations=f"+3934{i:08d}", sender="App", body="Hi")
                tg.start_soon(batcher.send, message)
        elapsed = time.monotonic() - start
        factor = await Raw(redis)("HGET", limiter.keys[0], "f")
    assert len(fake.accepted) == 40
    assert batcher.statistics().retries == 1
    # The 429 reached Redis (rate factor halved) and the batch waited it out.
    assert int(factor) < 1_000_000
    assert limiter.statistics().penalties == 1
    assert elapsed > 0.25


# -- construction and misuse ------------------------------------------------------------------


def coredis_client(url: str = "redis://127.0.0.1:1") -> Any:
    """A coredis client that is never entered: enough to construct a limiter."""
    coredis = pytest.importorskip("coredis")
    return coredis.Redis.from_url(url)


@pytest.mark.parametrize(
    ("limits", "settings", "problem"),
    [
        ([RateLimit(rate=500, burst=100)], BatchSettings(max_messages=100), None),
        ([RateLimit(rate=500, burst=100)], BatchSettings(), "max_messages=100"),
        (
            [RateLimit(rate=500, burst=100)],
            BatchSettings(rate_limit=RateLimit(rate=500, burst=100)),
            None,
        ),
        ([RateLimit(rate=500, burst=100.5)], BatchSettings(max_messages=101), "max_messages=100"),
        ([RateLimit(rate=800, per="parts", burst=200)], BatchSettings(), "per='parts'"),
        (
            [RateLimit(rate=800, per="parts", burst=200)],
            BatchSettings(rate_limit=RateLimit(rate=800, per="parts", burst=200)),
            None,
        ),
        (
            [RateLimit(rate=800, per="parts", burst=200)],
            BatchSettings(rate_limit=RateLimit(rate=800, per="parts", burst=300)),
            "burst=200",
        ),
        ([RateLimit(rate=5, per="requests", burst=1)], BatchSettings(), None),
    ],
)
def test_check_settings_refuses_requests_beyond_a_burst(
    limits: list[RateLimit], settings: BatchSettings, problem: str | None
) -> None:
    limiter = RedisLimiter(coredis_client(), limits, account="0123456789abcdef")
    if problem is None:
        limiter.check_settings(settings)
    else:
        with pytest.raises(ConfigurationError, match=problem):
            limiter.check_settings(settings)


def test_account_key_is_a_stable_hash() -> None:
    key = account_key(BASE_URL, "k")
    assert len(key) == 16
    assert int(key, 16) >= 0
    assert account_key(BASE_URL.rstrip("/"), "k") == key
    assert account_key("https://FAKE.agiletelecom.test/services/", "k") == key
    assert account_key(BASE_URL, "other") != key
    with pytest.raises(ConfigurationError):
        account_key(BASE_URL, "")


def test_a_clients_account_is_named_by_its_key_or_user_alone() -> None:
    """A gateway's Basic userinfo in the base URL does not change the account's name."""
    plain = RedisLimiter("unix:///x", RateLimit(rate=1), account=AgileClient(
        api_key="k", base_url=BASE_URL))  # fmt: skip
    gated = RedisLimiter("unix:///x", RateLimit(rate=1), account=AgileClient(
        api_key="k", base_url=BASE_URL.replace("https://", "https://gw:pw@")))  # fmt: skip
    basic = RedisLimiter("unix:///x", RateLimit(rate=1), account=AgileClient(
        username="user", password="pw", base_url=BASE_URL))  # fmt: skip
    assert plain.account == gated.account == account_key(BASE_URL, "k")
    assert basic.account == account_key(BASE_URL, "user")


@pytest.mark.parametrize("account", ["my-api-key-1234", "0123456789ABCDEF", ""])
def test_an_account_must_be_a_client_or_an_account_key(account: str) -> None:
    with pytest.raises(ConfigurationError, match="account_key"):
        RedisLimiter(coredis_client(), RateLimit(rate=1), account=account)


def test_limits_are_one_per_unit() -> None:
    with pytest.raises(ConfigurationError, match="one RateLimit per unit"):
        RedisLimiter(
            coredis_client(),
            [RateLimit(rate=1), RateLimit(rate=2)],
            account="0123456789abcdef",
        )
    with pytest.raises(ConfigurationError, match="at least one"):
        RedisLimiter(coredis_client(), [], account="0123456789abcdef")


def test_unsupported_clients_are_refused() -> None:
    redis = pytest.importorskip("redis")
    with pytest.raises(ConfigurationError, match=r"synchronous client: pass a redis\.asyncio"):
        RedisLimiter(redis.Redis(), RateLimit(rate=1), account="0123456789abcdef")
    with pytest.raises(ConfigurationError, match="unsupported Redis client 'object'"):
        RedisLimiter(object(), RateLimit(rate=1), account="0123456789abcdef")  # type: ignore[arg-type]


async def test_redis_py_under_trio_is_refused_at_construction(anyio_backend: str) -> None:
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url("redis://127.0.0.1:1")
    if anyio_backend != "trio":
        RedisLimiter(client, RateLimit(rate=1), account="0123456789abcdef")
        return
    with pytest.raises(ConfigurationError) as info:
        RedisLimiter(client, RateLimit(rate=1), account="0123456789abcdef")
    assert str(info.value) == TRIO_NEEDS_COREDIS
    assert "agile-async[redis-trio]" in str(info.value)


async def test_a_coredis_client_must_be_entered_first(redis_url: str, account: str) -> None:
    limiter = RedisLimiter(coredis_client(redis_url), RateLimit(rate=1), account=account)
    with pytest.raises(ConfigurationError, match="enter the coredis client"):
        async with limiter:
            pass


async def test_acquire_needs_async_with(account: str) -> None:
    limiter = RedisLimiter(coredis_client(), RateLimit(rate=1), account=account)
    with pytest.raises(RuntimeError, match="async with"):
        await limiter.acquire(Cost(messages=1, parts=1))
    limiter.penalize(None)  # harmless: noted for when it starts


async def test_a_limiter_is_entered_once(redis: Any, account: str) -> None:
    limiter = RedisLimiter(redis, RateLimit(rate=100), account=account)
    async with limiter:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        async with limiter:
            pass


async def test_a_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.setattr(_redis_client, "_installed", lambda name: False)
    extra = "agile-async[redis-trio]" if anyio_backend == "trio" else "agile-async[redis]"
    with pytest.raises(ImportError, match=extra.replace("[", r"\[")):
        async with _redis_client.connect("redis://127.0.0.1:1"):
            pass


def test_importing_the_module_imports_no_redis_library() -> None:
    code = (
        "import sys, agile_async.scaleout; "
        "assert not {'redis', 'coredis'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_a_missing_redis_server_skips_locally_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests import _redis_server

    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        _redis_server.start_redis_server(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the Redis tests"):
        _redis_server.start_redis_server(tmp_path)


def test_the_limiter_is_a_rate_limiter() -> None:
    limiter = RedisLimiter(coredis_client(), RateLimit(rate=1), account="0123456789abcdef")
    assert isinstance(limiter, RateLimiter)
    assert limiter.keys == (
        "{agile:l:0123456789abcdef}:cfg",
        "{agile:l:0123456789abcdef}:m",
    )
    assert repr(limiter) == "<RedisLimiter account=0123456789abcdef 1 messages/s stopped>"
