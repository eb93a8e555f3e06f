"""DeliveryReportReceiver over httpx's ASGITransport: protection, limits, callback, duplicates."""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import anyio
import httpx
import pytest

from agile_async import ConfigurationError, DeliveryReport, DeliveryStatus
from agile_async.webhooks import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_MAX_BODY_BYTES,
    DeliveryReportReceiver,
    ReceiverStatistics,
)

pytestmark = pytest.mark.anyio

TOKEN = "tok_Zq3vV8c2m9XnJ4aQpL7w"
PASSWORD = "s3cret:pässword"
ASGIMessage = MutableMapping[str, Any]


def report(message_id: str = "msg-1", **fields: Any) -> dict[str, Any]:
    """A valid report as the provider sends it; keywords replace fields."""
    base: dict[str, Any] = {
        "messageId": message_id,
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
    base.update(fields)
    return base


class Collector:
    """An async ``on_report`` that records what it was given."""

    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []

    async def __call__(self, delivered: DeliveryReport) -> None:
        self.reports.append(delivered)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def post(
    receiver: DeliveryReportReceiver,
    body: Any,
    *,
    path: str = "/",
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> httpx.Response:
    """One request to the receiver; ``body`` is JSON-encoded unless it is bytes."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    transport = httpx.ASGITransport(app=receiver, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.request(method, path, content=content, headers=headers)


async def call_raw(
    app: DeliveryReportReceiver, scope: dict[str, Any], incoming: Sequence[Mapping[str, Any]]
) -> tuple[list[ASGIMessage], int]:
    """Call the ASGI app by hand; returns what it sent and how many messages it read."""
    sent: list[ASGIMessage] = []
    read = 0

    async def receive() -> ASGIMessage:
        nonlocal read
        read += 1
        if read > len(incoming):
            raise AssertionError("the app read past the end")
        return dict(incoming[read - 1])

    async def send(message: ASGIMessage) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, read


def http_scope(**fields: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
    }
    scope.update(fields)
    return scope


# -- the happy path ------------------------------------------------------------------------


async def test_a_report_is_handed_over_then_acknowledged() -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    response = await post(receiver, report(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}
    (got,) = collector.reports
    assert got.message_id == "msg-1"
    assert got.status is DeliveryStatus.DELIVERED
    assert receiver.statistics() == ReceiverStatistics(
        requests=1, delivered=1, duplicates=0, rejected=0, failed=0
    )


async def test_many_reports_in_one_body_in_order() -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    body = [report(f"m{i}", destination=f"39347{i:07d}") for i in range(500)]
    response = await post(receiver, body)
    assert response.json() == {"accepted": 500, "duplicates": 0}
    assert [r.message_id for r in collector.reports] == [f"m{i}" for i in range(500)]
    assert all(r.destination.startswith("+39347") for r in collector.reports)


async def test_basic_auth_given_as_a_list() -> None:
    receiver = DeliveryReportReceiver(Collector(), basic_auth=["u", "p"])  # type: ignore[arg-type]
    assert (await post(receiver, report(), headers=basic("u", "p"))).status_code == 200


async def test_a_plain_function_works_as_the_callback() -> None:
    seen: list[DeliveryReport] = []
    receiver = DeliveryReportReceiver(seen.append)
    assert (await post(receiver, report())).status_code == 200
    assert len(seen) == 1


async def test_the_content_type_is_not_required_by_default() -> None:
    receiver = DeliveryReportReceiver(Collector())
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await post(receiver, report(f"id-{content_type}"), headers=headers)
        assert response.status_code == 200, content_type


# -- method --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_only_post(method: str) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    response = await post(receiver, report(), method=method)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert collector.reports == []


async def test_head_gets_405_without_a_body() -> None:
    response = await post(DeliveryReportReceiver(Collector()), b"", method="HEAD")
    assert response.status_code == 405
    assert response.content == b""


# -- path token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/{TOKEN}", 200),
        (f"/{TOKEN}/", 200),
        (f"/agile/reports/{TOKEN}", 200),  # mounted under a prefix
        ("/", 404),
        ("/agile/reports", 404),
        (f"/{TOKEN[:-1]}", 404),
        (f"/{TOKEN}x", 404),
        (f"/{TOKEN}/extra", 404),
        (f"/{TOKEN.upper()}", 404),
    ],
)
async def test_the_path_token(path: str, status: int) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector, path_token=TOKEN)
    response = await post(receiver, report(), path=path)
    assert response.status_code == status
    assert len(collector.reports) == (status == 200)


async def test_a_wrong_token_hides_the_endpoint_even_from_other_methods() -> None:
    receiver = DeliveryReportReceiver(Collector(), path_token=TOKEN)
    assert (await post(receiver, b"", method="GET", path="/nope")).status_code == 404
    assert (await post(receiver, b"", method="GET", path=f"/{TOKEN}")).status_code == 405


@pytest.mark.parametrize("token", ["short", "has/slash/in/it/long", "spaces are not ok!!", ""])
def test_weak_or_unsafe_tokens_are_refused(token: str) -> None:
    with pytest.raises(ConfigurationError, match="path_token"):
        DeliveryReportReceiver(Collector(), path_token=token)


# -- Basic auth ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (basic("agile", PASSWORD), 200),
        (basic("agile", PASSWORD + "x"), 401),
        (basic("Agile", PASSWORD), 401),
        (basic("agile", ""), 401),
        ({}, 401),
        ({"Authorization": "Bearer abc"}, 401),
        ({"Authorization": "Basic !!!not-base64"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, 401),
        ({"Authorization": "Basic"}, 401),
    ],
    ids=["right", "password", "user", "empty", "none", "bearer", "garbage", "no-colon", "bare"],
)
async def test_basic_auth(headers: dict[str, str], status: int) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector, basic_auth=("agile", PASSWORD))
    response = await post(receiver, report(), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Basic realm="')
        assert collector.reports == []


@pytest.mark.parametrize(
    "auth", [("", "p"), ("u", ""), ("a:b", "p"), ("u",), "user:pass", ("u", 1)]
)
def test_bad_basic_auth_settings_are_refused(auth: Any) -> None:
    with pytest.raises(ConfigurationError, match="basic_auth"):
        DeliveryReportReceiver(Collector(), basic_auth=auth)


# -- source allow-list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow_from", "client", "status"),
    [
        (["203.0.113.7"], "203.0.113.7", 200),
        (["203.0.113.7"], "203.0.113.8", 403),
        ("198.51.100.0/24", "198.51.100.200", 200),
        ("198.51.100.0/24", "198.51.101.1", 403),
        ([ipaddress.ip_network("2001:db8::/32")], "2001:db8::1", 200),
        ([ipaddress.ip_address("2001:db8::1")], "2001:db8::2", 403),
        (["203.0.113.7"], "::ffff:203.0.113.7", 200),  # IPv4 client on a dual-stack socket
        (["127.0.0.1", "10.0.0.0/8"], "10.1.2.3", 200),
        (["10.0.0.0/8"], "not-an-ip", 403),
    ],
)
async def test_the_source_allow_list(allow_from: Any, client: str, status: int) -> None:
    receiver = DeliveryReportReceiver(Collector(), allow_from=allow_from)
    response = await post(receiver, report(), client=(client, 443))
    assert response.status_code == status


async def test_a_client_without_an_address_is_refused() -> None:
    receiver = DeliveryReportReceiver(Collector(), allow_from="127.0.0.1")
    body = json.dumps(report()).encode()
    sent, _ = await call_raw(
        receiver, http_scope(client=None), [{"type": "http.request", "body": body}]
    )
    assert sent[0]["status"] == 403


@pytest.mark.parametrize("allow_from", [[], ["nope"], ["10.0.0.0/33"], [42]])
def test_bad_allow_lists_are_refused(allow_from: Any) -> None:
    with pytest.raises(ConfigurationError, match="allow_from"):
        DeliveryReportReceiver(Collector(), allow_from=allow_from)


async def test_the_checks_run_cheapest_and_least_revealing_first() -> None:
    receiver = DeliveryReportReceiver(
        Collector(), path_token=TOKEN, basic_auth=("u", "p"), allow_from="10.0.0.0/8"
    )
    outside, inside = ("192.0.2.1", 1), ("10.0.0.1", 1)
    assert (await post(receiver, b"x", method="GET", client=outside)).status_code == 403
    assert (await post(receiver, b"x", method="GET", client=inside)).status_code == 404
    path = f"/{TOKEN}"
    assert (await post(receiver, b"x", method="GET", client=inside, path=path)).status_code == 405
    assert (await post(receiver, b"x", client=inside, path=path)).status_code == 401
    ok = await post(receiver, b"x", client=inside, path=path, headers=basic("u", "p"))
    assert ok.status_code == 400


# -- body size -----------------------------------------------------------------------------


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=100)
    scope = http_scope(headers=[(b"content-length", b"101")])
    sent, read = await call_raw(receiver, scope, [])
    assert read == 0
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {"error": "body too large", "max_bytes": 100}


async def test_an_absurd_content_length_is_413_too() -> None:
    scope = http_scope(headers=[(b"content-length", b"9" * 5000)])
    sent, read = await call_raw(DeliveryReportReceiver(Collector()), scope, [])
    assert (sent[0]["status"], read) == (413, 0)


async def test_a_lying_content_length_does_not_get_past_the_cap() -> None:
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=1000)
    chunks = [{"type": "http.request", "body": b" " * 600, "more_body": True}] * 10
    sent, read = await call_raw(receiver, http_scope(headers=[(b"content-length", b"10")]), chunks)
    assert sent[0]["status"] == 413
    assert read == 2  # 1200 bytes: over the cap, and nothing more is read


async def test_a_chunked_body_over_the_cap_stops_being_read() -> None:
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=1000)
    chunks = [{"type": "http.request", "body": b" " * 300, "more_body": True}] * 100
    sent, read = await call_raw(receiver, http_scope(), chunks)
    assert sent[0]["status"] == 413
    assert read == 4


# httpx's ASGITransport leaves its request-body iterator unfinished when the app stops
# reading (which is the point here); trio reports that generator when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_streamed_body_over_the_cap_through_httpx() -> None:
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=1000)

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 300

    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", content=stream())
    assert response.status_code == 413


async def test_a_body_exactly_at_the_cap_is_read() -> None:
    body = json.dumps(report()).encode()
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=len(body))
    assert (await post(receiver, body)).status_code == 200
    receiver = DeliveryReportReceiver(Collector(), max_body_bytes=len(body) - 1)
    assert (await post(receiver, body)).status_code == 413


async def test_a_body_in_many_chunks_is_reassembled() -> None:
    collector = Collector()
    body = json.dumps(report()).encode()
    chunks = [
        {"type": "http.request", "body": body[i : i + 7], "more_body": i + 7 < len(body)}
        for i in range(0, len(body), 7)
    ]
    sent, _ = await call_raw(DeliveryReportReceiver(collector), http_scope(), chunks)
    assert sent[0]["status"] == 200
    assert len(collector.reports) == 1


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"\xd9\xa3"])
async def test_an_unreadable_content_length_is_400(length: bytes) -> None:
    scope = http_scope(headers=[(b"content-length", length)])
    sent, read = await call_raw(DeliveryReportReceiver(Collector()), scope, [])
    assert (sent[0]["status"], read) == (400, 0)


async def test_a_client_that_goes_away_gets_no_answer() -> None:
    collector = Collector()
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"[", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent, _ = await call_raw(DeliveryReportReceiver(collector), http_scope(), incoming)
    assert sent == []
    assert collector.reports == []


# -- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "body: not valid JSON"),
        (b"", "body: not valid JSON"),
        (b"42", "body: must be a JSON object or an array of objects, not a number"),
        (json.dumps(report(statusCode=9)).encode(), "statusCode: must be 1 to 6, not 9"),
        (json.dumps([report(), report(price="x")]).encode(), "[1].price: must be a number"),
    ],
)
async def test_a_malformed_body_is_400_and_nothing_is_handed_over(
    body: bytes, problem: str
) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    response = await post(receiver, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "invalid delivery report"
    assert payload["problems"][0].startswith(problem)
    assert collector.reports == []
    assert receiver.statistics().rejected == 1


async def test_a_400_lists_at_most_ten_problems() -> None:
    response = await post(DeliveryReportReceiver(Collector()), [{}] * 50)
    assert response.status_code == 400
    assert len(response.json()["problems"]) == 10


async def test_a_big_body_is_checked_as_strictly() -> None:
    # Over 64 KiB, so it is parsed on a worker thread; the answer is the same.
    collector = Collector()
    body = [report(f"m{i}") for i in range(299)] + [report("last", statusCode=0)]
    response = await post(DeliveryReportReceiver(collector), body)
    assert response.status_code == 400
    assert response.json()["problems"] == ["[299].statusCode: must be 1 to 6, not 0"]
    assert collector.reports == []


async def test_too_many_reports_in_one_body() -> None:
    receiver = DeliveryReportReceiver(Collector(), max_reports=5)
    response = await post(receiver, [report(f"m{i}") for i in range(6)])
    assert response.status_code == 400
    assert response.json()["problems"] == ["body: at most 5 reports per body, got 6"]


# -- the callback failing ------------------------------------------------------------------


async def test_a_failing_callback_gives_500_and_is_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(_: DeliveryReport) -> None:
        raise RuntimeError("database is down")

    receiver = DeliveryReportReceiver(broken, path_token=TOKEN, basic_auth=("agile", PASSWORD))
    with caplog.at_level(logging.DEBUG, logger="agile_async"):
        response = await post(
            receiver, report(), path=f"/{TOKEN}", headers=basic("agile", PASSWORD)
        )
        await post(receiver, report(), path="/wrong", headers=basic("agile", PASSWORD))
        await post(receiver, report(), path=f"/{TOKEN}", headers=basic("agile", "guess"))
        await post(receiver, b"{", path=f"/{TOKEN}", headers=basic("agile", PASSWORD))
    assert response.status_code == 500
    assert response.json() == {"error": "report processing failed"}
    assert receiver.statistics().failed == 1
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "'msg-1'" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert "database is down" in caplog.text
    for secret in (TOKEN, PASSWORD, base64.b64encode(f"agile:{PASSWORD}".encode()).decode()):
        assert secret not in caplog.text
        assert secret not in repr(receiver)
        assert secret not in response.text


async def test_after_a_failure_the_retry_is_delivered_not_dropped() -> None:
    attempts: list[str] = []

    async def flaky(delivered: DeliveryReport) -> None:
        attempts.append(delivered.message_id)
        if delivered.message_id == "m2" and attempts.count("m2") == 1:
            raise RuntimeError("first time fails")

    receiver = DeliveryReportReceiver(flaky)
    body = [report("m1"), report("m2"), report("m3")]
    first = await post(receiver, body)
    assert first.status_code == 500
    assert attempts == ["m1", "m2"]  # stops at the failure; the rest wait for the retry
    retry = await post(receiver, body)
    assert retry.json() == {"accepted": 2, "duplicates": 1}
    assert attempts == ["m1", "m2", "m2", "m3"]


async def test_a_sync_callback_that_raises_gives_500() -> None:
    def broken(_: DeliveryReport) -> None:
        raise ValueError("nope")

    assert (await post(DeliveryReportReceiver(broken), report())).status_code == 500


async def test_a_callback_that_overruns_its_time_gives_503() -> None:
    async def stuck(_: DeliveryReport) -> None:
        await anyio.sleep_forever()

    receiver = DeliveryReportReceiver(stuck, callback_timeout=0.05)
    response = await post(receiver, report())
    assert response.status_code == 503
    assert receiver.statistics().failed == 1


async def test_a_callback_raising_timeout_error_itself_is_a_500() -> None:
    async def raises(_: DeliveryReport) -> None:
        raise TimeoutError("its own")

    receiver = DeliveryReportReceiver(raises, callback_timeout=10)
    assert (await post(receiver, report())).status_code == 500


async def test_an_unexpected_error_inside_is_a_500_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import agile_async._webhook_receiver as module

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(module, "parse_delivery_reports", explode)
    response = await post(DeliveryReportReceiver(Collector()), report())
    assert response.status_code == 500
    assert "unexpected error" in caplog.text


# -- duplicates ----------------------------------------------------------------------------


async def test_a_repeated_report_is_acknowledged_but_not_handed_over_again() -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    assert (await post(receiver, report())).json() == {"accepted": 1, "duplicates": 0}
    assert (await post(receiver, report())).json() == {"accepted": 0, "duplicates": 1}
    # The same instant written with another offset is the same report.
    same_instant = report(doneDate="2026-04-08 12:35:22.045+0000")
    assert (await post(receiver, same_instant)).json() == {"accepted": 0, "duplicates": 1}
    assert len(collector.reports) == 1
    assert receiver.statistics().duplicates == 2


@pytest.mark.parametrize(
    "change",
    [
        {"messageId": "msg-2"},
        {"statusCode": 1},
        {"concatTotal": 2, "concatProgressive": 2},
        {"doneDate": "2026-04-08 14:35:22.046+0200"},
    ],
)
async def test_what_makes_a_report_new(change: dict[str, Any]) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector)
    await post(receiver, report())
    assert (await post(receiver, report(**change))).json() == {"accepted": 1, "duplicates": 0}


async def test_a_repeat_within_one_body() -> None:
    collector = Collector()
    response = await post(DeliveryReportReceiver(collector), [report(), report(), report("b")])
    assert response.json() == {"accepted": 2, "duplicates": 1}


async def test_the_window_is_bounded_and_least_recent_goes_first() -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector, dedupe=2)
    for message_id in ("a", "b", "a", "c"):  # "a" seen again, so "b" is the oldest
        await post(receiver, report(message_id))
    assert (await post(receiver, report("a"))).json()["duplicates"] == 1
    assert (await post(receiver, report("b"))).json()["accepted"] == 1


@pytest.mark.parametrize("dedupe", [0, None])
async def test_dedupe_can_be_turned_off(dedupe: int | None) -> None:
    collector = Collector()
    receiver = DeliveryReportReceiver(collector, dedupe=dedupe)
    await post(receiver, report())
    await post(receiver, report())
    assert len(collector.reports) == 2


async def test_concurrent_repeats_are_delivered_once() -> None:
    release = anyio.Event()
    collector = Collector()

    async def slow(delivered: DeliveryReport) -> None:
        await release.wait()
        await collector(delivered)

    receiver = DeliveryReportReceiver(slow)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await post(receiver, report())).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert statuses == [200] * 5
    assert len(collector.reports) == 1
    assert receiver.statistics().duplicates == 4


async def test_a_concurrent_repeat_delivers_when_the_first_copy_fails() -> None:
    release = anyio.Event()
    calls = 0

    async def fails_first(_: DeliveryReport) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
            raise RuntimeError("first copy fails")

    receiver = DeliveryReportReceiver(fails_first)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await post(receiver, report())).status_code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert sorted(statuses) == [200, 500]
    assert calls == 2


# -- other ASGI scopes, construction, repr ---------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_body_bytes", 0),
        ("max_body_bytes", True),
        ("max_reports", -1),
        ("dedupe", -1),
        ("dedupe", 1.5),
        ("callback_timeout", 0),
    ],
)
def test_bad_settings_are_refused(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        DeliveryReportReceiver(Collector(), **{option: value})


def test_on_report_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="on_report"):
        DeliveryReportReceiver("not a function")  # type: ignore[arg-type]


def test_the_repr_hides_the_secrets() -> None:
    receiver = DeliveryReportReceiver(
        Collector(), path_token=TOKEN, basic_auth=("agile", PASSWORD), allow_from="10.0.0.0/8"
    )
    text = repr(receiver)
    assert TOKEN not in text
    assert PASSWORD not in text
    assert "agile" not in text.replace("agile_async", "")
    assert "path_token=***" in text
    assert "allow_from=['10.0.0.0/8']" in text
    assert f"dedupe={DEFAULT_DEDUPE_WINDOW}" in text
    assert f"max_body_bytes={DEFAULT_MAX_BODY_BYTES}" in text


def test_the_callback_type_accepts_both_kinds() -> None:
    async def coroutine_function(_: DeliveryReport) -> None:
        return None

    callbacks: list[Callable[[DeliveryReport], object]] = [
        coroutine_function,
        print,
        lambda _: None,
    ]
    for callback in callbacks:
        DeliveryReportReceiver(callback)
