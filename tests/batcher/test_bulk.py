"""submit_many(), the Batcher's life as a state, lazy receipts, shared wake-ups."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from functools import partial

import anyio
import pytest

from agile_async import (
    AgileClient,
    BatcherState,
    ClientClosedError,
    ConfigurationError,
    Cost,
    InsufficientCreditError,
    InvalidDestinationError,
    Message,
    MessageRow,
    RequestOutcome,
    Ticket,
    TicketState,
    ValidationError,
)
from agile_async.testing import FakeAgileServer, Fault, Hold

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.fake(credit=Decimal("1000"), price_per_part=Decimal("0.01")),
]


def number(i: int) -> str:
    return f"+3934{i:08d}"


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client() as client:
        yield client


def sends(fake: FakeAgileServer) -> list[dict[str, object]]:
    return [r.json for r in fake.requests if r.path.endswith("/sms/send")]


async def test_messages_and_rows_are_queued_in_one_call_in_order(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    items: list[Message | MessageRow | tuple[str, ...]] = [
        Message(destinations=number(0), sender="Shop", body="A message"),
        MessageRow(number(1), "A row with an id", id="row-1"),
        (number(2), "A plain tuple"),
        (number(3), "A tuple with its own id and sender", "row-3", "Other"),
    ]
    async with client.batcher(max_latency=0.01) as batcher:
        tickets = await batcher.submit_many(items, sender="Shop")
        receipts = [await ticket.result() for ticket in tickets]
    assert [t.state for t in tickets] == [TicketState.ACCEPTED] * 4
    assert receipts[1].ids == ("row-1",)
    assert receipts[3].ids == ("row-3",)
    assert receipts[3].message.sender == "Other"
    assert receipts[2].message == Message(
        destinations=number(2), sender="Shop", body="A plain tuple", ids=receipts[2].ids
    )
    (request,) = sends(fake)
    wire = request["messages"]
    assert isinstance(wire, list)
    assert [m["destinations"] for m in wire] == [[number(i)] for i in range(4)]
    assert sorted(a.message_id for a in fake.accepted) == sorted(i for r in receipts for i in r.ids)


async def test_without_handles_the_count_comes_back_and_each_outcome_reaches_on_result(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    outcomes: list[RequestOutcome] = []
    rows = [(number(i), f"Code {i}") for i in range(1_000)]
    async with client.batcher(
        max_messages=100, queue_capacity=150, max_latency=0.01, on_result=outcomes.append
    ) as batcher:
        assert await batcher.submit_many(rows, sender="Shop", handles=False) == 1_000
    reported = [t for o in outcomes for t in o.tickets]
    assert len(reported) == 1_000
    assert len({id(t) for t in reported}) == 1_000
    assert all(o.state is TicketState.ACCEPTED for o in outcomes)
    assert len(fake.accepted) == 1_000
    assert len(sends(fake)) >= 10  # the queue held at most 150: requests of at most 100


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([(number(0), "ok"), (number(1), 42)], "messages[1].body"),
        ([(number(0), "ok"), ("not a number", "hi")], "messages[1].destinations"),
        ([("+39347", "short")], "messages[0].destinations"),
        ([(number(0),)], "messages[0]"),
        (["a string is not a row"], "messages[0]"),
        ([(number(0), "a", "same"), (number(1), "b", "same")], "messages[1].ids"),
    ],
)
@pytest.mark.parametrize("handles", [True, False])
async def test_an_invalid_item_is_named_and_nothing_is_queued(
    client: AgileClient, fake: FakeAgileServer, items: list[object], field: str, handles: bool
) -> None:
    async with client.batcher(max_latency=0.01) as batcher:
        with pytest.raises(ValidationError) as caught:
            await batcher.submit_many(items, sender="Shop", handles=handles)  # type: ignore[arg-type]
        assert batcher.statistics().queued == 0
    assert caught.value.problems[0].field.startswith(field)
    assert sends(fake) == []


@pytest.mark.parametrize(
    "messages",
    [
        None,
        "+393400000000",
        b"rows",
        {"+393400000000": "hi"},
        5,
        Message(destinations="+393400000000", sender="Shop", body="one message, not an iterable"),
    ],
    ids=["None", "str", "bytes", "dict", "int", "Message"],
)
async def test_what_is_not_a_collection_of_messages_is_named(
    client: AgileClient, fake: FakeAgileServer, messages: object
) -> None:
    """None, a string, bytes, a mapping or one Message: refused as ``messages`` (a string
    was taken as rows of one character each; None raised a bare TypeError)."""
    async with client.batcher(max_latency=0.01) as batcher:
        with pytest.raises(ValidationError) as caught:
            await batcher.submit_many(messages, sender="Shop")  # type: ignore[call-overload]
    assert [p.field for p in caught.value.problems] == ["messages"]
    assert "must be an iterable of Messages or rows" in str(caught.value)
    assert sends(fake) == []


async def test_handles_must_be_true_or_false(client: AgileClient) -> None:
    async with client.batcher(max_latency=0.01) as batcher:
        with pytest.raises(ConfigurationError, match="handles must be True or False, got 'no'"):
            await batcher.submit_many([(number(0), "hi")], sender="Shop", handles="no")  # type: ignore[call-overload]
        assert batcher.statistics().queued == 0


async def test_a_row_without_any_sender_is_refused(client: AgileClient) -> None:
    async with client.batcher() as batcher:
        with pytest.raises(ValidationError) as caught:
            await batcher.submit_many([(number(0), "hi")])
    assert caught.value.problems[0].field == "messages[0].sender"


@pytest.mark.parametrize("handles", [True, False])
async def test_cancelled_part_way_what_it_queued_is_withdrawn_and_reported_once(
    client: AgileClient, fake: FakeAgileServer, handles: bool
) -> None:
    outcomes: list[RequestOutcome] = []
    with Hold() as hold:
        fake.inject(Fault.hold(hold), path="/sms/send", times=None)
        async with client.batcher(
            max_messages=5, max_in_flight=1, queue_capacity=10, on_result=outcomes.append
        ) as batcher:
            with anyio.move_on_after(0.5):
                await batcher.submit_many(
                    [(number(i), f"hi {i}") for i in range(100)],
                    sender="Shop",
                    handles=handles,
                )
            stats = batcher.statistics()
            assert stats.queued == 0  # withdrawn: no message of the call is left behind
            assert stats.withdrawn > 0
            hold.release()
    states = {o.state for o in outcomes}
    assert TicketState.WITHDRAWN in states
    assert TicketState.ACCEPTED in states  # the request under way still got its answer
    reported = [t for o in outcomes for t in o.tickets]
    assert len(reported) == len({id(t) for t in reported})
    assert sum(1 for t in reported if t.state is TicketState.ACCEPTED) == len(fake.accepted)
    assert sorted(i for o in outcomes for i in o.ids) == sorted(i for t in reported for i in t.ids)
    assert sum(o.messages for o in outcomes) == stats.withdrawn + len(fake.accepted)


async def test_the_batcher_life_is_one_state(client: AgileClient, fake: FakeAgileServer) -> None:
    batcher = client.batcher()
    states = [batcher.state]
    async with batcher:
        states.append(batcher.state)
        await batcher.submit(Message(destinations=number(0), sender="Shop", body="hi"))
    states.append(batcher.state)
    assert states == [BatcherState.UNSTARTED, BatcherState.RUNNING, BatcherState.CLOSED]
    with pytest.raises(ClientClosedError):
        await batcher.submit(Message(destinations=number(1), sender="Shop", body="hi"))

    fake.inject(Fault.error(status=401, code=1), path="/sms/send")
    async with client.batcher(max_latency=0.001) as stopped:
        ticket = await stopped.submit(Message(destinations=number(2), sender="Shop", body="x"))
        await ticket.wait()
        states = [stopped.state]
        assert stopped.error is not None
    states.append(stopped.state)
    assert states == [BatcherState.STOPPED, BatcherState.CLOSED]


async def test_many_waiters_share_wake_ups_and_none_is_stranded(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    """1,000 senders in requests of 50; a fifth of them give up while queued (their
    messages are withdrawn, waking their cohort for nothing): the others all get receipts."""
    receipts: list[object] = []

    async def sender(i: int) -> None:
        message = Message(destinations=number(i), sender="Shop", body="hi")
        if i % 5 == 0:
            with anyio.move_on_after(0):
                await batcher.send(message)
            return
        receipts.append(await batcher.send(message))

    async with (
        client.batcher(max_messages=50, max_latency=0.01) as batcher,
        anyio.create_task_group() as tasks,
    ):
        for i in range(1_000):
            tasks.start_soon(sender, i)
    assert len(receipts) == 800
    assert len(fake.accepted) + batcher.statistics().withdrawn == 1_000


async def test_a_receipt_builds_the_message_with_its_ids_only_when_read(
    client: AgileClient,
) -> None:
    async with client.batcher(max_latency=0.001) as batcher:
        message = Message(destinations=(number(0), number(1)), sender="Shop", body="Hi")
        receipt = await batcher.send(message)
    assert len(receipt.ids) == 2
    assert receipt.message == message.with_ids(receipt.ids)
    assert receipt.message is receipt.message  # built once
    assert receipt.estimated_parts == 2
    assert receipt.credit < Decimal("1000")


def test_the_client_keeps_no_sending_internals_public() -> None:
    assert not hasattr(AgileClient, "post_send")
    assert not hasattr(AgileClient, "send_prepared")


# -- rows without handles: kept column by column, tickets made only when read -----------------


async def test_rows_without_handles_are_reported_by_ids_and_as_tickets_when_read(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    outcomes: list[RequestOutcome] = []
    rows = [(number(i), f"Code {i}", f"row-{i}") for i in range(250)]
    async with client.batcher(
        max_messages=100, max_latency=0.01, on_result=outcomes.append
    ) as batcher:
        assert await batcher.submit_many(rows, sender="Shop", handles=False) == 250
    assert [o.messages for o in outcomes] == [100, 100, 50]
    assert [i for o in outcomes for i in o.ids] == [f"row-{i}" for i in range(250)]
    assert sorted(a.message_id for a in fake.accepted) == sorted(f"row-{i}" for i in range(250))
    ticket = outcomes[1].tickets[7]
    assert ticket is outcomes[1].tickets[7]  # made once
    assert ticket.state is TicketState.ACCEPTED
    receipt = ticket.receipt()
    assert receipt is not None
    assert receipt.message == Message(
        destinations=number(107), sender="Shop", body="Code 107", ids=("row-107",)
    )
    assert receipt.global_id == outcomes[1].totals.global_id  # type: ignore[union-attr]
    assert [len(o.tickets) for o in outcomes] == [100, 100, 50]


async def test_rows_without_handles_seen_by_before_send_are_the_ones_resolved(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    seen: list[Ticket] = []
    reported: list[Ticket] = []

    async def before_send(tickets: Sequence[Ticket], global_id: str) -> None:
        assert all(t.state is TicketState.IN_FLIGHT for t in tickets)
        seen.extend(tickets)

    def on_result(outcome: RequestOutcome) -> None:
        reported.extend(outcome.tickets)

    rows = [(number(i), f"Code {i}") for i in range(30)]
    async with client.batcher(
        max_messages=10, max_latency=0.01, before_send=before_send, on_result=on_result
    ) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
    assert [t.state for t in seen] == [TicketState.ACCEPTED] * 30
    assert [id(t) for t in seen] == [id(t) for t in reported]


async def test_a_bad_row_without_handles_is_isolated_by_bisection(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    outcomes: list[RequestOutcome] = []
    fake.reject_destinations([number(37)], code=7)
    rows = [(number(i), f"Code {i}") for i in range(100)]
    async with client.batcher(max_latency=0.01, on_result=outcomes.append) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
        await batcher.flush()
        stats = batcher.statistics()
    (failed,) = [o for o in outcomes if o.state is TicketState.FAILED]
    assert failed.messages == 1
    assert isinstance(failed.error, InvalidDestinationError)
    (ticket,) = failed.tickets
    assert ticket.message.destinations == (number(37),)
    assert ticket.exception() is failed.error
    assert (stats.accepted, stats.failed, stats.queued, stats.in_flight) == (99, 1, 0, 0)
    assert sum(o.messages for o in outcomes) == 100
    assert len(fake.accepted) == 99


async def test_rows_with_one_text_are_one_message_object_on_the_wire(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    rows = [(number(i), "Sale today") for i in range(40)] + [(number(40), "Other")]
    async with client.batcher(max_latency=0.01) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
    (request,) = sends(fake)
    wire = request["messages"]
    assert isinstance(wire, list)
    assert [(m["body"], len(m["destinations"]), len(m["ids"])) for m in wire] == [
        ("Sale today", 40, 40),
        ("Other", 1, 1),
    ]
    assert len(fake.accepted) == 41


async def test_rows_without_handles_fit_the_request_size(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    rows = [(number(i), f"{i:03d}" + "x" * 897) for i in range(20)]
    async with client.batcher(max_latency=0.01, max_request_bytes=4_000) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
    counts = [len(request["messages"]) for request in sends(fake)]  # type: ignore[arg-type]
    assert sum(counts) == 20
    assert max(counts) <= 3  # (4,000 - 200) bytes hold three 1,008-byte messages
    assert len(fake.accepted) == 20


async def test_flush_waits_for_rows_without_handles(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    async with client.batcher(max_latency=3600, max_messages=50) as batcher:
        await batcher.submit_many(
            [(number(i), f"Code {i}") for i in range(120)], sender="Shop", handles=False
        )
        await batcher.flush()
        assert batcher.statistics().accepted == 120
        assert len(fake.accepted) == 120


async def test_an_id_already_under_way_is_refused_by_row_without_handles(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    with Hold() as hold:
        fake.inject(Fault.hold(hold), path="/sms/send", times=1)
        async with client.batcher(max_latency=0) as batcher:
            await batcher.submit_many([(number(0), "hi", "same")], sender="Shop", handles=False)
            await hold.wait_held()
            with pytest.raises(ValidationError) as caught:
                await batcher.submit_many(
                    [(number(1), "a", "other"), (number(2), "b", "same")],
                    sender="Shop",
                    handles=False,
                )
            assert caught.value.problems[0].field == "messages[1].ids"
            assert batcher.statistics().queued == 0
            hold.release()
    assert [a.message_id for a in fake.accepted] == ["same"]


async def test_rows_without_handles_fail_together_on_an_account_error(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    seen: list[Ticket] = []
    outcomes: list[RequestOutcome] = []

    async def before_send(tickets: Sequence[Ticket], global_id: str) -> None:
        assert repr(tickets).startswith("TicketList([<Ticket ids=")
        seen.extend(tickets)

    fake.inject(Fault.error(status=402, code=2), path="/sms/send")
    rows = [(number(i), f"Code {i}") for i in range(300)]
    async with client.batcher(
        max_messages=100,
        max_in_flight=1,
        max_latency=0.01,
        before_send=before_send,
        on_result=outcomes.append,
    ) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
        await batcher.flush()
        assert isinstance(batcher.error, InsufficientCreditError)
        stats = batcher.statistics()
    assert (stats.accepted, stats.failed, stats.queued, stats.in_flight) == (0, 300, 0, 0)
    assert sum(o.messages for o in outcomes) == 300
    assert sorted(i for o in outcomes for i in o.ids) == sorted(
        i for o in outcomes for t in o.tickets for i in t.ids
    )
    assert all(isinstance(t.exception(), InsufficientCreditError) for t in seen)
    assert all(t.state is TicketState.FAILED for o in outcomes for t in o.tickets)


@pytest.mark.parametrize(
    "message",
    [
        Message(destinations=number(1), sender="Shop", body="Plain text"),
        Message(destinations=number(2), sender="Shop", body="Ünïcödé ✓ " * 10),
        Message(destinations=number(3), sender="Shop", body="Own id", ids=["mine-3"]),
        Message(destinations=[number(4), number(5)], sender="Shop", body="Two numbers"),
        Message(destinations=number(6), sender="Shop", body="00ff", hex_body=True),
    ],
)
async def test_a_ticket_gives_back_the_message_as_submitted(
    client: AgileClient, message: Message
) -> None:
    async with client.batcher(max_latency=0.01) as batcher:
        ticket = await batcher.submit(message)
        parts = ticket.estimated_parts
        receipt = await ticket.result()
    assert ticket.message == message
    assert receipt.message == message.with_ids(ticket.ids)
    assert parts == receipt.estimated_parts == receipt.processed_sms_parts


async def test_rows_without_handles_respect_a_queue_smaller_than_a_request(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    rows = [(number(i), f"Code {i}") for i in range(200)]
    with Hold() as hold:
        fake.inject(Fault.hold(hold), path="/sms/send", times=1)
        async with (
            client.batcher(
                max_messages=100, queue_capacity=30, max_in_flight=1, max_latency=0
            ) as batcher,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(partial(batcher.submit_many, rows, sender="Shop", handles=False))
            await hold.wait_held()
            await anyio.wait_all_tasks_blocked()
            stats = batcher.statistics()
            assert stats.in_flight <= 30
            assert 0 < stats.queued <= 30  # the rest waits for room, as submit() would
            hold.release()
    assert len(fake.accepted) == 200


async def test_a_custom_limiter_is_charged_the_parts_of_rows_without_handles(
    client: AgileClient, fake: FakeAgileServer
) -> None:
    """A custom limiter (the Redis one, say) is charged each request's SMS parts; rows
    without handles are still kept column by column for it, and charged the same parts
    the provider counts."""
    charged: list[Cost] = []

    class Recording:
        async def acquire(self, cost: Cost) -> None:
            charged.append(cost)

        def penalize(self, retry_after: float | None) -> None:
            pass

    long_text = "A long text that takes two parts. " * 5  # 170 GSM characters
    rows = [(number(i), long_text if i % 3 == 0 else f"Code {i}") for i in range(250)]
    async with client.batcher(limiter=Recording(), max_messages=100, max_latency=0) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=False)
    assert batcher.statistics().accepted == 250
    assert [c.messages for c in charged] == [100, 100, 50]
    assert sum(c.parts for c in charged) == batcher.statistics().parts == 250 + 84


@pytest.mark.parametrize("handles", [False, True])
async def test_a_limiter_that_charges_no_parts_is_spared_counting_them(
    client: AgileClient, fake: FakeAgileServer, handles: bool
) -> None:
    """A limiter that says ``charges_parts = False`` (a RedisLimiter without a limit per
    part) is given no parts: the batcher does not count them before sending. The
    messages are the same, and the provider's count of parts too."""
    charged: list[Cost] = []

    class ByMessage:
        charges_parts = False

        async def acquire(self, cost: Cost) -> None:
            charged.append(cost)

        def penalize(self, retry_after: float | None) -> None:
            pass

    long_text = "A long text that takes two parts. " * 5
    rows = [(number(i), long_text if i % 3 == 0 else f"Code {i}") for i in range(250)]
    async with client.batcher(limiter=ByMessage(), max_messages=100, max_latency=0) as batcher:
        await batcher.submit_many(rows, sender="Shop", handles=handles)
    assert [(c.messages, c.parts) for c in charged] == [(100, 0), (100, 0), (50, 0)]
    assert batcher.statistics().parts == 250 + 84


async def test_aclose_cancel_must_be_true_or_false(client: AgileClient) -> None:
    async with client.batcher(max_latency=0.01) as batcher:
        with pytest.raises(ConfigurationError, match="cancel must be True or False, got 'yes'"):
            await batcher.aclose(cancel="yes")  # type: ignore[arg-type]
        assert batcher.state is BatcherState.RUNNING
