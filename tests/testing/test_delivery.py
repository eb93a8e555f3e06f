"""FakeAgileServer posts delivery reports: one per SMS part, scripted, retried, duplicated."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from agile_async import ConfigurationError, DeliveryStatus, Message
from agile_async.testing import (
    AcceptedMessage,
    DeliveryAttempt,
    DeliveryScript,
    DestinationFormat,
    FakeAgileServer,
    Fault,
)
from agile_async.testing._delivery import plan_reports
from tests._serving import serve_in_thread

pytestmark = pytest.mark.anyio

uvicorn = pytest.importorskip("uvicorn")
trustme = pytest.importorskip("trustme")

API_KEY = "test-api-key"
#: The seed's example ``doneDate``: 2026-04-08 14:35:22.045+0200.
SEED_NOW = datetime(2026, 4, 8, 14, 35, 22, 45000, tzinfo=timezone(timedelta(hours=2)))
LONG_BODY = "x" * 400  # GSM-7: 3 parts of 153

DELIVERED, ACCEPTED = DeliveryStatus.DELIVERED, DeliveryStatus.ACCEPTED
EXPIRED, REJECTED = DeliveryStatus.EXPIRED, DeliveryStatus.REJECTED
UNDELIVERABLE = DeliveryStatus.UNDELIVERABLE


def message(*destinations: str, body: str = "Hello", ids: list[str] | None = None) -> Any:
    out: dict[str, Any] = {"destinations": list(destinations), "sender": "MyApp", "body": body}
    if ids is not None:
        out["ids"] = ids
    return out


@contextlib.asynccontextmanager
async def provider(fake: FakeAgileServer) -> Any:
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers={"X-Api-Key": API_KEY}
    ) as client:
        yield client


async def send(http: httpx.AsyncClient, *messages: Any, **top: Any) -> httpx.Response:
    response = await http.post("sms/send", json={**top, "messages": list(messages)})
    assert response.status_code == 200, response.text
    return response


def statuses(log: tuple[DeliveryAttempt, ...]) -> dict[tuple[str, int], list[int]]:
    """Report status codes per (message id, part), in posting order."""
    out: dict[tuple[str, int], list[int]] = {}
    for attempt in log:
        key = (attempt.message_id, attempt.report["concatProgressive"])
        out.setdefault(key, []).append(attempt.report["statusCode"])
    return out


# -- a real webhook on loopback ----------------------------------------------------------------


class Webhook:
    """A tiny ASGI webhook: keeps every request, answers the next scripted status (else 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self._changed = threading.Condition()
        self._statuses = list(statuses)
        self.bodies: list[Any] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body", False):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self._changed:
            self.requests.append((scope["method"], scope["path"], headers))
            self.bodies.append(json.loads(b"".join(chunks)))
            status = self._statuses.pop(0) if self._statuses else 200
            self._changed.notify_all()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, count: int) -> None:
        """Wait (on a worker thread, so on any backend) until ``count`` requests came."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.bodies) >= count, timeout=10)

        assert await anyio.to_thread.run_sync(wait), f"{len(self.bodies)} of {count} came"


@pytest.fixture
def webhook() -> Webhook:
    return Webhook()


@pytest.fixture
def webhook_url(webhook: Webhook) -> Iterator[str]:
    with serve_in_thread(webhook, lifespan="off") as url:
        yield url + "/agile/reports"


# -- what a report says --------------------------------------------------------------------


async def test_one_report_per_part_in_the_seeds_shape() -> None:
    """concatTotal is the parts, concatProgressive 1..parts, price per part as a number."""
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(
        clock=lambda: SEED_NOW, prices={"39": Decimal("0.005")}, raw_delivery_callback=got.append
    )
    async with provider(fake) as http:
        await send(
            http,
            message("+393471234567", body=LONG_BODY, ids=["msg-001-20260408"]),
            message("447700900123", ids=["uk-1"]),
        )
    assert [m.parts for m in fake.accepted] == [3, 1]
    assert got == []  # queued, not posted: nobody is delivering yet
    assert fake.delivery_statistics().pending == 4
    await fake.flush_reports()

    first = next(r for r in got if r["messageId"] == "msg-001-20260408")
    assert list(first) == [
        "messageId",
        "destination",
        "statusCode",
        "description",
        "doneDate",
        "concatTotal",
        "concatProgressive",
        "lcrOperator",
        "realOperator",
        "price",
    ]
    assert first == {
        "messageId": "msg-001-20260408",
        "destination": "+393471234567",
        "statusCode": 3,
        "description": "Delivered",
        "doneDate": "2026-04-08 14:35:22.045+0200",
        "concatTotal": 3,
        "concatProgressive": first["concatProgressive"],
        "lcrOperator": "22210",
        "realOperator": "22201",
        "price": 0.005,
    }
    italian = sorted(r["concatProgressive"] for r in got if r["messageId"] == "msg-001-20260408")
    assert italian == [1, 2, 3]
    [uk] = [r for r in got if r["messageId"] == "uk-1"]
    assert (uk["destination"], uk["concatTotal"], uk["concatProgressive"]) == ("447700900123", 1, 1)
    assert uk["price"] == 0.05
    # The JSON a webhook would get is the same object.
    assert json.loads(json.dumps(first)) == first
    stats = fake.delivery_statistics()
    assert (stats.pending, stats.in_flight, stats.delivered, stats.failed_attempts) == (0, 0, 4, 0)
    assert [dict(r) for r in fake.delivered_reports] == got


async def test_optional_fields_can_be_left_out() -> None:
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(
        raw_delivery_callback=got.append,
        delivery=DeliveryScript(lcr_operator=None, real_operator=None, include_price=False),
    )
    async with provider(fake) as http:
        await send(http, message("+393471234567"))
    await fake.flush_reports()
    [report] = got
    assert not {"lcrOperator", "realOperator", "price"} & report.keys()


async def test_no_reports_for_simulation_disabled_delivery_or_no_target() -> None:
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=got.append)
    silent = FakeAgileServer()
    for server in (fake, silent):
        async with provider(server) as http:
            await send(http, message("+393471234567", ids=["sim"]), simulation=True)
            await send(http, message("+393471234568", ids=["off"]), enableDelivery=False)
            await send(http, message("+393471234569", ids=["on"]), enableDelivery=True)
        await server.flush_reports()
    assert [r["messageId"] for r in got] == ["on"]
    assert silent.delivery_log == ()
    assert silent.delivery_statistics().delivered == 0


async def test_targets_apply_to_messages_accepted_afterwards() -> None:
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer()
    async with provider(fake) as http:
        await send(http, message("+393471234567", ids=["before"]))
        fake.deliver_to(got.append, raw=True)
        assert fake.delivery_targets == (got.append,)
        await send(http, message("+393471234567", ids=["during"]))
        fake.clear_delivery_targets()
        await send(http, message("+393471234567", ids=["after"]))
    await fake.flush_reports()
    assert [r["messageId"] for r in got] == ["during"]


# -- scripted outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination_format", "expected"),
    [
        ("as_sent", ["+447700900123", "33612345678", "+393351234567", "393471234567"]),
        ("with_plus", ["+447700900123", "+33612345678", "+393351234567", "+393471234567"]),
        ("digits", ["447700900123", "33612345678", "393351234567", "393471234567"]),
    ],
)
async def test_outcomes_by_destination_prefix(
    destination_format: DestinationFormat, expected: list[str]
) -> None:
    """Prefixes match with or without ``+``; the longest wins; the rest get ``outcomes``."""
    got: list[dict[str, Any]] = []
    script = DeliveryScript(
        by_prefix={"+44": EXPIRED, "33": REJECTED, "3933": UNDELIVERABLE},
        destination_format=destination_format,
    )
    fake = FakeAgileServer(raw_delivery_callback=got.append, delivery=script)
    async with provider(fake) as http:
        sent = ["+447700900123", "33612345678", "+393351234567", "393471234567"]
        await send(http, message(*sent, ids=["uk", "fr", "it-1", "it-2"]))
    await fake.flush_reports()
    in_order = [next(r for r in got if r["messageId"] == i) for i in ("uk", "fr", "it-1", "it-2")]
    assert [r["destination"] for r in in_order] == expected
    assert [(r["statusCode"], r["description"]) for r in in_order] == [
        (4, "Expired"),
        (2, "Rejected"),
        (6, "Undeliverable"),
        (3, "Delivered"),
    ]


async def test_seeded_probabilities_are_reproducible_in_any_arrival_order() -> None:
    script = DeliveryScript(outcomes={DELIVERED: 0.7, UNDELIVERABLE: 0.2, EXPIRED: 0.1}, seed=7)
    destinations = [f"+3934{i:08d}" for i in range(200)]
    ids = [f"id-{i}" for i in range(200)]
    outcomes = []
    for order in (slice(None), slice(None, None, -1)):
        got: list[dict[str, Any]] = []
        fake = FakeAgileServer(raw_delivery_callback=got.append, delivery=script)
        async with provider(fake) as http:
            await send(http, message(*destinations[order], ids=ids[order]))
        await fake.flush_reports()
        outcomes.append({r["messageId"]: r["statusCode"] for r in got})
        # The script tells a test what each message gets.
        assert {m.message_id: script.statuses_for(m)[0] for m in fake.accepted} == outcomes[-1]
    assert outcomes[0] == outcomes[1]
    counts = {code: list(outcomes[0].values()).count(code) for code in (3, 4, 6)}
    assert 110 < counts[3] < 170
    assert counts[4] > 0
    assert counts[6] > 0
    reseeded = DeliveryScript(outcomes=script.outcomes, seed=8)
    assert [reseeded.statuses_for(m)[0] for m in fake.accepted] != [
        script.statuses_for(m)[0] for m in fake.accepted
    ]


async def test_a_part_rule_fails_one_part_of_a_multipart_message() -> None:
    def last_part_lost(m: Any, part: int, status: DeliveryStatus) -> DeliveryStatus:
        return UNDELIVERABLE if m.parts > 1 and part == m.parts else status

    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(
        raw_delivery_callback=got.append, delivery=DeliveryScript(part_outcome=last_part_lost)
    )
    async with provider(fake) as http:
        await send(http, message("+393471234567", body=LONG_BODY, ids=["long"]))
        await send(http, message("+393471234567", ids=["short"]))
    await fake.flush_reports()
    assert statuses(fake.delivery_log) == {
        ("long", 1): [3],
        ("long", 2): [3],
        ("long", 3): [6],
        ("short", 1): [3],
    }


async def test_independent_parts_are_drawn_separately() -> None:
    script = DeliveryScript(outcomes={DELIVERED: 1, EXPIRED: 1}, independent_parts=True, seed=3)
    fake = FakeAgileServer(delivery_callback=lambda _: None, delivery=script)
    async with provider(fake) as http:
        await send(http, message(*[f"+3934{i:08d}" for i in range(20)], body=LONG_BODY))
    per_message = [set(script.statuses_for(m)) for m in fake.accepted]
    assert any(len(s) == 2 for s in per_message)  # mixed outcomes within one message


async def test_an_intermediate_accepted_report_comes_before_the_final_one() -> None:
    fake = FakeAgileServer(
        delivery_callback=lambda _: None,
        delivery=DeliveryScript(intermediate=1.0, outcomes={EXPIRED: 1}),
    )
    async with provider(fake) as http:
        await send(http, message("+393471234567", body=LONG_BODY, ids=["m"]))
    await fake.flush_reports()
    assert statuses(fake.delivery_log) == {("m", p): [1, 4] for p in (1, 2, 3)}
    accepted = [a for a in fake.delivery_log if a.status is ACCEPTED]
    assert {a.report["description"] for a in accepted} == {"Accepted"}


# -- delays, retries, duplicates -------------------------------------------------------------


async def test_reports_wait_for_their_delay_in_the_background() -> None:
    arrived = anyio.Event()

    async def on_report(report: object) -> None:
        arrived.set()

    fake = FakeAgileServer(delivery_callback=on_report, delivery=DeliveryScript(delay=0.2))
    async with fake.delivering(), provider(fake) as http:
        started = anyio.current_time()
        await send(http, message("+393471234567"))
        await anyio.wait_all_tasks_blocked()  # the courier waits for the report's delay
        assert fake.delivery_log == ()
        with anyio.fail_after(5):
            await arrived.wait()
        assert anyio.current_time() - started >= 0.2
    assert len(fake.delivered_reports) == 1


async def test_flush_and_drain_skip_delays() -> None:
    """``flush_reports()`` posts now; ``delivering()`` drains the queue on exit."""
    fake = FakeAgileServer(delivery_callback=lambda _: None, delivery=DeliveryScript(delay=60))
    with anyio.fail_after(5):
        async with provider(fake) as http:
            await send(http, message("+393471234567"))
            await fake.flush_reports()
            assert len(fake.delivered_reports) == 1
            async with fake.delivering():
                await send(http, message("+393471234567"))
                assert len(fake.delivered_reports) == 1
    assert len(fake.delivered_reports) == 2


def test_random_delays_are_seeded_and_within_the_range() -> None:
    script = DeliveryScript(delay=(0.5, 2.0), intermediate=0.5, seed="s")
    entry = accepted(parts=3)
    first = plan_reports(script, entry)
    assert first == plan_reports(script, entry)
    delays = [step.delay for chain in first for step in chain]
    assert all(0.5 <= d <= 2.0 for d in delays)
    assert len(set(delays)) == len(delays)
    unseeded = DeliveryScript(delay=(0.5, 2.0))
    assert plan_reports(unseeded, entry) != plan_reports(unseeded, entry)


async def test_a_failing_webhook_is_retried_with_backoff_until_it_answers_2xx() -> None:
    webhook = Webhook(statuses=(500, 503))
    with serve_in_thread(webhook, lifespan="off") as url:
        fake = FakeAgileServer(
            delivery_url=url + "/hook", delivery=DeliveryScript(backoff=0.1, attempts=3)
        )
        async with fake.delivering(), provider(fake) as http:
            await send(http, message("+393471234567", ids=["retried"]))
            await webhook.wait_for(3)
    log = fake.delivery_log
    assert [(a.attempt, a.http_status, a.ok, a.will_retry) for a in log] == [
        (1, 500, False, True),
        (2, 503, False, True),
        (3, 200, True, False),
    ]
    assert [a.error for a in log] == ["HTTP 500", "HTTP 503", None]
    assert {a.target for a in log} == {url + "/hook"}
    gaps = [(b.sent_at - a.sent_at).total_seconds() for a, b in itertools.pairwise(log)]
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19  # the backoff doubles
    # Every attempt posts the same report (same doneDate).
    assert webhook.bodies[0] == webhook.bodies[1] == webhook.bodies[2]
    assert webhook.bodies[0]["messageId"] == "retried"
    stats = fake.delivery_statistics()
    assert (stats.delivered, stats.failed_attempts, stats.gave_up) == (1, 2, 0)


async def test_attempts_are_bounded_and_the_next_report_still_follows() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"

    def broken(report: object) -> None:
        raise RuntimeError("receiver is down")

    fake = FakeAgileServer(
        delivery_url=dead_url,
        delivery_callback=broken,
        strict_callbacks=False,  # failing on purpose: logged and counted, not raised
        delivery=DeliveryScript(attempts=2, backoff=0, intermediate=1.0),
    )
    async with provider(fake) as http:
        await send(http, message("+393471234567", ids=["lost"]))
    await fake.flush_reports()
    log = fake.delivery_log
    assert len(log) == 8  # 2 reports x 2 targets x 2 attempts
    assert not any(a.ok for a in log)
    assert {a.error.split(":")[0] for a in log if a.error} == {"ConnectError", "RuntimeError"}
    assert sorted(a.attempt for a in log) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [a.status for a in log if a.target is broken] == [
        ACCEPTED,
        ACCEPTED,
        DELIVERED,
        DELIVERED,
    ]
    stats = fake.delivery_statistics()
    assert (stats.delivered, stats.failed_attempts, stats.gave_up, stats.pending) == (0, 8, 4, 0)


async def test_a_slow_callback_times_out() -> None:
    async def stuck(report: object) -> None:
        await anyio.sleep_forever()

    fake = FakeAgileServer(
        delivery_callback=stuck,
        delivery=DeliveryScript(timeout=0.05, attempts=1),
        strict_callbacks=False,
    )
    async with provider(fake) as http:
        await send(http, message("+393471234567"))
    with anyio.fail_after(5):
        await fake.flush_reports()
    [attempt] = fake.delivery_log
    assert attempt.error == "timed out after 0.05 s"


async def test_duplicates_repeat_the_same_report() -> None:
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=got.append, delivery=DeliveryScript(duplicates=1))
    async with provider(fake) as http:
        await send(http, message("+393471234567", body=LONG_BODY, ids=["twice"]))
    await fake.flush_reports()
    assert len(got) == 6
    assert [a.duplicate for a in fake.delivery_log].count(True) == 3
    for part in (1, 2, 3):
        copies = [r for r in got if r["concatProgressive"] == part]
        assert len(copies) == 2
        assert copies[0] == copies[1]


async def test_seeded_duplicates_are_occasional_and_reproducible() -> None:
    """Seeded draws key on the message id: give ids (the SDK always does)."""
    script = DeliveryScript(duplicates=0.3, seed=11)
    runs = []
    for _ in range(2):
        fake = FakeAgileServer(delivery_callback=lambda _: None, delivery=script)
        async with provider(fake) as http:
            await send(
                http,
                message(
                    *[f"+3934{i:08d}" for i in range(100)], ids=[f"id-{i}" for i in range(100)]
                ),
            )
        await fake.flush_reports()
        runs.append(sorted(a.report["destination"] for a in fake.delivery_log if a.duplicate))
    assert runs[0] == runs[1]
    assert 10 < len(runs[0]) < 50


# -- where reports go ------------------------------------------------------------------------


async def test_reports_flow_to_a_real_webhook_in_the_background(
    webhook: Webhook, webhook_url: str
) -> None:
    """The SDK sends; the fake posts JSON over a real socket, headers and path as given."""
    fake = FakeAgileServer()
    fake.deliver_to(webhook_url + "?token=s3cret", headers={"Authorization": "Basic dTpw"})
    with anyio.fail_after(10):
        async with fake.delivering(drain=False), fake.client() as client:
            result = await client.send(
                [
                    Message(destinations=f"+3934{i:08d}", sender="MyApp", body="Hi")
                    for i in range(20)
                ]
            )
            await webhook.wait_for(20)
    sent_ids = {m.message_id for m in fake.accepted}
    assert {b["messageId"] for b in webhook.bodies} == sent_ids
    assert result.processed_messages == 20
    method, path, headers = webhook.requests[0]
    assert (method, path) == ("POST", "/agile/reports")
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Basic dTpw"


async def test_reports_to_an_https_webhook_need_its_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    webhook = Webhook()
    with serve_in_thread(webhook, lifespan="off", certfile=server_pem) as url:
        fake = FakeAgileServer(delivery=DeliveryScript(attempts=1))
        fake.deliver_to(url + "/trusted", verify=trusted)
        fake.deliver_to(url + "/untrusted")
        async with provider(fake) as http:
            await send(http, message("+393471234567"))
        await fake.flush_reports()
    by_target = {a.target: a for a in fake.delivery_log}
    assert by_target[url + "/trusted"].ok
    untrusted = by_target[url + "/untrusted"]
    assert not untrusted.ok
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")
    assert [path for _, path, _ in webhook.requests] == ["/trusted"]


async def test_reports_flow_by_themselves_over_tls(webhook: Webhook, webhook_url: str) -> None:
    """serve_tls runs a courier on the server's thread: no delivering(), no flush."""
    on_thread = threading.Event()
    seen: list[dict[str, Any]] = []

    def on_report(report: dict[str, Any]) -> None:
        seen.append(report)
        if threading.current_thread().name == "FakeAgileServer-TLS":
            on_thread.set()

    fake = FakeAgileServer(delivery_url=webhook_url, raw_delivery_callback=on_report)
    with anyio.fail_after(15):
        async with fake.serve_tls() as server, server.client() as client:
            await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
            await client.send(Message(destinations="+393471234568", sender="MyApp", body="Hi"))
            await webhook.wait_for(2)
            assert await anyio.to_thread.run_sync(on_thread.wait, 10)
    assert {b["destination"] for b in webhook.bodies} == {"+393471234567", "+393471234568"}
    assert len(seen) >= 1
    await fake.flush_reports()  # anything the stopped thread left is posted from here
    assert len(seen) == 2


