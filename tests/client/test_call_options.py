"""``client.with_options(...)`` and the per-call ``timeout=`` and ``retry=`` of ``send``,
``credit`` and ``check_credit``, against the fake provider (in memory and over TLS)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

import agile_async as aa
from agile_async import AgileClient, Message, RetryPolicy, SendOptions
from agile_async.segments import PriceList
from agile_async.testing import FakeAgileServer, Fault, Hold

pytestmark = [pytest.mark.anyio, pytest.mark.fake(credit=Decimal("10.00"))]

#: Bounds every wait, so a hang fails the test instead of stalling the suite.
GUARD = 20.0


async def no_sleep(_: float) -> None:
    """A backoff that does not wait (the retries themselves are what is tested)."""


#: The client's own policy in these tests: no retry at all.
ONCE = RetryPolicy(attempts=1, sleep=no_sleep)


def hello(destination: str = "+393471234567") -> Message:
    return Message(destinations=destination, sender="MyApp", body="Hello!")


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client(retry=ONCE) as client:
        yield client


# -- with_options: a view sharing the client ---------------------------------------------


async def test_a_view_has_its_own_settings_and_leaves_the_clients_alone(
    client: AgileClient,
) -> None:
    patient = RetryPolicy(attempts=5, sleep=no_sleep)
    simulated = SendOptions(simulation=True)
    view = client.with_options(timeout=60, retry=patient, options=simulated)
    assert isinstance(view, AgileClient)
    assert (view.retry, view.options) == (patient, simulated)
    assert (client.retry, client.options) == (ONCE, SendOptions())
    assert view.base_url == client.base_url
    assert "view" in repr(view)
    assert "view" not in repr(client)
    same = client.with_options()  # nothing given: the client's settings
    assert (same.retry, same.options) == (client.retry, client.options)


async def test_a_view_shares_the_clients_life_and_credit(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    view = client.with_options(timeout=10)
    result = await view.send(hello())
    assert client.last_known_credit == result.credit == view.last_known_credit
    fake.credit = Decimal("3.00")
    assert await client.credit() == Decimal("3.00") == view.last_known_credit

    # Closing a view (or leaving its block) closes nothing: the pool is the client's.
    async with client.with_options(retry=ONCE) as scoped:
        await scoped.send(hello("+393471234568"))
    await view.aclose()
    assert view.state is client.state is aa.ClientState.OPENED
    await client.send(hello("+393471234569"))
    await view.send(hello("+393471234570"))

    # Closing the client closes every view made from it.
    await client.aclose()
    assert view.is_closed
    with pytest.raises(aa.ClientClosedError):
        await view.send(hello())
    with pytest.raises(aa.ClientClosedError):
        await view.with_options(timeout=5).credit()
    assert len(fake.accepted) == 4


async def test_closing_the_client_stops_a_views_request_under_way(fake: FakeAgileServer) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold))
    client = fake.client(retry=ONCE)
    view = client.with_options(timeout=30)
    with hold, anyio.fail_after(GUARD):
        outcome: list[BaseException] = []

        async def credit() -> None:
            try:
                await view.credit()
            except aa.AgileError as error:
                outcome.append(error)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(credit)
            await hold.wait_held()
            await client.aclose()
    assert [type(error) for error in outcome] == [aa.ClientClosedError]


@pytest.mark.tls
async def test_a_view_uses_the_clients_connection_pool() -> None:
    """One connection in the pool, held by the client's request: the view, if it had a
    pool of its own, would get a connection; it waits for the client's one instead, and
    its pool timeout (a per-view setting) ends the wait."""
    fake = FakeAgileServer()
    hold = Hold()
    fake.inject(Fault.hold(hold), path="/sms/send")
    async with fake.serve_tls() as server:
        one = httpx.AsyncHTTPTransport(
            verify=server.ssl_context(), limits=httpx.Limits(max_connections=1)
        )
        client = server.client(transport=one, retry=ONCE)
        async with client, anyio.create_task_group() as tasks:
            with hold, anyio.fail_after(GUARD):
                tasks.start_soon(client.send, hello())
                await hold.wait_held()
                view = client.with_options(timeout=httpx.Timeout(10, pool=0.2))
                with pytest.raises(aa.TransportError, match="PoolTimeout"):
                    await view.credit()
            assert await view.credit() == fake.credit  # the connection is free again
    assert len(fake.accepted) == 1


async def test_a_views_batcher_sends_with_the_views_settings(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.server_error(), times=2)
    view = client.with_options(retry=RetryPolicy(attempts=3, sleep=no_sleep))
    async with view.batcher(max_latency=0) as batcher:
        receipt = await batcher.send(hello())
    assert receipt.ids == (fake.accepted[0].message_id,)


# -- per call ------------------------------------------------------------------------------


async def test_a_per_call_timeout_applies_to_that_call_only(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    """The provider keeps the answer: a call with a short timeout gives up (it does not
    know what was accepted), while the next call, with the client's 30 s, waits for it."""
    short, long = Hold(), Hold()
    fake.inject(Fault.hold(short, after_processing=True), path="/sms/send")
    with short, anyio.fail_after(GUARD), pytest.raises(aa.OutcomeUnknownError) as unknown:
        await client.send(hello(), timeout=0.2)
    assert unknown.value.ids == (fake.accepted[0].message_id,)

    fake.inject(Fault.hold(long, after_processing=True), path="/sms/send")
    results: list[aa.SendResult] = []

    async def send() -> None:
        results.append(await client.send(hello("+393471234568")))

    with long, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send)
            await long.wait_held()
            await anyio.sleep(0.4)  # twice the short timeout: still waiting, not failed
            assert results == []
            long.release()
    assert results[0].ids == (fake.accepted[1].message_id,)


