"""Retry decisions as pure functions, and the one place tenacity is used.

The decisions (:func:`is_retryable`, :func:`parse_retry_after`, :func:`backoff_delay`,
:func:`retry_delay`) take plain values and return plain values, so they are tested with
tables. :func:`call_with_retries` wires them into :class:`tenacity.AsyncRetrying`, which keeps
tenacity out of the public surface: callers see our :class:`~agile_async.RetryPolicy` and our
own typed errors, never a ``RetryError`` (the last real error is raised).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TypeVar

import tenacity

from ._config import RetryPolicy
from ._exceptions import (
    APIError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    ServiceTimeoutError,
    TransportError,
)

__all__ = [
    "backoff_delay",
    "call_with_retries",
    "is_retryable",
    "parse_retry_after",
    "retry_delay",
]

T = TypeVar("T")

log = logging.getLogger("agile_async")

#: Gateway statuses that mean "the provider did not get to answer" when the body is not the
#: provider's JSON (a proxy or load balancer spoke instead).
_GATEWAY_STATUSES = frozenset({502, 503, 504})


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` from one attempt may be tried again under ``policy``.

    Only failures where the provider did not take the message qualify: codes 8 and 9, a
    gateway error without a provider body, 429 (unless it asks to wait longer than
    ``policy.max_retry_after``) and transport failures before the request was sent. An
    ambiguous failure is retried only when the policy opts in; a 4XX never is.
    """
    if isinstance(error, (ServerError, ServiceTimeoutError, TransportError)):
        return True
    if isinstance(error, RateLimitError):
        return error.retry_after is None or error.retry_after <= policy.max_retry_after
    if isinstance(error, APIError):
        return error.code is None and error.status_code in _GATEWAY_STATUSES
    if isinstance(error, OutcomeUnknownError):
        return policy.retry_ambiguous
    return False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns ``None`` for a missing or unreadable header, and never a negative delay.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def backoff_delay(retry_number: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Full-jitter exponential backoff before retry number ``retry_number`` (1-based).

    The cap doubles from ``initial_delay`` up to ``max_delay``; the delay is uniform in
    ``[0, cap]`` so many clients that failed together do not retry together.
    """
    exponent = min(retry_number - 1, 62)
    cap = min(policy.max_delay, policy.initial_delay * 2.0**exponent)
    return cap * rng()


def retry_delay(
    error: BaseException, retry_number: int, policy: RetryPolicy, rng: Callable[[], float]
) -> float:
    """The wait before the next try: the provider's ``Retry-After`` if it gave one."""
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        return error.retry_after
    return backoff_delay(retry_number, policy, rng)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    describe: str,
    on_retry: Callable[[BaseException], None] | None = None,
    rng: Callable[[], float] = random.random,
) -> T:
    """Await ``attempt()`` until it succeeds or a failure is final; raise the last error.

    Args:
        attempt: makes one try; raises the SDK's typed errors.
        policy: how often and how long to retry.
        describe: what is being done, for the retry log line (never a secret or a body;
            each attempt is logged by the caller, see :mod:`._telemetry`).
        on_retry: called with the error each time a retry is decided (statistics).
        rng: the jitter source, in [0, 1).
    """

    # The first attempt is made here: most calls succeed at once, and tenacity's machinery
    # costs a fifth of a quick send (about 20 µs). Only a failure to retry enters it, and it
    # sees that failure as its own first attempt (logged, counted, waited on; the deadline
    # counts the time already spent).
    started = time.monotonic()
    try:
        return await attempt()
    except Exception as error:
        if policy.attempts <= 1 or not is_retryable(error, policy):
            raise
        first_failure: Exception | None = error
    spent = time.monotonic() - started

    async def attempt_after_the_first() -> T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await attempt()

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        assert error is not None
        return retry_delay(error, state.attempt_number, policy, rng)

    def should_retry(state: tenacity.RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        assert error is not None
        return is_retryable(error, policy)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        name = type(error).__name__
        log.info(
            "%s: attempt %d failed with %s; retrying in %.3f s",
            describe,
            state.attempt_number,
            name,
            state.upcoming_sleep,
            extra={
                "agile_event": "request.retry",
                "attempt": state.attempt_number,
                "error": name,
                "code": getattr(error, "code", None),
                "status": getattr(error, "status_code", None),
                "delay": state.upcoming_sleep,
            },
        )
        if on_retry is not None and error is not None:
            on_retry(error)

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_any(
            tenacity.stop_after_attempt(policy.attempts),
            tenacity.stop_before_delay(policy.deadline - spent),
        ),
        wait=wait,
        retry=should_retry,
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            return await attempt_after_the_first()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
