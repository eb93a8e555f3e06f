"""``agile_async.sync``: the blocking client, from plain threads, against the fake provider.

The sync layer only forwards, so these tests look for what forwarding can break: the twins'
signatures, thread safety, the lifecycle of the loop thread, and what a thread sees while
another closes the client.
"""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import agile_async
import agile_async.sync
from agile_async import (
    APIError,
    ClientClosedError,
    ClientState,
    InvalidDestinationError,
    Message,
    QueueFullError,
    RequestOutcome,
    RetryPolicy,
    TicketState,
    ValidationError,
)
from agile_async.segments import PriceList
from agile_async.sync import AgileClient, Batcher, Ticket
from agile_async.testing import FakeAgileServer, Fault, Hold
from tests._children import ROOT

#: Bounds every wait, so a hang fails the test instead of stalling the suite.
GUARD = 30.0


def sms(destination: str = "+393471234567", body: str = "Hi") -> Message:
    return Message(destinations=destination, sender="MyApp", body=body)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+39347{n:07d}" for n in range(start, start + count)]


def sync_client(fake: FakeAgileServer, **kwargs: Any) -> AgileClient:
    return AgileClient(
        api_key=fake.api_key, base_url=fake.base_url, transport=fake.transport(), **kwargs
    )


@pytest.fixture
def fake() -> FakeAgileServer:
    return FakeAgileServer(credit=Decimal("1000"), price_per_part=Decimal("0.01"))


@pytest.fixture
def client(fake: FakeAgileServer) -> Iterator[AgileClient]:
    with sync_client(fake) as client:
        yield client


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("agile_async.sync.")]


# -- one codebase: every async method has its blocking twin ------------------------------

#: Async names whose blocking twin is named otherwise.
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}

#: Public async members with no blocking twin, and why.
NOT_FORWARDED: dict[type, set[str]] = {
    agile_async.Ticket: {
        # The batcher's bookkeeping, not the message's outcome.
        "key",
    },
}

#: Ticket waits gain ``timeout`` (as ``concurrent.futures.Future`` has it); ``exception``
#: waits too, as a future's does; ``wait`` says whether the outcome is known.
TIMEOUT = inspect.Parameter(
    "timeout", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation="float | None"
)
BLOCKING_WAITS = {"result": None, "exception": None, "wait": "bool"}


def public_members(cls: type) -> set[str]:
    names = {name for name in dir(cls) if not name.startswith("_")}
    return names | ({"__aenter__", "__aexit__"} & set(dir(cls)))


PAIRS = [
    (agile_async.AgileClient, AgileClient),
    (agile_async.Batcher, Batcher),
    (agile_async.Ticket, Ticket),
]


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_async_member_has_a_blocking_twin(async_cls: type, sync_cls: type) -> None:
    skipped = NOT_FORWARDED.get(async_cls, set())
    assert skipped <= public_members(async_cls), "an exemption names a member that is gone"
    for name in sorted(public_members(async_cls) - skipped):
        twin = RENAMED.get(name, name)
        assert hasattr(sync_cls, twin), f"{sync_cls.__module__}.{sync_cls.__name__}.{twin}"
        original = inspect.getattr_static(async_cls, name)
        mirrored = inspect.getattr_static(sync_cls, twin)
        if isinstance(original, property):
            assert isinstance(mirrored, property), twin
        if not callable(original) or isinstance(original, property):
            continue
        if async_cls is agile_async.Batcher and name in ("__aenter__", "__aexit__"):
            continue  # anyio's mixin, typed generically; the blocking ones are checked below
        assert_same_signature(async_cls, name, original, mirrored)


def assert_same_signature(async_cls: type, name: str, original: Any, mirrored: Any) -> None:
    expected = inspect.signature(original)
    if async_cls is agile_async.Ticket and name in BLOCKING_WAITS:
        returns = BLOCKING_WAITS[name] or expected.return_annotation
        expected = expected.replace(
            parameters=[*expected.parameters.values(), TIMEOUT], return_annotation=returns
        )
    actual = inspect.signature(mirrored)
    assert actual == expected, f"{name}: {actual} != {expected}"
    assert inspect.iscoroutinefunction(mirrored) is False, name


def test_the_constructors_are_the_same() -> None:
    assert inspect.signature(AgileClient.__init__) == inspect.signature(
        agile_async.AgileClient.__init__
    )


