"""FakeAgileServer behaves like the provider the seed documents (in memory, raw JSON)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from agile_async._limits import MAX_DESTINATION_DIGITS, MIN_DESTINATION_DIGITS
from agile_async.testing import FakeAgileServer

API_KEY = "test-api-key"
FIXED_NOW = datetime(2026, 4, 8, 12, 0, tzinfo=timezone.utc)
TOO_SHORT = "+" + "3" * (MIN_DESTINATION_DIGITS - 1)
TOO_LONG = "+" + "3" * (MAX_DESTINATION_DIGITS + 1)

pytestmark = [pytest.mark.anyio, pytest.mark.fake(clock=lambda: FIXED_NOW)]


def message(**fields: Any) -> dict[str, Any]:
    """One valid message object; keyword arguments replace or add fields."""
    base: dict[str, Any] = {
        "destinations": ["+393471234567"],
        "sender": "MyApp",
        "body": "Hello! This is your test message.",
    }
    base.update(fields)
    return base


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def send(http: httpx.AsyncClient, *messages: dict[str, Any], **top: Any) -> httpx.Response:
    return await http.post("sms/send", json={**top, "messages": list(messages)})


def assert_fail(response: httpx.Response, status: int, code: int) -> None:
    body = response.json()
    assert (response.status_code, body["status"], body["code"]) == (status, "fail", code), body


# -- authentication ----------------------------------------------------------------------


async def test_api_key_and_basic_auth_are_both_accepted(fake: FakeAgileServer) -> None:
    """Either documented auth mode works; the log says which, never the secret."""
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        by_key = await http.get("sms/credit", headers={"X-Api-Key": API_KEY})
        by_basic = await http.get("sms/credit", headers=basic("test-user", "test-password"))
    assert (by_key.status_code, by_basic.status_code) == (200, 200)
    assert [r.auth for r in fake.requests] == ["api_key", "basic"]
    logged = repr(fake.requests)
    assert API_KEY not in logged
    assert "test-password" not in logged


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Api-Key": "wrong"}, id="wrong-key"),
        pytest.param(basic("test-user", "wrong"), id="wrong-password"),
        pytest.param(basic("someone", "test-password"), id="wrong-user"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, id="garbled-basic"),
        pytest.param({"Authorization": "Bearer test-api-key"}, id="other-scheme"),
    ],
)
async def test_wrong_credentials_get_code_1(fake: FakeAgileServer, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        response = await http.post("sms/send", json={"messages": [message()]}, headers=headers)
    assert response.json() == {"status": "fail", "data": "Wrong credentials", "code": 1}
    assert response.status_code == 401
    assert fake.accepted == ()


async def test_auth_modes_can_be_switched_off() -> None:
    """A fake without an API key refuses one; Basic stays available."""
    fake = FakeAgileServer(api_key=None)
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        by_key = await http.get("sms/credit", headers={"X-Api-Key": "test-api-key"})
        by_basic = await http.get("sms/credit", headers=basic("test-user", "test-password"))
    assert (by_key.status_code, by_basic.status_code) == (401, 200)


def test_a_fake_needs_some_credentials() -> None:
    with pytest.raises(ValueError, match="api_key"):
        FakeAgileServer(api_key=None, password=None)


def test_repr_hides_secrets() -> None:
    fake = FakeAgileServer(api_key="sk-very-secret", password="hunter2")
    text = repr(fake)
    assert "sk-very-secret" not in text
    assert "hunter2" not in text
    assert "credit=Decimal('100')" in text


# -- routing -----------------------------------------------------------------------------


async def test_get_on_send_is_refused_with_405(http: httpx.AsyncClient) -> None:
    response = await http.get("sms/send", params={"body": "hi"})
    assert_fail(response, 405, 4)
    assert response.headers["allow"] == "POST"


async def test_post_on_credit_is_refused_with_405(http: httpx.AsyncClient) -> None:
    assert_fail(await http.post("sms/credit"), 405, 4)


async def test_form_posts_are_refused(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    response = await http.post("sms/send", data={"destinations": "+393471234567"})
    assert_fail(response, 415, 4)
    assert fake.accepted == ()


async def test_malformed_json_is_code_4(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "sms/send", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_fail(response, 400, 4)


@pytest.mark.parametrize("path", ["/services/sms/nope", "/sms/send", "/other/sms/send"])
async def test_unknown_paths_are_404(http: httpx.AsyncClient, path: str) -> None:
    """Only the provider's paths under ``/services/`` exist."""
    url = f"https://fake.agiletelecom.test{path}"
    assert_fail(await http.post(url, json={"messages": [message()]}), 404, 4)


# -- sending -----------------------------------------------------------------------------


