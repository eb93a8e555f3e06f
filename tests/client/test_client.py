"""AgileClient end to end against FakeAgileServer: HTTP through httpx, in memory and over TLS."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

import agile_async as aa
from agile_async import AgileClient, Message, RetryPolicy, SendOptions
from agile_async.segments import PriceList
from agile_async.testing import FakeAgileServer, Fault

API_KEY = "k3y-that-must-never-leak"
PASSWORD = "pa55-that-must-never-leak"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(
        api_key=API_KEY,
        username="user",
        password=PASSWORD,
        credit=Decimal("10.00"),
        price_per_part=Decimal("0.045"),
    ),
]


class SleepRecorder:
    """Records backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def client(fake: FakeAgileServer, sleeps: SleepRecorder) -> AsyncIterator[AgileClient]:
    async with fake.client(retry=RetryPolicy(attempts=4, sleep=sleeps)) as client:
        yield client


def hello(destinations: str | list[str] = "+393471234567", **kwargs: object) -> Message:
    return Message(destinations=destinations, sender="MyApp", body="Hello!", **kwargs)  # type: ignore[arg-type]


def send_requests(fake: FakeAgileServer) -> list[object]:
    return [r for r in fake.requests if r.path.endswith("/sms/send")]


async def test_send_one_message(client: AgileClient, fake: FakeAgileServer) -> None:
    result = await client.send(hello())
    assert result.processed_messages == 1
    assert result.processed_sms_parts == 1
    assert result.credit == Decimal("9.955")
    assert isinstance(result.credit, Decimal)
    assert len(result.ids) == 1
    assert [a.message_id for a in fake.accepted] == list(result.ids)
    assert fake.accepted[0].destination == "+393471234567"
    assert result.global_id == fake.requests[0].json["globalId"]
    assert client.last_known_credit == Decimal("9.955")


async def test_send_many_messages_in_one_request(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    result = await client.send(
        [
            hello(["+393471234567", "+393471234568"], ids=["a", "b"]),
            Message(destinations="+441234567890", sender="Shop", body="x" * 161),
        ]
    )
    assert result.ids[:2] == ("a", "b")
    assert result.processed_sms_parts == 4
    assert len(fake.requests) == 1
    assert sorted(a.destination for a in fake.accepted) == [
        "+393471234567",
        "+393471234568",
        "+441234567890",
    ]


async def test_the_wire_format(client: AgileClient, fake: FakeAgileServer) -> None:
    when = datetime(2025, 12, 8, 6, 0, 0, 2000, tzinfo=timezone(timedelta(hours=2)))
    await client.send(
        hello(ids=["id-1"], scheduling=when, udh_data="050003CC0201"),
        options=SendOptions(global_id="g-1", enable_delivery=False),
    )
    request = fake.requests[0]
    assert request.method == "POST"
    assert request.json == {
        "globalId": "g-1",
        "maxIdLen": 64,
        "enableConcatenated": True,
        "enableUnicode": True,
        "enableDelivery": False,
        "simulation": False,
        "messages": [
            {
                "destinations": ["+393471234567"],
                "sender": "MyApp",
                "body": "Hello!",
                "ids": ["id-1"],
                "udhData": "050003CC0201",
                "scheduling": "2025-12-08 06:00:00.002+0200",
            }
        ],
    }
    assert request.user_agent == f"agile-async/{aa.__version__}"
    assert request.content_type == "application/json"
    assert fake.accepted[0].scheduling == when


async def test_credit(client: AgileClient) -> None:
    assert await client.credit() == Decimal("10.00")


async def test_basic_auth(fake: FakeAgileServer) -> None:
    async with AgileClient(
        username="user", password=PASSWORD, base_url=fake.base_url, transport=fake.transport()
    ) as client:
        assert await client.credit() == Decimal("10.00")
    assert fake.requests[0].auth == "basic"


async def test_wrong_credentials(fake: FakeAgileServer) -> None:
    async with AgileClient(
        api_key="wrong", base_url=fake.base_url, transport=fake.transport()
    ) as client:
        with pytest.raises(aa.AuthenticationError) as caught:
            await client.send(hello())
    assert caught.value.code == 1
    assert len(fake.requests) == 1


async def test_invalid_input_never_reaches_the_provider(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    with pytest.raises(aa.ValidationError) as caught:
        await client.send([hello("12"), Message(destinations="+393471234567", sender="", body="")])
    assert {p.field for p in caught.value.problems} == {
        "messages[0].destinations[0]",
        "messages[1].sender",
        "messages[1].body",
    }
    assert fake.requests == ()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, 1, aa.AuthenticationError),
        (402, 2, aa.InsufficientCreditError),
        (403, 3, aa.DestinationNotAllowedError),
        (400, 4, aa.UnknownAPIError),
        (400, 5, aa.InvalidDestinationError),
        (400, 6, aa.InvalidDestinationError),
        (400, 7, aa.InvalidDestinationError),
        (400, 10, aa.GlobalIdLengthError),
        (403, 26, aa.SenderNotAllowedError),
        (403, 100, aa.IPNotAllowedError),
        (400, 42, aa.APIError),
    ],
)
async def test_every_4xx_code_is_typed_and_never_retried(
    client: AgileClient,
    fake: FakeAgileServer,
    status: int,
    code: int,
    cls: type[aa.APIError],
) -> None:
    fake.inject(Fault.error(status=status, code=code, data={"number": "bad"}), times=5)
    with pytest.raises(aa.APIError) as caught:
        await client.send(hello(ids=["the-id"]))
    error = caught.value
    assert type(error) is cls
    assert (error.code, error.status_code, error.ids) == (code, status, ("the-id",))
    assert error.data == {"number": "bad"}
    assert len(fake.requests) == 1
    assert fake.accepted == ()


