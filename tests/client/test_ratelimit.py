"""The token bucket's arithmetic, on a virtual clock: no real sleeping."""

from __future__ import annotations

import anyio.lowlevel
import pytest

from agile_async import Cost, RateLimit, TokenBucket
from agile_async._ratelimit import MIN_FACTOR, Unlimited, make_limiter

pytestmark = pytest.mark.anyio


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)
        await anyio.lowlevel.checkpoint()


def one(messages: int = 1, parts: int = 1) -> Cost:
    return Cost(messages=messages, parts=parts)


async def test_the_burst_goes_at_once_then_the_rate_holds() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit(rate=10, burst=5), clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await bucket.acquire(one())
    assert clock.now == 0.0
    for _ in range(10):
        await bucket.acquire(one())
    assert clock.now == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("per", "expected"), [("messages", 30.0), ("parts", 90.0), ("requests", 10.0)]
)
async def test_the_unit_decides_the_cost(per: str, expected: float) -> None:
    clock = VirtualClock()
    limit = RateLimit(rate=1, burst=1, per=per)  # type: ignore[arg-type]
    bucket = TokenBucket(limit, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        await bucket.acquire(Cost(messages=3, parts=9))
    # After the first request, each waits for its own cost (bigger than the burst: debt).
    assert clock.now == pytest.approx(expected, rel=1e-6)


async def test_a_request_bigger_than_the_burst_leaves_debt() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit(rate=10, burst=10), clock=clock, sleep=clock.sleep)
    await bucket.acquire(one(messages=30))
    assert clock.now == 0.0
    await bucket.acquire(one())
    assert clock.now == pytest.approx(2.1)  # 20 tokens of debt plus one token


async def test_a_429_halves_the_rate_pauses_and_recovers_linearly() -> None:
    clock = VirtualClock()
    limit = RateLimit(rate=100, burst=1, recovery=10)
    bucket = TokenBucket(limit, clock=clock, sleep=clock.sleep)
    bucket.penalize(2.0)
    assert bucket.factor == 0.5
    await bucket.acquire(one())
    assert clock.now >= 2.0  # paused for Retry-After
    clock.now = 2.0 + 5.0
    assert bucket.factor == pytest.approx(1.0)
    bucket.penalize(None)
    bucket.penalize(None)
    assert bucket.factor == pytest.approx(0.25)
    for _ in range(10):
        bucket.penalize(None)
    assert bucket.factor == MIN_FACTOR


async def test_unlimited_only_pauses_after_a_429() -> None:
    clock = VirtualClock()
    limiter = Unlimited(clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        await limiter.acquire(one())
    assert clock.now == 0.0
    limiter.penalize(None)
    await limiter.acquire(one())
    assert clock.now == pytest.approx(1.0)


def test_rate_limit_validation() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimit(rate=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(rate=5, burst=0.5)
    with pytest.raises(ValueError, match="per"):
        RateLimit(rate=5, per="bytes")  # type: ignore[arg-type]
    assert RateLimit(rate=7).capacity == 7
    assert isinstance(make_limiter(None), Unlimited)
    assert isinstance(make_limiter(RateLimit(rate=1)), TokenBucket)