async def test_a_send_is_answered_charged_and_logged(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    response = await send(http, message(ids=["msg-001"]), globalId="campaign-1")
    assert response.status_code == 200
    assert response.json() == {
        "globalId": "campaign-1",
        "processedMessages": 1,
        "processedSmsParts": 1,
        "credit": 99.95,
    }
    assert fake.credit == Decimal("99.95")
    [accepted] = fake.accepted
    assert accepted.message_id == "msg-001"
    assert accepted.destination == "+393471234567"
    assert accepted.sender == "MyApp"
    assert accepted.body == "Hello! This is your test message."
    assert (accepted.parts, accepted.price) == (1, Decimal("0.05"))
    assert (accepted.global_id, accepted.request_index, accepted.message_index) == (
        "campaign-1",
        0,
        0,
    )
    assert (accepted.hex_body, accepted.udh_data, accepted.scheduling) == (False, None, None)
    assert accepted.enable_delivery is True
    assert accepted.accepted_at == FIXED_NOW
    [request] = fake.requests
    assert (request.method, request.path, request.status) == ("POST", "/services/sms/send", 200)
    assert request.json["globalId"] == "campaign-1"
    assert request.response_json == response.json()
    assert request.received_at == FIXED_NOW
    assert request.client_ip == "127.0.0.1"
    assert request.fault is None


async def test_multi_destination_messages_count_parts_per_destination(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """processedMessages counts message objects (the seed's wording); parts cover all SMS."""
    long_text = "a" * 161  # two GSM-7 parts
    response = await send(
        http,
        message(destinations=["+393471234567", "393471234568", "+447700900123"]),
        message(destinations=["+393471234569"], body=long_text, sender="Shop"),
    )
    assert response.json()["processedMessages"] == 2
    assert response.json()["processedSmsParts"] == 3 + 2
    assert fake.credit == Decimal("100") - 5 * Decimal("0.05")
    assert [(m.destination, m.parts, m.message_index) for m in fake.accepted] == [
        ("+393471234567", 1, 0),
        ("393471234568", 1, 0),
        ("+447700900123", 1, 0),
        ("+393471234569", 2, 1),
    ]


async def test_generated_ids_are_unique_and_fit_max_id_len(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    destinations = [f"+3934712345{n:02d}" for n in range(20)]
    response = await send(http, message(destinations=destinations), maxIdLen=10)
    ids = [m.message_id for m in fake.accepted]
    assert len(set(ids)) == 20
    assert all(1 <= len(i) <= 10 for i in ids)
    global_id = response.json()["globalId"]
    assert len(global_id) == 36  # a generated uuid
    assert {m.global_id for m in fake.accepted} == {global_id}


async def test_duplicates_are_not_deduplicated(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """The provider documents no idempotency: the same request twice sends twice."""
    for _ in range(2):
        await send(http, message(ids=["same"]), globalId="same")
    assert [m.request_index for m in fake.accepted] == [0, 1]
    assert fake.credit == Decimal("99.90")


async def test_scheduling_is_parsed_to_an_aware_datetime(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    await send(http, message(scheduling="2025-12-08 06:00:00.002+0200"))
    [accepted] = fake.accepted
    expected = datetime(2025, 12, 8, 6, 0, 0, 2000, tzinfo=timezone(timedelta(hours=2)))
    assert accepted.scheduling == expected
    assert accepted.scheduling is not None
    assert accepted.scheduling.utcoffset() == timedelta(hours=2)


async def test_simulation_validates_and_counts_but_charges_nothing(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    response = await send(
        http, message(destinations=["+393471234567", "+393471234568"]), simulation=True
    )
    assert response.json()["processedSmsParts"] == 2
    assert response.json()["credit"] == 100
    assert fake.credit == Decimal("100")
    assert fake.accepted == ()
    assert [m.simulated for m in fake.simulated] == [True, True]
    bad = await send(http, message(destinations=["+39abc"]), simulation=True)
    assert_fail(bad, 400, 7)


async def test_enable_flags_are_recorded(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    await send(http, message(), enableDelivery=False)
    assert fake.accepted[0].enable_delivery is False


async def test_parts_follow_enable_unicode(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    """``°`` is not GSM-7: UCS-2 by default (70 per SMS); GSM-7 when Unicode is off."""
    text = "38°C " * 20  # 100 characters
    unicode_on = await send(http, message(body=text))
    unicode_off = await send(http, message(body=text), enableUnicode=False)
    assert unicode_on.json()["processedSmsParts"] == 2
    assert unicode_off.json()["processedSmsParts"] == 1


async def test_hex_bodies_count_octets(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    """140 octets fit one SMS; beyond that every part carries 134."""
    for octets in (140, 141, 268, 269):
        await send(http, message(body="41" * octets, hexBody=True))
    assert [m.parts for m in fake.accepted] == [1, 2, 2, 3]
    assert all(m.hex_body for m in fake.accepted)


async def test_udh_is_recorded_and_takes_room(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """A 6-octet UDH leaves 153 septets in a single SMS (SEGMENTS.md §7)."""
    for length in (153, 154):
        await send(http, message(body="a" * length, udhData="070645670000"))
    assert [m.parts for m in fake.accepted] == [1, 2]
    assert fake.accepted[0].udh_data == "070645670000"


async def test_credit_endpoint(http: httpx.AsyncClient, fake: FakeAgileServer) -> None:
    fake.credit = Decimal("10.324")
    response = await http.get("sms/credit")
    assert response.json() == {"credit": 10.324}
    assert Decimal(response.text.split(":")[1].rstrip("}")) == Decimal("10.324")


async def test_prices_by_destination_prefix(http: httpx.AsyncClient) -> None:
    fake = FakeAgileServer(
        price_per_part=Decimal("0.10"), prices={"+39": Decimal("0.04"), "3934": Decimal("0.03")}
    )
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers={"X-Api-Key": API_KEY}
    ) as client:
        await send(client, message(destinations=["+393471234567", "+390612345678", "+4477009001"]))
    assert [m.price for m in fake.accepted] == [Decimal("0.03"), Decimal("0.04"), Decimal("0.10")]
    assert fake.credit == Decimal("99.83")


async def test_concurrent_sends_never_overdraw(fake: FakeAgileServer) -> None:
    """Check-and-charge is atomic: 20 racing sends on 10 sends' worth of credit."""
    fake.credit = Decimal("0.50")
    statuses: list[int] = []
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers={"X-Api-Key": API_KEY}
    ) as http:

        async def one() -> None:
            statuses.append((await send(http, message())).status_code)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one)
    assert sorted(statuses) == [200] * 10 + [402] * 10
    assert fake.credit == Decimal("0")
    assert len(fake.accepted) == 10


# -- errors: the documented codes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        pytest.param({"destinations": ["+39 347 1234567"]}, 7, id="7-not-digits"),
        pytest.param({"destinations": [393471234567]}, 7, id="7-not-a-string"),
        pytest.param({"destinations": [TOO_SHORT]}, 5, id="5-too-short"),
        pytest.param({"destinations": [TOO_LONG]}, 6, id="6-too-long"),
        pytest.param({"ids": ["a", "b"]}, 15, id="15-ids-length"),
        pytest.param({"sender": "ThisIsTooLong"}, 26, id="26-sender-too-long"),
        pytest.param({"sender": "12345678901234567"}, 26, id="26-numeric-too-long"),
        pytest.param({"body": ""}, 4, id="4-empty-body"),
        pytest.param({"body": None}, 4, id="4-missing-body"),
        pytest.param({"sender": None}, 4, id="4-missing-sender"),
        pytest.param({"destinations": []}, 4, id="4-no-destinations"),
        pytest.param({"scheduling": "2025-12-08T06:00:00+02:00"}, 4, id="4-iso-scheduling"),
        pytest.param({"scheduling": "2025-12-08 06:00:00.002"}, 4, id="4-naive-scheduling"),
        pytest.param({"scheduling": "2025-13-08 06:00:00.002+0200"}, 4, id="4-bad-month"),
        pytest.param({"body": "4G", "hexBody": True}, 4, id="4-bad-hex"),
        pytest.param({"body": "414", "hexBody": True}, 4, id="4-odd-hex"),
        pytest.param({"udhData": "xyz"}, 4, id="4-bad-udh"),
        pytest.param({"udhData": "00" * 134}, 4, id="4-udh-leaves-no-room"),
        pytest.param({"body": "a" * (255 * 153 + 1)}, 4, id="4-more-than-255-parts"),
        pytest.param({"ids": ["x" * 65]}, 4, id="4-id-too-long"),
        pytest.param({"ids": [""]}, 4, id="4-empty-id"),
        pytest.param({"hexBody": "yes"}, 4, id="4-bad-flag"),
    ],
)
async def test_bad_messages_reject_the_whole_request(
    http: httpx.AsyncClient, fake: FakeAgileServer, fields: dict[str, Any], code: int
) -> None:
    """One bad message fails the request: the good one beside it is not accepted either."""
    response = await send(http, message(destinations=["+393471234560"]), message(**fields))
    assert_fail(response, 400, code)
    assert isinstance(response.json()["data"], dict)
    assert fake.accepted == ()
    assert fake.credit == Decimal("100")


@pytest.mark.parametrize(
    ("top", "code"),
    [
        pytest.param({"globalId": ""}, 10, id="10-empty"),
        pytest.param({"globalId": "g" * 65}, 10, id="10-too-long"),
        pytest.param({"globalId": 7}, 4, id="4-not-a-string"),
        pytest.param({"maxIdLen": 0}, 4, id="4-max-id-len"),
        pytest.param({"enableUnicode": "true"}, 4, id="4-flag-not-bool"),
        pytest.param({"messages": []}, 4, id="4-no-messages"),
        pytest.param({"messages": "hi"}, 4, id="4-messages-not-a-list"),
        pytest.param({"messages": ["hi"]}, 4, id="4-message-not-an-object"),
    ],
)
async def test_bad_request_fields(http: httpx.AsyncClient, top: dict[str, Any], code: int) -> None:
    response = await http.post("sms/send", json={"messages": [message()], **top})
    assert_fail(response, 400, code)


async def test_a_body_that_is_not_an_object_is_code_4(http: httpx.AsyncClient) -> None:
    assert_fail(await http.post("sms/send", json=[message()]), 400, 4)


async def test_every_problem_is_named_and_the_first_gives_the_code(
    http: httpx.AsyncClient,
) -> None:
    response = await send(
        http, message(destinations=["+1234", "+39abc"]), message(body="", sender="Shop")
    )
    assert_fail(response, 400, 5)
    assert response.json()["data"] == {
        "messages[0].destinations[0]": "Destination number too short",
        "messages[0].destinations[1]": "Invalid destination number",
        "messages[1].body": "Missing message body(ies)",
    }


async def test_ids_longer_than_max_id_len_are_code_4(http: httpx.AsyncClient) -> None:
    response = await send(http, message(ids=["abcdef"]), maxIdLen=5)
    assert_fail(response, 400, 4)


async def test_long_text_without_concatenation_is_code_4(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """Assumption: the provider refuses rather than truncates a multi-part body."""
    assert_fail(await send(http, message(body="a" * 161), enableConcatenated=False), 400, 4)
    ok = await send(http, message(body="a" * 160), enableConcatenated=False)
    assert ok.json()["processedSmsParts"] == 1


async def test_forbidden_prefix_is_code_3() -> None:
    fake = FakeAgileServer(forbidden_prefixes=["+44"])
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers={"X-Api-Key": API_KEY}
    ) as http:
        assert_fail(await send(http, message(destinations=["447700900123"])), 400, 3)
        assert (await send(http, message())).status_code == 200


async def test_unapproved_sender_is_code_26() -> None:
    fake = FakeAgileServer(allowed_senders={"MyApp"})
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers={"X-Api-Key": API_KEY}
    ) as http:
        assert_fail(await send(http, message(sender="Other")), 400, 26)
        assert (await send(http, message(sender="MyApp"))).status_code == 200


async def test_insufficient_credit_is_code_2_and_nothing_is_accepted(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    fake.credit = Decimal("0.09")
    response = await send(http, message(destinations=["+393471234567", "+393471234568"]))
    assert_fail(response, 402, 2)
    assert fake.accepted == ()
    assert fake.credit == Decimal("0.09")


async def test_source_ip_not_allowed_is_code_100() -> None:
    fake = FakeAgileServer(allowed_ips={"203.0.113.7"})
    headers = {"X-Api-Key": API_KEY}
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers=headers
    ) as elsewhere:
        assert_fail(await send(elsewhere, message()), 403, 100)
        assert_fail(await elsewhere.get("sms/credit"), 403, 100)
    async with httpx.AsyncClient(
        transport=fake.transport(client_ip="203.0.113.7"), base_url=fake.base_url, headers=headers
    ) as allowed:
        assert (await send(allowed, message())).status_code == 200
    assert [r.client_ip for r in fake.requests] == ["127.0.0.1", "127.0.0.1", "203.0.113.7"]


async def test_rejected_destinations_fail_every_request_containing_them(
    http: httpx.AsyncClient, fake: FakeAgileServer
) -> None:
    """The rule the SDK's bisection is tested against."""
    fake.reject_destinations({"393470000002"}, code=7)
    batch = [f"+39347000000{n}" for n in range(4)]
    assert_fail(await send(http, message(destinations=batch)), 400, 7)
    assert_fail(await send(http, message(destinations=batch[2:])), 400, 7)
    assert (await send(http, message(destinations=batch[:2]))).status_code == 200
    fake.reject_destinations(lambda digits: digits.endswith("3"), code=3, status=403)
    assert_fail(await send(http, message(destinations=batch[3:])), 403, 3)
    fake.clear_rules()
    assert (await send(http, message(destinations=batch))).status_code == 200
    assert len(fake.accepted) == 6


# -- in-process wiring ---------------------------------------------------------------------


async def test_client_is_an_agile_client_over_the_in_memory_transport(
    fake: FakeAgileServer,
) -> None:
    """Only the wiring is checked here; the client's own behaviour has its own tests."""
    from agile_async import AgileClient

    client = fake.client()
    try:
        assert isinstance(client, AgileClient)
        assert str(client.base_url) == fake.base_url
    finally:
        await client.aclose()
