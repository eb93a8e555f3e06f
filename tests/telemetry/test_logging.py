"""The log events on the ``agile_async`` logger: one per meaningful thing, with structured
``extra`` fields, and destination numbers masked unless a batcher opts in."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from agile_async import (
    AgileClient,
    BatchSettings,
    ConfigurationError,
    Message,
    OutcomeUnknownError,
    RetryPolicy,
    TicketState,
)
from agile_async.testing import FakeAgileServer, Fault

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(credit=Decimal("1000"), price_per_part=Decimal("0.01")),
]


async def no_sleep(_: float) -> None:
    return None


def number(i: int) -> str:
    return f"+3934{i:08d}"


def sms(i: int) -> Message:
    return Message(destinations=number(i), sender="MyApp", body="Hello")


def client_for(fake: FakeAgileServer) -> AgileClient:
    return AgileClient(
        api_key="test-api-key",
        transport=fake.transport(),
        retry=RetryPolicy(attempts=3, sleep=no_sleep),
    )


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "agile_event", None) == name]


def fields(record: logging.LogRecord, *names: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agile_async")


async def test_each_attempt_is_logged_sent_and_answered(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.server_error(code=8))
    async with client_for(fake) as client:
        result = await client.send(sms(1))

    sent = events(caplog, "request.sent")
    assert [fields(r, "method", "path", "messages", "attempt") for r in sent] == [
        {"method": "POST", "path": "sms/send", "messages": 1, "attempt": 1},
        {"method": "POST", "path": "sms/send", "messages": 1, "attempt": 2},
    ]
    assert all(r.levelno == logging.DEBUG for r in sent)
    answered = events(caplog, "request.answered")
    assert [fields(r, "attempt", "outcome", "status", "code", "error") for r in answered] == [
        {"attempt": 1, "outcome": "rejected", "status": 500, "code": 8, "error": "ServerError"},
        {"attempt": 2, "outcome": "ok", "status": 200, "code": None, "error": None},
    ]
    assert f"globalId={result.global_id}" in answered[1].getMessage()
    (retry,) = events(caplog, "request.retry")
    assert retry.levelno == logging.INFO
    assert fields(retry, "attempt", "error", "code", "status") == {
        "attempt": 1,
        "error": "ServerError",
        "code": 8,
        "status": 500,
    }
    assert "retrying in" in retry.getMessage()


async def test_a_batchers_outcomes_are_logged_per_request(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reject_destinations({number(2)}, code=7)
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(4)]
        for ticket in tickets:
            await ticket.wait()

    accepted = events(caplog, "messages.accepted")
    assert sum(r.messages for r in accepted) == 3  # type: ignore[attr-defined]
    assert all(r.levelno == logging.DEBUG and r.parts == r.messages for r in accepted)  # type: ignore[attr-defined]
    (failed,) = events(caplog, "messages.failed")
    assert failed.levelno == logging.WARNING
    assert fields(failed, "outcome", "messages", "ids", "destinations", "code", "status") == {
        "outcome": "failed",
        "messages": 1,
        "ids": list(tickets[2].ids),
        "destinations": ["+39340****002"],
        "code": 7,
        "status": 400,
    }
    assert "+39340****002" in failed.getMessage()
    assert number(2) not in caplog.text
    assert len(events(caplog, "request.bisect")) == 2


async def test_a_batcher_may_log_numbers_in_clear(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reject_destinations({number(2)}, code=7)
    async with (
        client_for(fake) as client,
        client.batcher(max_latency=0.01, log_destinations=True) as batcher,
    ):
        ticket = await batcher.submit(sms(2))
        await ticket.wait()
    (failed,) = events(caplog, "messages.failed")
    assert failed.destinations == [number(2)]  # type: ignore[attr-defined]
    assert number(2) in failed.getMessage()


def test_log_destinations_is_a_flag() -> None:
    with pytest.raises(ConfigurationError, match="log_destinations"):
        BatchSettings(log_destinations="yes")  # type: ignore[arg-type]


async def test_unknown_outcomes_name_their_ids(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.drop(after_processing=True))
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        ticket = await batcher.submit(sms(1))
        with pytest.raises(OutcomeUnknownError):
            await ticket.result()
    (unknown,) = events(caplog, "messages.unknown")
    assert unknown.levelno == logging.WARNING
    assert unknown.ids == list(ticket.ids)  # type: ignore[attr-defined]
    assert unknown.error == "OutcomeUnknownError"  # type: ignore[attr-defined]
    assert ticket.ids[0] in unknown.getMessage()


async def test_a_429_pause_and_a_sticky_stop_are_logged_once(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.rate_limited(retry_after=0))
    fake.inject(Fault.error(status=401, code=1))
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        ticket = await batcher.submit(sms(1))
        await ticket.wait()
    assert ticket.state is TicketState.FAILED
    (pause,) = events(caplog, "rate_limit.pause")
    assert pause.levelno == logging.INFO
    assert fields(pause, "status", "retry_after", "pause") == {
        "status": 429,
        "retry_after": 0.0,
        "pause": 0.0,
    }
    (stopped,) = events(caplog, "batcher.stopped")
    assert stopped.levelno == logging.WARNING
    assert fields(stopped, "error", "code", "status") == {
        "error": "AuthenticationError",
        "code": 1,
        "status": 401,
    }
    assert len(events(caplog, "messages.failed")) == 1


async def test_nothing_is_logged_above_debug_for_a_plain_success(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        await batcher.send(sms(1))
        await client.send(sms(2))
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    assert all(hasattr(r, "agile_event") for r in caplog.records if r.name == "agile_async")


async def test_messages_failed_by_closing_are_info_not_warnings(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(fake) as client, client.batcher(max_latency=3600) as batcher:
        for i in range(3):
            await batcher.submit(sms(i))
        await batcher.aclose(cancel=True)
    (failed,) = events(caplog, "messages.failed")
    assert failed.levelno == logging.INFO
    assert failed.messages == 3  # type: ignore[attr-defined]
    assert failed.error == "ClientClosedError"  # type: ignore[attr-defined]
