"""The blocking client's ``with_options``, per-call ``timeout``/``retry`` and raw responses,
from plain threads against the fake provider."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

import agile_async as aa
from agile_async import Message, RawResponse, RetryPolicy, SendResult
from agile_async.segments import PriceList
from agile_async.sync import AgileClient, AgileClientWithRawResponse
from agile_async.testing import FakeAgileServer, Fault, Hold

API_KEY = "k3y-that-must-never-leak"
GUARD = 20.0

pytestmark = pytest.mark.fake(api_key=API_KEY, credit=Decimal("10.00"))


async def no_sleep(_: float) -> None:
    """A backoff that does not wait."""


ONCE = RetryPolicy(attempts=1, sleep=no_sleep)


def hello(destination: str = "+393471234567") -> Message:
    return Message(destinations=destination, sender="MyApp", body="Hello!")


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("agile_async.sync.")]


@pytest.fixture
def client(fake: FakeAgileServer) -> Iterator[AgileClient]:
    with AgileClient(
        api_key=API_KEY, base_url=fake.base_url, transport=fake.transport(), retry=ONCE
    ) as client:
        yield client


def test_a_view_shares_the_clients_loop_pool_and_life(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    threads = len(loop_threads())
    patient = RetryPolicy(attempts=3, sleep=no_sleep)
    view = client.with_options(timeout=60, retry=patient)
    assert isinstance(view, AgileClient)
    assert (view.retry, client.retry) == (patient, ONCE)
    assert len(loop_threads()) == threads  # no thread (and no pool) of its own
    fake.inject(Fault.server_error(), times=2)
    assert view.send(hello()).ids == (fake.accepted[0].message_id,)
    assert client.last_known_credit == view.last_known_credit

    with client.with_options(retry=ONCE) as scoped:  # leaving a view's block closes nothing
        scoped.credit()
    view.close()
    assert not client.is_closed
    assert client.credit() == view.credit()
    assert len(loop_threads()) == threads

    client.close()
    assert view.is_closed
    with pytest.raises(aa.ClientClosedError):
        view.send(hello())


def test_a_view_keeps_its_client_alive(fake: FakeAgileServer) -> None:
    """A client dropped unclosed is closed by the garbage collector: not while a view of it
    is in use (``AgileClient().with_options(...)`` or ``.with_raw_response`` as the only
    reference)."""
    threads = len(loop_threads())
    view = AgileClient(
        api_key=API_KEY, base_url=fake.base_url, transport=fake.transport()
    ).with_options(timeout=5)
    gc.collect()
    assert view.send(hello()).ids == (fake.accepted[0].message_id,)
    assert len(loop_threads()) == threads + 1
    del view
    gc.collect()
    assert len(loop_threads()) == threads
    raw = AgileClient(
        api_key=API_KEY, base_url=fake.base_url, transport=fake.transport()
    ).with_raw_response
    gc.collect()
    assert raw.credit().status_code == 200
    del raw
    gc.collect()
    assert len(loop_threads()) == threads


def test_a_batcher_keeps_its_client_alive(fake: FakeAgileServer) -> None:
    """``AgileClient().batcher()`` as the only reference: the client is not closed by the
    garbage collector under the open batcher (its requests failed as ClientClosedError), and
    is once the batcher is dropped."""
    threads = len(loop_threads())
    with AgileClient(api_key=API_KEY, base_url=fake.base_url, transport=fake.transport()).batcher(
        max_latency=0.01
    ) as batcher:
        gc.collect()
        ticket = batcher.submit(hello())
        assert batcher.send(hello("+393471234568")).ids == (fake.accepted[-1].message_id,)
    assert ticket.result().ids == (fake.accepted[0].message_id,)
    del batcher, ticket
    gc.collect()
    assert len(loop_threads()) == threads


def test_a_per_call_timeout_and_retry_apply_to_that_call_only(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
    with hold, pytest.raises(aa.OutcomeUnknownError):
        client.send(hello(), timeout=0.2)
    assert [m.destination for m in fake.accepted] == ["+393471234567"]

    later = Hold()
    fake.inject(Fault.hold(later, after_processing=True), path="/sms/send")
    with later, ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(client.send, hello("+393471234568"))  # the client's 30 s
        assert later.wait_held_blocking(timeout=GUARD)
        assert not waiting.done()
        later.release()
        assert waiting.result(GUARD).ids == (fake.accepted[1].message_id,)

    fake.inject(Fault.server_error(), times=1, path="/sms/credit")
    assert client.credit(retry=RetryPolicy(attempts=2, sleep=no_sleep)) == fake.credit
    fake.inject(Fault.delay(5), path="/sms/credit")
    with pytest.raises(aa.TransportError):
        client.check_credit([hello()], prices=PriceList({"39": "0.05"}), timeout=0.1)


def test_raw_responses_from_the_blocking_client(fake: FakeAgileServer, client: AgileClient) -> None:
    raw_client = client.with_raw_response
    assert isinstance(raw_client, AgileClientWithRawResponse)
    raw = raw_client.send(hello())
    assert isinstance(raw, RawResponse)
    assert isinstance(raw.parse(), SendResult)
    assert raw.status_code == 200
    assert raw.elapsed >= timedelta(0)
    assert raw.global_id == raw.parse().global_id
    credit = raw_client.credit(timeout=httpx.Timeout(5))
    assert (credit.status_code, credit.parse()) == (200, fake.credit)
    fake.inject(Fault.error(status=401, code=1))
    with pytest.raises(aa.AuthenticationError) as refused:
        raw_client.send(hello())
    assert refused.value.raw_response is not None
    assert refused.value.raw_response.status_code == 401
    for shown in (repr(raw), repr(raw.headers), repr(raw_client), repr(refused.value)):
        assert API_KEY not in shown
    assert "x-api-key" not in {name.lower() for name in raw.headers}


def test_bad_settings_are_refused_by_name(fake: FakeAgileServer, client: AgileClient) -> None:
    with pytest.raises(aa.ConfigurationError) as refused:
        client.send(hello(), timeout=-1)
    assert refused.value.problems[0].field == "timeout"
    with pytest.raises(aa.ConfigurationError) as refused:
        client.with_options(retry=5)  # type: ignore[arg-type]
    assert refused.value.problems[0].field == "retry"
    assert fake.requests == ()