async def test_a_per_call_timeout_on_a_read_is_a_transport_error(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.delay(5), path="/sms/credit")
    with anyio.fail_after(GUARD), pytest.raises(aa.TransportError):
        await client.credit(timeout=httpx.Timeout(5, read=0.1))
    # A per-call retry on top: the first attempt times out, the second is answered.
    fake.inject(Fault.delay(5), path="/sms/credit")
    patient = RetryPolicy(attempts=2, sleep=no_sleep)
    with anyio.fail_after(GUARD):
        assert await client.credit(timeout=0.1, retry=patient) == Decimal("10.00")


async def test_a_views_timeout_applies_on_a_callers_own_http_client(
    fake: FakeAgileServer,
) -> None:
    """The caller's ``httpx.AsyncClient`` keeps its own 30 s; the view's requests carry
    theirs, and the caller's pool stays open when the SDK client closes."""
    async with httpx.AsyncClient(transport=fake.transport(), timeout=30) as http:
        client = fake.client(http_client=http, retry=ONCE)
        fake.inject(Fault.delay(5), path="/sms/credit")
        with anyio.fail_after(GUARD), pytest.raises(aa.TransportError):
            await client.with_options(timeout=0.1).credit()
        await client.aclose()
        assert not http.is_closed


async def test_a_per_call_retry_applies_to_that_call_only(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    fake.inject(Fault.server_error(), times=2)
    result = await client.send(hello(), retry=RetryPolicy(attempts=3, sleep=no_sleep))
    assert result.ids == (fake.accepted[0].message_id,)
    fake.inject(Fault.server_error(), times=1)
    with pytest.raises(aa.ServerError):  # the client's own policy: no retry
        await client.send(hello())


async def test_check_credit_passes_its_timeout_and_retry_to_its_credit_request(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    prices = PriceList({"39": "0.05"})
    fake.inject(Fault.server_error(), times=1, path="/sms/credit")
    with pytest.raises(aa.ServerError):
        await client.check_credit([hello()], prices=prices)
    fake.inject(Fault.server_error(), times=1, path="/sms/credit")
    retried = await client.check_credit(
        [hello()], prices=prices, retry=RetryPolicy(attempts=2, sleep=no_sleep)
    )
    assert retried.credit == Decimal("10.00")
    fake.inject(Fault.delay(5), path="/sms/credit")
    with anyio.fail_after(GUARD), pytest.raises(aa.TransportError):
        await client.check_credit([hello()], prices=prices, timeout=0.1)


# -- bad settings ------------------------------------------------------------------------

BAD: list[tuple[str, Any, str]] = [
    ("timeout", 0, "must be > 0 s"),
    ("timeout", -1.5, "must be > 0 s"),
    ("timeout", math.nan, "must be a number > 0 s"),
    ("timeout", math.inf, "must be a finite number > 0 s"),
    ("timeout", True, "must be a number > 0 s"),
    ("timeout", "5", "must be a number > 0 s"),
    ("retry", 3, "must be a RetryPolicy or None"),
    ("retry", {"attempts": 3}, "must be a RetryPolicy or None"),
]


async def run(make: Callable[[], Any]) -> None:
    """Call ``make``; await what it returns unless it is a client (``with_options``)."""
    outcome = make()
    if not isinstance(outcome, AgileClient):
        await outcome


@pytest.mark.parametrize(("name", "value", "problem"), BAD)
async def test_bad_settings_are_refused_by_name_before_anything_is_sent(
    fake: FakeAgileServer, client: AgileClient, name: str, value: Any, problem: str
) -> None:
    calls = {
        "with_options": lambda: client.with_options(**{name: value}),
        "send": lambda: client.send(hello(), **{name: value}),
        "credit": lambda: client.credit(**{name: value}),
        "check_credit": lambda: client.check_credit(
            [hello()], prices=PriceList({"39": "0.05"}), **{name: value}
        ),
        "raw send": lambda: client.with_raw_response.send(hello(), **{name: value}),
        "raw credit": lambda: client.with_raw_response.credit(**{name: value}),
    }
    for call, make in calls.items():
        with pytest.raises(aa.ConfigurationError) as refused:
            await run(make)
        assert [(p.field, p.message) for p in refused.value.problems] == [(name, problem)], call
    assert fake.requests == ()


async def test_a_view_refuses_options_that_are_not_send_options(client: AgileClient) -> None:
    with pytest.raises(aa.ConfigurationError) as refused:
        client.with_options(options={"simulation": True})  # type: ignore[arg-type]
    assert refused.value.problems[0].field == "options"
