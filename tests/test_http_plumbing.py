"""The HTTP rules the receiver and the fake share, checked on both, through their public APIs.

Both apps read bodies under a cap, parse ``Authorization: Basic``, decide what a JSON
``Content-Type`` is and answer lifespan the same way, because one module does it for both.
These tests hold the two to it: each case runs against the receiver and the fake.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx
import pytest

from agile_async.testing import FakeAgileServer
from agile_async.webhooks import DeliveryReportReceiver

pytestmark = pytest.mark.anyio

API_KEY = "test-api-key"
SEND = {"messages": [{"destinations": ["+393471234567"], "sender": "MyApp", "body": "Hi"}]}
REPORT = {
    "messageId": "msg-1",
    "destination": "+393471234567",
    "statusCode": 3,
    "description": "Delivered",
    "doneDate": "2026-04-08 14:35:22.045+0200",
    "concatTotal": 1,
    "concatProgressive": 1,
    "lcrOperator": "22210",
    "realOperator": "22201",
    "price": 0.005,
}
USER, PASSWORD = "hook-user", "hook-päss:word"

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
Headers = dict[str, str] | dict[bytes, bytes] | None


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def ignore(_: object) -> None:
    """An ``on_report`` that takes every report."""


async def to_receiver(
    receiver: DeliveryReportReceiver,
    body: bytes | AsyncIterator[bytes],
    headers: Headers = None,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as http:
        return await http.post("/", content=body, headers=headers)


async def to_fake(
    fake: FakeAgileServer,
    body: bytes | AsyncIterator[bytes],
    headers: Headers = None,
    *,
    path: str = "sms/send",
    method: str = "POST",
) -> httpx.Response:
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        return await http.request(method, path, content=body, headers=headers)


def fake_code(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


# -- one JSON content-type rule --------------------------------------------------------------

CONTENT_TYPES = [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    ("APPLICATION/JSON", True),
    ("Application/Json ; Charset=UTF-8", True),
    (" application/json ", True),
    ("application/json;", True),
    ("application/problem+json", True),
    ("application/vnd.agile.report+json; v=1", True),
    ("application/json-patch+json", True),
    ("application/JSON+Json", True),
    (None, False),
    ("", False),
    ("text/plain", False),
    ("text/json", False),
    ("text/vnd.agile+json", False),  # a +json suffix, but not data for a program
    ("model/vnd.thing+json", False),
    ("foo+json", False),  # no type at all: the fake used to take it
    ("+json", False),
    ("application/+json", False),  # no subtype name before the suffix
    ("application/-x+json", False),
    ("application/json-seq", False),
    ("application/jsonp", False),
    ("application/x-json", False),
    ("application / json", False),
    ("application/json, text/plain", False),
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=json", False),
    ("*/*", False),
]


@pytest.mark.parametrize(("content_type", "is_json"), CONTENT_TYPES)
async def test_the_receiver_and_the_fake_agree_on_what_json_is(
    content_type: str | None, is_json: bool
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    receiver = DeliveryReportReceiver(ignore, require_json=True)
    received = await to_receiver(receiver, json.dumps(REPORT).encode(), headers)

    fake = FakeAgileServer()
    sent = await to_fake(fake, json.dumps(SEND).encode(), {**headers, "X-Api-Key": API_KEY})

    if is_json:
        assert (received.status_code, sent.status_code) == (200, 200)
        assert len(fake.accepted) == 1
    else:
        assert received.status_code == 415
        assert received.json() == {"error": "Content-Type must be application/json"}
        assert fake_code(sent) == (415, 4)
        assert fake.accepted == ()
    assert fake.requests[0].content_type == content_type


async def test_the_receiver_takes_any_content_type_unless_told_to_require_json() -> None:
    """The provider does not document the header it posts with: off by default."""
    receiver = DeliveryReportReceiver(ignore)
    for content_type, _ in CONTENT_TYPES:
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await to_receiver(receiver, json.dumps(REPORT).encode(), headers)
        assert response.status_code == 200, content_type


# -- bodies over the cap -----------------------------------------------------------------------


async def chunks(size: int, count: int) -> AsyncIterator[bytes]:
    """A streamed body, so httpx sends no Content-Length."""
    for _ in range(count):
        yield b" " * size


async def test_a_body_at_the_cap_is_read_and_one_byte_more_is_413_on_both() -> None:
    report = json.dumps(REPORT).encode()
    assert (
        await to_receiver(DeliveryReportReceiver(ignore, max_body_bytes=len(report)), report)
    ).status_code == 200
    over = await to_receiver(DeliveryReportReceiver(ignore, max_body_bytes=len(report) - 1), report)
    assert over.status_code == 413
    assert over.json() == {"error": "body too large", "max_bytes": len(report) - 1}

    send = json.dumps(SEND).encode()
    headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
    fake = FakeAgileServer(max_body_bytes=len(send))
    assert (await to_fake(fake, send, headers)).status_code == 200
    fake = FakeAgileServer(max_body_bytes=len(send) - 1)
    refused = await to_fake(fake, send, headers)
    assert refused.json() == {"status": "fail", "data": "Request body too large", "code": 4}
    assert refused.status_code == 413
    assert (fake.accepted, fake.requests[0].status) == ((), 413)


# httpx's ASGITransport leaves its request-body iterator unfinished when the app stops
# reading (which is the point here); trio reports that generator when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_streamed_body_over_the_cap_is_413_on_both() -> None:
    receiver = DeliveryReportReceiver(ignore, max_body_bytes=1000)
    assert (await to_receiver(receiver, chunks(300, 100))).status_code == 413

    fake = FakeAgileServer(max_body_bytes=1000)
    headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}
    response = await to_fake(fake, chunks(300, 100), headers)
    assert fake_code(response) == (413, 4)


async def test_a_declared_length_over_the_cap_is_413_on_both_even_with_a_small_body() -> None:
    """Refused from the header alone, before reading: a lying length never gets in."""
    declared = {"Content-Length": "1001"}
    receiver = DeliveryReportReceiver(ignore, max_body_bytes=1000)
    assert (await to_receiver(receiver, b"[]", declared)).status_code == 413

    fake = FakeAgileServer(max_body_bytes=1000)
    response = await to_fake(fake, b"{}", {**declared, "X-Api-Key": API_KEY})
    assert fake_code(response) == (413, 4)
    assert fake.requests[0].json is None  # nothing was read


@pytest.mark.parametrize(
    "length", ["abc", "-1", "1e3", "+5", "0x10", "\u0663", "2, 3", "2,", ""], ids=repr
)
async def test_an_unreadable_content_length_is_400_on_both(length: str) -> None:
    raw = [(b"content-length", length.encode("utf-8"))]
    receiver = DeliveryReportReceiver(ignore)
    sent = await call(receiver, http_scope(raw), [{"type": "http.request", "body": b"[]"}])
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {"error": "invalid Content-Length"}

    fake = FakeAgileServer()
    scope = http_scope([*raw, (b"x-api-key", API_KEY.encode())], path="/services/sms/send")
    sent = await call(fake, scope, [{"type": "http.request", "body": b"{}"}])
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {
        "status": "fail",
        "data": "Invalid Content-Length",
        "code": 4,
    }


async def test_repeated_content_lengths_must_agree_on_both() -> None:
    """Two parsers could each pick another copy, so copies that differ are refused."""
    body = json.dumps(REPORT).encode()
    same = str(len(body)).encode()
    for values, status in [((same, same), 200), ((same, b"0" + same), 200), ((same, b"1"), 400)]:
        raw = [(b"content-length", value) for value in values]
        sent = await call(
            DeliveryReportReceiver(ignore),
            http_scope(raw),
            [{"type": "http.request", "body": body}],
        )
        assert sent[0]["status"] == status, values

    send = json.dumps(SEND).encode()
    same = str(len(send)).encode()
    for listed, status in [((same + b", " + same,), 200), ((same, b"7"), 400)]:
        raw = [(b"content-length", value) for value in listed]
        raw += [(b"x-api-key", API_KEY.encode()), (b"content-type", b"application/json")]
        scope = http_scope(raw, path="/services/sms/send")
        sent = await call(FakeAgileServer(), scope, [{"type": "http.request", "body": send}])
        assert sent[0]["status"] == status, listed


def test_the_fake_refuses_a_cap_that_is_not_a_positive_integer() -> None:
    for value in (0, -1, 1.5, True, "1000"):
        with pytest.raises(ValueError, match="max_body_bytes"):
            FakeAgileServer(max_body_bytes=value)  # type: ignore[arg-type]


# -- malformed Basic auth --------------------------------------------------------------------

RIGHT = b64(f"{USER}:{PASSWORD}".encode())
#: (id, the Authorization header's bytes, the auth mode the fake records for it)
MALFORMED = [
    ("no-credentials", b"Basic", "basic"),
    ("only-spaces-after", b"Basic    ", "basic"),
    ("not-base64", b"Basic !!!not-base64!!!", "basic"),
    ("unpadded", b"Basic " + RIGHT.rstrip("=").encode(), "basic"),
    ("no-colon", b"Basic " + b64(USER.encode() + PASSWORD.encode()).encode(), "basic"),
    ("two-tokens", f"Basic {RIGHT} {RIGHT}".encode(), "basic"),
    ("latin-1-in-token", f"Basic {RIGHT}\u00e9".encode("latin-1"), "basic"),
    ("user-not-utf-8", b"Basic " + b64(b"\xff\xfe:" + PASSWORD.encode()).encode(), "basic"),
    ("glued-scheme", f"Basic{RIGHT}".encode(), None),
    ("other-scheme", f"Bearer {RIGHT}".encode(), None),
    ("empty", b"", None),
]


@pytest.mark.parametrize(
    ("authorization", "auth_mode"),
    [pytest.param(header, mode, id=name) for name, header, mode in MALFORMED],
)
async def test_malformed_basic_auth_is_refused_on_both_and_never_echoed(
    authorization: bytes, auth_mode: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    assert RIGHT.endswith("="), "the unpadded case must drop real padding"
    caplog.set_level(logging.DEBUG)
    headers = {b"authorization": authorization}

    receiver = DeliveryReportReceiver(ignore, basic_auth=(USER, PASSWORD))
    received = await to_receiver(receiver, json.dumps(REPORT).encode(), headers)
    assert received.status_code == 401
    assert received.headers["www-authenticate"].startswith("Basic ")

    fake = FakeAgileServer(api_key=None, username=USER, password=PASSWORD)
    sent = await to_fake(fake, json.dumps(SEND).encode(), headers)
    assert fake_code(sent) == (401, 1)
    assert fake.requests[0].auth == auth_mode
    assert fake.accepted == ()

    shown = received.text + sent.text + caplog.text + repr(fake.requests) + repr(receiver)
    assert PASSWORD not in shown
    assert RIGHT.rstrip("=") not in shown


@pytest.mark.parametrize(
    "authorization",
    [f"Basic {RIGHT}", f"basic {RIGHT}", f"BASIC   {RIGHT}", f"  Basic {RIGHT}  "],
    ids=["canonical", "lower-case-scheme", "several-spaces", "surrounding-spaces"],
)
async def test_well_formed_basic_auth_is_taken_on_both(authorization: str) -> None:
    """RFC 7235: the scheme is case-insensitive and one or more spaces follow it."""
    headers = {"Authorization": authorization}
    receiver = DeliveryReportReceiver(ignore, basic_auth=(USER, PASSWORD))
    assert (await to_receiver(receiver, json.dumps(REPORT).encode(), headers)).status_code == 200

    fake = FakeAgileServer(api_key=None, username=USER, password=PASSWORD)
    headers["Content-Type"] = "application/json"
    assert (await to_fake(fake, json.dumps(SEND).encode(), headers)).status_code == 200
    assert fake.requests[0].auth == "basic"


# -- lifespan, other scopes, HEAD --------------------------------------------------------------


def both_apps() -> list[Any]:
    return [
        pytest.param(lambda: DeliveryReportReceiver(ignore), id="receiver"),
        pytest.param(FakeAgileServer, id="fake"),
    ]


@pytest.mark.parametrize("make_app", both_apps())
async def test_lifespan_startup_and_shutdown_are_acknowledged(make_app: Callable[[], App]) -> None:
    """In order, one answer each, and the app returns after shutdown as the spec asks."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](1)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](1)
    returned = anyio.Event()

    async def run() -> None:
        async with app_inbox, app_outbox:
            await make_app()(
                {"type": "lifespan", "asgi": {"version": "3.0"}}, app_inbox.receive, app_outbox.send
            )
        returned.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks, to_app, from_app:
            tasks.start_soon(run)
            await to_app.send({"type": "lifespan.startup"})
            assert await from_app.receive() == {"type": "lifespan.startup.complete"}
            assert not returned.is_set()
            await to_app.send({"type": "lifespan.shutdown"})
            assert await from_app.receive() == {"type": "lifespan.shutdown.complete"}
            await returned.wait()
            assert [message async for message in from_app] == []


