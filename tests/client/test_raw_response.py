"""``client.with_raw_response``: the HTTP status, response headers, elapsed time and
``globalId`` of a call, beside its result, and never the request's credentials."""

from __future__ import annotations

import base64
import gc
import json
import pickle
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

import agile_async as aa
from agile_async import AgileClient, Message, RawResponse, RetryPolicy, SendResult
from agile_async.testing import FakeAgileServer, Fault

API_KEY = "k3y-that-must-never-leak"
USERNAME = "user"
PASSWORD = "pa55-that-must-never-leak"
BASIC = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
SECRETS = (API_KEY, PASSWORD, BASIC)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(
        api_key=API_KEY, username=USERNAME, password=PASSWORD, credit=Decimal("10.00")
    ),
]


async def no_sleep(_: float) -> None:
    """A backoff that does not wait."""


def hello(destination: str = "+393471234567") -> Message:
    return Message(destinations=destination, sender="MyApp", body="Hello!")


@pytest.fixture(params=["api_key", "basic"])
async def client(
    fake: FakeAgileServer, request: pytest.FixtureRequest
) -> AsyncIterator[AgileClient]:
    """A client authenticating one way or the other: both credentials must stay hidden."""
    credentials = (
        {"api_key": API_KEY}
        if request.param == "api_key"
        else {"username": USERNAME, "password": PASSWORD}
    )
    retry = RetryPolicy(attempts=3, sleep=no_sleep)
    async with fake.client(retry=retry, **credentials) as client:
        yield client


async def test_a_raw_send_has_the_http_side_and_the_result(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    raw = await client.with_raw_response.send(hello())
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")
    assert isinstance(raw.elapsed, timedelta)
    assert raw.elapsed >= timedelta(0)
    result = raw.parse()
    assert isinstance(result, SendResult)
    assert result.ids == (fake.accepted[0].message_id,)
    sent = fake.requests[-1].json
    assert sent is not None
    assert raw.global_id == sent["globalId"] == result.global_id
    assert json.loads(raw.content)["globalId"] == raw.global_id
    assert raw.parse() is result  # parsed once, by the send itself
    assert client.last_known_credit == result.credit
    assert repr(raw) == (
        f"<RawResponse HTTP 200 globalId={raw.global_id!r} "
        f"elapsed={raw.elapsed.total_seconds():.3f}s>"
    )


async def test_a_raw_credit(fake: FakeAgileServer, client: AgileClient) -> None:
    fake.credit = Decimal("7.25")
    raw = await client.with_raw_response.credit()
    assert (raw.status_code, raw.global_id, raw.parse()) == (200, None, Decimal("7.25"))
    assert client.last_known_credit == Decimal("7.25")


async def test_a_retried_call_answers_with_its_last_attempt(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.server_error(), times=2)
    raw = await client.with_raw_response.send(hello())
    assert raw.status_code == 200
    assert raw.parse().ids == (fake.accepted[0].message_id,)
    assert [r.status for r in fake.requests] == [500, 500, 200]


async def test_a_raw_calls_error_carries_the_failed_attempts_response(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.rate_limited(retry_after=120), path="/sms/send")
    with pytest.raises(aa.RateLimitError) as limited:
        await client.with_raw_response.send(hello())
    raw = limited.value.raw_response
    assert raw is not None
    assert (raw.status_code, raw.headers["retry-after"], raw.parse()) == (429, "120", None)
    assert raw.global_id == (fake.requests[-1].json or {})["globalId"]
    fake.inject(Fault.error(status=401, code=1), path="/sms/credit")
    with pytest.raises(aa.AuthenticationError) as refused:
        await client.with_raw_response.credit()
    assert refused.value.raw_response is not None
    assert refused.value.raw_response.status_code == 401


async def test_a_plain_calls_error_records_nothing(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.error(status=401, code=1))
    with pytest.raises(aa.AuthenticationError) as refused:
        await client.send(hello())
    assert refused.value.raw_response is None
    assert refused.value.status_code == 401  # what every APIError carries anyway


async def test_raw_calls_take_the_per_call_settings(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.server_error(), times=1)
    with pytest.raises(aa.ServerError):
        await client.with_raw_response.send(hello(), retry=RetryPolicy(attempts=1))
    fake.inject(Fault.delay(5), path="/sms/credit")
    with pytest.raises(aa.TransportError):
        await client.with_raw_response.credit(timeout=0.1, retry=RetryPolicy(attempts=1))
    view = client.with_options(options=aa.SendOptions(simulation=True))
    raw = await view.with_raw_response.send(hello())
    assert raw.status_code == 200
    assert fake.accepted == ()


def reachable(root: object, depth: int = 4) -> list[object]:
    """Every object ``root`` refers to, ``depth`` references deep."""
    seen: dict[int, object] = {}
    layer = [root]
    for _ in range(depth):
        layer = [o for o in gc.get_referents(*layer) if id(o) not in seen]
        seen.update((id(o), o) for o in layer)
    return list(seen.values())


async def test_no_credential_is_reachable_from_a_raw_response(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    raw = await client.with_raw_response.send(hello())
    fake.inject(Fault.error(status=401, code=1))
    with pytest.raises(aa.AuthenticationError) as refused:
        await client.with_raw_response.send(hello())
    failed = refused.value.raw_response
    assert failed is not None
    for response in (raw, failed):
        names = {name.lower() for name in response.headers}
        assert not names & {"x-api-key", "authorization"}
        shown = " ".join(
            [
                repr(response),
                str(response),
                repr(response.headers),
                str(list(response.headers.items())),
                response.content.decode(),
                repr(refused.value),
                str(refused.value),
            ]
        )
        for secret in SECRETS:
            assert secret not in shown
        # Nor held: no request, no httpx response (which points to its request) behind it.
        kept = reachable(response)
        assert not [o for o in kept if isinstance(o, (httpx.Request, httpx.Response))]
        assert not [o for o in kept if isinstance(o, str) and any(s in o for s in SECRETS)]
    assert not [o for o in reachable(refused.value) if isinstance(o, httpx.Request)]


async def test_an_error_with_a_raw_response_still_copies_and_pickles(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    """The batcher copies errors for each waiting caller; pickles cross process pools."""
    fake.inject(Fault.error(status=401, code=1))
    with pytest.raises(aa.AuthenticationError) as refused:
        await client.with_raw_response.send(hello())
    copied = pickle.loads(pickle.dumps(refused.value))
    assert copied.raw_response is not None
    assert copied.raw_response.status_code == 401
