"""The Batcher on its edges: cancelled blocks, bisection cut short, errors from the block,
crowds of submitters waiting for room. Exactly one outcome per message, reported once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from agile_async import (
    AgileClient,
    Batcher,
    BatcherStoppedError,
    ClientClosedError,
    Cost,
    Message,
    OutcomeUnknownError,
    RequestOutcome,
    RetryPolicy,
    Ticket,
    TicketState,
    ValidationError,
)
from agile_async.testing import FakeAgileServer, Fault

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(credit=Decimal("1000"), price_per_part=Decimal("0.01")),
]


async def no_sleep(_: float) -> None:
    await anyio.lowlevel.checkpoint()


def sms(i: int) -> Message:
    return Message(destinations=f"+3934{i:08d}", sender="MyApp", body="Hello")


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client(retry=RetryPolicy(attempts=1, sleep=no_sleep)) as client:
        yield client


class RequestCounter:
    """A ``before_send`` hook: counts requests as they go out (the fake records a request
    only once it has answered), and sets ``reached`` when the ``target``-th goes."""

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.reached = anyio.Event()

    async def __call__(self, tickets: object, global_id: str) -> None:
        self.count += 1
        if self.count == self.target:
            self.reached.set()


def assert_one_outcome_each(
    tickets: list[Ticket], outcomes: list[RequestOutcome], batcher: Batcher
) -> None:
    """Every ticket is settled, reported to on_result exactly once, and counted."""
    assert all(t.done() for t in tickets), [t for t in tickets if not t.done()]
    reported = Counter(id(t) for outcome in outcomes for t in outcome.tickets)
    assert all(reported[id(t)] == 1 for t in tickets), "each ticket is reported exactly once"
    assert sum(reported.values()) == len(tickets)
    for outcome in outcomes:
        assert all(t.state is outcome.state for t in outcome.tickets)
    stats = batcher.statistics()
    assert stats.queued == stats.in_flight == 0
    total = stats.accepted + stats.failed + stats.unknown + stats.withdrawn
    assert total == len(tickets)


async def test_cancelling_the_block_during_a_bisection_settles_both_halves(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    """Defect 1 and 2: the second half of a bisection, not yet sent again when the block is
    cancelled, is failed as not sent; the half under way is unknown; all are reported."""
    fake.inject(Fault.error(status=400, code=7, data="invalid destination"))
    fake.inject(Fault.delay(30))  # the first half hangs until the block is cancelled
    outcomes: list[RequestOutcome] = []
    tickets: list[Ticket] = []
    requests = RequestCounter(2)
    with anyio.CancelScope() as scope:
        async with client.batcher(
            on_result=outcomes.append, before_send=requests, max_latency=0, max_messages=100
        ) as batcher:
            tickets.extend([batcher.submit_nowait(sms(i)) for i in range(40)])
            await requests.reached.wait()
            scope.cancel()
            await anyio.sleep_forever()
    assert_one_outcome_each(tickets, outcomes, batcher)
    first, second = tickets[:20], tickets[20:]
    assert {t.state for t in first} == {TicketState.UNKNOWN}
    assert all(isinstance(t.exception(), OutcomeUnknownError) for t in first)
    assert {t.state for t in second} == {TicketState.FAILED}
    assert all(isinstance(t.exception(), ClientClosedError) for t in second)
    assert not fake.accepted


async def test_outcomes_settled_after_a_cancelled_block_reach_an_async_on_result(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    """Defect 2: an async on_result (a journal) sees requests cancelled in flight and
    messages failed in the queue, each once, although the reporter task was cancelled."""
    fake.inject(Fault.delay(30), times=None)
    recorded: list[RequestOutcome] = []

    async def journal(outcome: RequestOutcome) -> None:
        await anyio.lowlevel.checkpoint()  # a real write awaits: the cancellation must not cut it
        recorded.append(outcome)

    tickets: list[Ticket] = []
    requests = RequestCounter(2)
    with anyio.CancelScope() as scope:
        async with client.batcher(
            on_result=journal, before_send=requests, max_latency=0, max_messages=10, max_in_flight=2
        ) as batcher:
            tickets.extend([batcher.submit_nowait(sms(i)) for i in range(100)])
            await requests.reached.wait()
            scope.cancel()
    assert_one_outcome_each(tickets, recorded, batcher)
    states = Counter(t.state for t in tickets)
    assert states == {TicketState.UNKNOWN: 20, TicketState.FAILED: 80}


async def test_an_aclose_with_cancel_reports_every_queued_message(client: AgileClient) -> None:
    outcomes: list[RequestOutcome] = []
    async with client.batcher(on_result=outcomes.append, max_latency=60) as batcher:
        tickets = [batcher.submit_nowait(sms(i)) for i in range(30)]
        await batcher.aclose(cancel=True)
    assert_one_outcome_each(tickets, outcomes, batcher)
    assert {t.state for t in tickets} == {TicketState.FAILED}


async def test_a_send_cancelled_while_queued_is_reported_withdrawn(client: AgileClient) -> None:
    outcomes: list[RequestOutcome] = []
    async with client.batcher(on_result=outcomes.append, max_latency=60) as batcher:
        with anyio.move_on_after(0.01):
            await batcher.send(sms(1))
        await batcher.aclose(cancel=True)
    assert [o.state for o in outcomes] == [TicketState.WITHDRAWN]
    assert batcher.statistics().withdrawn == 1


async def test_an_error_raised_in_the_block_comes_out_as_itself(client: AgileClient) -> None:
    """Defect 6: no ExceptionGroup around a lone error from the caller's own code."""
    with pytest.raises(ValidationError) as caught:
        async with client.batcher() as batcher:
            await batcher.send(Message(destinations="12", sender="MyApp", body="Hi"))
    assert caught.value.problems[0].field.startswith("message.destinations")

    class Boom(Exception):
        pass

    async def submit_then_fail() -> None:
        async with client.batcher() as batcher:
            await batcher.submit(sms(1))
            raise Boom

    with pytest.raises(Boom):
        await submit_then_fail()


