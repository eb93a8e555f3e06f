"""The fake provider and the SDK read the provider's documentation the same way.

One destination rule for both (a number the SDK refuses, the fake refuses too), and the
fake's error texts are the documentation's words, with the two ``enableConcatenated`` refusals
telling their cause apart.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agile_async import (
    AgileClient,
    AuthenticationError,
    InsufficientCreditError,
    InvalidDestinationError,
    IPNotAllowedError,
    Message,
    RetryPolicy,
    ServerError,
    ServiceTimeoutError,
    ValidationError,
)
from agile_async._limits import destination_fault, plain_destination
from agile_async.testing import FakeAgileServer, Fault

pytestmark = pytest.mark.anyio

API_KEY = "test-api-key"


def message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"destinations": ["+393471234567"], "sender": "MyApp", "body": "Hi"}
    base.update(fields)
    return base


async def post(http: httpx.AsyncClient, *messages: dict[str, Any], **top: Any) -> httpx.Response:
    return await http.post("sms/send", json={**top, "messages": list(messages)})


# -- one destination rule ------------------------------------------------------------------

#: (destination, the fake's code), for numbers both sides must refuse.
REFUSED = [
    ("00393471234567", 7),  # an international call prefix instead of "+"
    ("+00393471234567", 7),
    ("03471234567", 7),  # a national number: no country code
    ("+03471234567", 7),
    ("0", 7),
    ("+39 347 1234567", 7),
    ("+39347abc4567", 7),
    ("++393471234567", 7),
    ("+", 7),
    ("+123456", 5),
    ("+1234567890123456", 6),
]
ACCEPTED = ["+393471234567", "393471234567", "+6834002", "+123456789012345"]


@pytest.mark.parametrize(("destination", "code"), REFUSED)
async def test_the_sdk_and_the_fake_refuse_the_same_destinations(
    fake: FakeAgileServer, http: httpx.AsyncClient, destination: str, code: int
) -> None:
    """The SDK refuses locally; a request that skips the SDK gets the provider's code."""
    async with fake.client() as client:
        with pytest.raises(ValidationError) as refused:
            await client.send(Message(destinations=destination, sender="MyApp", body="Hi"))
    assert [p.field for p in refused.value.problems] == ["messages[0].destinations[0]"]
    response = await post(http, message(destinations=[destination]))
    body = response.json()
    assert (response.status_code, body["code"]) == (400, code), body
    assert list(body["data"]) == ["messages[0].destinations[0]"]
    assert fake.accepted == ()


async def test_a_leading_zero_is_refused_for_what_it_is(http: httpx.AsyncClient) -> None:
    """``00...`` is not "too long" or "too short": it is not an international number."""
    async with FakeAgileServer().client() as client:
        with pytest.raises(ValidationError) as refused:
            await client.send(Message(destinations="00393471234567", sender="MyApp", body="Hi"))
    assert "country code" in refused.value.problems[0].message
    response = await post(http, message(destinations=["00393471234567", "0039"]))
    assert response.json()["data"] == {
        "messages[0].destinations[0]": "Invalid destination number",
        "messages[0].destinations[1]": "Invalid destination number",
    }


@pytest.mark.parametrize("destination", ACCEPTED)
async def test_the_sdk_and_the_fake_accept_the_same_destinations(destination: str) -> None:
    fake = FakeAgileServer()
    async with fake.client() as client:
        await client.send(Message(destinations=destination, sender="MyApp", body="Hi"))
    assert [m.destination for m in fake.accepted] == [destination]


# -- the documentation's words ---------------------------------------------------------------


async def test_enable_concatenated_false_says_so(http: httpx.AsyncClient) -> None:
    response = await post(http, message(body="a" * 161), enableConcatenated=False)
    assert response.json()["data"] == {
        "messages[0].body": "Needs 2 SMS parts but enableConcatenated is false"
    }


async def test_more_than_255_parts_says_so(http: httpx.AsyncClient) -> None:
    """With concatenation on, a body fails only by needing more parts than allowed."""
    response = await post(http, message(body="a" * (255 * 153 + 1)), enableConcatenated=True)
    assert response.json()["data"] == {
        "messages[0].body": "Needs 256 SMS parts but at most 255 are allowed"
    }


async def test_account_errors_use_the_documented_texts(fake: FakeAgileServer) -> None:
    """Codes 1, 2 and 100, as the English table words them."""
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as anon:
        wrong = await anon.post("sms/send", json={"messages": [message()]})
    assert wrong.json() == {"status": "fail", "data": "Wrong credentials", "code": 1}

    fake.credit = 0
    async with fake.client() as client:
        with pytest.raises(InsufficientCreditError):
            await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
    assert fake.requests[-1].response_json["data"] == "Insufficient credit"

    walled = FakeAgileServer(allowed_ips={"203.0.113.7"})
    async with walled.client() as client:
        with pytest.raises(IPNotAllowedError):
            await client.credit()
    assert walled.requests[-1].response_json["data"] == "Source IP not allowed"


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault.error(status=401, code=1), AuthenticationError, "Wrong credentials"),
        (Fault.error(status=400, code=7), InvalidDestinationError, "Invalid destination number"),
        (Fault.server_error(code=8), ServerError, "Server error"),
        (
            Fault.server_error(code=9, status=503),
            ServiceTimeoutError,
            "Number check service unavailable",
        ),
    ],
)
async def test_scripted_errors_default_to_the_documented_texts(
    fault: Fault, error: type[Exception], text: str
) -> None:
    fake = FakeAgileServer()
    fake.inject(fault, times=None)
    async with fake.client(retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(error):
            await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
    answer = fake.requests[0].response_json
    assert answer.get("data", answer.get("message")) == text


async def test_wrong_credentials_from_an_sdk_client(fake: FakeAgileServer) -> None:
    """Through the SDK too: code 1 is an AuthenticationError, whatever the auth mode."""
    for client in (
        AgileClient(api_key="nope", base_url=fake.base_url, transport=fake.transport()),
        AgileClient(
            username="nope", password="nope", base_url=fake.base_url, transport=fake.transport()
        ),
    ):
        async with client:
            with pytest.raises(AuthenticationError):
                await client.credit()
    assert [(r.auth, r.status) for r in fake.requests] == [("api_key", 401), ("basic", 401)]


@given(st.text(alphabet="+0123456789x ", max_size=18))
def test_the_fast_path_and_the_rule_agree(destination: str) -> None:
    """The batcher's inlined check is the rule itself, not a second opinion."""
    assert plain_destination(destination) is (destination_fault(destination) is None)
