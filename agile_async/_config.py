"""Defaults and the settings objects a caller may pass: base URLs, timeouts, pool limits,
and the :class:`RetryPolicy`.

Every knob says its unit in its docstring; seconds are floats throughout.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

import anyio
import attrs
import httpx

from ._exceptions import Problem, ValidationError
from ._models import SendOptions
from ._ratelimit import RateLimit
from ._setting_validators import (
    at_least,
    callable_setting,
    check_amount,
    flag,
    invalid,
    optional_instance_of,
    real,
)
from ._validation import options_problems

__all__ = [
    "BASE_URLS",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "Account",
    "BatchSettings",
    "RetryPolicy",
    "batch_settings",
]

#: Which documented endpoint an account uses.
Account = Literal["legacy", "new"]

#: The provider's base URLs by account type (seed: "Base URLs").
BASE_URLS: dict[Account, str] = {
    "legacy": "https://secure.agiletelecom.com/services/",
    "new": "https://http-api.agiletelecom.com/services/",
}

#: Connect within 5 s; a send may take a while on the provider's side, so read for 30 s.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

#: One pool shared by every send: enough connections for a batcher's requests in flight.
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)


_non_negative = real(minimum=0, unit=" seconds")
_at_least_one = at_least(1)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how often a request is tried again.

    Only failures where the provider did not take the message are retried: 5XX with code 8
    or 9, HTTP 502/503/504 without a provider body, HTTP 429, and connection failures before
    the request was sent. Delays grow exponentially with full jitter, and a ``Retry-After``
    from the provider replaces the computed delay.

    Args:
        attempts: the most tries in all, the first included (1 disables retries).
        initial_delay: the backoff cap before the first retry, in seconds; it doubles with
            every retry up to ``max_delay``. The actual delay is uniform in [0, cap].
        max_delay: the largest computed backoff, in seconds.
        deadline: no retry starts once this many seconds have passed since the first try,
            or when its delay would end after that.
        max_retry_after: the longest ``Retry-After`` honoured, in seconds; a provider asking
            for longer makes the call fail with :class:`~agile_async.RateLimitError` instead.
        retry_ambiguous: also retry when the request went out but no answer came (read
            timeout, reset). Off by default: that retry may send the messages twice.
        sleep: the coroutine used to wait between tries (tests substitute a recorder).
    """

    attempts: int = attrs.field(default=4, validator=_at_least_one)
    initial_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    deadline: float = attrs.field(default=60.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    retry_ambiguous: bool = attrs.field(default=False, validator=flag)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=anyio.sleep, eq=False, repr=False, validator=callable_setting
    )

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that tries once and never again."""
        return cls(attempts=1)


#: The policy used when a client is given none.
DEFAULT_RETRY = RetryPolicy()


def _credit_threshold(value: Decimal | int | str | None) -> Decimal | None:
    """The money rule (:func:`check_amount`; a threshold may be below 0), as a converter."""
    return None if value is None else check_amount("credit_threshold", value, negative=True)


def _batch_options(_: object, attribute: attrs.Attribute[SendOptions], value: SendOptions) -> None:
    """The batcher trusts its settings' options for every message, so they are judged here,
    once, by the same rules as a send's (and ``global_id`` must be left to the batcher): a
    problem with them is a :class:`ValidationError`, as it would be on a send; anything but
    a :class:`SendOptions` is a bad setting."""
    if not isinstance(value, SendOptions):
        raise invalid(attribute.name, "must be a SendOptions", value)
    problems = options_problems(value)
    if value.global_id is not None:
        problems.append(
            Problem(
                "options.global_id",
                "must be None: the batcher gives every request its own globalId",
            )
        )
    if problems:
        raise ValidationError(problems=problems)


@attrs.frozen(kw_only=True)
class BatchSettings:
    """How the :class:`~agile_async.Batcher` groups sends into requests.

    Args:
        max_messages: the most messages (destinations) in one request.
        max_request_bytes: the largest request body, in bytes (approximate: the JSON of each
            message is estimated when it is submitted).
        max_latency: the longest a message waits for others to share its request, in
            seconds. A full request goes at once.
        max_in_flight: the most requests under way at the same time.
        queue_capacity: the most messages (destinations) waiting to be sent; ``submit()``
            waits while the queue is full, ``submit_nowait()`` raises ``QueueFullError``.
        rate_limit: the account's :class:`~agile_async.RateLimit` (``None``: as fast as the
            provider answers; a 429 still pauses sending).
        options: the request-level :class:`~agile_async.SendOptions`; ``global_id`` must be
            ``None`` (each request gets its own).
        credit_threshold: stop sending (refusing new work with ``CreditThresholdError``) once
            the credit reported by the provider falls below this many EUR.
        log_destinations: show destination numbers in clear in the batcher's log records
            (failed messages, error texts); by default they read ``+39347****567``.
    """

    max_messages: int = attrs.field(default=500, validator=_at_least_one)
    max_request_bytes: int = attrs.field(default=512 * 1024, validator=_at_least_one)
    max_latency: float = attrs.field(default=0.02, validator=_non_negative)
    max_in_flight: int = attrs.field(default=4, validator=_at_least_one)
    queue_capacity: int = attrs.field(default=10_000, validator=_at_least_one)
    rate_limit: RateLimit | None = attrs.field(
        default=None, validator=optional_instance_of(RateLimit)
    )
    options: SendOptions = attrs.field(factory=SendOptions, validator=_batch_options)
    credit_threshold: Decimal | None = attrs.field(default=None, converter=_credit_threshold)
    log_destinations: bool = attrs.field(default=False, validator=flag)


def batch_settings(
    settings: BatchSettings | None, overrides: Mapping[str, object], **fixed: object
) -> BatchSettings:
    """``settings`` (default ones when ``None``) with keyword ``overrides`` on top, and then
    ``fixed`` (what the caller decides itself, such as a campaign's options).

    The one home of "settings plus keywords": a settings object of another type, or a
    keyword that is not a setting (``max_mesages``), is named as a ConfigurationError (with
    the setting it probably meant) instead of an AttributeError or attrs' TypeError.
    """
    if settings is not None and not isinstance(settings, BatchSettings):
        raise invalid("settings", "must be a BatchSettings or None", settings)
    names = [field.name for field in attrs.fields(BatchSettings)]
    for name in overrides:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f": one of {', '.join(names)}"
            raise invalid(name, f"is not a batcher setting{hint}")
    changes: dict[str, Any] = {**overrides, **fixed}
    base = settings if settings is not None else BatchSettings()
    return attrs.evolve(base, **changes) if changes else base
