"""Holding a request (``Fault.hold`` + ``Hold``) and answering late after processing.

The deterministic way to stand "between" the provider accepting a request and the client
hearing about it: the test waits until the request is held, acts, then releases it. In memory
and over TLS, with the test on asyncio or trio.
"""

from __future__ import annotations

import typing
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import anyio
import httpx
import pytest

from agile_async import ConfigurationError, Message, OutcomeUnknownError, RetryPolicy, SendResult
from agile_async.testing import FakeAgileServer, Fault, FaultKind, Hold

pytestmark = pytest.mark.anyio

SMS = Message(destinations="+393471234567", sender="MyApp", body="Hi")


async def test_a_request_held_after_processing_is_accepted_before_it_is_answered() -> None:
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
    results: list[SendResult] = []
    with anyio.fail_after(10):
        async with fake.client() as client, anyio.create_task_group() as tasks:

            async def send() -> None:
                results.append(await client.send(SMS))

            tasks.start_soon(send)
            await hold.wait_held()
            # The provider has the message and charged it; the client has heard nothing.
            assert [m.destination for m in fake.accepted] == ["+393471234567"]
            assert fake.credit == Decimal("99.95")
            assert (fake.requests, results) == ((), [])
            hold.release()
    [result] = results
    assert [m.message_id for m in fake.accepted] == list(result.ids)
    [request] = fake.requests
    assert (request.status, request.fault) == (200, Fault.hold(hold, after_processing=True))
    assert (hold.held, hold.released) == (1, True)


async def test_a_request_held_before_processing_is_not_accepted_until_released() -> None:
    fake = FakeAgileServer()
    with Hold() as hold:  # released on exit, whatever happens in the block
        fake.inject(Fault.hold(hold))
        with anyio.fail_after(10):
            async with fake.client() as client, anyio.create_task_group() as tasks:
                tasks.start_soon(client.send, SMS)
                await hold.wait_held()
                assert fake.accepted == ()
                hold.release()
    assert len(fake.accepted) == 1


async def test_a_held_request_does_not_hold_up_the_others() -> None:
    """Only the request that took the fault waits; the server keeps serving."""
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
    with anyio.fail_after(10):
        async with fake.client() as client, anyio.create_task_group() as tasks:
            tasks.start_soon(client.send, SMS)
            await hold.wait_held()
            other = Message(destinations="+393471234568", sender="MyApp", body="Hi")
            await client.send(other)
            assert await client.credit() == Decimal("99.90")
            assert [r.status for r in fake.requests] == [200, 200]  # the two that finished
            hold.release()
    assert [r.status for r in fake.requests] == [200, 200, 200]


async def test_one_hold_counts_every_request_it_holds() -> None:
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold), times=3)
    with anyio.fail_after(10):
        async with fake.client() as client, anyio.create_task_group() as tasks:
            for i in range(3):
                tasks.start_soon(
                    client.send, Message(destinations=f"+39347123456{i}", sender="A", body="x")
                )
            await hold.wait_held(3)
            assert fake.accepted == ()
            hold.release()
    assert len(fake.accepted) == 3
    assert hold.held == 3


async def test_a_released_hold_lets_later_requests_through() -> None:
    fake = FakeAgileServer()
    hold = Hold()
    hold.release()
    fake.inject(Fault.hold(hold), times=None)
    with anyio.fail_after(10):
        async with fake.client() as client:
            await client.send(SMS)
            await client.send(SMS)
    assert hold.held == 2


async def test_a_read_timeout_during_a_hold_after_processing_is_outcome_unknown() -> None:
    """In memory the client's read timeout ends the wait; the provider has the message."""
    fake = FakeAgileServer()
    with Hold() as hold:
        fake.inject(Fault.hold(hold, after_processing=True))
        async with fake.client(timeout=0.05, retry=RetryPolicy(attempts=1)) as client:
            with anyio.fail_after(10), pytest.raises(OutcomeUnknownError) as unknown:
                await client.send(SMS)
    assert list(unknown.value.ids) == [m.message_id for m in fake.accepted]
    assert fake.requests[0].status is None


async def test_a_late_answer_after_processing_is_outcome_unknown() -> None:
    """``Fault.delay(..., after_processing=True)``: taken and charged, answered too late."""
    fake = FakeAgileServer()
    fake.inject(Fault.delay(30, after_processing=True))
    async with fake.client(timeout=0.05, retry=RetryPolicy(attempts=1)) as client:
        with anyio.fail_after(10), pytest.raises(OutcomeUnknownError):
            await client.send(SMS)
    assert len(fake.accepted) == 1
    assert fake.credit == Decimal("99.95")
    [request] = fake.requests
    assert (request.status, request.fault) == (None, Fault.delay(30, after_processing=True))


async def test_a_late_answer_after_processing_that_comes_in_time_is_an_answer() -> None:
    fake = FakeAgileServer()
    fake.inject(Fault.delay(0.01, after_processing=True))
    async with fake.client() as client:
        with anyio.fail_after(10):
            result = await client.send(SMS)
    assert [m.message_id for m in fake.accepted] == list(result.ids)


@pytest.mark.tls
async def test_a_hold_over_tls_is_released_from_the_tests_loop() -> None:
    """The server's loop is on its own thread: waiting and releasing cross it both ways."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("trustme")
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
    results: list[SendResult] = []
    with anyio.fail_after(15):
        async with (
            fake.serve_tls() as server,
            server.client() as client,
            anyio.create_task_group() as tasks,
        ):

            async def send() -> None:
                results.append(await client.send(SMS))

            tasks.start_soon(send)
            await hold.wait_held()
            assert len(fake.accepted) == 1
            assert await client.credit() == Decimal("99.95")  # served meanwhile
            assert results == []
            hold.release()
    assert [m.message_id for m in fake.accepted] == list(results[0].ids)


@pytest.mark.tls
def test_a_hold_over_tls_from_a_synchronous_test() -> None:
    """Threads only: ``wait_held_blocking`` for tests without an event loop."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("trustme")
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold, after_processing=True))
    assert hold.wait_held_blocking(timeout=0.01) is False  # nothing held yet
    body = {"messages": [{"destinations": ["+393471234567"], "sender": "A", "body": "x"}]}
    with (
        hold,
        fake.serve_tls() as server,
        httpx.Client(base_url=server.base_url, verify=server.ssl_context()) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        answer = pool.submit(
            http.post, "sms/send", json=body, headers={"X-Api-Key": "test-api-key"}
        )
        assert hold.wait_held_blocking(timeout=15)
        assert len(fake.accepted) == 1
        assert not answer.done()
        hold.release()
        assert answer.result(timeout=15).status_code == 200


def test_every_fault_kind_can_be_built_from_the_public_api() -> None:
    """What a chaos test draws from: one public constructor per kind, none left out."""
    built = [
        Fault.error(status=400, code=7),
        Fault.server_error(),
        Fault.rate_limited(),
        Fault.html(),
        Fault.delay(0.1),
        Fault.delay(0.1, after_processing=True),
        Fault.hold(Hold()),
        Fault.hold(Hold(), after_processing=True),
        Fault.drop(),
        Fault.drop(after_processing=True),
    ]
    assert {fault.kind for fault in built} == set(typing.get_args(FaultKind))


def test_fault_hold_needs_a_hold() -> None:
    with pytest.raises(ConfigurationError, match="a Hold is needed"):
        Fault.hold(None)  # type: ignore[arg-type]
    assert repr(Hold()) == "Hold(held=0, released=False)"