@pytest.mark.parametrize("make_app", both_apps())
async def test_uvicorn_runs_either_app_with_its_lifespan_on(
    make_app: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A real server: startup must complete before it serves, shutdown before it stops."""
    from ._serving import serve_in_thread

    caplog.set_level(logging.INFO, logger="uvicorn.error")
    app = make_app()
    with serve_in_thread(app, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/services/sms/credit", headers={"X-Api-Key": API_KEY})
    assert response.status_code == (200 if isinstance(app, FakeAgileServer) else 405)
    said = [record.getMessage() for record in caplog.records if record.name == "uvicorn.error"]
    assert "Application startup complete." in said
    assert "Application shutdown complete." in said
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("make_app", both_apps())
async def test_a_websocket_is_closed_before_it_is_accepted_on_both(
    make_app: Callable[[], App],
) -> None:
    sent = await call(
        make_app(),
        {"type": "websocket", "path": "/", "headers": []},
        [{"type": "websocket.connect"}],
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.parametrize("make_app", both_apps())
async def test_an_unknown_scope_type_raises_on_both(make_app: Callable[[], App]) -> None:
    """The ASGI spec: an app raises for a scope type it does not understand."""
    with pytest.raises(ValueError, match="unsupported ASGI scope type 'telepathy'"):
        await call(make_app(), {"type": "telepathy"}, [])


async def test_head_gets_the_headers_but_no_body_on_both() -> None:
    scope = http_scope([], method="HEAD")
    sent = await call(DeliveryReportReceiver(ignore), scope, [{"type": "http.request"}])
    assert sent[0]["status"] == 405
    assert int(dict(sent[0]["headers"])[b"content-length"]) > 0
    assert sent[1]["body"] == b""

    scope = http_scope(
        [(b"x-api-key", API_KEY.encode())], method="HEAD", path="/services/sms/credit"
    )
    sent = await call(FakeAgileServer(), scope, [{"type": "http.request"}])
    assert sent[0]["status"] == 405
    assert int(dict(sent[0]["headers"])[b"content-length"]) > 0
    assert sent[1]["body"] == b""


# -- calling an app by hand --------------------------------------------------------------------


def http_scope(
    headers: list[tuple[bytes, bytes]], *, method: str = "POST", path: str = "/"
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }


async def call(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Message]:
    """Call an ASGI app with these messages (then a disconnect); returns what it sent."""
    sent: list[Message] = []
    queue = list(incoming)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent
