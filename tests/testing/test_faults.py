"""Scripted faults on FakeAgileServer, through the in-memory transport."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import pytest

from agile_async.testing import FakeAgileServer, Fault

pytestmark = pytest.mark.anyio

BODY: dict[str, Any] = {
    "messages": [{"destinations": ["+393471234567"], "sender": "MyApp", "body": "Hello"}]
}


async def send(http: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
    return await http.post("sms/send", json=BODY, **kwargs)


@pytest.mark.parametrize(
    ("fault", "status", "code", "message"),
    [
        (Fault.server_error(), 500, 8, "Server error"),
        (Fault.server_error(code=9, status=503), 503, 9, "Number check service unavailable"),
        (Fault.server_error(code=8, message="Database down"), 500, 8, "Database down"),
    ],
)
async def test_server_errors_have_the_5xx_shape(
    http: httpx.AsyncClient,
    fake: FakeAgileServer,
    fault: Fault,
    status: int,
    code: int,
    message: str,
) -> None:
    fake.inject(fault)
    response = await send(http)
    assert response.status_code == status
    assert response.json() == {"status": "error", "message": message, "code": code}
    assert fake.accepted == ()
    assert fake.requests[0].fault == fault
    assert fake.requests[0].status == status


@pytest.mark.parametrize(
    ("status", "code", "data"),
    [(401, 1, "Wrong credentials"), (402, 2, "Insufficient credit"), (403, 100, "IP")],
)
async def test_any_provider_error_can_be_scripted(
    http: httpx.AsyncClient, fake: FakeAgileServer, status: int, code: int, data: str
) -> None:
    fake.inject(Fault.error(status=status, code=code, data=data))
    response = await send(http)
    assert response.status_code == status
    assert response.json() == {"status": "fail", "data": data, "code": code}


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="status"):
        Fault.error(status=200, code=4)
    with pytest.raises(ValueError, match="status"):
        Fault.server_error(status=400)
    with pytest.raises(ValueError, match="seconds"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="aware"):
        Fault.rate_limited(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="times"):
        FakeAgileServer().inject(Fault.html(), times=0)


async def test_rate_limited_sends_retry_after_in_seconds(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.rate_limited(retry_after=2))
    fake.inject(Fault.rate_limited(retry_after=0.25))
    fake.inject(Fault.rate_limited(retry_after=None))
    first, second, third = [await send(http) for _ in range(3)]
    assert (first.status_code, first.headers["retry-after"]) == (429, "2")
    assert second.headers["retry-after"] == "0.25"
    assert "retry-after" not in third.headers
    assert "code" not in first.json()


async def test_rate_limited_can_send_an_http_date(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    when = datetime(2026, 4, 8, 12, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    fake.inject(Fault.rate_limited(retry_after=when))
    response = await send(http)
    assert response.headers["retry-after"] == "Wed, 08 Apr 2026 10:00:30 GMT"
    assert parsedate_to_datetime(response.headers["retry-after"]) == when


async def test_html_error_page_from_a_proxy(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    fake.inject(Fault.html(status=502))
    fake.inject(Fault.html(status=504, body="<p>timeout</p>"))
    bad_gateway, timeout = await send(http), await send(http)
    assert bad_gateway.status_code == 502
    assert bad_gateway.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in bad_gateway.text
    assert (timeout.status_code, timeout.text) == (504, "<p>timeout</p>")
    assert fake.requests[0].response_json is None


async def test_delay_then_normal_processing(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    fake.inject(Fault.delay(0.2))
    started = anyio.current_time()
    with anyio.fail_after(5):
        response = await send(http)
    assert anyio.current_time() - started >= 0.2
    assert response.status_code == 200
    assert len(fake.accepted) == 1


async def test_delay_beyond_the_read_timeout_times_out_in_memory(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """In memory the timed-out request is abandoned unprocessed (documented)."""
    fake.inject(Fault.delay(30))
    with anyio.fail_after(5), pytest.raises(httpx.ReadTimeout):
        await send(http, timeout=0.05)
    assert fake.accepted == ()
    assert fake.credit == Decimal("100")
    [request] = fake.requests
    assert (request.status, request.fault) == (None, Fault.delay(30))


async def test_drop_before_processing_is_a_connect_error(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """Nothing reached the provider: nothing accepted, nothing charged."""
    fake.inject(Fault.drop())
    with pytest.raises(httpx.ConnectError):
        await send(http)
    assert fake.accepted == ()
    assert fake.credit == Decimal("100")
    assert fake.requests[0].status is None


async def test_drop_after_processing_is_a_read_error_but_the_sms_went_out(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """The ambiguous case: the client saw a failure, the provider accepted and charged."""
    fake.inject(Fault.drop(after_processing=True))
    with pytest.raises(httpx.ReadError):
        await send(http)
    assert len(fake.accepted) == 1
    assert fake.credit == Decimal("99.95")
    assert fake.requests[0].status is None


async def test_a_drop_of_a_bad_request_processes_nothing(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.drop(after_processing=True))
    with pytest.raises(httpx.ReadError):
        await http.post("sms/send", json={"messages": []})
    assert fake.accepted == ()


async def test_faults_are_consumed_in_order_with_repeats(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.server_error(code=9, status=503), times=2)
    fake.inject(Fault.rate_limited(retry_after=1))
    fake.inject(Fault.html())
    assert [f.kind for f in fake.pending_faults] == ["error", "error", "rate_limited", "html"]
    statuses = [(await send(http)).status_code for _ in range(5)]
    assert statuses == [503, 503, 429, 502, 200]
    assert fake.pending_faults == ()
    assert [r.fault.kind if r.fault else None for r in fake.requests] == [
        "error",
        "error",
        "rate_limited",
        "html",
        None,
    ]


async def test_faults_can_target_one_endpoint(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.server_error(), path="/sms/send")
    fake.inject(Fault.html(status=503), path="/services/sms/credit")
    assert (await http.get("sms/credit")).status_code == 503
    assert (await http.get("sms/credit")).status_code == 200
    assert (await send(http)).status_code == 500


async def test_a_fault_for_every_request_until_cleared(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.server_error(), times=None)
    assert [(await send(http)).status_code for _ in range(3)] == [500, 500, 500]
    assert fake.pending_faults == (Fault.server_error(),)
    fake.clear_faults()
    assert (await send(http)).status_code == 200


async def test_faults_come_before_authentication(fake: FakeAgileServer) -> None:
    """A proxy's 502 does not depend on the credentials behind it."""
    fake.inject(Fault.html())
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        assert (await send(http)).status_code == 502
        assert (await send(http)).status_code == 401
