"""The documentation's test credentials simulate a send on any fake (SPEC §6).

The provider's Italian page: the Postman collection's defaults (``user`` / ``pass``, API key
``api-value``) "are test credentials that simulate the send without actually sending SMS".
The fake accepts them next to the account's own credentials: validated, nothing charged,
nothing delivered, no reports.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from agile_async import (
    AgileClient,
    AuthenticationError,
    InsufficientCreditError,
    InvalidDestinationError,
    Message,
    SenderNotAllowedError,
)
from agile_async.testing import (
    SIMULATION_API_KEY,
    SIMULATION_PASSWORD,
    SIMULATION_USERNAME,
    FakeAgileServer,
)

pytestmark = pytest.mark.anyio

SMS = Message(destinations=("+393471234567", "+393471234568"), sender="MyApp", body="Hi")

#: The two auth modes, with the documentation's test values.
TEST_CREDENTIALS = [
    pytest.param({"api_key": "api-value"}, "api_key", id="api-key"),
    pytest.param({"username": "user", "password": "pass"}, "basic", id="basic"),
]


def client_for(fake: FakeAgileServer, **credentials: Any) -> AgileClient:
    """A client built the way a user's app builds its own, not through ``fake.client()``."""
    return AgileClient(**credentials, transport=fake.transport())


def test_the_constants_are_the_documentations_values() -> None:
    assert (SIMULATION_API_KEY, SIMULATION_USERNAME, SIMULATION_PASSWORD) == (
        "api-value",
        "user",
        "pass",
    )


@pytest.mark.parametrize(("credentials", "mode"), TEST_CREDENTIALS)
async def test_test_credentials_simulate_a_send(credentials: dict[str, str], mode: str) -> None:
    """Answered like a real send; recorded as simulated; not charged; not reported."""
    reports: list[dict[str, Any]] = []
    fake = FakeAgileServer(credit=Decimal("10"), raw_delivery_callback=reports.append)
    async with client_for(fake, **credentials) as client:
        result = await client.send(SMS)
        credit = await client.credit()
    await fake.flush_reports()

    assert (result.processed_messages, result.processed_sms_parts) == (1, 2)
    assert result.credit == credit == fake.credit == Decimal("10")
    assert fake.accepted == ()
    assert [(m.destination, m.simulated) for m in fake.simulated] == [
        ("+393471234567", True),
        ("+393471234568", True),
    ]
    assert [m.message_id for m in fake.simulated] == list(result.ids)
    send, credit_request = fake.requests
    assert (send.auth, send.status, send.simulation_credentials) == (mode, 200, True)
    assert send.json["simulation"] is False  # the body asked for a real send
    assert credit_request.simulation_credentials is True
    assert reports == []
    assert fake.delivery_log == ()
    assert fake.delivery_statistics().pending == 0


@pytest.mark.parametrize(("credentials", "mode"), TEST_CREDENTIALS)
async def test_a_bad_request_with_test_credentials_still_gets_its_4xx(
    credentials: dict[str, str], mode: str
) -> None:
    """Validation runs first: the test values check a payload, they do not bless it."""
    fake = FakeAgileServer(allowed_senders={"MyApp"})
    async with client_for(fake, **credentials) as client:
        with pytest.raises(SenderNotAllowedError):
            await client.send(Message(destinations="+393471234567", sender="Other", body="x"))
    fake.reject_destinations({"+393471234567"})
    async with client_for(fake, **credentials) as client:
        with pytest.raises(InvalidDestinationError):
            await client.send(SMS)
    assert [(r.status, r.simulation_credentials) for r in fake.requests] == [
        (400, True),
        (400, True),
    ]
    assert fake.simulated == ()
    assert fake.accepted == ()


async def test_raw_requests_with_test_credentials_are_validated_too() -> None:
    """Without the SDK's local checks in front: the fake's own 4XX."""
    fake = FakeAgileServer()
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"X-Api-Key": SIMULATION_API_KEY},
    ) as http:
        bad = await http.post(
            "sms/send",
            json={"messages": [{"destinations": ["00393471234567"], "sender": "A", "body": "x"}]},
        )
        form = await http.post("sms/send", data={"messages": "[]"})
    assert (bad.status_code, bad.json()["code"]) == (400, 7)
    assert (form.status_code, form.json()["code"]) == (415, 4)
    assert fake.simulated == ()


