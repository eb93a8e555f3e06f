"""The Batcher against FakeAgileServer: coalescing, pacing, failures, and one outcome each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from functools import partial

import anyio
import anyio.lowlevel
import pytest

import agile_async as aa
from agile_async import (
    AgileClient,
    Batcher,
    Message,
    RateLimit,
    RequestOutcome,
    RetryPolicy,
    SendOptions,
    TicketState,
    TokenBucket,
)
from agile_async.testing import FakeAgileServer, Fault, Hold

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(credit=Decimal("1000"), price_per_part=Decimal("0.01")),
]


class VirtualClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.now += max(delay, 0.0)
        await anyio.lowlevel.checkpoint()


async def no_sleep(_: float) -> None:
    await anyio.lowlevel.checkpoint()


def number(i: int) -> str:
    return f"+3934{i:08d}"


def sms(i: int, body: str = "Hello campaign") -> Message:
    return Message(destinations=number(i), sender="MyApp", body=body)


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client(retry=RetryPolicy(attempts=3, sleep=no_sleep)) as client:
        yield client


def sends(fake: FakeAgileServer) -> list[dict[str, object]]:
    return [r.json for r in fake.requests if r.path.endswith("/sms/send")]


async def test_concurrent_sends_are_coalesced_into_few_requests(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    receipts: list[aa.Receipt] = []

    async def one(i: int) -> None:
        receipts.append(await batcher.send(sms(i)))

    async with (
        client.batcher(max_latency=0.05, max_messages=500) as batcher,
        anyio.create_task_group() as tg,
    ):
        for i in range(200):
            tg.start_soon(one, i)
    assert len(receipts) == 200
    requests = sends(fake)
    assert len(requests) <= 2
    # Same text, many destinations: one message object per request (the bulk shape).
    assert all(len(r["messages"]) == 1 for r in requests)  # type: ignore[arg-type]
    sent_ids = sorted(a.message_id for a in fake.accepted)
    assert sent_ids == sorted(i for r in receipts for i in r.ids)
    assert batcher.statistics().accepted == 200
    assert batcher.statistics().requests == len(requests)


async def test_different_texts_share_a_request_as_separate_message_objects(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=0.05) as batcher:
        tickets = [await batcher.submit(sms(i, body=f"Hi {i % 3}")) for i in range(30)]
    assert all(t.state is TicketState.ACCEPTED for t in tickets)
    (request,) = sends(fake)
    assert len(request["messages"]) == 3  # type: ignore[arg-type]


async def test_different_options_never_share_a_request(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher() as batcher:
        await batcher.submit(sms(1))
        await batcher.submit(sms(2), options=SendOptions(enable_delivery=False))
    assert sorted(r["enableDelivery"] for r in sends(fake)) == [False, True]  # type: ignore[type-var]


async def test_a_lone_message_waits_at_most_max_latency(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=0.2) as batcher:
        start = anyio.current_time()
        ticket = await batcher.submit(sms(1))
        await anyio.wait_all_tasks_blocked()  # the batcher has done all it would do now
        assert sends(fake) == []  # still waiting for company
        receipt = await ticket.result()
        elapsed = anyio.current_time() - start
    assert 0.2 <= elapsed < 2.0
    assert receipt.ids == ticket.ids


async def test_flush_sends_without_waiting_for_latency(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=30) as batcher:
        ticket = await batcher.submit(sms(1))
        with anyio.fail_after(5):
            await batcher.flush()
        assert ticket.done()
        assert len(sends(fake)) == 1


async def test_a_full_queue_blocks_submit_and_refuses_submit_nowait(
    fake: FakeAgileServer,
) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold))
    async with (
        fake.client(retry=RetryPolicy(sleep=no_sleep)) as client,
        client.batcher(queue_capacity=10, max_messages=5, max_in_flight=1, max_latency=0) as b,
    ):
        for i in range(5):  # the first request (held)
            await b.submit(sms(i))
        with anyio.fail_after(5):
            await hold.wait_held()
        for i in range(5, 15):
            b.submit_nowait(sms(i))
        assert b.statistics().queued == 10
        with pytest.raises(aa.QueueFullError, match="10 of 10"):
            b.submit_nowait(sms(99))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(b.submit, sms(100))
            await anyio.wait_all_tasks_blocked()
            assert b.statistics().queued == 10  # submit() waits for room
            tasks.cancel_scope.cancel()
        hold.release()
    assert len(fake.accepted) == 15


async def test_memory_stays_bounded_by_the_queue(client: AgileClient) -> None:
    peak = 0
    async with client.batcher(queue_capacity=50, max_messages=20, max_latency=0.001) as b:
        for i in range(1000):
            await b.submit(sms(i))
            stats = b.statistics()
            peak = max(peak, stats.queued + stats.in_flight)
    assert b.statistics().accepted == 1000
    assert peak <= 50 + 4 * 20


async def test_bisection_isolates_one_bad_message_among_200(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    bad = number(137)
    fake.reject_destinations([bad], code=7)
    async with client.batcher(max_latency=0.05) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(200)]
    failed = [t for t in tickets if t.state is TicketState.FAILED]
    assert [t.message.destinations for t in failed] == [(bad,)]
    error = failed[0].exception()
    assert isinstance(error, aa.InvalidDestinationError)
    assert error.code == 7
    assert len(fake.accepted) == 199
    assert bad not in {a.destination for a in fake.accepted}
    stats = batcher.statistics()
    assert (stats.accepted, stats.failed) == (199, 1)
    assert stats.requests <= 2 * 8 + 1  # about 2 log2(200) requests, not 200


async def test_every_bad_message_gets_its_own_error(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.reject_destinations([number(3)], code=3)
    fake.reject_destinations([number(40)], code=26)
    async with client.batcher(max_latency=0.05) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(64)]
    errors = {t.message.destinations[0]: type(t.exception()) for t in tickets if t.exception()}
    assert errors == {
        number(3): aa.DestinationNotAllowedError,
        number(40): aa.SenderNotAllowedError,
    }


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        (Fault.error(status=401, code=1), aa.AuthenticationError),
        (Fault.error(status=402, code=2), aa.InsufficientCreditError),
        (Fault.error(status=403, code=100), aa.IPNotAllowedError),
    ],
)
async def test_account_errors_fail_everything_fast_and_stick(
    client: AgileClient, fake: FakeAgileServer, fault: Fault, cls: type[aa.APIError]
) -> None:
    fake.inject(fault, times=None)
    async with client.batcher(max_messages=10, max_in_flight=1, max_latency=0) as batcher:
        tickets = [batcher.submit_nowait(sms(i)) for i in range(100)]
        for ticket in tickets:
            with pytest.raises(cls):
                await ticket.result()
        with pytest.raises(cls):
            await batcher.submit(sms(1000))
        assert isinstance(batcher.error, cls)
    assert len(sends(fake)) == 1
    assert batcher.statistics().failed == 100


async def test_a_lost_response_makes_exactly_that_request_unknown(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.drop(after_processing=True))
    async with client.batcher(max_messages=10, max_in_flight=1, max_latency=0) as batcher:
        tickets = [batcher.submit_nowait(sms(i)) for i in range(30)]
    states = [t.state for t in tickets]
    assert states.count(TicketState.UNKNOWN) == 10
    assert states.count(TicketState.ACCEPTED) == 20
    unknown = [t for t in tickets if t.state is TicketState.UNKNOWN]
    error = unknown[0].exception()
    assert isinstance(error, aa.OutcomeUnknownError)
    assert sorted(error.ids) == sorted(i for t in unknown for i in t.ids)
    # Never resent: each id reached the provider exactly once.
    accepted_ids = [a.message_id for a in fake.accepted]
    assert len(accepted_ids) == len(set(accepted_ids)) == 30


async def test_a_cancelled_caller_withdraws_a_queued_message(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=0.3) as batcher:
        with anyio.move_on_after(0.05):
            await batcher.send(sms(1))
        assert batcher.statistics().withdrawn == 1
        await batcher.send(sms(2))
    assert [a.destination for a in fake.accepted] == [number(2)]


async def test_a_cancelled_caller_still_gets_its_message_recorded(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.inject(Fault.delay(0.3))
    async with client.batcher(max_latency=0) as batcher:
        with anyio.move_on_after(0.1):
            await batcher.send(sms(1))
        assert batcher.statistics().in_flight == 1
    assert batcher.statistics().accepted == 1
    assert len(fake.accepted) == 1


async def test_leaving_the_block_sends_everything_queued(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=60) as batcher:
        tickets = [await batcher.submit(sms(i)) for i in range(25)]
    assert all(t.state is TicketState.ACCEPTED for t in tickets)
    assert len(fake.accepted) == 25
    with pytest.raises(aa.ClientClosedError):
        await batcher.submit(sms(99))


async def test_aclose_cancel_fails_the_queued_and_finishes_the_in_flight(
    fake: FakeAgileServer,
) -> None:
    hold = Hold()
    fake.inject(Fault.hold(hold))
    async with (
        fake.client() as client,
        client.batcher(max_messages=5, max_in_flight=1, max_latency=0) as batcher,
        anyio.create_task_group() as tasks,
    ):
        tickets = [batcher.submit_nowait(sms(i)) for i in range(20)]
        with anyio.fail_after(5):
            await hold.wait_held()  # the first request is in flight
        tasks.start_soon(partial(batcher.aclose, cancel=True))
        await anyio.wait_all_tasks_blocked()  # the queued failed; aclose waits for the request
        assert [t.done() for t in tickets] == [False] * 5 + [True] * 15
        hold.release()
    states = [t.state for t in tickets]
    assert states[:5] == [TicketState.ACCEPTED] * 5
    assert states[5:] == [TicketState.FAILED] * 15
    with pytest.raises(aa.ClientClosedError, match="closed before"):
        await tickets[-1].result()
    assert len(fake.accepted) == 5


async def test_cancelling_the_whole_batcher_gives_every_message_an_outcome(
    fake: FakeAgileServer,
) -> None:
    hold = Hold()  # never released: the request is cancelled while held
    fake.inject(Fault.hold(hold))
    tickets: list[aa.Ticket] = []
    async with fake.client() as client:
        with anyio.CancelScope() as scope:
            async with client.batcher(max_messages=5, max_in_flight=1, max_latency=0) as b:
                tickets.extend(b.submit_nowait(sms(i)) for i in range(20))
                with anyio.fail_after(5):
                    await hold.wait_held()
                scope.cancel()
                await anyio.sleep_forever()
    assert all(t.done() for t in tickets)
    assert [t.state for t in tickets[:5]] == [TicketState.UNKNOWN] * 5
    assert {t.state for t in tickets[5:]} == {TicketState.FAILED}


async def test_invalid_messages_are_refused_at_submit(client: AgileClient) -> None:
    async with client.batcher() as batcher:
        with pytest.raises(aa.ValidationError, match="destinations"):
            await batcher.submit(Message(destinations="12", sender="MyApp", body="x"))
        await batcher.submit(Message(destinations=number(1), sender="A", body="x", ids=["dup"]))
        with pytest.raises(aa.ValidationError, match="already queued"):
            await batcher.submit(Message(destinations=number(2), sender="A", body="x", ids=["dup"]))
        assert batcher.statistics().queued == 1


def test_a_global_id_in_batch_options_is_refused() -> None:
    with pytest.raises(ValueError, match="global_id: must be None"):
        aa.BatchSettings(options=SendOptions(global_id="fixed"))


async def test_results_can_be_observed_as_they_happen(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.reject_destinations([number(5)], code=7)
    outcomes: list[RequestOutcome] = []
    async with client.batcher(on_result=outcomes.append, max_latency=0.05) as batcher:
        for i in range(50):
            await batcher.submit(sms(i))
    by_state: dict[TicketState, int] = {}
    for outcome in outcomes:
        by_state[outcome.state] = by_state.get(outcome.state, 0) + outcome.messages
    assert by_state == {TicketState.ACCEPTED: 49, TicketState.FAILED: 1}


async def test_the_credit_threshold_stops_the_batcher(fake: FakeAgileServer) -> None:
    fake.credit = Decimal("1.00")
    async with (
        fake.client() as client,
        client.batcher(
            credit_threshold=Decimal("0.75"), max_messages=10, max_in_flight=1, max_latency=0
        ) as batcher,
    ):
        tickets = [batcher.submit_nowait(sms(i)) for i in range(100)]
    assert batcher.statistics().credit == Decimal("0.70")
    assert [t.state for t in tickets].count(TicketState.ACCEPTED) == 30
    assert isinstance(tickets[-1].exception(), aa.CreditThresholdError)
    assert isinstance(batcher.error, aa.InsufficientCreditError)


async def test_retries_are_counted_and_429_slows_the_limiter(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit(rate=100, burst=10), clock=clock, sleep=clock.sleep)
    fake.inject(Fault.rate_limited(retry_after=0))
    async with client.batcher(limiter=bucket, max_latency=0) as batcher:
        await batcher.send(sms(1))
    assert batcher.statistics().retries == 1
    assert bucket.factor == 0.5
    clock.now += 15.0  # half the recovery time later...
    assert bucket.factor == pytest.approx(1.0)


async def test_rate_is_accurate_on_a_virtual_clock(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    clock = VirtualClock()
    limit = RateLimit(rate=200, burst=20)
    bucket = TokenBucket(limit, clock=clock, sleep=clock.sleep)
    start = clock.now
    async with client.batcher(limiter=bucket, rate_limit=limit, max_latency=0) as batcher:
        for i in range(1000):
            await batcher.submit(sms(i))
    elapsed = clock.now - start
    # The burst goes at once; the rest at exactly 200 messages per virtual second.
    assert elapsed == pytest.approx((1000 - 20) / 200, rel=0.02)
    assert max(len(r["messages"][0]["destinations"]) for r in sends(fake)) <= 20  # type: ignore[index]
    assert len(fake.accepted) == 1000


def test_batcher_is_exported() -> None:
    assert aa.Batcher is Batcher


async def test_before_send_runs_before_each_request_and_can_refuse(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    seen: list[tuple[int, str, int]] = []

    async def before_send(tickets: Sequence[aa.Ticket], global_id: str) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append((len(tickets), global_id, len(fake.requests)))
        if any(t.message.body == "refuse" for t in tickets):
            raise RuntimeError("journal says no")

    async with client.batcher(before_send=before_send, max_messages=5, max_latency=0) as b:
        tickets = [b.submit_nowait(sms(i)) for i in range(10)]
        await b.flush()
        refused = await b.submit(sms(99, body="refuse"))
    assert [t.state for t in tickets] == [TicketState.ACCEPTED] * 10
    assert refused.state is TicketState.FAILED
    assert isinstance(refused.exception(), RuntimeError)
    assert [n for n, _, _ in seen] == [5, 5, 1]
    # Each hook ran before its own request reached the provider (requests may overlap).
    assert all(before <= i for i, (_, _, before) in enumerate(seen))
    assert [r["globalId"] for r in sends(fake)] == [g for _, g, _ in seen[:2]]


async def test_an_async_on_result_is_awaited_in_order(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    fake.reject_destinations([number(7)], code=7)
    written: list[tuple[TicketState, int]] = []

    async def journal(outcome: RequestOutcome) -> None:
        await anyio.lowlevel.checkpoint()  # a write off the event loop awaits
        written.append((outcome.state, outcome.messages))

    async with client.batcher(on_result=journal, max_messages=10, max_latency=0) as b:
        for i in range(40):
            b.submit_nowait(sms(i))
    assert sum(n for _, n in written) == 40
    assert sum(n for s, n in written if s is TicketState.FAILED) == 1
