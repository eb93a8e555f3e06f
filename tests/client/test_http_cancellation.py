"""A caller's cancellation never leaves the connection pool unusable (issue 10, defect 3).

httpcore (1.0.9, encode/httpcore#1093) orphans a connection when the task it was created
for is cancelled before it starts connecting: the connection stays "CONNECTING" forever,
holding a pool slot, and once every slot is held every later request fails with
``PoolTimeout``. The tests reproduce that over real sockets: a loopback relay stalls the TLS
handshakes of the first sends (cancelled mid-connect, more of them than the pool has
connections), then forwards to the fake provider over real TLS, and the same client must
send again with the SDK's default limits.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from agile_async import DEFAULT_LIMITS, DEFAULT_TIMEOUT, AgileClient, Message, RetryPolicy
from agile_async.testing import FakeAgileServer, Fault, TLSServer
from tests._waiting import eventually
from tests.client._stall_relay import StallRelay, stall_relay

pytest.importorskip("uvicorn")
pytest.importorskip("trustme")

pytestmark = [pytest.mark.anyio, pytest.mark.tls]

#: More cancelled sends than the default pool has connections, so some wait in its queue.
POOL = DEFAULT_LIMITS.max_connections or 20
CANCELLED = POOL + 5
AFTERWARDS = 20
#: Rounds of cancellations: enough to strand every slot of a pool without the SDK's care.
ROUNDS = 6
#: A guard against a hang (a poisoned pool waits out its 30 s pool timeout), not a measure.
GUARD = 60


def message(n: int) -> Message:
    return Message(destinations=f"+3934712345{n:02d}", sender="MyApp", body=f"Hello {n}")


@pytest.fixture
async def tls(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeAgileServer, TLSServer]]:
    fake = FakeAgileServer(credit=Decimal("1000"))
    async with fake.serve_tls() as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)  # the CA, as a user would trust it
        yield fake, server


async def cancel_mid_connect(
    send: Callable[[int], Coroutine[Any, Any, object]], relay: StallRelay, *, rounds: int
) -> None:
    """Rounds of CANCELLED sends given up by their callers (a web app's timeout) while their
    TLS handshakes hang on the relay, or while they wait for the pool behind those."""
    for round_ in range(rounds):
        before = relay.accepted
        async with anyio.create_task_group() as tg:
            for n in range(CANCELLED):
                tg.start_soon(send, n)
            if round_ == 0:
                await relay.wait_accepted(before + POOL)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert relay.accepted >= POOL  # the pool was full of handshakes that never finish


async def send_concurrently(client: AgileClient, count: int) -> list[object]:
    results: list[object] = []

    async def one(n: int) -> None:
        results.append(await client.send(message(n)))

    async with anyio.create_task_group() as tg:
        for n in range(count):
            tg.start_soon(one, n)
    return results


@pytest.mark.parametrize("pool", ["owned", "callers"])
async def test_sends_cancelled_mid_connect_never_exhaust_the_default_pool(
    tls: tuple[FakeAgileServer, TLSServer], pool: str
) -> None:
    """A web app that times out sends, again and again, keeps its SMS sending: afterwards
    20 concurrent sends on the same client (the SDK's default limits) all succeed. The same
    holds for a caller's own ``http_client`` with those limits."""
    fake, server = tls
    with anyio.fail_after(GUARD):
        async with (
            stall_relay(server.port) as relay,
            httpx.AsyncClient(limits=DEFAULT_LIMITS, timeout=DEFAULT_TIMEOUT) as http,
        ):
            relay_url = f"https://127.0.0.1:{relay.port}/services/"
            options: dict[str, Any] = {"http_client": http} if pool == "callers" else {}
            async with AgileClient(
                base_url=relay_url, retry=RetryPolicy.never(), **options
            ) as client:
                await cancel_mid_connect(lambda n: client.send(message(n)), relay, rounds=ROUNDS)
                relay.forward()
                results = await send_concurrently(client, AFTERWARDS)
    assert len(results) == AFTERWARDS
    assert len(fake.accepted) == AFTERWARDS  # the cancelled sends never went out


# httpcore also leaves the sockets of handshakes it cancels for the GC to close.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_plain_httpx_shows_the_upstream_defect(
    tls: tuple[FakeAgileServer, TLSServer],
) -> None:
    """The reason for the SDK's own mechanism: the same cancellations poison a plain httpx
    pool. If this ever fails, httpcore has fixed encode/httpcore#1093."""
    _, server = tls
    with anyio.fail_after(GUARD):
        async with (
            stall_relay(server.port) as relay,
            httpx.AsyncClient(
                limits=DEFAULT_LIMITS,
                timeout=httpx.Timeout(5.0),
                verify=server.ssl_context(),
                headers={"X-Api-Key": "test-api-key"},
            ) as http,
        ):
            url = f"https://127.0.0.1:{relay.port}/services/sms/credit"
            await cancel_mid_connect(lambda _: http.get(url), relay, rounds=ROUNDS)
            relay.forward()
            with pytest.raises(httpx.PoolTimeout):
                await http.get(url, timeout=httpx.Timeout(5.0, pool=1.0))
    gc.collect()  # its leaked sockets warn here, under this test's filters, not in another


async def test_a_cancelled_caller_is_cancelled_promptly(
    tls: tuple[FakeAgileServer, TLSServer],
) -> None:
    """The caller's cancellation takes effect at once, not when the (here: hour-long)
    connect timeout ends: the guard would fail the test first."""
    fake, server = tls
    async with stall_relay(server.port) as relay:
        relay_url = f"https://127.0.0.1:{relay.port}/services/"
        async with AgileClient(
            base_url=relay_url, retry=RetryPolicy.never(), timeout=httpx.Timeout(3600.0)
        ) as client:
            with anyio.fail_after(GUARD):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.send, message(1))
                    await relay.wait_accepted(1)
                    await anyio.wait_all_tasks_blocked()
                    tg.cancel_scope.cancel()
    assert fake.accepted == ()


async def test_a_send_cancelled_after_it_went_out_is_reported_unknown_then_answered(
    tls: tuple[FakeAgileServer, TLSServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The caller leaves; the log names the messages whose outcome it left unknown, and
    then the provider's answer, which the exchange still waits for."""
    fake, server = tls
    caplog.set_level(logging.WARNING, logger="agile_async")
    fake.inject(Fault.delay(0.5))
    sent = message(7).with_ids(["cancelled-after-sending"])
    with anyio.fail_after(GUARD):
        async with server.client(retry=RetryPolicy.never()) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send, sent)
                await eventually(lambda: not fake.pending_faults)  # the provider has it
                tg.cancel_scope.cancel()
            assert "outcome of 1 message(s) is unknown" in caplog.text
            assert "cancelled-after-sending" in caplog.text
            await eventually(lambda: "HTTP 200" in caplog.text)
    assert "answer to a request whose caller stopped waiting: HTTP 200" in caplog.text
    assert [m.message_id for m in fake.accepted] == ["cancelled-after-sending"]
    events = {getattr(r, "agile_event", None): r for r in caplog.records}
    assert events["request.abandoned"].ids == ["cancelled-after-sending"]  # type: ignore[attr-defined]
    assert events["request.late_answer"].status == 200  # type: ignore[attr-defined]