def test_the_blocking_context_managers_mirror_the_async_ones() -> None:
    exit_signature = inspect.signature(agile_async.Batcher.__aexit__)
    assert inspect.signature(Batcher.__exit__).parameters.keys() == exit_signature.parameters.keys()
    assert inspect.signature(AgileClient.__enter__).return_annotation == "AgileClient"
    assert inspect.signature(Batcher.__enter__).return_annotation == "Batcher"


def test_instance_attributes_are_mirrored(fake: FakeAgileServer) -> None:
    original = fake.client()
    with sync_client(fake) as client:
        for name in (n for n in vars(original) if not n.startswith("_")):
            assert getattr(client, name) == getattr(original, name), name


# -- sending from threads --------------------------------------------------------------


def test_send_credit_and_check_credit_block_for_the_answer(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    result = client.send([sms("+393471234567"), sms("+393471234568", body="Ciao")])
    assert [m.destination for m in fake.accepted] == ["+393471234567", "+393471234568"]
    assert result.ids == tuple(m.message_id for m in fake.accepted)
    assert client.credit() == Decimal("999.98") == client.last_known_credit
    check = client.check_credit([sms()] * 3, prices=PriceList({"39": "0.01"}))
    assert check.sufficient
    assert check.estimate.total == Decimal("0.03")


def test_errors_are_the_async_clients_own(fake: FakeAgileServer, client: AgileClient) -> None:
    with pytest.raises(ValidationError) as invalid:
        client.send(sms("03471234567"))
    assert invalid.value.problems[0].field == "messages[0].destinations[0]"
    fake.reject_destinations(["+393470000000"])
    with pytest.raises(InvalidDestinationError):
        client.send(sms("+393470000000"))
    assert fake.accepted == ()


def test_many_threads_share_one_client_and_one_loop(fake: FakeAgileServer) -> None:
    before = len(loop_threads())
    with sync_client(fake) as client:
        assert len(loop_threads()) == before + 1
        destinations = numbers(160)

        def send(destination: str) -> tuple[str, ...]:
            return client.send(sms(destination)).ids

        with ThreadPoolExecutor(max_workers=16) as pool:
            ids = [f.result(GUARD) for f in [pool.submit(send, d) for d in destinations]]
        assert len(loop_threads()) == before + 1  # no thread of its own per caller
    assert sorted(m.destination for m in fake.accepted) == destinations
    assert sorted(i for group in ids for i in group) == sorted(m.message_id for m in fake.accepted)
    assert len(loop_threads()) == before


# -- the blocking batcher ----------------------------------------------------------------


def test_a_batcher_shared_by_threads_fills_requests(fake: FakeAgileServer) -> None:
    """Four threads submit 100 each; requests leave full (100), so exactly four of them."""
    with sync_client(fake) as client:
        with client.batcher(max_messages=100, max_latency=GUARD) as batcher:

            def submit_all(start: int) -> list[Ticket]:
                return [batcher.submit(sms(d)) for d in numbers(100, start)]

            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [pool.submit(submit_all, start) for start in (0, 100, 200, 300)]
                tickets = [t for f in futures for t in f.result(GUARD)]
        receipts = [ticket.result(timeout=GUARD) for ticket in tickets]
        assert batcher.statistics().accepted == 400
    assert all(ticket.done() and ticket.state is TicketState.ACCEPTED for ticket in tickets)
    assert len({r.global_id for r in receipts}) == 4 == len(fake.requests)
    assert sorted(m.message_id for m in fake.accepted) == sorted(t.ids[0] for t in tickets)
    assert batcher.credit == Decimal("996")


def test_threads_blocked_in_send_share_one_request(fake: FakeAgileServer) -> None:
    """Sixteen threads each wait in ``send``; the request leaves once it holds all 16."""
    client = sync_client(fake)
    with (
        client,
        client.batcher(max_messages=16, max_latency=GUARD) as batcher,
        ThreadPoolExecutor(max_workers=16) as pool,
    ):
        sending = [pool.submit(batcher.send, sms(d)) for d in numbers(16)]
        receipts = [future.result(GUARD) for future in sending]
    assert len({receipt.global_id for receipt in receipts}) == 1 == len(fake.requests)
    assert sorted(r.ids[0] for r in receipts) == sorted(m.message_id for m in fake.accepted)


def test_send_blocks_for_the_receipt(fake: FakeAgileServer, client: AgileClient) -> None:
    with client.batcher(max_latency=0) as batcher:
        receipt = batcher.send(sms())
    assert receipt.ids == (fake.accepted[0].message_id,)
    [request] = fake.requests
    assert request.json is not None
    assert receipt.global_id == request.json["globalId"]


def test_a_ticket_is_a_future_that_waits_with_a_timeout(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold), path="/sms/send")
    with hold, client.batcher(max_latency=0) as batcher:
        ticket = batcher.submit(sms())
        assert hold.wait_held_blocking(timeout=GUARD)
        assert not ticket.done()
        assert ticket.state is TicketState.IN_FLIGHT
        assert ticket.receipt() is None
        assert ticket.wait(timeout=0.01) is False
        with pytest.raises(TimeoutError):
            ticket.result(timeout=0.01)
        with pytest.raises(TimeoutError):
            ticket.exception(timeout=0.01)
        hold.release()
        receipt = ticket.result(timeout=GUARD)
    assert ticket.wait() is True
    assert ticket.exception() is None
    assert ticket.receipt() == receipt
    assert ticket.ids == receipt.ids == (fake.accepted[0].message_id,)
    assert ticket.message.body == "Hi"
    assert ticket.estimated_parts == 1
    assert repr(ticket) == f"<agile_async.sync.Ticket ids={list(ticket.ids)!r} state=accepted>"