async def test_the_sdks_receiver_parses_every_report_and_drops_duplicates() -> None:
    """The fake's reports, in every shape it writes, through the real receiver on a socket."""
    from agile_async import DeliveryReport
    from agile_async.webhooks import DeliveryReportReceiver

    received: list[DeliveryReport] = []
    token = "t" * 32
    receiver = DeliveryReportReceiver(received.append, path_token=token, basic_auth=("u", "p"))
    script = DeliveryScript(
        outcomes={DELIVERED: 1, EXPIRED: 1, UNDELIVERABLE: 1},
        intermediate=0.5,
        duplicates=1.0,
        destination_format="digits",
        seed=5,
    )
    with serve_in_thread(receiver, lifespan="off") as url:
        fake = FakeAgileServer(clock=lambda: SEED_NOW, delivery=script)
        fake.deliver_to(f"{url}/agile/reports/{token}", headers={"Authorization": "Basic dTpw"})
        async with provider(fake) as http:
            # Fixed ids: the script's draws are seeded per message id, so the run is the same
            # every time (with generated ids, 1 run in 64 drew no intermediate report).
            both = message("+393471234567", "+447700900123", body=LONG_BODY, ids=["m-1", "m-2"])
            await send(http, both)
        await fake.flush_reports()
    assert all(a.ok for a in fake.delivery_log)
    originals = [a.report for a in fake.delivery_log if not a.duplicate]
    assert len(received) == len(originals) > 6  # the duplicates were recognised
    for report in received:
        assert report.destination in ("+393471234567", "+447700900123")
        assert report.done_date == SEED_NOW
        assert report.price == Decimal("0.05")
        assert report.concat_total == 3
    finals = {(r.message_id, r.concat_progressive, r.status) for r in received}
    expected = {
        (m.message_id, part, status)
        for m in fake.accepted
        for part, status in enumerate(script.statuses_for(m), start=1)
    }
    assert expected <= finals


