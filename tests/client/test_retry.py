"""Retry decisions are pure functions: tested as tables, then wired through tenacity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import anyio
import pytest

from agile_async import (
    APIError,
    AuthenticationError,
    InsufficientCreditError,
    InvalidDestinationError,
    OutcomeUnknownError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ServiceTimeoutError,
    TransportError,
    UnknownAPIError,
    ValidationError,
)
from agile_async._retry import (
    backoff_delay,
    call_with_retries,
    is_retryable,
    parse_retry_after,
    retry_delay,
)

POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(ServerError("x", code=8, status_code=500), True, id="5XX code 8"),
        pytest.param(ServiceTimeoutError("x", code=9, status_code=503), True, id="5XX code 9"),
        pytest.param(APIError("x", status_code=502), True, id="502 foreign body"),
        pytest.param(APIError("x", status_code=503), True, id="503 foreign body"),
        pytest.param(APIError("x", status_code=504), True, id="504 foreign body"),
        pytest.param(APIError("x", status_code=500), False, id="500 foreign body"),
        pytest.param(UnknownAPIError("x", code=4, status_code=502), False, id="502 code 4"),
        pytest.param(RateLimitError("x"), True, id="429 no Retry-After"),
        pytest.param(RateLimitError("x", retry_after=2.0), True, id="429 short Retry-After"),
        pytest.param(RateLimitError("x", retry_after=3600.0), False, id="429 Retry-After too long"),
        pytest.param(TransportError("x"), True, id="connect failed"),
        pytest.param(OutcomeUnknownError("x"), False, id="ambiguous"),
        pytest.param(AuthenticationError("x", code=1, status_code=401), False, id="4XX code 1"),
        pytest.param(InsufficientCreditError("x", code=2, status_code=402), False, id="code 2"),
        pytest.param(InvalidDestinationError("x", code=7, status_code=400), False, id="code 7"),
        pytest.param(APIError("x", code=4, status_code=400), False, id="4XX unknown"),
        pytest.param(ValidationError("x"), False, id="local validation"),
        pytest.param(ValueError("x"), False, id="foreign error"),
    ],
)
def test_is_retryable(error: BaseException, expected: bool) -> None:
    assert is_retryable(error, POLICY) is expected


def test_ambiguous_failures_are_retried_only_when_opted_in() -> None:
    assert is_retryable(OutcomeUnknownError("x"), RetryPolicy(retry_ambiguous=True))


NOW = datetime(2026, 4, 8, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("nan", None),
        ("soon", None),
        ("Wed, 08 Apr 2026 12:00:30 GMT", 30.0),
        ("Wed, 08 Apr 2026 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("retry_number", "cap"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (100, 8.0)],
)
def test_backoff_is_full_jitter_under_a_doubling_cap(retry_number: int, cap: float) -> None:
    assert backoff_delay(retry_number, POLICY, lambda: 0.999999) == pytest.approx(cap, rel=1e-5)
    assert backoff_delay(retry_number, POLICY, lambda: 0.0) == 0.0
    assert backoff_delay(retry_number, POLICY, lambda: 0.5) == pytest.approx(cap / 2)


def test_retry_after_replaces_the_backoff() -> None:
    assert retry_delay(RateLimitError("x", retry_after=2.5), 1, POLICY, lambda: 0.1) == 2.5
    assert retry_delay(RateLimitError("x"), 1, POLICY, lambda: 1.0) == 0.5
    assert retry_delay(ServerError("x"), 3, POLICY, lambda: 1.0) == 2.0


class SleepRecorder:
    """Stands in for anyio.sleep so backoff is observed, not waited for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def failing(
    errors: list[BaseException], result: str = "ok"
) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return calls, attempt


@pytest.mark.anyio
async def test_retries_until_success_with_recorded_backoff() -> None:
    sleep = SleepRecorder()
    policy = RetryPolicy(attempts=4, sleep=sleep)
    calls, attempt = failing([ServerError("x"), RateLimitError("x", retry_after=1.25)])
    seen: list[BaseException] = []
    result = await call_with_retries(
        attempt,
        policy,
        describe="test",
        on_retry=seen.append,
        rng=lambda: 1.0,
    )
    assert result == "ok"
    assert len(calls) == 3
    assert sleep.delays == [0.5, 1.25]
    assert [type(e) for e in seen] == [ServerError, RateLimitError]


@pytest.mark.anyio
async def test_gives_up_after_the_attempts_and_raises_the_last_error() -> None:
    sleep = SleepRecorder()
    calls, attempt = failing([ServerError("a"), ServerError("b"), ServerError("c")])
    with pytest.raises(ServerError, match=r"^b$"):
        await call_with_retries(
            attempt,
            RetryPolicy(attempts=2, sleep=sleep),
            describe="test",
        )
    assert len(calls) == 2
    assert len(sleep.delays) == 1


@pytest.mark.anyio
async def test_a_final_error_is_not_retried() -> None:
    sleep = SleepRecorder()
    calls, attempt = failing([InvalidDestinationError("bad", code=7)])
    with pytest.raises(InvalidDestinationError):
        await call_with_retries(
            attempt,
            RetryPolicy(sleep=sleep),
            describe="test",
        )
    assert len(calls) == 1
    assert sleep.delays == []


@pytest.mark.anyio
async def test_the_deadline_stops_a_retry_that_would_end_too_late() -> None:
    sleep = SleepRecorder()
    calls, attempt = failing([RateLimitError("x", retry_after=30.0)])
    with pytest.raises(RateLimitError):
        await call_with_retries(
            attempt,
            RetryPolicy(deadline=10.0, sleep=sleep),
            describe="test",
        )
    assert len(calls) == 1
    assert sleep.delays == []


@pytest.mark.anyio
async def test_the_deadline_counts_the_time_the_first_try_took() -> None:
    sleep = SleepRecorder()
    calls: list[int] = []

    async def slow_failure() -> str:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep(0.3)  # a real wait: the deadline is about time passed
        raise ServerError("x")

    with pytest.raises(ServerError):
        await call_with_retries(
            slow_failure,
            RetryPolicy(attempts=5, initial_delay=0.0, deadline=0.2, sleep=sleep),
            describe="test",
        )
    assert len(calls) == 1  # 0.3 s spent: no retry starts after the 0.2 s deadline
    calls.clear()
    await_result = call_with_retries(
        slow_failure,
        RetryPolicy(attempts=3, initial_delay=0.0, deadline=5.0, sleep=sleep),
        describe="test",
    )
    with pytest.raises(ServerError):
        await await_result
    assert len(calls) == 3  # within the deadline: every attempt is made


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="initial_delay"):
        RetryPolicy(initial_delay=-1)
    assert RetryPolicy.never().attempts == 1


def test_retry_after_in_the_future_as_http_date() -> None:
    later = (datetime.now(timezone.utc) + timedelta(seconds=90)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )
    delay = parse_retry_after(later)
    assert delay is not None
    assert 80 <= delay <= 90