def test_a_failed_message_raises_from_result(fake: FakeAgileServer, client: AgileClient) -> None:
    fake.reject_destinations(["+393470000001"])
    with client.batcher(max_latency=0) as batcher:
        bad = batcher.submit(sms("+393470000001"))
        good = batcher.submit(sms("+393470000002"))
    assert isinstance(bad.exception(), InvalidDestinationError)
    with pytest.raises(APIError) as raised:
        bad.result()
    assert raised.value.ids == bad.ids
    assert bad.state is TicketState.FAILED
    assert good.result().ids == good.ids


def test_submit_refuses_at_once_what_the_async_batcher_refuses(client: AgileClient) -> None:
    with client.batcher(max_latency=GUARD, queue_capacity=1) as batcher:
        with pytest.raises(ValidationError):
            batcher.submit(sms("03471234567"))
        first = batcher.submit_nowait(sms("+393470000001"))
        with pytest.raises(QueueFullError):
            batcher.submit_nowait(sms("+393470000002"))
        batcher.flush()
        assert first.done()
        assert batcher.statistics().queued == 0
    assert first.result().ids == first.ids


def test_a_batcher_is_entered_once(client: AgileClient) -> None:
    batcher = client.batcher()
    with batcher, pytest.raises(RuntimeError, match="already been entered"), batcher:
        pass
    with pytest.raises(RuntimeError, match="only once"), batcher:
        pass


def test_close_cancel_fails_what_is_queued(client: AgileClient) -> None:
    with client.batcher(max_latency=GUARD) as batcher:
        ticket = batcher.submit(sms())
        batcher.close(cancel=True)
    assert isinstance(ticket.exception(), ClientClosedError)


def test_callbacks_run_on_the_loop_and_cannot_call_back_blocking(
    fake: FakeAgileServer, client: AgileClient
) -> None:
    seen: list[tuple[str, BaseException | None]] = []

    def on_result(outcome: RequestOutcome) -> None:
        try:
            client.credit()
        except RuntimeError as error:
            seen.append((threading.current_thread().name, error))

    with client.batcher(max_latency=0, on_result=on_result) as batcher:
        batcher.send(sms())
    [(thread, error)] = seen
    assert thread.startswith("agile_async.sync.AgileClient-")
    assert "event-loop thread" in str(error)


# -- lifecycle ---------------------------------------------------------------------------


def state_of(client: AgileClient) -> ClientState:
    """The state now (a call, so a type checker does not keep an earlier narrowing)."""
    return client.state


def test_close_twice_and_use_after_close(fake: FakeAgileServer) -> None:
    before = len(loop_threads())
    client = sync_client(fake)
    assert client.state is ClientState.UNOPENED
    client.send(sms())
    client.close()
    client.close()
    assert client.is_closed
    assert state_of(client) is ClientState.CLOSED
    assert len(loop_threads()) == before
    for call in (lambda: client.send(sms()), client.credit, client.batcher):
        with pytest.raises(ClientClosedError, match="has been closed"):
            call()
    with pytest.raises(ClientClosedError), client:
        pass
    assert "state='closed'" in repr(client)


def test_with_opens_and_closes(fake: FakeAgileServer) -> None:
    with sync_client(fake) as client:
        assert client.state is ClientState.OPENED
    assert state_of(client) is ClientState.CLOSED
    with pytest.raises(ClientClosedError):
        client.credit()