async def test_a_response_lost_after_processing_still_gets_reports() -> None:
    """The provider took the message; only the client does not know it."""
    got: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=got.append)
    fake.inject(Fault.drop(after_processing=True))
    async with provider(fake) as http:
        with pytest.raises(httpx.ReadError):
            await http.post("sms/send", json={"messages": [message("+393471234567")]})
    await fake.flush_reports()
    assert len(got) == 1


async def test_a_post_cut_short_by_shutdown_goes_back_to_the_queue() -> None:
    entered = anyio.Event()
    calls = 0

    async def first_call_hangs(report: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            await anyio.sleep_forever()

    fake = FakeAgileServer(delivery_callback=first_call_hangs)
    with anyio.fail_after(5):
        async with fake.delivering(drain=False), provider(fake) as http:
            await send(http, message("+393471234567"))
            await entered.wait()
    [cut_short] = fake.delivery_log
    assert (cut_short.attempt, cut_short.ok, cut_short.will_retry) == (1, False, True)
    assert cut_short.error == "cancelled: the courier stopped during the post"
    assert fake.delivery_statistics()[:2] == (1, 0)  # pending, in flight
    await fake.flush_reports()
    assert [(a.attempt, a.ok) for a in fake.delivery_log] == [(1, False), (2, True)]


# -- bounds and arguments --------------------------------------------------------------------


async def test_the_queue_and_the_log_are_bounded() -> None:
    fake = FakeAgileServer(
        delivery_callback=lambda _: None, max_pending_reports=3, delivery_log_size=2
    )
    async with provider(fake) as http:
        await send(http, message(*[f"+3934{i:08d}" for i in range(5)]))
    assert fake.delivery_statistics()[:2] == (3, 0)
    await fake.flush_reports()
    assert len(fake.delivery_log) == 2
    stats = fake.delivery_statistics()
    assert (stats.delivered, stats.dropped) == (3, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"outcomes": {DELIVERED: -1}}, "outcomes"),
        ({"outcomes": {DELIVERED: 0}}, "outcomes"),
        ({"outcomes": {9: 1}}, "9"),
        ({"by_prefix": {"+44": 42}}, "42"),
        ({"intermediate": 1.5}, "intermediate"),
        ({"duplicates": -0.1}, "duplicates"),
        ({"delay": -1}, "delay"),
        ({"delay": (2, 1)}, "delay"),
        ({"attempts": 0}, "attempts"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"backoff": -1}, "backoff"),
    ],
)
def test_script_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DeliveryScript(**kwargs)


def test_targets_and_bounds_are_checked() -> None:
    fake = FakeAgileServer()
    with pytest.raises(ValueError, match="URL"):
        fake.deliver_to("ftp://example.com/hook")
    with pytest.raises(ValueError, match="URL"):
        fake.deliver_to("/relative")
    with pytest.raises(ConfigurationError, match="callable"):
        fake.deliver_to(42)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match=">= 1"):
        FakeAgileServer(max_pending_reports=0)
    script = DeliveryScript(outcomes={3: 1}, by_prefix={"+44": 4})
    assert script.outcomes == {DELIVERED: 1.0}
    assert script.by_prefix == {"44": EXPIRED}


# -- helpers ---------------------------------------------------------------------------------


def accepted(*, parts: int) -> AcceptedMessage:
    return AcceptedMessage(
        message_id="m-1",
        destination="+393471234567",
        sender="MyApp",
        body="x",
        hex_body=False,
        udh_data=None,
        scheduling=None,
        parts=parts,
        price=Decimal("0.05") * parts,
        global_id="g",
        request_index=0,
        message_index=0,
        enable_delivery=True,
        simulated=False,
        accepted_at=SEED_NOW,
    )