async def test_the_accounts_own_credentials_still_send_for_real() -> None:
    """On the same fake, side by side: one real send, one simulated."""
    fake = FakeAgileServer(credit=Decimal("10"), price_per_part=Decimal("0.05"))
    async with client_for(fake, api_key="test-api-key") as real:
        await real.send(SMS)
    async with client_for(fake, api_key="api-value") as test:
        await test.send(SMS)
    assert [m.request_index for m in fake.accepted] == [0, 0]
    assert [m.request_index for m in fake.simulated] == [1, 1]
    assert fake.credit == Decimal("9.90")
    assert [r.simulation_credentials for r in fake.requests] == [False, True]


async def test_the_account_wins_when_it_uses_the_same_values() -> None:
    """A fake whose own key is ``api-value`` is an account with that key: sends are real."""
    fake = FakeAgileServer(api_key="api-value", username="user", password="pass")
    async with client_for(fake, api_key="api-value") as client:
        await client.send(SMS)
    async with client_for(fake, username="user", password="pass") as client:
        await client.send(SMS)
    assert len(fake.accepted) == 4
    assert fake.simulated == ()
    assert [r.simulation_credentials for r in fake.requests] == [False, False]


@pytest.mark.parametrize(("credentials", "mode"), TEST_CREDENTIALS)
async def test_they_can_be_turned_off(credentials: dict[str, str], mode: str) -> None:
    fake = FakeAgileServer(simulation_credentials=False)
    async with client_for(fake, **credentials) as client:
        with pytest.raises(AuthenticationError):
            await client.send(SMS)
    [request] = fake.requests
    assert (request.auth, request.status, request.simulation_credentials) == (mode, 401, False)


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"api_key": "api-value "}, id="key-with-a-space"),
        pytest.param({"api_key": "API-VALUE"}, id="key-in-capitals"),
        pytest.param({"username": "user", "password": "wrong"}, id="wrong-password"),
        pytest.param({"username": "test-user", "password": "pass"}, id="mixed-pair"),
        pytest.param({"username": "user", "password": "test-password"}, id="mixed-pair-2"),
    ],
)
async def test_only_the_exact_pair_is_accepted(credentials: dict[str, str]) -> None:
    fake = FakeAgileServer()
    async with client_for(fake, **credentials) as client:
        with pytest.raises(AuthenticationError):
            await client.credit()


async def test_they_work_when_the_account_has_only_the_other_auth_mode() -> None:
    """Provider-wide test values, not an account setting: a Basic-only account takes the
    test API key too."""
    fake = FakeAgileServer(api_key=None)
    async with client_for(fake, api_key="api-value") as client:
        await client.send(SMS)
    assert len(fake.simulated) == 2


async def test_a_batcher_with_test_credentials_simulates_everything() -> None:
    """The SDK's batching path, end to end: every receipt comes back, nothing is charged."""
    fake = FakeAgileServer(credit=Decimal("2"), price_per_part=Decimal("0.05"))
    client = client_for(fake, username="user", password="pass")
    async with client, client.batcher() as batcher, anyio.create_task_group() as tasks:
        for i in range(30):
            message = Message(destinations=f"+3934712345{i:02d}", sender="MyApp", body="Hi")
            tasks.start_soon(batcher.send, message)
    assert len(fake.simulated) == 30
    assert fake.accepted == ()
    assert fake.credit == Decimal("2")
    assert all(r.simulation_credentials for r in fake.requests)


async def test_the_credit_is_checked_as_for_any_simulation() -> None:
    """One rule for every simulated send: checked against the credit, never charged."""
    fake = FakeAgileServer(credit=Decimal("0.05"), price_per_part=Decimal("0.05"))
    async with client_for(fake, api_key="api-value") as client:
        with pytest.raises(InsufficientCreditError):
            await client.send(SMS)  # two parts, 0.10
        await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
    assert [r.status for r in fake.requests] == [402, 200]
    assert len(fake.simulated) == 1
    assert fake.credit == Decimal("0.05")


@pytest.mark.tls
async def test_test_credentials_over_tls() -> None:
    """Over a real socket too, both auth modes."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("trustme")
    fake = FakeAgileServer()
    with anyio.fail_after(15):
        async with fake.serve_tls() as server:
            for credentials in ({"api_key": "api-value"}, {"username": "user", "password": "pass"}):
                async with server.client(**credentials) as client:
                    await client.send(SMS)
    assert fake.accepted == ()
    assert len(fake.simulated) == 4
    assert [r.auth for r in fake.requests] == ["api_key", "basic"]