def test_a_bad_configuration_starts_no_thread() -> None:
    before = len(loop_threads())
    with pytest.raises(agile_async.ConfigurationError):
        AgileClient(api_key="k", base_url="http://insecure.example/")
    assert len(loop_threads()) == before


def test_closing_stops_a_send_under_way_in_another_thread(fake: FakeAgileServer) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold), path="/sms/send")
    client = sync_client(fake, retry=RetryPolicy.never())
    with hold, ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(client.send, sms())
        assert hold.wait_held_blocking(timeout=GUARD)
        client.close()
        with pytest.raises(ClientClosedError, match="closed before this request was answered"):
            sending.result(GUARD)
    assert fake.accepted == ()


def test_closing_inside_a_batcher_block_does_not_wait_for_the_block(fake: FakeAgileServer) -> None:
    before = len(loop_threads())
    client = sync_client(fake)
    with client.batcher(max_latency=GUARD) as batcher:
        client.close()
        assert len(loop_threads()) == before + 1  # the block keeps the loop
        ticket = batcher.submit(sms())
    assert isinstance(ticket.exception(), ClientClosedError)
    assert batcher.statistics().failed == 1  # read after the loop stopped
    assert len(loop_threads()) == before
    assert fake.accepted == ()


def test_a_client_dropped_unclosed_stops_its_thread(fake: FakeAgileServer) -> None:
    before = len(loop_threads())
    client = sync_client(fake)
    client.send(sms())
    del client
    gc.collect()
    assert len(loop_threads()) == before


def test_a_client_dropped_on_its_own_loop_thread_is_closed_all_the_same(
    fake: FakeAgileServer,
) -> None:
    """The last reference goes on the loop's thread (as when a callback running there drops
    it), where the finalizer cannot wait for the loop: it closes the client from a thread of
    its own instead. (A batcher keeps its client alive, so its callbacks no longer can; the
    loop is reached directly here.)"""
    before = set(loop_threads())
    holder = [sync_client(fake)]
    holder[0].send(sms())
    dropped = weakref.ref(holder[0])
    loop = holder[0]._loop
    loop.call(holder.clear)
    assert dropped() is None
    for thread in set(loop_threads()) - before:
        thread.join(GUARD)
    assert set(loop_threads()) == before


def test_a_client_never_closed_does_not_hang_the_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "unclosed.py"
    script.write_text(
        textwrap.dedent(
            """
            from agile_async import Message
            from agile_async.sync import AgileClient
            from agile_async.testing import FakeAgileServer

            fake = FakeAgileServer()
            client = AgileClient(
                api_key=fake.api_key, base_url=fake.base_url, transport=fake.transport()
            )
            with client.batcher() as batcher:
                ticket = batcher.submit(
                    Message(destinations="+393471234567", sender="MyApp", body="Hi")
                )
            print(client.send(Message(destinations="+393471234568", sender="A", body="Hi")).ids)
            KEEP = client  # referenced until the interpreter exits
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=GUARD,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("('")


# -- over real TLS -----------------------------------------------------------------------


@pytest.mark.tls
def test_threads_share_one_pool_over_real_tls(fake: FakeAgileServer) -> None:
    with fake.serve_tls() as server:
        transport = httpx.AsyncHTTPTransport(verify=server.ssl_context())
        with AgileClient(
            api_key=fake.api_key, base_url=server.base_url, transport=transport
        ) as client:

            def send(destination: str) -> object:
                return client.send(sms(destination))

            with ThreadPoolExecutor(max_workers=8) as pool:
                for future in [pool.submit(send, d) for d in numbers(40)]:
                    future.result(GUARD)
            assert client.credit() == Decimal("999.60")
    assert sorted(m.destination for m in fake.accepted) == numbers(40)


def test_submit_many_gives_blocking_tickets_or_a_count(fake: FakeAgileServer) -> None:
    with sync_client(fake) as client, client.batcher(max_latency=0.001) as batcher:
        tickets = batcher.submit_many(
            [("+393471000001", "one"), ("+393471000002", "two", "mine")], sender="Shop"
        )
        assert batcher.submit_many([("+393471000003", "three")], sender="Shop", handles=False) == 1
        receipts = [ticket.result(timeout=10) for ticket in tickets]
        assert batcher.state is agile_async.BatcherState.RUNNING
    assert receipts[1].ids == ("mine",)
    assert len(fake.accepted) == 3
