"""Spans and metrics through the public API, recorded by the real OpenTelemetry SDK."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, StatusCode

import agile_async
from agile_async import (
    AgileClient,
    AuthenticationError,
    Message,
    RetryPolicy,
    ServerError,
    TicketState,
)
from agile_async.testing import FakeAgileServer, Fault
from agile_async.webhooks import DeliveryReportReceiver

from .conftest import Recorded, unset_providers

API_KEY = "k-Secret-Api-Key-7f3a9"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(api_key=API_KEY, credit=Decimal("1000"), price_per_part=Decimal("0.01")),
]

BODY = "Your private code is 48151623"


async def no_sleep(_: float) -> None:
    return None


def number(i: int) -> str:
    return f"+3934{i:08d}"


def sms(i: int, body: str = BODY) -> Message:
    return Message(destinations=number(i), sender="MyApp", body=body)


def client_for(fake: FakeAgileServer, **kwargs: Any) -> AgileClient:
    return AgileClient(
        api_key=API_KEY,
        transport=fake.transport(),
        retry=RetryPolicy(attempts=3, sleep=no_sleep),
        **kwargs,
    )


async def test_a_batch_request_is_a_send_span_over_its_http_attempts(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    with trace.get_tracer("app").start_as_current_span("campaign") as parent:
        async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
            tickets = [await batcher.submit(sms(i)) for i in range(3)]
            receipts = [await t.result() for t in tickets]

    (batch,) = otel.spans("send sms")
    assert batch.kind is SpanKind.PRODUCER
    assert batch.attributes is not None
    assert dict(batch.attributes) == {
        "messaging.system": "agiletelecom",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.batch.message_count": 3,
        "agiletelecom.global_id": receipts[0].global_id,
        "agile_async.outcome": "accepted",
        "agiletelecom.sms_parts": 3,
    }
    # A child of the span current where the batcher was started.
    assert batch.parent is not None
    assert batch.parent.span_id == parent.get_span_context().span_id

    (attempt,) = otel.spans("POST sms/send")
    assert attempt.kind is SpanKind.CLIENT
    assert attempt.parent is not None
    assert attempt.parent.span_id == batch.context.span_id
    assert attempt.attributes is not None
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["agile_async.outcome"] == "ok"
    assert attempt.attributes["agile_async.messages"] == 3
    assert "http.request.resend_count" not in attempt.attributes
    assert attempt.status.status_code is StatusCode.UNSET


async def test_each_retry_is_its_own_attempt_span(fake: FakeAgileServer, otel: Recorded) -> None:
    fake.inject(Fault.server_error(code=8), times=2)
    async with client_for(fake) as client:
        await client.send(sms(1))

    attempts = otel.spans("POST sms/send")
    assert len(attempts) == 3
    first, second, third = (dict(s.attributes or {}) for s in attempts)
    assert first["http.response.status_code"] == 500
    assert first["agiletelecom.error.code"] == 8
    assert first["error.type"] == "ServerError"
    assert first["agile_async.outcome"] == "rejected"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in first
    assert second["http.request.resend_count"] == 1
    assert third["http.request.resend_count"] == 2
    assert third["agile_async.outcome"] == "ok"
    assert otel.total("agile_async.retries") == 2
    assert otel.total("agile_async.request.duration", **{"http.response.status_code": 500}) == 2
    assert otel.total("agile_async.credit") == pytest.approx(float(fake.credit))


async def test_a_final_failure_is_an_error_on_the_attempt(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    fake.inject(Fault.server_error(code=8), times=None)
    async with client_for(fake) as client:
        with pytest.raises(ServerError):
            await client.send(sms(1))
    assert [s.status.status_code for s in otel.spans("POST sms/send")] == [StatusCode.ERROR] * 3


async def test_credit_is_a_get_span_and_a_gauge(fake: FakeAgileServer, otel: Recorded) -> None:
    fake.credit = Decimal("12.5")
    async with client_for(fake) as client:
        assert await client.credit() == Decimal("12.5")
    (span,) = otel.spans("GET sms/credit")
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["agile_async.messages"] == 0
    assert otel.metrics()["agile_async.credit"] == [({}, 12.5)]


async def test_bisection_shows_as_spans_and_messages_by_outcome(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    fake.reject_destinations({number(2)}, code=7)
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(4)]
        for ticket in tickets:
            await ticket.wait()
    assert [t.state for t in tickets].count(TicketState.FAILED) == 1

    outcomes = [
        str(dict(s.attributes or {})["agile_async.outcome"]) for s in otel.spans("send sms")
    ]
    # The whole request, its halves, the bad half's halves.
    assert sorted(outcomes) == ["accepted", "accepted", "bisected", "bisected", "failed"]
    failed = next(s for s in otel.spans("send sms") if s.status.status_code is StatusCode.ERROR)
    assert failed.attributes is not None
    assert failed.attributes["agiletelecom.error.code"] == 7
    assert failed.attributes["messaging.batch.message_count"] == 1
    assert otel.total("agile_async.messages", **{"agile_async.outcome": "accepted"}) == 3
    assert otel.total("agile_async.messages", **{"agile_async.outcome": "failed"}) == 1
    assert otel.total("agile_async.sms_parts") == 3


async def test_a_429_pauses_the_batcher_and_is_counted(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    fake.inject(Fault.rate_limited(retry_after=0))
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        await batcher.send(sms(1))
    assert otel.total("agile_async.rate_limit.pauses") == 1
    assert otel.total("agile_async.retries") == 1
    first, second = otel.spans("POST sms/send")
    assert dict(first.attributes or {})["http.response.status_code"] == 429
    assert dict(second.attributes or {})["http.request.resend_count"] == 1


async def test_queued_and_in_flight_gauges_read_the_batchers(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    async with client_for(fake) as client, client.batcher(max_latency=3600) as batcher:
        for i in range(5):
            await batcher.submit(sms(i))
        assert otel.total("agile_async.batcher.queued") == 5
        assert otel.total("agile_async.batcher.in_flight") == 0
        await batcher.flush()
        assert otel.total("agile_async.batcher.queued") == 0
    assert otel.total("agile_async.requests.in_flight") == 0
    assert otel.total("agile_async.messages", **{"agile_async.outcome": "accepted"}) == 5


async def test_account_errors_stop_the_batcher_and_fail_what_was_queued(
    fake: FakeAgileServer, otel: Recorded
) -> None:
    fake.inject(Fault.error(status=401, code=1))
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        ticket = await batcher.submit(sms(1))
        with pytest.raises(AuthenticationError):
            await ticket.result()
    (span,) = otel.spans("send sms")
    assert dict(span.attributes or {})["agile_async.outcome"] == "failed"
    assert otel.total("agile_async.messages", **{"agile_async.outcome": "failed"}) == 1


async def test_withdrawn_messages_are_counted(fake: FakeAgileServer, otel: Recorded) -> None:
    import anyio

    async with client_for(fake) as client, client.batcher(max_latency=3600) as batcher:
        with anyio.move_on_after(0.01):
            await batcher.send(sms(1))
        await batcher.aclose(cancel=True)
    assert otel.total("agile_async.messages", **{"agile_async.outcome": "withdrawn"}) == 1


async def test_the_receiver_counts_reports_by_status(otel: Recorded) -> None:
    receiver = DeliveryReportReceiver(on_report=lambda report: None)

    def report(message_id: str, status: int) -> dict[str, Any]:
        return {
            "messageId": message_id,
            "destination": "+393471234567",
            "statusCode": status,
            "description": "x",
            "doneDate": "2026-04-08 14:35:22.045+0200",
            "concatTotal": 1,
            "concatProgressive": 1,
        }

    body = [report("m1", 3), report("m2", 3), report("m3", 6), report("m1", 3)]
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", content=json.dumps(body))
    assert response.status_code == 200
    points = otel.metrics()["agile_async.delivery_reports"]
    counts = {
        (a["agile_async.report.status"], a["agile_async.report.duplicate"]): v for a, v in points
    }
    assert counts == {("DELIVERED", False): 2, ("DELIVERED", True): 1, ("UNDELIVERABLE", False): 1}


async def test_the_choice_is_made_when_the_client_is_made(fake: FakeAgileServer) -> None:
    """A client (or batcher) made before any provider is set records nothing, even once one
    is set: the choice costs nothing per request."""
    unset_providers()
    early = client_for(fake)
    early_batcher = early.batcher(max_latency=0.01)
    recorded = Recorded()
    trace.set_tracer_provider(recorded.tracer_provider)
    metrics.set_meter_provider(recorded.meter_provider)
    try:
        async with early as client, early_batcher as batcher:
            await batcher.send(sms(1))
            await client.send(sms(2))
        assert recorded.spans() == []
        assert recorded.metrics() == {}
        async with client_for(fake) as late:  # made after: recorded
            await late.send(sms(3))
        assert len(recorded.spans("POST sms/send")) == 1
    finally:
        unset_providers()
        recorded.tracer_provider.shutdown()
        recorded.meter_provider.shutdown()


@pytest.mark.parametrize("tracing", [False, True])
async def test_telemetry_runs_per_request_not_per_message(
    fake: FakeAgileServer, request: pytest.FixtureRequest, tracing: bool
) -> None:
    """Counted with a profiler: the calls into the SDK's telemetry module and OpenTelemetry
    while 1,000 messages go out in 2 requests are as many as for 10 messages in 2 requests:
    nothing runs per message."""
    if tracing:
        request.getfixturevalue("otel")

    async def calls(messages: int, per_request: int) -> int:
        seen = 0
        telemetry_file = str(Path(agile_async.__file__).with_name("_telemetry.py"))

        def profile(frame: FrameType, event: str, arg: object) -> None:
            nonlocal seen
            if event == "call":
                filename = frame.f_code.co_filename
                if filename == telemetry_file or f"{os.sep}opentelemetry{os.sep}" in filename:
                    seen += 1

        async with (
            client_for(fake) as client,
            client.batcher(max_messages=per_request, max_latency=3600) as batcher,
        ):
            previous: Callable[..., Any] | None = sys.getprofile()
            sys.setprofile(profile)
            try:
                for i in range(messages):
                    await batcher.submit(sms(i))
                await batcher.flush()
            finally:
                sys.setprofile(previous)
        return seen

    await calls(10, 5)  # first use: the SDK makes its aggregations
    few, many = await calls(10, 5), await calls(1000, 500)
    assert many - few < 100  # one call per message would add 990
    assert many < (2_000 if tracing else 100)


async def test_nothing_secret_in_any_span_metric_or_log_record(
    fake: FakeAgileServer, otel: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agile_async")
    secret_number = "+393471234567"
    fake.reject_destinations({secret_number}, code=7)
    fake.inject(Fault.server_error(code=8))
    fake.inject(Fault.rate_limited(retry_after=0))
    async with client_for(fake) as client, client.batcher(max_latency=0.01) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(3)]
        bad = await batcher.submit(Message(destinations=secret_number, sender="MyApp", body=BODY))
        for ticket in [*tickets, bad]:
            await ticket.wait()
        with pytest.raises(Exception, match="7"):
            await client.send(Message(destinations=secret_number, sender="MyApp", body=BODY))
        await client.credit()
    assert bad.state is TicketState.FAILED

    recorded: list[str] = []
    for span in otel.spans():
        recorded.append(span.name)
        recorded.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        recorded.extend(str(e.attributes) for e in span.events)
        recorded.append(str(span.status.description))
    for name, points in otel.metrics().items():
        recorded.append(f"{name}: {points}")
    assert caplog.records
    for record in caplog.records:
        recorded.append(record.getMessage())
        recorded.extend(f"{k}={v}" for k, v in vars(record).items())
    text = "\n".join(recorded)
    assert "+39347****567" in text  # the number is there, masked
    for secret in (secret_number, secret_number[1:], BODY, "48151623", API_KEY, "MyApp"):
        assert secret not in text
