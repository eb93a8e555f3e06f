"""Riding out a Redis outage: how long to wait for Redis, and the one error when it is too long.

A restart, a failover or a network blip makes every call on a Redis client fail at once: the
limiter's bookings, the journal's claims and settles, the heartbeats. None of that is a
message outcome. Every call retries (each SDK script may safely run twice) until Redis is
back or the outage has lasted the tolerance (``redis_timeout``); then it raises
:class:`RedisUnavailableError`, and the worker stops cleanly.

The outage is one event for every caller on a client, so it is tracked per client
(:func:`outage_of`): the first failure starts it and logs one line, the first success after
it ends it and logs one line, and a call made late in the outage gets only what is left of
the tolerance, not a fresh one.
"""

from __future__ import annotations

import logging
import time
import weakref

from .._exceptions import RedisUnavailableError
from .._redact import redact_urls
from .._setting_validators import check_number

__all__ = [
    "DEFAULT_REDIS_TIMEOUT",
    "Outage",
    "check_timeout",
    "outage_of",
]

log = logging.getLogger("agile_async")

#: How long, in seconds, a Redis outage is waited out before a worker gives up.
DEFAULT_REDIS_TIMEOUT = 60.0


def check_timeout(redis_timeout: float) -> float:
    """The tolerance as a float (``math.inf``: wait for Redis forever).

    Raises:
        ConfigurationError: negative, or not a number.
    """
    return float(check_number("redis_timeout", redis_timeout, minimum=0, unit=" seconds"))


class Outage:
    """Whether one Redis client is reachable, as every caller on it sees it.

    Attributes:
        since: when (``time.monotonic()``) the current outage started, or ``None``.
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self._clock = time.monotonic

    def failed(self, error: BaseException, *, started: float, tolerance: float) -> float:
        """A call failed on a connection error: the outage starts (logged once) if it had
        not. ``started`` is when the failed try began (a try that hung counts from there).
        Returns the seconds left before a caller with ``tolerance`` gives up."""
        now = self._clock()
        if self.since is None:
            self.since = min(started, now)
            log.warning(
                "Redis unavailable (%s): waiting up to %g s for it to come back",
                _describe(error),
                tolerance,
            )
        return self.since + tolerance - now

    def recovered(self) -> None:
        """A call succeeded: the outage, if any, is over (logged once)."""
        if self.since is not None:
            log.warning("Redis is back after %.1f s", self._clock() - self.since)
            self.since = None

    def give_up(self, error: BaseException, tolerance: float) -> RedisUnavailableError:
        """The error a caller raises once the outage has lasted its ``tolerance``."""
        waited = 0.0 if self.since is None else self._clock() - self.since
        unavailable = RedisUnavailableError(
            f"Redis unavailable for {waited:.1f} s, longer than the tolerance of {tolerance:g} s "
            f"(last error: {_describe(error)})",
            waited=waited,
        )
        unavailable.__cause__ = error
        return unavailable


def _describe(error: BaseException) -> str:
    """``Class: message``, with any URL's credentials masked (a client may name its URL)."""
    return f"{type(error).__name__}: {redact_urls(str(error))}"


_OUTAGES: weakref.WeakKeyDictionary[object, Outage] = weakref.WeakKeyDictionary()


def outage_of(client: object) -> Outage:
    """The outage tracker shared by everything that uses ``client``."""
    try:
        return _OUTAGES.setdefault(client, Outage())
    except TypeError:  # a client that cannot be weakly referenced: its own tracker
        return Outage()
