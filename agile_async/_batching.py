"""The Batcher: many individual sends become few ``/sms/send`` requests, at the account's rate.

```
submit()/send() --validate, ids--> queue (bounded, grouped by request options)
      dispatcher: waits for a full request or max_latency, takes a batch,
                  acquires the rate limiter and an in-flight slot, starts a request task
      request task: coalesces equal texts into one message object with many destinations,
                  sends with the client's retry policy, resolves every ticket:
                  accepted | failed (typed error) | unknown (OutcomeUnknownError)
```

Failures (SPEC §3): a 4XX about some message in a request splits the request in halves and
sends each again (bisection), so exactly the bad messages fail; an account-wide error (codes
1, 2, 100) fails everything queued and makes the batcher refuse new work (a sticky error);
a request that may have gone out without an answer makes its messages *unknown*. Every
submitted message gets exactly one outcome, on shutdown and cancellation too.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._concurrency import call_maybe_async, task_group
from ._config import BatchSettings
from ._exceptions import (
    AgileError,
    APIError,
    BatcherStoppedError,
    ClientClosedError,
    CreditThresholdError,
    MessageWithdrawnError,
    OutcomeUnknownError,
    Problem,
    QueueFullError,
    RateLimitError,
    ValidationError,
)
from ._models import Message, SendOptions
from ._ratelimit import Cost, RateLimiter, make_limiter
from ._serde import SendResponse, converter, dumps, message_to_wire
from ._tickets import Receipt, RequestTotals, Ticket, TicketState
from ._validation import IdGenerator, check_message, options_problems, plainly_valid

if TYPE_CHECKING:
    from ._client import AgileClient

__all__ = [
    "Batcher",
    "BatcherStatistics",
    "BatcherStoppedError",
    "CreditThresholdError",
    "MessageWithdrawnError",
    "QueueFullError",
    "RequestOutcome",
]

log = logging.getLogger("agile_async")

#: JSON overhead of a request around its messages (options, brackets), in bytes.
_REQUEST_OVERHEAD = 200
#: JSON overhead of one message object (keys, quotes, sender), in bytes.
_MESSAGE_OVERHEAD = 60
#: A destination and its id in JSON, in bytes (an E.164 number, a generated id, quotes):
#: request sizes are estimates, so callers' longer ids are not measured one by one.
_PER_DESTINATION = 48


#: Why a queued message failed when its batcher was cancelled.
_CANCELLED_BEFORE_SENDING = "the batcher was cancelled before this message was sent"
#: How long a cancelled batcher still hands settled outcomes to ``on_result``.
_REPORT_GRACE = 30.0


class BatcherStatistics(NamedTuple):
    """Counts of messages (destinations) by state, and of the requests made.

    Attributes:
        queued: waiting to be sent.
        in_flight: in a request under way.
        accepted: accepted by the provider.
        failed: failed with a reason (including the queued ones failed at shutdown).
        unknown: sent, but no answer came back: outcome unknown.
        withdrawn: taken back before sending because the caller stopped waiting.
        requests: ``/sms/send`` requests made, bisection included, retries not.
        retries: retried attempts.
        parts: the SMS parts of the accepted messages, by the provider's count
            (``processedSmsParts``, added up): what is billed.
        credit: the latest credit (EUR) reported by the provider.
    """

    queued: int
    in_flight: int
    accepted: int
    failed: int
    unknown: int
    withdrawn: int
    requests: int
    retries: int
    parts: int
    credit: Decimal | None


@attrs.frozen
class RequestOutcome:
    """What became of one request's messages; given to ``on_result`` as it happens.

    ``state`` is ``ACCEPTED`` (with the provider's ``totals``) or ``FAILED``/``UNKNOWN``/
    ``WITHDRAWN`` (with ``error``). A request split by bisection is reported through its
    halves; messages settled without a request (shutdown, a sticky error, a caller of
    ``send()`` that stopped waiting) are reported the same way. Every submitted message is
    in exactly one outcome, on every way out of the batcher (cancellation included).
    """

    tickets: tuple[Ticket, ...]
    state: TicketState
    totals: RequestTotals | None = None
    error: BaseException | None = None

    @property
    def messages(self) -> int:
        """How many messages (destinations) the outcome covers."""
        return sum(len(t.message.destinations) for t in self.tickets)


class _RoomWaiter:
    """A submitter waiting for room in a full queue (one event each: see ``submit``)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


class _Group:
    """Queued tickets that share request options, oldest first."""

    __slots__ = ("messages", "size", "tickets")

    def __init__(self) -> None:
        self.tickets: deque[Ticket] = deque()
        self.messages = 0
        self.size = 0


@attrs.define
class _Counters:
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    withdrawn: int = 0
    requests: int = 0
    retries: int = 0
    parts: int = 0


def wire_messages(tickets: Sequence[Ticket]) -> list[dict[str, object]]:
    """The ``messages`` of a request, merging equal texts into one message object.

    Messages that differ only by destinations and ids become one object with many
    destinations (the provider's bulk shape), which keeps a 500-message request small when
    a campaign sends the same text to everyone. Order is kept.
    """
    merged: dict[tuple[object, ...], dict[str, object]] = {}
    for ticket in tickets:
        message = ticket.message
        key = (message.sender, message.body, message.hex_body, message.udh_data, message.scheduling)
        wire = merged.get(key)
        if wire is None:
            merged[key] = message_to_wire(message, ticket.ids)
        else:
            wire["destinations"].extend(message.destinations)  # type: ignore[attr-defined]
            wire["ids"].extend(ticket.ids)  # type: ignore[attr-defined]
    return list(merged.values())


def _is_bisectable(error: APIError) -> bool:
    """A 4XX about the request's content: some message in it may be the only bad one."""
    return (
        400 <= error.status_code < 500
        and error.scope != "account"
        and not isinstance(error, RateLimitError)
    )


class Batcher(anyio.AsyncContextManagerMixin):
    """Coalesces sends from many tasks into few requests; see :meth:`AgileClient.batcher`.

    ```python
    async with client.batcher(max_latency=0.02) as batcher:
        receipt = await batcher.send(message)          # once its request is accepted
        ticket = await batcher.submit(other)           # once queued
        ...
        receipt = await ticket.result()
    ```

    Leaving the ``async with`` block sends everything queued and waits for it; cancelling
    the block fails what was not sent yet with :class:`~agile_async.ClientClosedError`.
    """

    def __init__(
        self,
        client: AgileClient,
        settings: BatchSettings,
        *,
        limiter: RateLimiter | None = None,
        on_result: Callable[[RequestOutcome], object] | None = None,
        before_send: Callable[[Sequence[Ticket], str], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self.settings = settings
        self._limiter = limiter if limiter is not None else make_limiter(settings.rate_limit)
        check_settings = getattr(self._limiter, "check_settings", None)
        if check_settings is not None:  # a shared limiter refuses requests it can never grant
            check_settings(settings)
        self._on_result = on_result
        self._before_send = before_send
        self._outcomes: MemoryObjectSendStream[RequestOutcome] | None = None
        self._reporting: anyio.CancelScope | None = None  # on_result being called
        self._report_deadline = math.inf  # set once cancelled: see _limit_reporting
        self._max_cost_messages, self._max_cost_parts = self._cost_caps(settings)
        # Counting parts costs a segment count per distinct text: done before sending only
        # for a parts-based limit, or a custom limiter (which may charge parts).
        self._count_parts = limiter is not None or (
            settings.rate_limit is not None and settings.rate_limit.per == "parts"
        )
        self._groups: dict[SendOptions, _Group] = {}
        self._queued = 0
        self._in_flight = 0
        self._pending_ids: set[str] = set()
        self._valid_options: set[SendOptions] = {settings.options}
        self._next_id = client._ids.next_id
        self._max_destinations = settings.max_messages
        self._capacity = settings.queue_capacity
        self._wire_options: dict[SendOptions, dict[str, object]] = {}
        self._counters = _Counters()
        self._credit: Decimal | None = None
        self._sticky: BaseException | None = None
        self._flushing = 0
        self._entered = False
        self._closing = False
        self._closed = False
        self._wakeup: anyio.Event | None = None
        self._room_waiters: deque[_RoomWaiter] = deque()
        self._idle: anyio.Event | None = None
        self._slots: anyio.Semaphore | None = None
        self._dispatcher_done: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    @staticmethod
    def _cost_caps(settings: BatchSettings) -> tuple[int, float]:
        """Keep each request within the rate limit's burst, so no request can overshoot it."""
        limit = settings.rate_limit
        messages, parts = settings.max_messages, float("inf")
        if limit is not None and limit.per == "messages":
            messages = max(1, min(messages, int(limit.capacity)))
        elif limit is not None and limit.per == "parts":
            parts = limit.capacity
        return messages, parts

    # -- lifecycle -------------------------------------------------------------------------

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Batcher, None]:
        if self._entered:
            raise RuntimeError("a Batcher can be entered only once")
        self._client._ensure_open()
        self._entered = True
        self._wakeup = anyio.Event()
        self._dispatcher_done = anyio.Event()
        self._slots = anyio.Semaphore(self.settings.max_in_flight)
        receive: MemoryObjectReceiveStream[RequestOutcome] | None = None
        if self._on_result is not None:
            self._outcomes, receive = anyio.create_memory_object_stream[RequestOutcome](math.inf)
        try:
            async with task_group() as tasks:
                self._task_group = tasks
                if receive is not None:
                    tasks.start_soon(self._report_loop, receive)
                tasks.start_soon(self._dispatch_loop)
                try:
                    yield self
                except anyio.get_cancelled_exc_class():
                    # Requests under way are cancelled with this block: they resolve as
                    # unknown, and those outcomes are still reported (below), in a grace.
                    self._limit_reporting()
                    self._close_now(_CANCELLED_BEFORE_SENDING)
                    raise
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await self.aclose()
                    raise
                else:
                    await self.aclose()
                finally:
                    if self._closed and self._outcomes is not None:
                        self._outcomes.close()  # every outcome is in: the reporter ends
        finally:
            # Outcomes settled after the reporter was cancelled (requests cancelled with the
            # block, queued messages failed) still reach on_result, exactly once each.
            if self._outcomes is not None:
                self._outcomes.close()
            if receive is not None:
                await self._drain_reports(receive)

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop taking work; send what is queued (or, with ``cancel``, fail it) and wait.

        Messages already in a request always get their real outcome.
        """
        if not self._entered:
            raise RuntimeError("the Batcher was never started: use 'async with'")
        if cancel:
            self._close_now("the batcher was closed before this message was sent")
        else:
            self._closing = True
            self._wake_all_waiters()
            self._notify()
        assert self._dispatcher_done is not None
        await self._dispatcher_done.wait()
        await self._wait_idle()
        self._closed = True

    def _close_now(self, reason: str) -> None:
        self._closing = True
        self._fail_queued(ClientClosedError(reason))
        self._wake_all_waiters()
        self._notify()

    async def _wait_idle(self) -> None:
        while self._in_flight or self._queued:
            self._idle = anyio.Event()
            await self._idle.wait()

    # -- submitting ------------------------------------------------------------------------

    def _refuse_if_stopped(self) -> None:
        if self._sticky is not None:
            raise copy.copy(self._sticky)
        if self._closing or self._closed:
            raise ClientClosedError("this Batcher is closed and takes no more messages")
        if not self._entered:
            raise RuntimeError("start the Batcher first: 'async with client.batcher() as b'")

    def _check_options(self, options: SendOptions | None) -> SendOptions:
        if options is None:
            return self.settings.options
        if not isinstance(options, SendOptions) or options not in self._valid_options:
            problems = options_problems(options)
            if isinstance(options, SendOptions) and options.global_id is not None:
                problems.append(
                    Problem("options.global_id", "must be None: the batcher sets one per request")
                )
            if problems:
                raise ValidationError(problems=problems)
            self._valid_options.add(options)
        return options

    def _make_ticket(self, message: Message, options: SendOptions | None) -> Ticket:
        if self._sticky is not None or self._closing or not self._entered:
            self._refuse_if_stopped()
        options = self.settings.options if options is None else self._check_options(options)
        if not plainly_valid(message, options):
            check_message(message, options)
        count = len(message.destinations)
        if count > self._max_destinations:
            raise ValidationError.single(
                "message.destinations",
                f"has {count} destinations, more than max_messages "
                f"({self.settings.max_messages}) per request: send it with client.send()",
            )
        ids = message.ids
        if ids is None:
            if count == 1 and options.max_id_len >= IdGenerator.LENGTH:
                ids = (self._next_id(),)
            else:
                ids = self._client._ids.new_ids(count, options.max_id_len)
        else:
            duplicates = self._pending_ids.intersection(ids)
            if duplicates:
                raise ValidationError.single(
                    "message.ids", f"{sorted(duplicates)!r} already queued or in flight"
                )
        size = _MESSAGE_OVERHEAD + len(message.body) + _PER_DESTINATION * count
        return Ticket(message, ids, options, size)

    def _has_room(self, ticket: Ticket) -> bool:
        count = len(ticket.message.destinations)
        return self._queued == 0 or self._queued + count <= self.settings.queue_capacity

    async def submit(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Queue a message and return its :class:`Ticket`; waits while the queue is full.

        Waiting submitters get in first come, first served: none is forgotten or overtaken
        by later ones, and one that is cancelled while waiting queues nothing.

        Raises:
            ValidationError: the message is invalid (nothing is queued).
            ClientClosedError: the batcher is closed.
            AgileError: the batcher stopped on an account-wide error (the sticky error).
        """
        ticket = self._make_ticket(message, options)
        if not self._room_waiters and (
            not self._queued or self._queued + len(ticket.ids) <= self._capacity
        ):
            self._enqueue(ticket)  # the common case, without another call
            return ticket
        await self._wait_for_room(ticket)
        self._enqueue(ticket)
        return ticket

    async def _wait_for_room(self, ticket: Ticket) -> None:
        """Wait in line until ``ticket`` fits the queue; only the first in line takes room.

        Each waiter has its own event: progress wakes the first in line, and each waiter
        leaving the line (admitted, cancelled or refused) wakes the next, so a wake-up is
        never lost to a waiter that no longer waits.
        """
        waiter = _RoomWaiter()
        waiters = self._room_waiters
        waiters.append(waiter)
        try:
            while True:
                self._refuse_if_stopped()
                if waiters[0] is waiter and self._has_room(ticket):
                    return
                if waiter.event.is_set():  # woken, but not its turn or no room yet
                    waiter.event = anyio.Event()
                await waiter.event.wait()
        finally:
            waiters.remove(waiter)
            self._wake_first_waiter()

    def _wake_first_waiter(self) -> None:
        if self._room_waiters:
            self._room_waiters[0].event.set()

    def _wake_all_waiters(self) -> None:
        """Closing or stopped: every waiter must see it now and give up."""
        for waiter in self._room_waiters:
            waiter.event.set()

    def submit_nowait(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Like :meth:`submit`, but raise :class:`QueueFullError` instead of waiting."""
        ticket = self._make_ticket(message, options)
        if not self._has_room(ticket):
            raise QueueFullError(
                f"the batcher's queue is full ({self._queued} of "
                f"{self.settings.queue_capacity} messages)"
            )
        self._enqueue(ticket)
        return ticket

    async def send(self, message: Message, *, options: SendOptions | None = None) -> Receipt:
        """Queue a message and wait until its request is accepted.

        A caller cancelled while its message is still queued takes it back (nothing is
        sent); once its request is under way, the outcome is still recorded.
        """
        ticket = await self.submit(message, options=options)
        try:
            return await ticket.result()
        except anyio.get_cancelled_exc_class():
            self._withdraw(ticket)
            raise

    def _enqueue(self, ticket: Ticket) -> None:
        # The hot path of every submit: no calls that are not needed.
        group = self._groups.get(ticket.key)
        if group is None:
            group = self._groups[ticket.key] = _Group()
        was_empty = not self._queued
        group.tickets.append(ticket)
        count = len(ticket.ids)
        group.messages += count
        group.size += ticket.size
        self._queued += count
        if ticket.message.ids is not None:
            self._pending_ids.update(ticket.ids)
        ticket.enqueued_at = time.monotonic()
        # Wake the dispatcher when there is work at last, or when a request just filled up.
        if (
            was_empty
            or group.messages - count < self._max_cost_messages <= group.messages
            or group.size - ticket.size < self.settings.max_request_bytes <= group.size
        ):
            self._notify()

    def _withdraw(self, ticket: Ticket) -> None:
        if ticket.state is not TicketState.QUEUED:
            return
        group = self._groups[ticket.key]
        group.tickets.remove(ticket)
        self._unqueue(group, ticket)
        self._counters.withdrawn += len(ticket.message.destinations)
        error = MessageWithdrawnError("the caller stopped waiting before the message was sent")
        ticket._fail(error, withdrawn=True)
        self._report(RequestOutcome((ticket,), TicketState.WITHDRAWN, error=error))
        self._release_ids((ticket,))
        self._after_progress()

    def _unqueue(self, group: _Group, ticket: Ticket) -> None:
        count = len(ticket.message.destinations)
        group.messages -= count
        group.size -= ticket.size
        self._queued -= count
        if not group.tickets:
            del self._groups[ticket.key]

    async def flush(self) -> None:
        """Send everything queued now, without waiting for ``max_latency``, and wait for it."""
        pending = [t for group in self._groups.values() for t in group.tickets]
        self._flushing += 1
        self._notify()
        try:
            for ticket in pending:
                await ticket.wait()
        finally:
            self._flushing -= 1

    # -- state -----------------------------------------------------------------------------

    def statistics(self) -> BatcherStatistics:
        """A snapshot of the counts (messages are destinations)."""
        c = self._counters
        return BatcherStatistics(
            queued=self._queued,
            in_flight=self._in_flight,
            accepted=c.accepted,
            failed=c.failed,
            unknown=c.unknown,
            withdrawn=c.withdrawn,
            requests=c.requests,
            retries=c.retries,
            parts=c.parts,
            credit=self._credit,
        )

    @property
    def credit(self) -> Decimal | None:
        """The latest credit (EUR) the provider reported to this batcher."""
        return self._credit

    @property
    def error(self) -> BaseException | None:
        """The sticky error that stopped the batcher, if any."""
        return self._sticky

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<Batcher queued={s.queued} in_flight={s.in_flight} accepted={s.accepted}>"

    # -- dispatching -----------------------------------------------------------------------

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _after_progress(self) -> None:
        self._wake_first_waiter()
        if self._idle is not None and not (self._in_flight or self._queued):
            self._idle.set()

    def _is_full(self, group: _Group) -> bool:
        return (
            group.messages >= self._max_cost_messages
            or group.size >= self.settings.max_request_bytes
        )

    def _oldest_group(self) -> _Group:
        return min(self._groups.values(), key=lambda g: g.tickets[0].enqueued_at)

    async def _wait_for_wakeup(self, delay: float | None) -> None:
        self._wakeup = event = anyio.Event()
        with anyio.move_on_after(delay):
            await event.wait()

    async def _dispatch_loop(self) -> None:
        assert self._dispatcher_done is not None
        try:
            await self._dispatch()
        except anyio.get_cancelled_exc_class():
            self._close_now(_CANCELLED_BEFORE_SENDING)
            raise
        except Exception as error:
            log.exception("agile_async batcher: internal error; no queued message is sent")
            self._trip(_stopped_by(error))
        finally:
            self._dispatcher_done.set()

    async def _dispatch(self) -> None:
        while True:
            if self._sticky is not None:
                return
            if not self._queued:
                if self._closing:
                    return
                await self._wait_for_wakeup(None)
                continue
            group = self._oldest_group()
            if not (self._is_full(group) or self._flushing or self._closing):
                wait = group.tickets[0].enqueued_at + self.settings.max_latency - time.monotonic()
                if wait > 0:
                    await self._wait_for_wakeup(wait)
                    continue
            await self._launch()

    def _take_batch(self, group: _Group) -> list[Ticket]:
        """Take the oldest messages of ``group`` that fit one request (at least one)."""
        queue = group.tickets
        max_messages = self._max_cost_messages
        max_size = self.settings.max_request_bytes - _REQUEST_OVERHEAD
        max_parts = self._max_cost_parts if self._count_parts else None
        tickets: list[Ticket] = []
        messages = size = parts = 0
        while queue:
            ticket = queue[0]
            count = len(ticket.ids)
            if tickets and (
                messages + count > max_messages
                or size + ticket.size > max_size
                or (max_parts is not None and parts + ticket.estimated_parts > max_parts)
            ):
                break
            queue.popleft()
            ticket._state = TicketState.IN_FLIGHT
            tickets.append(ticket)
            messages += count
            size += ticket.size
            if max_parts is not None:
                parts += ticket.estimated_parts
        group.messages -= messages
        group.size -= size
        if not queue:
            del self._groups[tickets[0].key]
        self._queued -= messages
        self._in_flight += messages
        self._after_progress()
        return tickets

    async def _launch(self) -> None:
        """Take the next batch once a request slot is free, pace it, and start its request.

        The slot comes first: while every slot is busy, messages stay queued (so they can
        still be withdrawn or cancelled) and the next request only grows fuller.
        """
        assert self._slots is not None
        assert self._task_group is not None
        await self._slots.acquire()
        if not self._queued or self._sticky is not None:
            self._slots.release()
            return
        tickets = self._take_batch(self._oldest_group())
        try:
            await self._limiter.acquire(self._cost(tickets))
        except BaseException as error:
            self._slots.release()
            self._in_flight -= _messages(tickets)
            self._release_ids(tickets)
            if not isinstance(error, Exception):  # cancelled
                self._resolve_failed(tickets, ClientClosedError(_CANCELLED_BEFORE_SENDING))
                self._after_progress()
                raise
            self._limiter_failed(tickets, error)
            self._after_progress()
            return
        self._task_group.start_soon(self._run_request, tickets)

    async def _run_request(self, tickets: list[Ticket]) -> None:
        """One request and its outcome; whatever happens, every ticket leaves resolved."""
        assert self._slots is not None
        try:
            await self._send_tickets(tickets, paid=True)  # resolves all, when it returns
        except Exception as error:  # a bug of ours: stop, rather than guess on
            log.exception("agile_async batcher: internal error while sending a request")
            self._trip(_stopped_by(error))
            self._settle_leftovers(tickets)
        except BaseException:  # cancelled
            self._settle_leftovers(tickets)
            raise
        finally:
            self._in_flight -= _messages(tickets)
            self._release_ids(tickets)
            self._slots.release()
            self._after_progress()

    def _settle_leftovers(self, tickets: Sequence[Ticket]) -> None:
        """Nothing is left unresolved, on any path: had the request gone out, it may have
        been taken, so the honest outcome is unknown."""
        leftovers = [t for t in tickets if not t.done()]
        if leftovers:
            error = OutcomeUnknownError(
                "the batcher stopped while this message's request was under way",
                ids=[i for t in leftovers for i in t.ids],
            )
            self._resolve_failed(leftovers, error)

    def _encode(self, tickets: Sequence[Ticket]) -> tuple[bytes, str]:
        """A request's JSON body and its new ``globalId``."""
        global_id = self._client._ids.new_global_id()
        payload = dict(self._options_on_wire(tickets[0].key))
        payload["globalId"] = global_id
        payload["messages"] = wire_messages(tickets)
        return dumps(payload), global_id

    async def _send_tickets(self, tickets: list[Ticket], *, paid: bool) -> None:
        """Send ``tickets`` in one request and resolve each; a rejected request is bisected.

        ``paid``: the rate limiter was already charged for these messages.
        """
        if self._sticky is not None:
            self._resolve_failed(tickets, self._sticky)
            return
        try:
            body, global_id = self._encode(tickets)
        except (TypeError, ValueError) as error:  # validation missed it: isolate the culprit
            if len(tickets) > 1:
                await self._bisect(tickets, paid=True)
            else:
                problem = ValidationError.single("message", f"cannot be encoded as JSON: {error}")
                self._resolve_failed(tickets, problem)
            return
        ids = [i for t in tickets for i in t.ids]
        sent = False
        try:
            if not paid:
                await self._limiter.acquire(self._cost(tickets))
            if self._before_send is not None:
                try:
                    await self._before_send(tickets, global_id)
                except Exception as error:  # not sent: the hook refused or failed
                    self._resolve_failed(tickets, error)
                    return
            self._counters.requests += 1
            sent = True
            result = await self._client.post_send(
                body, ids, global_id=global_id, on_retry=self._on_retry
            )
        except APIError as error:
            rejected = error  # handled below, outside this handler: see _bisect
        except anyio.get_cancelled_exc_class():
            if sent:
                self._resolve_failed(
                    tickets,
                    OutcomeUnknownError(
                        "the batcher was cancelled while this request was in flight", ids=ids
                    ),
                )
            else:
                self._resolve_failed(tickets, ClientClosedError(_CANCELLED_BEFORE_SENDING))
            raise
        except Exception as error:
            if not sent:
                self._limiter_failed(tickets, error)
            elif isinstance(error, AgileError):
                self._resolve_failed(tickets, error)  # transport, unknown, closed client
            else:  # not an error of the client's own: it may have been sent
                unknown = OutcomeUnknownError(f"sending failed unexpectedly: {error!r}", ids=ids)
                unknown.__cause__ = error
                self._resolve_failed(tickets, unknown)
            return
        else:
            self._resolve_accepted(tickets, result)
            return
        if self._to_bisect(tickets, rejected):
            log.debug("bisecting a rejected request of %d messages", len(tickets))
            await self._bisect(tickets, paid=False)

    def _to_bisect(self, tickets: Sequence[Ticket], error: APIError) -> bool:
        """Resolve a request the provider refused; ``True`` when it is to be bisected
        instead (some message in it may be the only bad one)."""
        if isinstance(error, RateLimitError):
            self._limiter.penalize(error.retry_after)
        if error.scope == "account":
            self._trip(error)
        elif _is_bisectable(error) and len(tickets) > 1:
            return True
        self._resolve_failed(tickets, error)
        return False

    def _limiter_failed(self, tickets: Sequence[Ticket], error: Exception) -> None:
        """The limiter is broken (its backend is gone): nothing more goes out, and these
        messages were never sent. Not a bug of the batcher's: one warning, no traceback."""
        self._trip(_stopped_by(error))
        assert self._sticky is not None
        self._resolve_failed(tickets, self._sticky)

    async def _bisect(self, tickets: list[Ticket], *, paid: bool) -> None:
        """Send each half on its own. The provider refused the whole request, so nothing in
        it was taken: a half not sent again (cancellation, a stop) is failed as not sent."""
        middle = len(tickets) // 2
        try:
            await self._send_tickets(tickets[:middle], paid=paid)
            await self._send_tickets(tickets[middle:], paid=paid)
        except BaseException:  # each half resolves its own tickets when it returns
            self._resolve_failed(
                tickets, ClientClosedError("the batcher stopped before this message was sent")
            )
            raise

    def _options_on_wire(self, options: SendOptions) -> dict[str, object]:
        wire = self._wire_options.get(options)
        if wire is None:
            wire = self._wire_options[options] = converter.unstructure(options)
        return wire

    def _cost(self, tickets: Sequence[Ticket]) -> Cost:
        """What a request spends; SMS parts are counted only for a limiter that needs them."""
        parts = sum(t.estimated_parts for t in tickets) if self._count_parts else 0
        return Cost(messages=_messages(tickets), parts=parts)

    def _on_retry(self, error: BaseException) -> None:
        self._counters.retries += 1
        if isinstance(error, RateLimitError):
            self._limiter.penalize(error.retry_after)

    # -- outcomes --------------------------------------------------------------------------

    def _resolve_accepted(self, tickets: Sequence[Ticket], response: SendResponse) -> None:
        totals = RequestTotals(
            response.global_id,
            response.processed_messages,
            response.processed_sms_parts,
            response.credit,
        )
        self._credit = response.credit
        c = self._counters
        c.parts += response.processed_sms_parts
        Ticket._accept_all(tickets, totals)
        c.accepted += _messages(tickets)
        self._report(RequestOutcome(tuple(tickets), TicketState.ACCEPTED, totals=totals))
        threshold = self.settings.credit_threshold
        if threshold is not None and response.credit < threshold:
            self._trip(
                CreditThresholdError(
                    f"the credit ({response.credit} EUR) fell below the batcher's "
                    f"credit_threshold ({threshold} EUR)"
                )
            )

    def _resolve_failed(self, tickets: Iterable[Ticket], error: BaseException) -> None:
        tickets = tuple(t for t in tickets if not t.done())
        if not tickets:
            return
        unknown = isinstance(error, OutcomeUnknownError)
        for ticket in tickets:
            count = len(ticket.message.destinations)
            if unknown:
                self._counters.unknown += count
            else:
                self._counters.failed += count
            ticket._fail(error)
        state = TicketState.UNKNOWN if unknown else TicketState.FAILED
        self._report(RequestOutcome(tickets, state, error=error))

    def _report(self, outcome: RequestOutcome) -> None:
        if self._outcomes is not None:
            # Once cancelled, the reporter is gone; the tickets still carry the outcome.
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._outcomes.send_nowait(outcome)

    async def _report_loop(self, outcomes: MemoryObjectReceiveStream[RequestOutcome]) -> None:
        """Hand outcomes to ``on_result`` in order; an async callback is awaited here, so a
        slow journal write never holds up a request."""
        async for outcome in outcomes:
            await self._hand_over(outcome)

    async def _drain_reports(self, outcomes: MemoryObjectReceiveStream[RequestOutcome]) -> None:
        """After the tasks have ended: report what the (cancelled) reporter did not."""
        with outcomes:
            while True:
                try:
                    outcome = outcomes.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    return
                self._limit_reporting()  # left over: the reporter was stopped
                await self._hand_over(outcome)

    async def _hand_over(self, outcome: RequestOutcome) -> None:
        """One outcome to ``on_result``, shielded: a cancellation arriving while a journal
        records it must not leave it half-recorded, nor lose the outcomes after it.

        Only once the batcher is cancelled is the callback's time limited (a grace period,
        then an error logged): until then a journal may take as long as it needs, waiting
        out an outage of its store, say.
        """
        assert self._on_result is not None
        with anyio.CancelScope(shield=True, deadline=self._report_deadline) as scope:
            self._reporting = scope
            try:
                await call_maybe_async(self._on_result, outcome)
            except Exception:
                log.exception("agile_async batcher: the on_result callback raised; ignored")
            finally:
                self._reporting = None
        if scope.cancelled_caught:
            log.error(
                "agile_async batcher: on_result did not return within %.0f s of the "
                "batcher's cancellation; gave up on reporting an outcome of %d messages to "
                "it (the tickets still carry it)",
                _REPORT_GRACE,
                outcome.messages,
            )

    def _limit_reporting(self) -> None:
        """The batcher is cancelled: ``on_result`` has a grace period from now, no more."""
        if self._report_deadline == math.inf:
            self._report_deadline = anyio.current_time() + _REPORT_GRACE
        if self._reporting is not None:
            self._reporting.deadline = min(self._reporting.deadline, self._report_deadline)

    def _fail_queued(self, error: BaseException) -> None:
        queued = [t for group in self._groups.values() for t in group.tickets]
        self._groups.clear()
        self._queued = 0
        self._release_ids(queued)
        self._resolve_failed(queued, error)
        self._after_progress()

    def _trip(self, error: BaseException) -> None:
        """Stop for good: fail everything queued with ``error`` and refuse new work."""
        if self._sticky is not None:
            return
        log.warning("agile_async batcher stopped: %s", error)
        self._sticky = error
        self._fail_queued(error)
        self._wake_all_waiters()
        self._notify()

    def _release_ids(self, tickets: Iterable[Ticket]) -> None:
        """Callers' own ids may be used again once their message has an outcome."""
        if self._pending_ids:
            for ticket in tickets:
                if ticket.message.ids is not None:
                    self._pending_ids.difference_update(ticket.ids)


def _stopped_by(error: BaseException) -> BatcherStoppedError:
    """The sticky error of a batcher stopped by ``error`` (its own bug, a broken limiter)."""
    stopped = BatcherStoppedError(f"the batcher stopped before sending: {error!r}")
    stopped.__cause__ = error
    return stopped


def _messages(tickets: Sequence[Ticket]) -> int:
    return sum([len(t.ids) for t in tickets])
