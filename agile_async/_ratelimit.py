"""Pacing requests to the account's rate limit, on any AnyIO backend.

The batcher talks to a :class:`RateLimiter`: ``await acquire(cost)`` before each request,
``penalize(retry_after)`` when the provider answered 429. Two implementations live here: the
in-process :class:`TokenBucket` and :class:`Unlimited` (no configured limit, but 429s still
pause sending). A shared limiter for many processes (Redis) implements the same protocol.

The bucket takes its clock and sleep as arguments, so tests measure its rate on a virtual
clock instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

import anyio
import attrs

from ._setting_validators import invalid, real

__all__ = ["Cost", "RateLimit", "RateLimiter", "TokenBucket", "Unlimited", "make_limiter"]

#: What one token pays for: a message (one destination), an SMS part, or a whole request.
Unit = Literal["messages", "parts", "requests"]


@attrs.frozen
class Cost:
    """What one request spends: destinations, estimated SMS parts, and the request itself."""

    messages: int
    parts: int
    requests: int = 1

    def of(self, unit: Unit) -> int:
        """The cost counted in ``unit``."""
        if unit == "messages":
            return self.messages
        if unit == "parts":
            return self.parts
        return self.requests


_positive = real(minimum=0, exclusive=True)


def _unit(_: object, attribute: attrs.Attribute[Unit], value: object) -> None:
    if value not in ("messages", "parts", "requests"):
        raise invalid(attribute.name, "must be 'messages', 'parts' or 'requests'", value)


@attrs.frozen(kw_only=True)
class RateLimit:
    """The account's rate limit.

    Args:
        rate: tokens per second, sustained.
        per: what a token pays for: ``"messages"`` (one destination), ``"parts"`` (one SMS
            part, what long texts really cost) or ``"requests"``.
        burst: how many tokens may be spent at once after a quiet spell (default: one
            second's worth). A request costing more than the burst waits for a full bucket
            and leaves the bucket in debt, so the long-run rate still holds.
        recovery: how fast the rate climbs back after a 429: by the whole configured rate
            per ``recovery`` seconds (so from half the rate, ``recovery / 2`` seconds).
    """

    rate: float = attrs.field(validator=_positive)
    per: Unit = attrs.field(default="messages", validator=_unit)
    burst: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(real(minimum=1, unit=" token"))
    )
    recovery: float = attrs.field(default=30.0, validator=_positive)

    @property
    def capacity(self) -> float:
        """The bucket's size: ``burst``, or one second's worth of tokens."""
        return self.rate if self.burst is None else self.burst


@runtime_checkable
class RateLimiter(Protocol):
    """What the batcher needs from a rate limiter.

    A limiter may also say ``charges_parts = False`` (an attribute or a property) when it
    never reads :attr:`Cost.parts`: the batcher then skips counting each message's SMS
    parts before sending, and gives it ``parts=0``. Without it, parts are counted.
    """

    async def acquire(self, cost: Cost) -> None:
        """Wait until a request of this cost may go; then count it as spent."""

    def penalize(self, retry_after: float | None) -> None:
        """The provider answered 429: pause, and slow down for a while."""


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: The pause after a 429 that did not say how long to wait, in seconds.
DEFAULT_PAUSE = 1.0
#: Float slack when comparing tokens, so rounding never leaves a waiter a hair short.
_EPSILON = 1e-9
#: A 429 never slows the bucket below this fraction of the configured rate.
MIN_FACTOR = 1 / 16


class Unlimited:
    """No configured limit: requests go at once, except after a 429, which pauses them."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._paused_until = 0.0

    async def acquire(self, cost: Cost) -> None:
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)

    def penalize(self, retry_after: float | None) -> None:
        pause = DEFAULT_PAUSE if retry_after is None else retry_after
        self._paused_until = max(self._paused_until, self._clock() + pause)


class TokenBucket:
    """A token bucket that adapts to 429s: halve the rate, then recover linearly.

    Tokens refill at ``rate x factor`` per second up to ``burst``. A request waits until the
    bucket holds its cost (or the whole burst, for a request bigger than the burst), then
    spends it, possibly into debt. A 429 halves ``factor`` (down to 1/16), empties the
    bucket and pauses until ``Retry-After``; ``factor`` then climbs back to 1 over
    ``limit.recovery`` seconds. Waiters are served first come, first served.
    """

    def __init__(
        self, limit: RateLimit, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._tokens = limit.capacity
        self._updated = now
        self._factor = 1.0
        self._paused_until = now
        self._lock = anyio.Lock()

    @property
    def factor(self) -> float:
        """The fraction of the configured rate currently used (1.0 unless 429s were seen)."""
        self._refill(self._clock())
        return self._factor

    @property
    def rate(self) -> float:
        """The current rate, in tokens per second."""
        return self.limit.rate * self.factor

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed <= 0:
            return
        start = max(self._updated, self._paused_until)
        if now > start:
            # The rate climbs linearly while refilling, so integrate it: the mean of the
            # factor at the start and at the end of the refill.
            before = self._factor
            after = min(1.0, before + (now - start) / self.limit.recovery)
            self._tokens = min(
                self.limit.capacity,
                self._tokens + (now - start) * self.limit.rate * (before + after) / 2,
            )
            self._factor = after
        self._updated = now

    async def acquire(self, cost: Cost) -> None:
        amount = cost.of(self.limit.per)
        need = min(float(amount), self.limit.capacity)
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._tokens >= need - _EPSILON:
                    self._tokens -= amount
                    return
                await self._sleep((need - self._tokens) / (self.limit.rate * self._factor))

    def penalize(self, retry_after: float | None) -> None:
        now = self._clock()
        self._refill(now)
        self._factor = max(MIN_FACTOR, self._factor / 2)
        self._tokens = min(self._tokens, 0.0)
        pause = DEFAULT_PAUSE if retry_after is None else retry_after
        self._paused_until = max(self._paused_until, now + pause)


def make_limiter(
    limit: RateLimit | None, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
) -> RateLimiter:
    """The in-process limiter for ``limit`` (``None``: unlimited, but pausing on 429)."""
    if limit is None:
        return Unlimited(clock=clock, sleep=sleep)
    return TokenBucket(limit, clock=clock, sleep=sleep)