async def test_the_provider_rejects_a_real_bad_destination(fake: FakeAgileServer) -> None:
    fake_with_rules = FakeAgileServer(api_key=API_KEY, forbidden_prefixes=["+999"])
    async with fake_with_rules.client() as client:
        with pytest.raises(aa.DestinationNotAllowedError):
            await client.send(hello("+99912345678"))


@pytest.mark.parametrize("code", [8, 9])
async def test_5xx_codes_8_and_9_are_retried(
    client: AgileClient, fake: FakeAgileServer, sleeps: SleepRecorder, code: int
) -> None:
    fake.inject(Fault.server_error(code=code), times=2)
    result = await client.send(hello())
    assert len(send_requests(fake)) == 3
    assert len(sleeps.delays) == 2
    assert len(fake.accepted) == 1
    assert result.processed_messages == 1


async def test_retries_give_up_after_the_attempts(
    client: AgileClient, fake: FakeAgileServer, sleeps: SleepRecorder
) -> None:
    fake.inject(Fault.server_error(code=9, status=503), times=10)
    with pytest.raises(aa.ServiceTimeoutError):
        await client.send(hello())
    assert len(send_requests(fake)) == 4
    assert len(sleeps.delays) == 3
    assert fake.accepted == ()


async def test_429_honours_retry_after(
    client: AgileClient, fake: FakeAgileServer, sleeps: SleepRecorder
) -> None:
    fake.inject(Fault.rate_limited(retry_after=2))
    await client.send(hello())
    assert sleeps.delays == [2.0]
    assert len(send_requests(fake)) == 2


async def test_429_with_an_http_date(
    client: AgileClient, fake: FakeAgileServer, sleeps: SleepRecorder
) -> None:
    fake.inject(Fault.rate_limited(retry_after=datetime.now(timezone.utc) + timedelta(seconds=5)))
    await client.send(hello())
    assert len(sleeps.delays) == 1
    assert 3.0 <= sleeps.delays[0] <= 5.0


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_pages_are_retried(
    client: AgileClient, fake: FakeAgileServer, status: int
) -> None:
    fake.inject(Fault.html(status=status))
    await client.send(hello())
    assert len(send_requests(fake)) == 2
    assert len(fake.accepted) == 1


@pytest.mark.parametrize("code", ["\u00b2", "9" * 5000, "-7", ""])
async def test_an_error_body_whose_code_is_no_number_is_an_api_error(
    client: AgileClient, fake: FakeAgileServer, code: str
) -> None:
    """A code that str.isdigit() takes ("²") or that int() refuses (5,000 digits) escaped
    as a bare ValueError, from send() and from the batcher's outcome alike."""
    body = json.dumps({"status": "fail", "code": code, "data": "x"})
    fake.inject(Fault.html(status=400, body=body), times=2)
    with pytest.raises(aa.APIError) as caught:
        await client.send(hello())
    assert (caught.value.code, caught.value.status_code) == (None, 400)
    async with client.batcher(max_latency=0) as batcher:
        ticket = await batcher.submit(hello())
        with pytest.raises(aa.APIError):
            await ticket.result()
    assert ticket.state is aa.TicketState.FAILED
    assert not fake.accepted


async def test_an_html_500_is_typed_and_not_retried(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.html(status=500))
    with pytest.raises(aa.APIError) as caught:
        await client.send(hello())
    assert caught.value.code is None
    assert caught.value.status_code == 500
    assert "500" in str(caught.value.data)
    assert len(send_requests(fake)) == 1


async def test_a_connection_failure_before_sending_is_retried(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.drop(after_processing=False))
    result = await client.send(hello())
    assert len(fake.accepted) == 1
    assert fake.accepted[0].message_id == result.ids[0]


async def test_a_lost_response_is_an_unknown_outcome_and_not_resent(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.drop(after_processing=True))
    with pytest.raises(aa.OutcomeUnknownError) as caught:
        await client.send(hello(["+393471234567", "+393471234568"], ids=["u1", "u2"]))
    assert caught.value.ids == ("u1", "u2")
    assert len(send_requests(fake)) == 1
    assert [a.message_id for a in fake.accepted] == ["u1", "u2"]