async def test_an_error_in_the_fakes_delivering_block_comes_out_as_itself() -> None:
    fake = FakeAgileServer()
    with pytest.raises(KeyError):
        async with fake.delivering():
            raise KeyError("mine")


async def test_every_waiting_submitter_gets_in(client: AgileClient, fake: FakeAgileServer) -> None:
    """Defect 10: ten tasks, room for two, a slow provider: every submit returns."""
    fake.inject(Fault.delay(0.02), times=None)
    tickets: list[Ticket] = []

    async def submitter(i: int) -> None:
        tickets.append(await batcher.submit(sms(i)))

    with anyio.fail_after(10):
        async with (
            client.batcher(queue_capacity=2, max_messages=2, max_latency=0) as batcher,
            anyio.create_task_group() as tasks,
        ):
            for i in range(10):
                tasks.start_soon(submitter, i)
    assert len(tickets) == 10
    assert {t.state for t in tickets} == {TicketState.ACCEPTED}
    assert len(fake.accepted) == 10


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_crowd_of_waiters_with_random_cancellations(
    client: AgileClient, fake: FakeAgileServer, seed: int
) -> None:
    """Many more waiting submitters than room, some cancelled at random while they wait:
    every live waiter gets in within a bounded time, and every message it queued is sent;
    a cancelled waiter queued nothing."""
    rng = random.Random(seed)
    fake.inject(Fault.delay(0.002), times=None)
    submitted: list[Ticket] = []
    cancelled = 0

    async def submitter(i: int, cancel_after: float | None) -> None:
        nonlocal cancelled
        with anyio.CancelScope() as scope:
            if cancel_after is not None:
                scope.deadline = anyio.current_time() + cancel_after
            submitted.append(await batcher.submit(sms(i)))
        if scope.cancelled_caught:
            cancelled += 1

    with anyio.fail_after(20):
        async with (
            client.batcher(queue_capacity=5, max_messages=5, max_latency=0) as batcher,
            anyio.create_task_group() as tasks,
        ):
            for i in range(200):
                cancel_after = rng.uniform(0, 0.05) if rng.random() < 0.3 else None
                tasks.start_soon(submitter, i, cancel_after)
    assert len(submitted) + cancelled == 200
    assert {t.state for t in submitted} == {TicketState.ACCEPTED}
    sent = sorted(d for m in fake.accepted for d in [m.destination])
    assert sent == sorted(t.message.destinations[0] for t in submitted)


async def test_a_slow_on_result_is_not_cut_short_while_the_batcher_runs(
    client: AgileClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal may wait out its store's outage: no time limit until cancellation."""
    monkeypatch.setattr("agile_async._reporting.REPORT_GRACE", 0.01)
    recorded: list[RequestOutcome] = []

    async def slow_journal(outcome: RequestOutcome) -> None:
        await anyio.sleep(0.05)  # five times the (shortened) grace, a real-time timeout
        recorded.append(outcome)

    async with client.batcher(on_result=slow_journal, max_latency=0, max_messages=5) as b:
        tickets = [b.submit_nowait(sms(i)) for i in range(15)]
    assert_one_outcome_each(tickets, recorded, b)


async def test_a_hung_on_result_gets_a_grace_period_once_cancelled(
    client: AgileClient, fake: FakeAgileServer, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr("agile_async._reporting.REPORT_GRACE", 0.05)
    fake.inject(Fault.delay(30), times=None)

    async def hung_journal(outcome: RequestOutcome) -> None:
        await anyio.sleep_forever()

    requests = RequestCounter(1)
    with anyio.fail_after(5), anyio.CancelScope() as scope:
        async with client.batcher(
            on_result=hung_journal, before_send=requests, max_latency=0, max_messages=5
        ) as batcher:
            tickets = [batcher.submit_nowait(sms(i)) for i in range(10)]
            await requests.reached.wait()
            scope.cancel()
    assert all(t.done() for t in tickets)
    assert "within 0 s of the batcher's cancellation" in caplog.text


async def test_a_failing_limiter_stops_the_batcher_without_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its backend is gone: the messages are not sent (BatcherStoppedError), one warning."""

    class GoneLimiter:
        async def acquire(self, cost: Cost) -> None:
            raise OSError("the limiter's backend is gone")

        def penalize(self, retry_after: float | None) -> None:
            pass

    fake = FakeAgileServer()
    async with fake.client() as client, client.batcher(limiter=GoneLimiter()) as batcher:
        ticket = await batcher.submit(sms(1))
        with pytest.raises(BatcherStoppedError):
            await ticket.result()
        with pytest.raises(BatcherStoppedError):
            await batcher.submit(sms(2))
    assert not fake.accepted
    assert "internal error" not in caplog.text
    assert "backend is gone" in caplog.text
