"""``RedisLimiter``: one account's rate limit, shared through Redis by every process and host.

```
acquire(cost) --RESERVE (1 round trip)--> {1, wait}: sleep wait (local monotonic clock), go
                                          {0, wait}: too far ahead, nothing reserved: sleep
                                                     wait - max_wait, ask again
penalize(retry_after) --(sync: noted, the keeper task sends it at once)--> PENALIZE: every
       worker's buckets pause, then refill at half the rate, climbing back over `recovery`
keeper task: PENALIZE when a 429 was noted; CONFIGURE every idle_ttl/3 (the heartbeat that
             keeps the shared config alive while any worker runs)
```

The arithmetic lives in Lua (:mod:`._scripts`), on the server's clock; this side only
sleeps the waits it is given. A reservation is never taken back: a cancelled or interrupted
wait wastes its tokens, which only ever under-uses the limit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
import attrs

from .._concurrency import task_group
from .._config import BatchSettings
from .._exceptions import ConfigurationError, RedisUnavailableError
from .._ratelimit import DEFAULT_PAUSE, MIN_FACTOR, Cost, RateLimit, Unit
from .._setting_validators import check_number, invalid
from . import _scripts
from ._keys import account_of, limiter_prefix
from ._outage import DEFAULT_REDIS_TIMEOUT, check_timeout
from ._redis_client import COREDIS_NOT_ENTERED, Script, ScriptHost, adapt, connect

if TYPE_CHECKING:
    from .._client import AgileClient
    from ._redis_client import RedisClient

__all__ = [
    "DEFAULT_IDLE_TTL",
    "DEFAULT_MAX_WAIT",
    "RedisLimiter",
    "RedisLimiterStatistics",
]

log = logging.getLogger("agile_async")

#: How far ahead a worker books tokens, in seconds (also how long a 429 elsewhere may take to
#: stop a worker that booked before it).
DEFAULT_MAX_WAIT = 1.0
#: How long the shared config outlives the last running worker, in seconds.
DEFAULT_IDLE_TTL = 60.0

_SUFFIX: dict[Unit, str] = {"messages": "m", "parts": "p", "requests": "r"}
_ORDER: tuple[Unit, ...] = ("messages", "parts", "requests")
_SPEC_VERSION = "agile-async limiter v1"
#: The longest the final report of a 429 may hold up leaving the ``async with`` block.
_FLUSH_TIMEOUT = 5.0

_GRANTED, _TOO_FAR, _NEVER_FITS, _MISMATCH = 1, 0, -1, -2


class RedisLimiterStatistics(NamedTuple):
    """What this worker's limiter did.

    Attributes:
        granted: requests let through.
        waited: seconds spent waiting for tokens (or for a 429's pause) in all.
        deferred: answers "too far ahead, ask again later" (nothing was reserved).
        penalties: 429s reported by the batcher.
        redis_retries: script calls tried again while Redis was unavailable.
    """

    granted: int
    waited: float
    deferred: int
    penalties: int
    redis_retries: int


@attrs.define
class _Counters:
    granted: int = 0
    waited: float = 0.0
    deferred: int = 0
    penalties: int = 0
    redis_retries: int = 0


@attrs.frozen
class _Bucket:
    limit: RateLimit
    key: str

    @property
    def rate(self) -> str:
        return repr(float(self.limit.rate))

    @property
    def burst(self) -> str:
        return repr(float(self.limit.capacity))


def _limits(limit: RateLimit | Sequence[RateLimit]) -> tuple[RateLimit, ...]:
    limits = (limit,) if isinstance(limit, RateLimit) else tuple(limit)
    if not limits:
        raise invalid("limit", "must be at least one RateLimit")
    units = [item.per for item in limits]
    if len(set(units)) != len(units):
        raise invalid("limit", "must give at most one RateLimit per unit", units)
    return tuple(sorted(limits, key=lambda item: _ORDER.index(item.per)))


def _spec(limits: Sequence[RateLimit], recovery: float) -> str:
    """The limits as text: what every worker of an account must agree on, byte for byte."""
    parts = [f"{item.per}={float(item.rate)!r}/s burst={float(item.capacity)!r}" for item in limits]
    return f"{_SPEC_VERSION}: {'; '.join(parts)}; recovery={float(recovery)!r}s"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLimiter(anyio.AsyncContextManagerMixin):
    """The account's rate limit, shared by every worker (process or host) through Redis.

    ```python
    limit = RateLimit(rate=500, burst=100)
    async with (
        coredis.Redis.from_url("redis://redis:6379") as redis,    # or redis.asyncio.Redis
        AgileClient() as client,
        RedisLimiter(redis, limit, account=client) as limiter,
        client.batcher(max_messages=100, limiter=limiter) as batcher,
    ):
        ...
    ```

    Each request reserves its cost in every bucket at once (messages, parts and/or
    requests per second, GCRA on the Redis server's clock, one round trip) and then sleeps
    the wait it was given, so all workers together never exceed ``rate`` per second after
    an initial ``burst``. A 429 seen by any worker pauses every worker for ``Retry-After``
    (default 1 s) and halves the shared rate (not below 1/16), which then climbs back
    linearly from the end of the pause, by the full rate per ``recovery`` seconds (the
    longest of the limits'), as :class:`~agile_async.TokenBucket` does in one process.

    Args:
        client: a ``redis.asyncio.Redis``/``RedisCluster`` (asyncio only; the ``redis``
            extra) or a ``coredis.Redis``/``RedisCluster`` entered with ``async with``
            (asyncio and trio; the ``redis-trio`` extra). Or a ``redis://``/``unix://`` URL:
            the limiter then opens a client that fits the backend and closes it on exit.
        limit: the account's limit, or up to three (one per unit), all enforced together.
        account: the :class:`~agile_async.AgileClient` whose account is limited, or
            :func:`account_key` of it. Keys are named by a hash: no secret reaches Redis.
        max_wait: how far ahead, in seconds, a worker may book tokens. A longer wait is
            not booked: the worker sleeps and asks again, so a 429 elsewhere, or a change
            in the rate, reaches it within ``max_wait``.
        idle_ttl: how long the shared config (limits, the rate factor after a 429)
            outlives the last running worker, in seconds; bucket keys expire as soon as
            they are back to full.
        redis_timeout: how long, in seconds, a Redis outage (a restart, a failover, a
            network blip) is waited out: ``acquire()`` keeps retrying with backoff, then
            raises :class:`RedisUnavailableError`. A batcher stops on it without sending
            (its messages are "not sent", never failed).

    Raises:
        ConfigurationError: a client that cannot run here (redis-py while trio runs, a
            synchronous client), an account that is not a client or an account key, or
            two limits for one unit.

    Entering the limiter checks the limits against the config the running workers of the
    account stored in Redis, and refuses to start on a difference
    (:class:`~agile_async.ConfigurationError`): stop them all to change the limits.
    """

    def __init__(
        self,
        client: RedisClient | str,
        limit: RateLimit | Sequence[RateLimit],
        *,
        account: AgileClient | str,
        max_wait: float = DEFAULT_MAX_WAIT,
        idle_ttl: float = DEFAULT_IDLE_TTL,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> None:
        check_number("max_wait", max_wait, minimum=0, unit=" seconds")
        check_number("idle_ttl", idle_ttl, minimum=1, unit=" seconds")
        self.limits: tuple[RateLimit, ...] = _limits(limit)
        self.account: str = account_of(account)
        self.key_prefix: str = limiter_prefix(self.account)
        self.max_wait = float(max_wait)
        self.idle_ttl = float(idle_ttl)
        self.redis_timeout = check_timeout(redis_timeout)
        self._url = client if isinstance(client, str) else None
        self._host = None if isinstance(client, str) else adapt(client)
        self._buckets = tuple(
            _Bucket(item, f"{self.key_prefix}:{_SUFFIX[item.per]}") for item in self.limits
        )
        self._keys = (f"{self.key_prefix}:cfg", *(bucket.key for bucket in self._buckets))
        self.recovery = max(item.recovery for item in self.limits)
        self.spec = _spec(self.limits, self.recovery)
        self._common = (
            self.spec,
            str(math.ceil(self.idle_ttl * 1000)),
            str(math.ceil(self.recovery * 1_000_000)),
        )
        self._clock = time.monotonic
        self._counters = _Counters()
        self._entered = False
        self._running = False
        self._paused_until = -math.inf
        self._pending_until: float | None = None
        self._changed: anyio.Event | None = None
        self._configure: Script | None = None
        self._reserve: Script | None = None
        self._penalize: Script | None = None

    def __repr__(self) -> str:
        limits = ", ".join(f"{item.rate:g} {item.per}/s" for item in self.limits)
        state = "running" if self._running else "stopped"
        return f"<RedisLimiter account={self.account} {limits} {state}>"

    @property
    def keys(self) -> tuple[str, ...]:
        """The account's Redis keys: the config hash, then one bucket per limit."""
        return self._keys

    @property
    def charges_parts(self) -> bool:
        """Whether a request's SMS parts are charged (a limit per part): if not, the
        batcher does not count them for this limiter."""
        return any(bucket.limit.per == "parts" for bucket in self._buckets)

    def statistics(self) -> RedisLimiterStatistics:
        """A snapshot of the counts."""
        c = self._counters
        return RedisLimiterStatistics(c.granted, c.waited, c.deferred, c.penalties, c.redis_retries)

    # -- start-up ----------------------------------------------------------------------

    def check_settings(self, settings: BatchSettings) -> None:
        """Refuse batcher settings that could build a request costlier than a burst.

        The batcher keeps each request within ``settings.max_messages`` and, when
        ``settings.rate_limit`` is set, within that limit's burst (in its unit). A request
        costlier than a bucket's burst could never be let through, so this check runs
        before any message is queued.

        Raises:
            ConfigurationError: naming the setting to change.
        """
        local = settings.rate_limit
        for bucket in self._buckets:
            unit, burst = bucket.limit.per, bucket.limit.capacity
            if unit == "messages":
                most = settings.max_messages
                if local is not None and local.per == "messages":
                    most = max(1, min(most, int(local.capacity)))
                if most > burst:
                    raise ConfigurationError(
                        f"the batcher may send {most} messages in one request, more than "
                        f"the shared limit's burst ({burst:g} messages): set "
                        f"BatchSettings(max_messages={int(burst)})"
                    )
            elif unit == "parts" and not (
                local is not None and local.per == "parts" and local.capacity <= burst
            ):
                raise ConfigurationError(
                    "the batcher does not cap the SMS parts of a request, and the shared "
                    f"limit allows bursts of {burst:g} parts: set BatchSettings(rate_limit="
                    f"RateLimit(rate={bucket.limit.rate:g}, per='parts', burst={burst:g})) "
                    "so each request stays within the burst"
                )

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[RedisLimiter, None]:
        if self._entered:
            raise RuntimeError("a RedisLimiter can be entered only once")
        self._entered = True
        async with AsyncExitStack() as stack:
            if self._host is None:
                assert self._url is not None
                self._host = await stack.enter_async_context(connect(self._url))
            host = self._host
            host.check_backend()
            host.check_ready()
            self._configure = host.script(_scripts.CONFIGURE)
            self._reserve = host.script(_scripts.RESERVE)
            self._penalize = host.script(_scripts.PENALIZE)
            await self._start_up(host)
            self._changed = anyio.Event()
            async with task_group() as tasks:
                tasks.start_soon(self._keeper)
                self._running = True
                try:
                    yield self
                finally:
                    self._running = False
                    with anyio.move_on_after(_FLUSH_TIMEOUT, shield=True):
                        await self._report_penalty()
                    tasks.cancel_scope.cancel()

    async def _start_up(self, host: ScriptHost) -> None:
        try:
            reply = await self._call(self._configure, ())
        except RuntimeError as error:  # coredis, when the check of its pool was not enough
            if host.kind == "coredis" and "not initialized" in str(error):
                raise ConfigurationError(COREDIS_NOT_ENTERED) from error
            raise
        self._status(reply)
        factor, pause = int(reply[1]), int(reply[2])
        log.debug(
            "RedisLimiter %s: %s; rate factor %.3f, paused %.3f s",
            self.account,
            self.spec,
            factor / 1e6,
            pause / 1e6,
        )

    # -- the RateLimiter protocol -------------------------------------------------------

    async def acquire(self, cost: Cost) -> None:
        """Wait until a request of this cost may go, on every worker's count; then return.

        Raises:
            RedisUnavailableError: Redis was away for longer than ``redis_timeout``.
            ConfigurationError: the cost exceeds a burst (it could never go), or the
                limits stored in Redis changed under this worker.
            RuntimeError: the limiter was not entered with ``async with``.
        """
        if not self._running:
            raise RuntimeError(
                "enter the limiter first: 'async with RedisLimiter(...) as limiter:'"
            )
        amounts = [cost.of(bucket.limit.per) for bucket in self._buckets]
        for bucket, amount in zip(self._buckets, amounts, strict=True):
            if amount > bucket.limit.capacity:
                raise self._never_fits(bucket, amount)
        args = [str(math.ceil(self.max_wait * 1_000_000))]
        for bucket, amount in zip(self._buckets, amounts, strict=True):
            args += (str(amount), bucket.burst, bucket.rate)
        started = self._clock()
        try:
            await self._acquire(args, amounts)
        finally:
            self._counters.waited += self._clock() - started

    async def _acquire(self, args: list[str], amounts: list[int]) -> None:
        while True:
            pause = self._paused_until - self._clock()
            if pause > 0:  # a 429 here: wait it out, even before Redis has heard of it
                await self._nap(pause)
                continue
            reply = await self._call(self._reserve, args)
            status, value = self._status(reply), int(reply[1])
            if status == _GRANTED:
                if value <= 0 or not await self._nap(value / 1e6):
                    self._counters.granted += 1
                    return
                # A 429 while waiting: the reservation is forfeited (its tokens are wasted);
                # book again once the pause is over.
            elif status == _TOO_FAR:
                self._counters.deferred += 1
                await self._nap(value / 1e6 - self.max_wait)
            else:
                raise self._never_fits(self._buckets[value - 1], amounts[value - 1])

    def penalize(self, retry_after: float | None) -> None:
        """The provider answered 429: pause every worker and halve the shared rate.

        Synchronous, as the protocol requires: the pause applies here at once, and the
        limiter's own task reports it to Redis straight away (one round trip), where every
        worker's next booking sees it. Several 429s during one pause halve the rate once.
        """
        pause = DEFAULT_PAUSE if retry_after is None else max(0.0, float(retry_after))
        until = self._clock() + pause
        self._paused_until = max(self._paused_until, until)
        if self._pending_until is None or until > self._pending_until:
            self._pending_until = until
        self._counters.penalties += 1
        if self._changed is not None:
            self._changed.set()  # wakes the keeper, and every acquire() waiting to go
            self._changed = anyio.Event()

    # -- background ---------------------------------------------------------------------

    async def _keeper(self) -> None:
        """Report 429s as they come; refresh the shared config while this worker runs."""
        heartbeat = self.idle_ttl / 3
        while True:
            if self._pending_until is None:
                assert self._changed is not None
                with anyio.move_on_after(heartbeat):
                    await self._changed.wait()
            try:
                if self._pending_until is not None:
                    await self._report_penalty()
                else:
                    self._status(await self._call(self._configure, ()))
            except RedisUnavailableError:  # logged where it began; acquire() raises it too
                continue
            except Exception as error:  # the next acquire() reports a lasting problem
                log.warning("RedisLimiter %s: %s: %s", self.account, type(error).__name__, error)

    async def _report_penalty(self) -> None:
        until = self._pending_until
        if until is None or self._penalize is None:
            return
        self._pending_until = None
        pause_us = max(0, round((until - self._clock()) * 1_000_000))
        args = [str(pause_us), str(round(MIN_FACTOR * 1_000_000))]
        for bucket in self._buckets:
            args += (bucket.burst, bucket.rate)
        reply = await self._call(self._penalize, args)
        self._status(reply)
        log.info(
            "RedisLimiter %s: 429: every worker pauses for %.3f s; then the rate factor is %.3f",
            self.account,
            int(reply[2]) / 1e6,
            int(reply[1]) / 1e6,
        )

    async def _nap(self, seconds: float) -> bool:
        """Sleep ``seconds``; ``True`` if a 429 (``penalize``) cut the sleep short."""
        event = self._changed
        assert event is not None
        with anyio.move_on_after(seconds):
            await event.wait()
            return True
        return False

    # -- Redis --------------------------------------------------------------------------

    async def _call(self, script: Script | None, args: Sequence[str]) -> list[Any]:
        """Run a script, waiting out an outage (each script may safely run twice)."""
        assert script is not None
        assert self._host is not None

        def on_retry(error: BaseException) -> None:
            self._counters.redis_retries += 1

        reply = await self._host.call(
            script,
            self._keys,
            (*self._common, *args),
            tolerance=self.redis_timeout,
            on_retry=on_retry,
        )
        return list(reply)

    def _status(self, reply: Sequence[Any]) -> int:
        status = int(reply[0])
        if status == _MISMATCH:
            raise ConfigurationError(
                f"the rate limit of account {self.account} stored in Redis "
                f"({self._keys[0]}) differs from this worker's:\n"
                f"  stored: {_text(reply[1])}\n  here:   {self.spec}\n"
                "Every worker of an account must use the same limits: stop them all to change "
                f"them (the stored ones expire {self.idle_ttl:g} s after the last worker stops)."
            )
        return status

    def _never_fits(self, bucket: _Bucket, amount: int) -> ConfigurationError:
        unit, burst = bucket.limit.per, bucket.limit.capacity
        return ConfigurationError(
            f"a request costing {amount} {unit} can never go: the shared limit's burst is "
            f"{burst:g} {unit}. Keep every request within the burst "
            "(RedisLimiter.check_settings(settings) checks batcher settings at start-up)"
        )
