"""The Batcher: many individual sends become few ``/sms/send`` requests, at the account's rate.

```
submit()/submit_many()/send() --validate, ids--> SendQueue (bounded, grouped by options)
      dispatcher: waits for a full request or max_latency, takes a batch,
                  acquires an in-flight slot and the rate limiter, starts a request task
      request task: coalesces equal texts into one message object with many destinations,
                  sends with the client's retry policy, resolves every ticket:
                  accepted | failed (typed error) | unknown (OutcomeUnknownError)
```

The seams: :mod:`._queue` is the bookkeeping (pure, no event loop, no clock);
:mod:`._tickets` the per-message handles and their wake-ups; :mod:`._reporting` hands
outcomes to ``on_result``; :mod:`._channel` is all the batcher may use of its client. This
module is the async part: the life of the batcher, the dispatcher, requests and bisection.

Failures (SPEC §3): a 4XX about some message in a request splits the request in halves and
sends each again (bisection), so exactly the bad messages fail; an account-wide error (codes
1, 2, 100) fails everything queued and makes the batcher refuse new work (a sticky error);
a request that may have gone out without an answer makes its messages *unknown*. Every
submitted message gets exactly one outcome, on shutdown and cancellation too.
"""

from __future__ import annotations

import copy
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Literal, NamedTuple, overload

import anyio
import attrs

from . import _tickets
from ._channel import SendChannel
from ._concurrency import task_group
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
from ._queue import REQUEST_OVERHEAD, RequestLimits, SendQueue, message_size
from ._ratelimit import DEFAULT_PAUSE, Cost, RateLimiter, make_limiter
from ._reporting import OutcomeReporter
from ._serde import SendResponse, converter, dumps
from ._setting_validators import check_callable, check_flag, invalid
from ._telemetry import Batch
from ._telemetry import current as current_telemetry
from ._tickets import Receipt, RequestTotals, Ticket, TicketState, wire_messages
from ._validation import (
    IdGenerator,
    as_items,
    check_message,
    options_problems,
    plainly_valid,
    plainly_valid_row,
    plainly_valid_rows,
)

__all__ = [
    "Batcher",
    "BatcherState",
    "BatcherStatistics",
    "BatcherStoppedError",
    "CreditThresholdError",
    "MessageRow",
    "MessageWithdrawnError",
    "QueueFullError",
    "RequestOutcome",
]

log = logging.getLogger("agile_async")


#: How many destinations of failed messages a log record shows.
_SHOWN = 5

#: Why a queued message failed when its batcher was cancelled.
_CANCELLED_BEFORE_SENDING = "the batcher was cancelled before this message was sent"


class BatcherState(enum.Enum):
    """The life of a :class:`Batcher`."""

    #: Made, not entered yet: ``async with`` starts it.
    UNSTARTED = "unstarted"
    #: Taking and sending messages.
    RUNNING = "running"
    #: Leaving its block (or ``aclose()``): sends what is queued, takes nothing new.
    CLOSING = "closing"
    #: Stopped by a sticky error (:attr:`Batcher.error`): sends and takes nothing more.
    STOPPED = "stopped"
    #: Every message has its outcome.
    CLOSED = "closed"


class MessageRow(NamedTuple):
    """A light row for :meth:`Batcher.submit_many`: one text to one number, with no
    :class:`Message` made for it up front (plain tuples in this order work too)."""

    destination: str
    body: str
    id: str | None = None
    sender: str | None = None


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


