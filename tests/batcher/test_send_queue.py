"""The Batcher's queue on its own: no event loop, no server, no clock (times are passed in)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agile_async import Message, SendOptions, Ticket, TicketState, ValidationError
from agile_async._queue import RequestLimits, SendQueue, message_size
from agile_async._tickets import Cohort, row_run, row_ticket

PLAIN = SendOptions()
UNICODE_OFF = SendOptions(enable_unicode=False)


def message(n: int = 1, body: str = "hi", ids: tuple[str, ...] | None = None) -> Message:
    return Message(
        destinations=tuple(f"+3934{i:08d}" for i in range(n)), sender="Shop", body=body, ids=ids
    )


def ids_for(n: int, prefix: str = "x") -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(n))


def test_messages_are_counted_as_destinations_and_grouped_by_options() -> None:
    queue = SendQueue(RequestLimits(messages=10, size=10_000), capacity=100)
    queue.put(message(3), ids_for(3, "a"), PLAIN, now=1.0)
    queue.put(message(1), ids_for(1, "b"), UNICODE_OFF, now=2.0)
    queue.put(message(2), ids_for(2, "c"), PLAIN, now=3.0)
    assert queue.queued == 6
    batch = queue.take(PLAIN)
    assert [t.ids for t in batch] == [ids_for(3, "a"), ids_for(2, "c")]
    assert all(t.state is TicketState.IN_FLIGHT for t in batch)
    assert queue.queued == 1
    assert queue.oldest() == (UNICODE_OFF, 2.0)


def test_the_oldest_group_goes_first_by_the_times_given() -> None:
    queue = SendQueue(RequestLimits(messages=2, size=10_000), capacity=100)
    queue.put(message(), ids_for(1, "late"), PLAIN, now=5.0)
    queue.put(message(), ids_for(1, "early"), UNICODE_OFF, now=1.0)
    assert queue.oldest() == (UNICODE_OFF, 1.0)
    # A request's worth later, the next messages are timed from their own first one.
    queue.put(message(), ids_for(1, "b"), UNICODE_OFF, now=6.0)
    queue.put(message(), ids_for(1, "c"), UNICODE_OFF, now=7.0)
    queue.take(UNICODE_OFF)
    assert queue.oldest() == (PLAIN, 5.0)
    queue.take(PLAIN)
    assert queue.oldest() == (UNICODE_OFF, 7.0)


def test_a_light_row_is_queued_without_a_message_until_one_is_asked_for() -> None:
    queue = SendQueue(RequestLimits(messages=10, size=10_000), capacity=100)
    placeholder = Cohort(PLAIN)
    rows = [
        row_ticket("+393400000001", "Hi", "Shop", "row-1", True, placeholder),
        row_ticket("+393400000002", "Hi", "Shop", "gen-1", False, placeholder),
    ]
    assert queue.put_many(rows, 0, now=0, caller_ids=True) == (2, True)
    ticket, generated = rows
    assert ticket.ids == ("row-1",)
    with pytest.raises(ValidationError):
        queue.check_ids(("row-1",))  # the caller's own id is pending
    queue.check_ids(("gen-1",))  # the SDK's own is not
    assert ticket.message == Message(
        destinations="+393400000001", sender="Shop", body="Hi", ids=("row-1",)
    )
    assert generated.message.ids is None  # as submitted: the id was the SDK's
    assert generated.ids == ("gen-1",)
    assert queue.queued == 2
    assert queue.take(PLAIN) == [ticket, generated]


def test_many_are_queued_as_far_as_there_is_room_and_one_into_an_empty_queue() -> None:
    queue = SendQueue(RequestLimits(messages=3, size=100_000), capacity=4)
    placeholder = Cohort(PLAIN)
    rows = [
        row_ticket(f"+3934000000{i:02d}", "Hi", "Shop", f"r{i}", False, placeholder)
        for i in range(6)
    ]
    assert queue.put_many(rows, 0, now=0, caller_ids=False) == (4, True)
    assert queue.put_many(rows, 4, now=0, caller_ids=False) == (0, False)  # full
    assert queue.take(PLAIN) == rows[:3]
    assert queue.put_many(rows, 4, now=1, caller_ids=False) == (2, True)  # a request filled up
    assert queue.queued == 3
    big = [Ticket(message(9), ids_for(9), placeholder)]
    queue.drain()
    assert queue.put_many(big, 0, now=2, caller_ids=False) == (1, True)  # empty: it fits


def test_a_batch_stops_at_each_limit_but_always_has_one_message() -> None:
    by_messages = SendQueue(RequestLimits(messages=3, size=10_000), capacity=100)
    for i in range(5):
        by_messages.put(message(), (f"m{i}",), PLAIN, now=i)
    assert len(by_messages.take(PLAIN)) == 3
    assert len(by_messages.take(PLAIN)) == 2
    assert by_messages.oldest() is None

    size = message_size("x" * 100, 1)
    by_size = SendQueue(RequestLimits(messages=100, size=2 * size), capacity=100)
    for i in range(3):
        by_size.put(message(body="x" * 100), (f"s{i}",), PLAIN, now=i)
    assert len(by_size.take(PLAIN)) == 2

    # 200 GSM characters are 2 parts: a 3-part budget takes one such message, but never none.
    by_parts = SendQueue(RequestLimits(messages=100, size=100_000, parts=3), capacity=100)
    for i in range(2):
        by_parts.put(message(body="y" * 200), (f"p{i}",), PLAIN, now=i)
    assert len(by_parts.take(PLAIN)) == 1
    huge = SendQueue(RequestLimits(messages=100, size=10, parts=1), capacity=100)
    huge.put(message(body="z" * 500), ("h",), PLAIN, now=0)
    assert len(huge.take(PLAIN)) == 1


def test_put_says_when_the_dispatcher_should_look() -> None:
    queue = SendQueue(RequestLimits(messages=3, size=10_000), capacity=100)
    assert queue.put(message(), ("a",), PLAIN, now=0)[1]  # work in an empty queue
    assert not queue.put(message(), ("b",), PLAIN, now=0)[1]
    assert queue.put(message(), ("c",), PLAIN, now=0)[1]  # a request just filled up
    assert queue.is_full(PLAIN)
    assert not queue.put(message(), ("d",), PLAIN, now=0)[1]


def test_room_counts_messages_and_an_oversized_one_enters_an_empty_queue() -> None:
    queue = SendQueue(RequestLimits(messages=100, size=100_000), capacity=4)
    assert queue.has_room(10)  # empty: anything fits, or it could never be sent
    queue.put(message(3), ids_for(3), PLAIN, now=0)
    assert queue.has_room(1)
    assert not queue.has_room(2)


def test_withdraw_and_drain() -> None:
    queue = SendQueue(RequestLimits(messages=100, size=100_000), capacity=100)
    first, _ = queue.put(message(2), ids_for(2, "a"), PLAIN, now=0)
    second, _ = queue.put(message(1), ids_for(1, "b"), PLAIN, now=0)
    assert queue.withdraw(first)
    assert not queue.withdraw(first)  # once
    assert queue.queued == 1
    assert queue.drain() == [second]
    assert queue.queued == 0
    assert queue.oldest() is None
    assert not queue.withdraw(second)


def test_a_run_of_rows_is_one_entry_taken_whole_and_its_ids_pending() -> None:
    queue = SendQueue(RequestLimits(messages=5, size=100_000), capacity=100)
    ids = ids_for(3, "r")
    run = row_run(["+393400000001"] * 3, ["a", "b", "c"], "Shop", ids, True, PLAIN)
    assert queue.put_run(run, now=4.0)  # work in an empty queue: look now
    assert queue.queued == 3
    assert queue.oldest() == (PLAIN, 4.0)
    assert queue.has_pending(["r1"])
    assert not queue.has_pending(["other"])
    queue.put(message(3), ids_for(3, "m"), PLAIN, now=5.0)
    assert queue.take(PLAIN) == [run]  # the message after it does not fit
    assert queue.queued == 3
    queue.release([run])
    assert not queue.has_pending(ids)


def test_callers_ids_are_pending_until_released() -> None:
    queue = SendQueue(RequestLimits(messages=100, size=100_000), capacity=100)
    mine = message(2, ids=("order-1", "order-2"))
    queue.check_ids(mine.ids or ())
    queue.put(mine, ("order-1", "order-2"), PLAIN, now=0)
    with pytest.raises(ValidationError) as caught:
        queue.check_ids(("order-2", "order-3"))
    assert caught.value.problems[0].field == "message.ids"
    assert "order-2" in caught.value.problems[0].message
    batch = queue.take(PLAIN)
    queue.check_ids(())  # nothing asked, nothing refused
    with pytest.raises(ValidationError):
        queue.check_ids(("order-1",))  # still in flight
    queue.release(batch)
    queue.check_ids(("order-1", "order-2"))


Op = tuple[str, int]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(1, 4)),
            st.tuples(st.just("put_other"), st.integers(1, 4)),
            st.tuples(st.just("put_equal"), st.integers(1, 4)),
            st.tuples(st.just("put_run"), st.integers(1, 4)),
            st.tuples(st.just("take"), st.integers(0, 1)),
            st.tuples(st.just("withdraw"), st.integers(0, 50)),
        ),
        max_size=60,
    ),
    st.integers(1, 6),
)
def test_every_ticket_leaves_once_in_order_and_the_count_holds(ops: list[Op], per: int) -> None:
    queue = SendQueue(RequestLimits(messages=per, size=100_000), capacity=1_000)
    queued: dict[SendOptions, list[Ticket]] = {PLAIN: [], UNICODE_OFF: []}
    left: list[Ticket] = []
    serial = 0
    for kind, arg in ops:
        if kind in ("put", "put_other", "put_equal"):
            # put_equal: options equal to PLAIN, another object: the same group
            options = {"put": PLAIN, "put_other": UNICODE_OFF, "put_equal": SendOptions()}[kind]
            serial += 1
            ticket, _ = queue.put(message(arg), ids_for(arg, f"{serial}-"), options, now=serial)
            queued[PLAIN if options == PLAIN else UNICODE_OFF].append(ticket)
        elif kind == "put_run":  # light rows of submit_many(handles=False): one entry
            serial += 1
            rows = ids_for(arg, f"{serial}-")
            run = row_run(list(rows), ["hi"] * arg, "Shop", rows, False, PLAIN)
            queue.put_run(run, now=serial)
            queued[PLAIN].append(run)
        elif kind == "take":
            options = (PLAIN, UNICODE_OFF)[arg]
            if queued[options]:
                batch = queue.take(options)
                assert len(batch) >= 1
                assert sum(len(t.ids) for t in batch) <= per or len(batch) == 1
                assert batch == queued[options][: len(batch)]  # oldest first
                del queued[options][: len(batch)]
                left.extend(batch)
        else:
            everything = queued[PLAIN] + queued[UNICODE_OFF]
            if everything:
                ticket = everything[arg % len(everything)]
                assert queue.withdraw(ticket)
                queued[ticket.key].remove(ticket)
        assert queue.queued == sum(len(t.ids) for ts in queued.values() for t in ts)
    drained = queue.drain()
    assert sorted(map(id, drained)) == sorted(id(t) for ts in queued.values() for t in ts)
    assert not set(map(id, drained)) & set(map(id, left))