async def test_ambiguous_failures_may_be_retried_on_request(fake: FakeAgileServer) -> None:
    fake.inject(Fault.drop(after_processing=True))
    policy = RetryPolicy(retry_ambiguous=True, sleep=SleepRecorder())
    async with fake.client(retry=policy) as client:
        await client.send(hello(ids=["dup"]))
    assert [a.message_id for a in fake.accepted] == ["dup", "dup"]


async def test_a_read_timeout_is_an_unknown_outcome(fake: FakeAgileServer) -> None:
    fake.inject(Fault.delay(2.0))
    async with fake.client(timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(aa.OutcomeUnknownError, match="ReadTimeout"):
            await client.send(hello(ids=["slow"]))


async def test_no_secret_in_logs_or_errors(
    fake: FakeAgileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.inject(Fault.server_error(code=8))
    fake.inject(Fault.error(status=401, code=1))
    async with fake.client(retry=RetryPolicy(sleep=SleepRecorder())) as client:
        with pytest.raises(aa.AuthenticationError) as caught:
            await client.send(hello())
        text = f"{caught.value!r} {caught.value} {client!r} {caplog.text}"
    assert API_KEY not in text
    assert "Hello!" not in caplog.text  # bodies never above DEBUG, and not even there
    assert "attempt 1" in caplog.text
    assert "retrying in" in caplog.text


async def test_a_callers_http_client(fake: FakeAgileServer) -> None:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        client = AgileClient(api_key=API_KEY, base_url=fake.base_url, http_client=http)
        assert await client.credit() == Decimal("10")
        await client.aclose()
        assert not http.is_closed


async def test_a_closed_client_refuses_to_send(fake: FakeAgileServer) -> None:
    client = fake.client()
    await client.aclose()
    with pytest.raises(aa.ClientClosedError):
        await client.send(hello())
    assert fake.requests == ()


async def test_simulation_spends_nothing(client: AgileClient, fake: FakeAgileServer) -> None:
    result = await client.send(hello(), options=SendOptions(simulation=True))
    assert result.credit == Decimal("10.00")
    assert fake.accepted == ()


@pytest.mark.tls
async def test_send_over_a_real_tls_socket() -> None:
    fake = FakeAgileServer(api_key=API_KEY, credit=Decimal("5"), price_per_part=Decimal("0.05"))
    async with fake.serve_tls() as server:
        assert str(server.base_url).startswith("https://127.0.0.1:")
        async with server.client() as client:
            result = await client.send(hello(["+393471234567", "+393471234568"]))
            assert await client.credit() == Decimal("4.90")
    assert result.processed_sms_parts == 2
    assert len(fake.accepted) == 2


@pytest.mark.tls
async def test_tls_lost_response_is_an_unknown_outcome() -> None:
    fake = FakeAgileServer(api_key=API_KEY)
    fake.inject(Fault.drop(after_processing=True))
    async with fake.serve_tls() as server, server.client() as client:
        with pytest.raises(aa.OutcomeUnknownError):
            await client.send(hello(ids=["tls-1"]))
    assert [a.message_id for a in fake.accepted] == ["tls-1"]


async def test_check_credit_before_a_campaign(client: AgileClient, fake: FakeAgileServer) -> None:
    prices = PriceList({"39": Decimal("0.045"), "44": Decimal("0.06")})
    messages = [
        hello(),  # one part to Italy
        Message(destinations=["+441234567890", "+441234567891"], sender="Shop", body="x" * 161),
    ]
    check = await client.check_credit(iter(messages), prices=prices)
    assert check.estimate.total == Decimal("0.285")  # 0.045 + 2 destinations x 2 parts x 0.06
    assert check.credit == Decimal("10.00")
    assert check.sufficient
    assert check.shortfall == 0
    fake.credit = Decimal("0.2")
    check = await client.check_credit(messages, prices=prices)
    assert not check.sufficient
    assert check.shortfall == Decimal("0.085")
    assert send_requests(fake) == []


async def test_send_reports_its_own_parts_estimate(client: AgileClient) -> None:
    result = await client.send(
        [hello(), Message(destinations="+393471234567", sender="A", body="é°" * 40)]
    )
    assert result.estimated_sms_parts == 1 + 2
    assert result.processed_sms_parts == 3


async def test_a_long_body_without_concatenation_is_refused_locally(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    with pytest.raises(aa.ValidationError) as caught:
        await client.send(
            Message(destinations="+393471234567", sender="A", body="x" * 161),
            options=SendOptions(enable_concatenated=False),
        )
    assert [p.field for p in caught.value.problems] == ["messages[0].body"]
    assert fake.requests == ()


async def test_non_gsm_text_without_unicode_is_refused_locally(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    with pytest.raises(aa.ValidationError, match="°"):
        await client.send(
            Message(destinations="+393471234567", sender="A", body="Domani 38°C"),
            options=SendOptions(enable_unicode=False),
        )
    assert fake.requests == ()