class RequestOutcome:
    """What became of one request's messages; given to ``on_result`` as it happens.

    ``state`` is ``ACCEPTED`` (with the provider's ``totals``) or ``FAILED``/``UNKNOWN``/
    ``WITHDRAWN`` (with ``error``). A request split by bisection is reported through its
    halves; messages settled without a request (shutdown, a sticky error, a caller of
    ``send()`` that stopped waiting) are reported the same way. Every submitted message is
    in exactly one outcome, on every way out of the batcher (cancellation included).

    Rows queued by ``submit_many(handles=False)`` have no ticket until ``tickets`` is
    read: a callback that only needs ``ids`` or ``messages`` never makes one.
    """

    __slots__ = ("_entries", "_error", "_state", "_tickets", "_totals")

    def __init__(
        self,
        tickets: Sequence[Ticket],
        state: TicketState,
        totals: RequestTotals | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._entries = tickets
        self._state = state
        self._totals = totals
        self._error = error
        self._tickets: Sequence[Ticket] | None = None

    @property
    def tickets(self) -> Sequence[Ticket]:
        """The messages' tickets, in request order."""
        if self._tickets is None:
            self._tickets = _tickets.TicketList(self._entries)
        return self._tickets

    @property
    def state(self) -> TicketState:
        """The state every message of the outcome is in."""
        return self._state

    @property
    def totals(self) -> RequestTotals | None:
        """The provider's totals for the request, when accepted."""
        return self._totals

    @property
    def error(self) -> BaseException | None:
        """Why the messages failed (or why their outcome is unknown)."""
        return self._error

    @property
    def ids(self) -> list[str]:
        """Every message's ids, in request order (one per destination)."""
        return _tickets.ids_of(self._entries)

    @property
    def messages(self) -> int:
        """How many messages (destinations) the outcome covers."""
        return _tickets.messages(self._entries)

    def __repr__(self) -> str:
        return (
            f"RequestOutcome(messages={self.messages}, state={self._state}, "
            f"totals={self._totals!r}, error={self._error!r})"
        )


class _RoomWaiter:
    """A submitter waiting for room in a full queue (one event each: see ``submit``)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


@attrs.define
class _Counters:
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    withdrawn: int = 0
    requests: int = 0
    retries: int = 0
    parts: int = 0


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
        tickets = await batcher.submit_many(rows)      # many at once, one pass
        ...
        receipt = await ticket.result()
    ```

    Leaving the ``async with`` block sends everything queued and waits for it; cancelling
    the block fails what was not sent yet with :class:`~agile_async.ClientClosedError`.
    """

    def __init__(
        self,
        channel: SendChannel,
        settings: BatchSettings,
        *,
        limiter: RateLimiter | None = None,
        on_result: Callable[[RequestOutcome], object] | None = None,
        before_send: Callable[[Sequence[Ticket], str], Awaitable[None]] | None = None,
    ) -> None:
        if limiter is not None and not isinstance(limiter, RateLimiter):
            problem = "must be a RateLimiter (with acquire() and penalize()) or None"
            raise invalid("limiter", problem, limiter)
        on_result = check_callable("on_result", on_result)
        before_send = check_callable("before_send", before_send)
        self._channel = channel
        self.settings = settings
        self._limiter = limiter if limiter is not None else make_limiter(settings.rate_limit)
        check_settings = getattr(self._limiter, "check_settings", None)
        if check_settings is not None:  # a shared limiter refuses requests it can never grant
            check_settings(settings)
        self._before_send = before_send
        self._reporter = (
            OutcomeReporter(on_result, RequestOutcome.messages.fget)  # type: ignore[attr-defined]
            if on_result is not None
            else None
        )
        # Counting parts costs a segment count per distinct text: done before sending only
        # for a parts-based limit, or a custom limiter that may charge parts (one that says
        # it does not, such as a RedisLimiter without a limit per part, is given none).
        self._count_parts = (
            limiter is not None and getattr(limiter, "charges_parts", True) is not False
        ) or (settings.rate_limit is not None and settings.rate_limit.per == "parts")
        max_messages, max_parts = self._cost_caps(settings)
        self._queue = SendQueue(
            RequestLimits(
                messages=max_messages,
                size=settings.max_request_bytes - REQUEST_OVERHEAD,
                # A request's parts are capped only by a parts limit (a custom limiter is
                # charged them, but puts no cap on one request).
                parts=max_parts if self._count_parts and max_parts != _NO_CAP else None,
            ),
            settings.queue_capacity,
        )
        self._clock = time.monotonic
        self._in_flight = 0
        #: The default request options (``settings.options``, read once per message).
        self._options = settings.options
        self._valid_options: set[SendOptions] = {settings.options}
        self._ids = channel.ids
        self._next_id = channel.ids.next_id
        self._max_destinations = settings.max_messages
        self._wire_options: dict[SendOptions, dict[str, object]] = {}
        self._counters = _Counters()
        self._credit: Decimal | None = None
        self._state = BatcherState.UNSTARTED
        self._sticky: BaseException | None = None
        self._flushing = 0
        self._wakeup: anyio.Event | None = None
        self._room_waiters: deque[_RoomWaiter] = deque()
        self._idle: anyio.Event | None = None
        self._slots: anyio.Semaphore | None = None
        self._dispatcher_done: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        #: Logs, and spans and metrics when OpenTelemetry is configured: chosen once, here,
        #: and called per request, never per message.
        self._telemetry = current_telemetry()
        self._telemetry.watch(self)

    @staticmethod
    def _cost_caps(settings: BatchSettings) -> tuple[int, float]:
        """Keep each request within the rate limit's burst, so no request can overshoot it."""
        limit = settings.rate_limit
        messages, parts = settings.max_messages, _NO_CAP
        if limit is not None and limit.per == "messages":
            messages = max(1, min(messages, int(limit.capacity)))
        elif limit is not None and limit.per == "parts":
            parts = limit.capacity
        return messages, parts

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> BatcherState:
        """Where the batcher is in its life."""
        return self._state

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Batcher, None]:
        if self._state is not BatcherState.UNSTARTED:
            raise RuntimeError("a Batcher can be entered only once")
        self._channel.ensure_open()
        self._state = BatcherState.RUNNING
        self._wakeup = anyio.Event()
        self._dispatcher_done = anyio.Event()
        self._slots = anyio.Semaphore(self.settings.max_in_flight)
        reporter = self._reporter
        try:
            async with task_group() as tasks:
                self._task_group = tasks
                if reporter is not None:
                    tasks.start_soon(reporter.run)
                tasks.start_soon(self._dispatch_loop)
                try:
                    yield self
                except anyio.get_cancelled_exc_class():
                    # Requests under way are cancelled with this block: they resolve as
                    # unknown, and those outcomes are still reported (below), in a grace.
                    if reporter is not None:
                        reporter.limit()
                    self._close_now(_CANCELLED_BEFORE_SENDING)
                    raise
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await self.aclose()
                    raise
                else:
                    await self.aclose()
                finally:
                    if self._state is BatcherState.CLOSED and reporter is not None:
                        reporter.close()  # every outcome is in: the reporter ends
        finally:
            # Outcomes settled after the reporter was cancelled (requests cancelled with the
            # block, queued messages failed) still reach on_result, exactly once each.
            if reporter is not None:
                await reporter.drain()

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop taking work; send what is queued (or, with ``cancel``, fail it) and wait.

        Messages already in a request always get their real outcome.
        """
        check_flag("cancel", cancel)
        if self._state is BatcherState.UNSTARTED:
            raise RuntimeError("the Batcher was never started: use 'async with'")
        if cancel:
            self._close_now("the batcher was closed before this message was sent")
        else:
            self._begin_closing()
        assert self._dispatcher_done is not None
        await self._dispatcher_done.wait()
        while self._in_flight or self._queue.queued:
            self._idle = anyio.Event()
            await self._idle.wait()
        self._state = BatcherState.CLOSED

    def _begin_closing(self) -> None:
        if self._state is BatcherState.RUNNING:
            self._state = BatcherState.CLOSING
        self._wake_all_waiters()
        self._notify()

    def _close_now(self, reason: str) -> None:
        self._begin_closing()
        self._fail_queued(ClientClosedError(reason))

    # -- submitting ------------------------------------------------------------------------

    def _refuse(self) -> None:
        """Raise why the batcher takes no message now (it is not running)."""
        if self._sticky is not None:
            raise copy.copy(self._sticky)
        if self._state is BatcherState.UNSTARTED:
            raise RuntimeError("start the Batcher first: 'async with client.batcher() as b'")
        if self._state is not BatcherState.RUNNING:
            raise ClientClosedError("this Batcher is closed and takes no more messages")

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

    def _prepare(self, message: Message, options: SendOptions) -> tuple[str, ...] | str:
        """Check a message for a request with ``options``; its ids (generated if need be:
        the one id of a single destination as the string itself)."""
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
                return self._next_id()
            return self._ids.new_ids(count, options.max_id_len)
        self._queue.check_ids(ids)
        return ids

    def _enqueue(
        self, message: Message, ids: tuple[str, ...] | str, options: SendOptions
    ) -> Ticket:
        ticket, wake = self._queue.put(message, ids, options, self._clock())
        if wake:
            self._notify()
        return ticket

    async def submit(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Queue a message and return its :class:`Ticket`; waits while the queue is full.

        Waiting submitters get in first come, first served: none is forgotten or overtaken
        by later ones, and one that is cancelled while waiting queues nothing.

        Raises:
            ValidationError: the message is invalid (nothing is queued).
            ClientClosedError: the batcher is closed.
            AgileError: the batcher stopped on an account-wide error (the sticky error).
        """
        if self._state is not _RUNNING:
            self._refuse()
        options = self._options if options is None else self._check_options(options)
        ids = self._prepare(message, options)
        count = len(message.destinations)
        if self._room_waiters or not self._queue.has_room(count):
            await self._wait_for_room(count)
        # What _enqueue does, inline: this is the path of every message submitted.
        ticket, wake = self._queue.put(message, ids, options, self._clock())
        if wake:
            self._notify()
        return ticket

    def submit_nowait(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Like :meth:`submit`, but raise :class:`QueueFullError` instead of waiting."""
        if self._state is not _RUNNING:
            self._refuse()
        options = self._options if options is None else self._check_options(options)
        ids = self._prepare(message, options)
        if self._room_waiters or not self._queue.has_room(len(message.destinations)):
            raise QueueFullError(
                f"the batcher's queue is full ({self._queue.queued} of "
                f"{self.settings.queue_capacity} messages)"
            )
        return self._enqueue(message, ids, options)

    @overload
    async def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: Literal[True] = ...,
    ) -> list[Ticket]: ...

    @overload
    async def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: Literal[False],
    ) -> int: ...

    @overload
    async def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: bool,
    ) -> list[Ticket] | int: ...

    async def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = None,
        sender: str | None = None,
        handles: bool = True,
    ) -> list[Ticket] | int:
        """Queue many messages in one pass: the bulk path of campaigns and imports.

        ``messages`` are :class:`Message` objects or light rows, :class:`MessageRow` or
        plain tuples ``(destination, body[, id[, sender]])``, whose sender defaults to
        ``sender``. Every item is checked before any is queued, so an invalid one queues
        nothing (the :class:`~agile_async.ValidationError` names it: ``messages[7].body``).
        Then they are queued in order, waiting for room like :meth:`submit` (first come,
        first served). If the call is cancelled (or the batcher stops) part-way, what it
        queued and was not sent yet is withdrawn: none of its messages is left behind
        without a handle.

        Returns:
            the tickets, in order; with ``handles=False``, only how many messages were
            queued (their outcomes reach ``on_result``): a stream of millions keeps no
            handle per message.
        """
        if self._state is not _RUNNING:
            self._refuse()
        options = self._options if options is None else self._check_options(options)
        check_flag("handles", handles)
        items = as_items(messages)
        if not handles:
            runs = self._prepare_runs(items, options, sender)
            if runs is not None:
                return await self._queue_runs(runs)
        tickets, caller_ids = self._prepare_many(items, options, sender)
        queue = self._queue
        clock = self._clock
        queued = 0
        try:
            while queued < len(tickets):
                count = _tickets.count(tickets[queued])
                if self._room_waiters or not queue.has_room(count):
                    await self._wait_for_room(count)
                added, wake = queue.put_many(tickets, queued, clock(), caller_ids)
                queued += added
                if wake:
                    self._notify()
        except BaseException:
            for ticket in tickets[:queued]:
                self._withdraw(ticket)
            raise
        return tickets if handles else queued

    def _prepare_runs(
        self, items: Sequence[object], options: SendOptions, sender: str | None
    ) -> list[_tickets.RowRun] | None:
        """The bulk path without handles: plainly valid rows ``(destination, body[, id])``
        of one sender, checked column by column and cut into runs that each fit one request
        (no object per row). ``None`` when the rows need the row-by-row path: other shapes,
        a row that is not plainly valid (that path names it), a cap on a request's parts."""
        limits = self._queue.limits
        if not items or sender is None or limits.parts is not None:
            return None
        if set(map(type, items)) != _TUPLE_ONLY:
            return None
        widths = set(map(len, items))  # type: ignore[arg-type]
        if widths == _PAIRS:
            destinations, bodies = map(list, zip(*items, strict=True))
            ids = None
        elif widths == _TRIPLES:
            destinations, bodies, ids = map(list, zip(*items, strict=True))
        else:
            return None
        if not plainly_valid_rows(destinations, bodies, sender, ids, options):
            if not self._learn_sender(items[0], options, sender):
                return None
            if not plainly_valid_rows(destinations, bodies, sender, ids, options):
                return None
        count = len(items)
        caller_ids = ids is not None
        if ids is None:
            if options.max_id_len >= IdGenerator.LENGTH:
                ids = self._ids.take(count)
            else:
                ids = [self._ids.new_id(options.max_id_len) for _ in range(count)]
        elif len(set(ids)) != count or self._queue.has_pending(ids):
            return None  # repeated ids: the row-by-row path says which
        runs: list[_tickets.RowRun] = []
        # A run fits one request, and the queue too: a queue smaller than a request holds
        # no more than its capacity of rows (a run waits for room like one message).
        step = max(1, min(limits.messages, self._queue.capacity))
        start = 0
        while start < count:
            end = self._fitting_end(bodies, start, min(count, start + step))
            runs.append(
                _tickets.row_run(
                    destinations[start:end],
                    bodies[start:end],
                    sender,
                    tuple(ids[start:end]),
                    caller_ids,
                    options,
                )
            )
            start = end
        return runs

    def _fitting_end(self, bodies: list[str], start: int, end: int) -> int:
        """How far from ``start`` (up to ``end``) rows fit one request's size: at least one."""
        room = self._queue.limits.size
        row = message_size("", 1)
        if row * (end - start) + sum(map(len, bodies[start:end])) <= room:
            return end
        size, stop = 0, start
        while stop < end and (stop == start or size + row + len(bodies[stop]) <= room):
            size += row + len(bodies[stop])
            stop += 1
        return stop

    def _learn_sender(self, first: object, options: SendOptions, sender: str) -> bool:
        """Check the first row in full (which remembers a good sender); whether it passed."""
        try:
            check_message(_row_message(first, sender), options)  # type: ignore[arg-type]
        except ValidationError:
            return False
        return True

    async def _queue_runs(self, runs: list[_tickets.RowRun]) -> int:
        """Queue runs in order, waiting for room like :meth:`submit`; if cancelled part-way,
        what was queued and not sent yet is withdrawn. How many messages were queued."""
        queue, clock = self._queue, self._clock
        queued: list[_tickets.RowRun] = []
        try:
            for run in runs:
                count = _tickets.count(run)
                if self._room_waiters or not queue.has_room(count):
                    await self._wait_for_room(count)
                if queue.put_run(run, clock()):
                    self._notify()
                queued.append(run)
        except BaseException:
            for run in queued:
                self._withdraw(run)
            raise
        return _messages(queued)

    def _prepare_many(
        self,
        items: list[Message | MessageRow | tuple[str, ...]],
        options: SendOptions,
        sender: str | None,
    ) -> tuple[list[Ticket], bool]:
        """Check every item, give it ids and make its ticket (not queued yet); and whether
        some carry ids of the caller's own. A plainly valid light row gets a ticket with no
        :class:`Message`; a row that is not plainly valid is made into a :class:`Message`
        and checked as one, so the rules and their messages are the same."""
        tickets: list[Ticket] = []
        append = tickets.append
        seen: set[str] = set()
        cohort = _tickets.Cohort(options)  # the options, until the queue gives each its own
        row_ticket = _tickets.row_ticket
        next_id = self._next_id if options.max_id_len >= IdGenerator.LENGTH else None
        for index, item in enumerate(items):
            try:
                if isinstance(item, tuple) and 2 <= len(item) <= 4:
                    size = len(item)
                    destination, text = item[0], item[1]
                    id_ = item[2] if size > 2 else None
                    row_sender = item[3] if size > 3 and item[3] is not None else sender
                    if plainly_valid_row(destination, text, row_sender, id_, options):
                        if id_ is None:
                            id_ = next_id() if next_id else self._ids.new_id(options.max_id_len)
                            append(row_ticket(destination, text, row_sender, id_, False, cohort))  # type: ignore[arg-type]
                            continue
                        self._check_new_ids(seen, (id_,))
                        append(row_ticket(destination, text, row_sender, id_, True, cohort))  # type: ignore[arg-type]
                        continue
                    item = _row_message(item, sender)
                elif not isinstance(item, Message):
                    raise ValidationError.single(
                        "message",
                        "must be a Message or a row (destination, body[, id[, sender]]), "
                        f"not {type(item).__name__}",
                    )
                ids = self._prepare(item, options)
                if item.ids is not None:
                    self._check_new_ids(seen, item.ids)
                append(Ticket(item, ids, cohort))
            except ValidationError as error:
                raise ValidationError(
                    problems=[
                        Problem(p.field.replace("message", f"messages[{index}]", 1), p.message)
                        for p in error.problems
                    ]
                ) from None
        return tickets, bool(seen)

    def _check_new_ids(self, seen: set[str], ids: tuple[str, ...]) -> None:
        """Callers' own ids must be new: not queued or in flight, not earlier in the call."""
        if not seen.isdisjoint(ids):
            raise ValidationError.single("message.ids", "repeats an id of an earlier message")
        self._queue.check_ids(ids)
        seen.update(ids)

    async def _wait_for_room(self, count: int) -> None:
        """Wait in line until ``count`` messages fit the queue; only the first in line
        takes room.

        Each waiter has its own event: progress wakes the first in line, and each waiter
        leaving the line (admitted, cancelled or refused) wakes the next, so a wake-up is
        never lost to a waiter that no longer waits.
        """
        waiter = _RoomWaiter()
        waiters = self._room_waiters
        waiters.append(waiter)
        try:
            while True:
                if self._state is not BatcherState.RUNNING:
                    self._refuse()
                if waiters[0] is waiter and self._queue.has_room(count):
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

    def _withdraw(self, ticket: Ticket) -> None:
        if ticket.state is not TicketState.QUEUED or not self._queue.withdraw(ticket):
            return
        count = _tickets.count(ticket)
        self._counters.withdrawn += count
        error = MessageWithdrawnError("the caller stopped waiting before the message was sent")
        self._telemetry.outcome("withdrawn", count, ids=ticket.ids, error=error)
        _tickets.fail_all((ticket,), error, withdrawn=True)
        self._report(RequestOutcome((ticket,), TicketState.WITHDRAWN, error=error))
        self._after_progress()

    async def flush(self) -> None:
        """Send everything queued now, without waiting for ``max_latency``, and wait for it."""
        pending = self._queue.queued_tickets()
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
            queued=self._queue.queued,
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
        return (
            f"<Batcher {self._state.value} queued={s.queued} in_flight={s.in_flight} "
            f"accepted={s.accepted}>"
        )

    # -- dispatching -----------------------------------------------------------------------

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _after_progress(self) -> None:
        self._wake_first_waiter()
        if self._idle is not None and not (self._in_flight or self._queue.queued):
            self._idle.set()

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
        queue = self._queue
        max_latency = self.settings.max_latency
        while self._sticky is None:
            oldest = queue.oldest()
            if oldest is None:
                if self._state is not BatcherState.RUNNING:
                    return
                await self._wait_for_wakeup(None)
                continue
            options, since = oldest
            if (
                self._state is BatcherState.RUNNING
                and not self._flushing
                and not queue.is_full(options)
            ):
                wait = since + max_latency - self._clock()
                if wait > 0:
                    await self._wait_for_wakeup(wait)
                    continue
            await self._launch()

    async def _launch(self) -> None:
        """Take the next batch once a request slot is free, pace it, and start its request.

        The slot comes first: while every slot is busy, messages stay queued (so they can
        still be withdrawn or cancelled) and the next request only grows fuller.
        """
        assert self._slots is not None
        assert self._task_group is not None
        await self._slots.acquire()
        oldest = self._queue.oldest()
        if oldest is None or self._sticky is not None:
            self._slots.release()
            return
        tickets = self._queue.take(oldest[0])
        self._in_flight += _messages(tickets)
        self._after_progress()
        try:
            await self._limiter.acquire(self._cost(tickets))
        except BaseException as error:
            self._slots.release()
            self._in_flight -= _messages(tickets)
            self._queue.release(tickets)
            if not isinstance(error, Exception):  # cancelled
                self._resolve_failed(tickets, ClientClosedError(_CANCELLED_BEFORE_SENDING))
                self._after_progress()
                raise
            self._limiter_failed(tickets, error)
            self._after_progress()
            return
        self._task_group.start_soon(self._run_request, tickets)

    # -- requests --------------------------------------------------------------------------

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
            self._queue.release(tickets)
            self._slots.release()
            self._after_progress()

    def _settle_leftovers(self, tickets: Sequence[Ticket]) -> None:
        """Nothing is left unresolved, on any path: had the request gone out, it may have
        been taken, so the honest outcome is unknown."""
        leftovers = _tickets.unsettled(tickets)
        if leftovers:
            error = OutcomeUnknownError(
                "the batcher stopped while this message's request was under way",
                ids=[i for t in leftovers for i in t.ids],
            )
            self._resolve_failed(leftovers, error)

    def _encode(self, tickets: Sequence[Ticket]) -> tuple[bytes, str]:
        """A request's JSON body and its new ``globalId``."""
        global_id = self._ids.new_global_id()
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
            if _tickets.splittable(tickets):
                await self._bisect(tickets, paid=True)
            else:
                problem = ValidationError.single("message", f"cannot be encoded as JSON: {error}")
                self._resolve_failed(tickets, problem)
            return
        ids = _tickets.ids_of(tickets)
        with self._telemetry.batch(global_id, len(ids)) as span:
            rejected = await self._post_tickets(tickets, body, ids, global_id, paid, span)
        if rejected is not None:
            log.debug(
                "bisecting a rejected request of %d messages",
                len(tickets),
                extra={"agile_event": "request.bisect", "global_id": global_id},
            )
            await self._bisect(tickets, paid=False)

    async def _post_tickets(
        self,
        tickets: list[Ticket],
        body: bytes,
        ids: list[str],
        global_id: str,
        paid: bool,
        span: Batch,
    ) -> APIError | None:
        """The request of :meth:`_send_tickets`; resolves ``tickets``, unless the provider
        refused a request that is to be bisected: then that error."""
        sent = False
        try:
            if not paid:
                await self._limiter.acquire(self._cost(tickets))
            if self._before_send is not None:
                try:
                    await self._before_send(_tickets.TicketList(tickets), global_id)
                except Exception as error:  # not sent: the hook refused or failed
                    span.settle("failed", error)
                    self._resolve_failed(tickets, error)
                    return None
            self._counters.requests += 1
            sent = True
            result = await self._channel.post_send(
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
                error = unknown
                self._resolve_failed(tickets, unknown)
            span.settle("unknown" if isinstance(error, OutcomeUnknownError) else "failed", error)
            return None
        else:
            span.settle("accepted", parts=result.processed_sms_parts)
            self._resolve_accepted(tickets, result)
            return None
        bisect = self._to_bisect(tickets, rejected)
        span.settle("bisected" if bisect else "failed", rejected)
        return rejected if bisect else None

    def _to_bisect(self, tickets: Sequence[Ticket], error: APIError) -> bool:
        """Resolve a request the provider refused; ``True`` when it is to be bisected
        instead (some message in it may be the only bad one)."""
        if isinstance(error, RateLimitError):
            self._penalize(error)
        if error.scope == "account":
            self._trip(error)
        elif _is_bisectable(error) and _tickets.splittable(tickets):
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
        it was taken: a half not sent again (cancellation, a stop) is failed as not sent.
        A run of light rows is split into its rows here (the rare path)."""
        tickets = _tickets.expand(tickets)
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
            self._penalize(error)

    def _penalize(self, error: RateLimitError) -> None:
        """A 429: the limiter pauses (and slows down); the one place that tells it."""
        retry_after = error.retry_after
        self._limiter.penalize(retry_after)
        self._telemetry.pause(retry_after, DEFAULT_PAUSE if retry_after is None else retry_after)

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
        _tickets.accept_all(tickets, totals)
        count = _messages(tickets)
        c.accepted += count
        self._telemetry.outcome(
            "accepted", count, global_id=response.global_id, parts=response.processed_sms_parts
        )
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
        tickets = _tickets.unsettled(tickets)
        if not tickets:
            return
        unknown = isinstance(error, OutcomeUnknownError)
        count = _messages(tickets)
        if unknown:
            self._counters.unknown += count
        else:
            self._counters.failed += count
        _tickets.fail_all(tickets, error)
        state = TicketState.UNKNOWN if unknown else TicketState.FAILED
        self._tell_failed(state, tickets, count, error)
        self._report(RequestOutcome(tickets, state, error=error))

    def _tell_failed(
        self, state: TicketState, tickets: Sequence[Ticket], count: int, error: BaseException
    ) -> None:
        """Log and count messages that failed (or whose outcome is unknown): their ids, and
        the first few destinations (masked unless ``log_destinations``)."""
        self._telemetry.outcome(
            state.value,
            count,
            ids=_tickets.ids_of(tickets),
            error=error,
            destinations=_tickets.destinations(tickets[:_SHOWN])[:_SHOWN],
            show_destinations=self.settings.log_destinations,
        )

    def _report(self, outcome: RequestOutcome) -> None:
        if self._reporter is not None:
            self._reporter.report(outcome)

    def _fail_queued(self, error: BaseException) -> None:
        self._resolve_failed(self._queue.drain(), error)
        self._after_progress()

    def _trip(self, error: BaseException) -> None:
        """Stop for good: fail everything queued with ``error`` and refuse new work."""
        if self._sticky is not None:
            return
        self._telemetry.stopped(error)
        self._sticky = error
        if self._state is not BatcherState.CLOSED:
            self._state = BatcherState.STOPPED
        self._fail_queued(error)
        self._wake_all_waiters()
        self._notify()


def _row_message(row: tuple[object, ...], sender: str | None) -> Message:
    """The :class:`Message` of a light row ``(destination, body[, id[, sender]])``."""
    destination, body, id_, row_sender = (*row, None, None)[:4]
    if row_sender is None:
        row_sender = sender
    if row_sender is None:
        raise ValidationError.single(
            "message.sender", "is missing: give the row a sender, or submit_many(sender=...)"
        )
    return Message(
        destinations=(destination,),  # type: ignore[arg-type]
        sender=row_sender,  # type: ignore[arg-type]
        body=body,  # type: ignore[arg-type]
        ids=None if id_ is None else (id_,),  # type: ignore[arg-type]
    )


def _stopped_by(error: BaseException) -> BatcherStoppedError:
    """The sticky error of a batcher stopped by ``error`` (its own bug, a broken limiter)."""
    stopped = BatcherStoppedError(f"the batcher stopped before sending: {error!r}")
    stopped.__cause__ = error
    return stopped


_messages = _tickets.messages
_RUNNING = BatcherState.RUNNING
_TUPLE_ONLY = {tuple}
#: No cap on a request's SMS parts.
_NO_CAP = float("inf")
_PAIRS = {2}
_TRIPLES = {3}
