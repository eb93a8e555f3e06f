"""Per-message handles of the batcher: a :class:`Ticket` while waiting, a :class:`Receipt` after.

A ticket is resolved exactly once, to one of three outcomes: accepted (a :class:`Receipt`),
failed (an error saying why), or unknown (:class:`~agile_async.OutcomeUnknownError`). Each
caller awaiting a failed ticket gets its own copy of the error, so tracebacks from different
waiters never pile up on one exception object.

Two costs are kept off the path of every message, since a campaign sends millions:

- **Receipts cost nothing until read.** A ticket keeps the message as submitted and its ids;
  the message *with* its ids is built only when someone reads :attr:`Receipt.message`.
- **One wake-up per request, not per ticket.** Tickets queued together share a
  :class:`Cohort`, one event for all their waiters, set once when their request resolves
  (a ticket that resolves on its own wakes its cohort, and the others go back to waiting).

The resolution side (:func:`start`, :func:`accept_all`, :func:`fail_all`) is for the batcher.
"""

from __future__ import annotations

import copy
import enum
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import overload

import anyio
import attrs

from ._exceptions import OutcomeUnknownError
from ._models import Message, SendOptions
from ._parts import parts_of
from ._serde import message_to_wire

__all__ = ["Receipt", "RequestTotals", "Ticket", "TicketState"]


class TicketState(enum.Enum):
    """Where a submitted message is. The last four are final."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    WITHDRAWN = "withdrawn"


_QUEUED = TicketState.QUEUED
_IN_FLIGHT = TicketState.IN_FLIGHT
_ACCEPTED = TicketState.ACCEPTED


@attrs.frozen
class RequestTotals:
    """What the provider answered for one accepted request (it gives only totals)."""

    global_id: str
    processed_messages: int
    processed_sms_parts: int
    credit: Decimal


class Cohort:
    """The wake-up shared by tickets queued together (usually one request's worth).

    Its event is made only when someone waits, and replaced each time it is set, so a
    waiter woken for a ticket of the cohort that is not its own simply waits again.
    ``opened_at`` is when its first ticket was queued: the age of the cohort's oldest
    message, which is what ``max_latency`` is about (a float per cohort, not per message).
    """

    __slots__ = ("_event", "opened_at", "options")

    def __init__(self, options: SendOptions, opened_at: float = 0.0) -> None:
        self._event: anyio.Event | None = None
        #: The request options of its tickets (kept here, not once per ticket).
        self.options = options
        self.opened_at = opened_at

    async def wait(self) -> None:
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        await event.wait()

    def wake(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()


class Receipt:
    """Proof that the provider accepted a message, with its request's totals.

    Attributes:
        message: the message as sent, with its ids (built when first read).
        ids: the message's ids, one per destination.
        global_id: the ``globalId`` of the request that carried it.
        estimated_parts: the SDK's count of SMS parts for this message, all destinations.
        processed_messages: the provider's count for the whole request.
        processed_sms_parts: the provider's count of parts for the whole request.
        credit: the account's credit (EUR) after that request.
    """

    __slots__ = ("_message", "_ticket", "_totals")

    def __init__(self, ticket: Ticket, totals: RequestTotals) -> None:
        self._ticket = ticket
        self._totals = totals
        self._message: Message | None = None

    @property
    def message(self) -> Message:
        """The message as sent, with its ids."""
        if self._message is None:
            submitted = self._ticket.message
            self._message = (
                submitted if submitted.ids is not None else submitted.with_ids(self._ticket.ids)
            )
        return self._message

    @property
    def ids(self) -> tuple[str, ...]:
        """The message's ids, one per destination."""
        return self._ticket.ids

    @property
    def global_id(self) -> str:
        """The ``globalId`` of the request that carried the message."""
        return self._totals.global_id

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for this message, all destinations."""
        return self._ticket.estimated_parts

    @property
    def processed_messages(self) -> int:
        """The provider's count of messages for the whole request."""
        return self._totals.processed_messages

    @property
    def processed_sms_parts(self) -> int:
        """The provider's count of SMS parts for the whole request."""
        return self._totals.processed_sms_parts

    @property
    def credit(self) -> Decimal:
        """The account's credit (EUR) after the request."""
        return self._totals.credit

    def _key(self) -> tuple[object, ...]:
        return (self.message, self._totals, self.estimated_parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Receipt):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Receipt(ids={list(self.ids)!r}, global_id={self.global_id!r}, "
            f"estimated_parts={self.estimated_parts}, credit={self.credit})"
        )


class Ticket:
    """The handle of one submitted message: ``await ticket.result()`` for its outcome.

    Small on purpose (a queue may hold a hundred thousand): a single generated id is kept
    as the string itself, and the request size is computed, not stored.
    """

    __slots__ = ("_cohort", "_ids", "_message", "_outcome", "_state", "_text")

    def __init__(self, message: Message, ids: tuple[str, ...] | str, cohort: Cohort) -> None:
        self._message: Message | None = message
        #: The body, for the size of requests (a light row's has no Message to ask).
        self._text = message.body
        self._ids = ids
        #: The wake-up shared with the tickets queued with it; it holds the request options.
        self._cohort = cohort
        self._state = _QUEUED
        #: The provider's totals once accepted, the error once failed.
        self._outcome: RequestTotals | BaseException | None = None

    @property
    def message(self) -> Message:
        """The message as submitted (its ``ids`` may be ``None``; see :attr:`ids`)."""
        assert self._message is not None
        return self._message

    @property
    def ids(self) -> tuple[str, ...]:
        """The message's ids, one per destination (generated when none were given)."""
        ids = self._ids
        return (ids,) if type(ids) is str else ids  # type: ignore[return-value]

    @property
    def key(self) -> SendOptions:
        """The request options: only messages with equal options share a request."""
        return self._cohort.options

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for the message, all destinations (counted when
        asked, not kept: only a parts-based rate limit needs it before sending)."""
        message = self.message
        per_destination = parts_of(
            message.body, message.hex_body, message.udh_data, self._cohort.options.enable_unicode
        )
        return per_destination * len(message.destinations)

    @property
    def state(self) -> TicketState:
        """The ticket's current state."""
        return self._state

    def done(self) -> bool:
        """Whether the outcome is known (accepted, failed, unknown or withdrawn)."""
        return self._state is not _QUEUED and self._state is not _IN_FLIGHT

    def exception(self) -> BaseException | None:
        """The failure, once done; ``None`` when accepted or not done yet."""
        outcome = self._outcome
        return outcome if isinstance(outcome, BaseException) else None

    def receipt(self) -> Receipt | None:
        """The receipt once accepted, else ``None`` (made on each call, cheaply: campaigns
        that only count outcomes never pay for one)."""
        outcome = self._outcome
        return Receipt(self, outcome) if isinstance(outcome, RequestTotals) else None

    async def wait(self) -> None:
        """Wait until the outcome is known, without raising a failure."""
        while self._state is _QUEUED or self._state is _IN_FLIGHT:
            await self._cohort.wait()

    async def result(self) -> Receipt:
        """Wait for the outcome: the receipt, or the error (a copy per caller)."""
        while self._state is _QUEUED or self._state is _IN_FLIGHT:
            await self._cohort.wait()
        outcome = self._outcome
        if self._state is _ACCEPTED:
            return Receipt(self, outcome)  # type: ignore[arg-type]
        raise copy.copy(outcome)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<Ticket ids={list(self.ids)!r} state={self._state.value}>"

    # What the queue and the wire need, without building a Message for a light row.

    def _has_caller_ids(self) -> bool:
        return self.message.ids is not None

    def _wire(self) -> tuple[tuple[object, ...], dict[str, object]]:
        message = self.message
        sender = message.sender
        key = (sender, self._text, message.hex_body, message.udh_data, message.scheduling)
        if key[2] or key[3] is not None or key[4] is not None:
            return key, message_to_wire(message, self.ids)
        ids = self._ids
        wire: dict[str, object] = {
            "destinations": message.destinations,
            "sender": sender,
            "body": self._text,
            "ids": (ids,) if type(ids) is str else ids,
        }
        return key, wire


class _RowTicket(Ticket):
    """The ticket of a light row of ``submit_many()``: one text to one number. Its
    :class:`Message` is made only if someone reads :attr:`message`."""

    __slots__ = ("_caller_id", "_destination", "_sender")

    def __init__(
        self, destination: str, text: str, sender: str, id_: str, caller_id: bool, cohort: Cohort
    ) -> None:
        # Every slot set here, without Ticket.__init__: a campaign makes millions of these.
        self._message = None
        self._text = text
        self._ids = id_
        self._cohort = cohort
        self._state = _QUEUED
        self._outcome = None
        self._destination = destination
        self._sender = sender
        self._caller_id = caller_id

    @property
    def message(self) -> Message:
        """The message as submitted (its ``ids`` may be ``None``; see :attr:`ids`), made
        again from the ticket's fields when first read: equal to it, not the same object."""
        if self._message is None:
            self._message = Message(
                destinations=(self._destination,),
                sender=self._sender,
                body=self._text,
                ids=self.ids if self._caller_id else None,
            )
        return self._message

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for the message (one destination)."""
        return parts_of(self._text, False, None, self._cohort.options.enable_unicode)

    def _has_caller_ids(self) -> bool:
        return self._caller_id

    def _wire(self) -> tuple[tuple[object, ...], dict[str, object]]:
        sender, text = self._sender, self._text
        wire: dict[str, object] = {
            "destinations": (self._destination,),
            "sender": sender,
            "body": text,
            "ids": (self._ids,),
        }
        return (sender, text, False, None, None), wire


class RowRun(Ticket):
    """Light rows of one ``submit_many(handles=False)`` call, kept column by column: no
    object per row, since a campaign queues millions and nobody holds a handle.

    To the queue and the dispatcher a run is one entry carrying many messages, like a
    :class:`Message` to many numbers: cut when queued so that it fits one request alone,
    resolved as a whole. Runs are made only when a request's SMS parts are not capped (a
    parts limit takes the row-by-row path, which cuts requests by parts); a custom limiter
    may still be charged a run's parts (:attr:`estimated_parts`). Its rows become tickets
    only if someone reads them (:class:`TicketList`) or a refused request is bisected
    (:func:`expand`); from then on the rows are resolved one by one and the run itself
    stays in flight, unsettled.
    """

    __slots__ = (
        "_caller_ids",
        "_destinations",
        "_distinct",
        "_rows",
        "_sender",
        "_size",
        "_texts",
    )

    def __init__(
        self,
        destinations: list[str],
        texts: list[str],
        sender: str,
        ids: tuple[str, ...],
        caller_ids: bool,
        cohort: Cohort,
    ) -> None:
        self._message = None
        self._text = ""
        self._ids = ids
        self._cohort = cohort
        self._state = _QUEUED
        self._outcome = None
        self._destinations = destinations
        self._texts = texts
        #: One sender for every row (rows of other senders take the row-by-row path).
        self._sender = sender
        #: Whether the ids are the caller's own.
        self._caller_ids = caller_ids
        #: No two rows have the same text: each is a message object of its own on the wire.
        self._distinct = len(set(texts)) == len(texts)
        #: Its share of a request body, in bytes (see :func:`message_size`).
        self._size = message_size("", 1) * len(texts) + sum(map(len, texts))
        self._rows: list[Ticket] | None = None

    @property
    def message(self) -> Message:
        raise TypeError("a run of rows has no single message: read its tickets")

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for all its rows (one destination each)."""
        unicode = self._cohort.options.enable_unicode
        return sum([parts_of(text, False, None, unicode) for text in self._texts])

    async def wait(self) -> None:
        while unsettled((self,)):
            await self._cohort.wait()

    def _has_caller_ids(self) -> bool:
        return self._caller_ids

    def rows(self) -> list[Ticket]:
        """Its rows as tickets, in the run's state (made once; from then on they are
        what is resolved)."""
        rows = self._rows
        if rows is None:
            cohort, caller_ids, sender = self._cohort, self._caller_ids, self._sender
            rows = self._rows = [
                _RowTicket(destination, text, sender, id_, caller_ids, cohort)
                for destination, text, id_ in zip(
                    self._destinations, self._texts, self._ids, strict=True
                )
            ]
            state, outcome = self._state, self._outcome
            for row in rows:
                row._state = state
                row._outcome = outcome
        return rows

    def wire(self) -> list[dict[str, object]]:
        """Its messages as on the wire, one object per row (see :func:`wire_messages`)."""
        sender = self._sender
        return [
            {"destinations": (destination,), "sender": sender, "body": text, "ids": (id_,)}
            for destination, text, id_ in zip(
                self._destinations, self._texts, self._ids, strict=True
            )
        ]


def row_run(
    destinations: list[str],
    texts: list[str],
    sender: str,
    ids: tuple[str, ...],
    caller_ids: bool,
    options: SendOptions,
) -> RowRun:
    """A run of light rows of one sender (checked by the batcher), with its own wake-up."""
    return RowRun(destinations, texts, sender, ids, caller_ids, Cohort(options))


def expand(tickets: Iterable[Ticket]) -> list[Ticket]:
    """Tickets with every run replaced by its rows (made into tickets if need be)."""
    expanded: list[Ticket] = []
    for ticket in tickets:
        if type(ticket) is RowRun:
            expanded.extend(ticket.rows())
        else:
            expanded.append(ticket)
    return expanded


def splittable(tickets: Sequence[Ticket]) -> bool:
    """Whether a request of ``tickets`` can be bisected (it holds more than one ticket,
    counting a run's rows)."""
    return len(tickets) > 1 or (type(tickets[0]) is RowRun and len(tickets[0]._ids) > 1)


def destinations(tickets: Iterable[Ticket]) -> list[str]:
    """The destinations of ``tickets``, in order."""
    found: list[str] = []
    for ticket in tickets:
        if type(ticket) is RowRun:
            found.extend(ticket._destinations)
        else:
            found.extend(ticket.message.destinations)
    return found


def ids_of(tickets: Iterable[Ticket]) -> list[str]:
    """Every message id of ``tickets``, in order (a run's without making its rows)."""
    if type(tickets) is TicketList:
        tickets = tickets._entries
    ids: list[str] = []
    for ticket in tickets:
        id_ = ticket._ids
        if type(id_) is str:
            ids.append(id_)
        else:
            ids.extend(id_)
    return ids


class TicketList(Sequence[Ticket]):
    """The tickets of a request or an outcome, as callbacks see them: a run of light rows
    is made into tickets only when the list is read, not when it is only counted or its
    ids are asked for (:attr:`RequestOutcome.ids <agile_async.RequestOutcome.ids>`)."""

    __slots__ = ("_entries", "_expanded")

    def __init__(self, entries: Sequence[Ticket]) -> None:
        self._entries = entries
        self._expanded: list[Ticket] | None = None

    def _tickets(self) -> list[Ticket]:
        if self._expanded is None:
            self._expanded = expand(self._entries)
        return self._expanded

    def __len__(self) -> int:
        if self._expanded is not None:
            return len(self._expanded)
        return sum([len(t._ids) if type(t) is RowRun else 1 for t in self._entries])

    @overload
    def __getitem__(self, index: int) -> Ticket: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Ticket]: ...

    def __getitem__(self, index: int | slice) -> Ticket | Sequence[Ticket]:
        return self._tickets()[index]

    def __iter__(self) -> Iterator[Ticket]:
        return iter(self._tickets())

    def __repr__(self) -> str:
        return f"TicketList({self._tickets()!r})"


# -- resolution (the batcher's side) ----------------------------------------------------------


def message_ticket(message: Message, ids: tuple[str, ...] | str, cohort: Cohort) -> Ticket:
    """The ticket of a submitted message (checked by the batcher; ``ids`` its ids, or the
    one id the SDK generated for a single destination).

    A plain message to one number with the SDK's id is not kept: its ticket holds the few
    fields a light row has and makes an equal :class:`Message` again if asked. With a
    hundred thousand queued, one object fewer each for the garbage collector to walk is a
    fifth of what ``submit()`` + ``result()`` costs, and a third of the memory.
    """
    if (
        type(ids) is str
        and type(message) is Message
        and not message.hex_body
        and message.udh_data is None
        and message.scheduling is None
    ):
        return _RowTicket(message.destinations[0], message.body, message.sender, ids, False, cohort)
    return Ticket(message, ids, cohort)


def row_ticket(
    destination: str, text: str, sender: str, id_: str, caller_id: bool, cohort: Cohort
) -> Ticket:
    """The ticket of a light row (checked by the batcher): no :class:`Message` made. Its
    ``cohort`` holds its request options (the queue gives it its own when it is queued)."""
    return _RowTicket(destination, text, sender, id_, caller_id, cohort)


def fitting_run(tickets: Sequence[Ticket], start: int, room: float) -> tuple[int, int, int]:
    """How far from ``start`` tickets fit in ``room`` messages (at least one): the end
    index, and the messages and bytes of ``tickets[start:end]``. The size rule of
    :func:`message_size`, inline: this runs for every row of ``submit_many()``."""
    messages = size = 0
    end = start
    while end < len(tickets):
        ticket = tickets[end]
        ids = ticket._ids
        n = 1 if type(ids) is str else len(ids)
        if messages + n > room and end > start:
            break
        messages += n
        size += MESSAGE_OVERHEAD + len(ticket._text) + PER_DESTINATION * n
        end += 1
    return end, messages, size


def join(tickets: Sequence[Ticket], start: int, end: int, cohort: Cohort) -> None:
    """Tickets ``start:end`` wait together on ``cohort``."""
    for index in range(start, end):
        tickets[index]._cohort = cohort


def count(ticket: Ticket) -> int:
    """How many messages (destinations) a ticket carries."""
    ids = ticket._ids
    return 1 if type(ids) is str else len(ids)


def unsettled(tickets: Iterable[Ticket]) -> tuple[Ticket, ...]:
    """The tickets still without an outcome (queued or in flight); a run whose rows were
    made into tickets counts by its rows."""
    found: list[Ticket] = []
    for t in tickets:
        if type(t) is RowRun and t._rows is not None:
            found.extend(unsettled(t._rows))
        elif t._state is _QUEUED or t._state is _IN_FLIGHT:
            found.append(t)
    return tuple(found)


def messages(tickets: Iterable[Ticket]) -> int:
    """How many messages (destinations) tickets carry."""
    return sum([1 if type(t._ids) is str else len(t._ids) for t in tickets])


#: JSON overhead of a request around its messages (options, brackets), in bytes.
REQUEST_OVERHEAD = 200
#: JSON overhead of one message object (keys, quotes, sender), in bytes.
MESSAGE_OVERHEAD = 60
#: A destination and its id in JSON, in bytes (an E.164 number, a generated id, quotes):
#: request sizes are estimates, so callers' longer ids are not measured one by one.
PER_DESTINATION = 48


def message_size(body: str, destinations: int) -> int:
    """A message's approximate share of a request body, in bytes."""
    return MESSAGE_OVERHEAD + len(body) + PER_DESTINATION * destinations


def size_of(ticket: Ticket) -> int:
    """A ticket's approximate share of a request body, in bytes."""
    if type(ticket) is RowRun:
        return ticket._size
    return message_size(ticket._text, count(ticket))


def take_fitting(
    queue: deque[Ticket], max_messages: int, max_size: int, max_parts: float | None
) -> tuple[list[Ticket], int, int]:
    """Take from the left of ``queue`` the oldest tickets that fit one request (at least
    one), marked in flight; with how many messages and bytes they are. The size rule of
    :func:`message_size`, inline: this runs for every message sent."""
    tickets: list[Ticket] = []
    messages = size = parts = 0
    while queue:
        ticket = queue[0]
        ids = ticket._ids
        if type(ids) is str:
            n = 1
            ticket_size = MESSAGE_OVERHEAD + len(ticket._text) + PER_DESTINATION
        else:
            n = len(ids)
            ticket_size = size_of(ticket)
        ticket_parts = 0 if max_parts is None else ticket.estimated_parts
        if tickets and (
            messages + n > max_messages
            or size + ticket_size > max_size
            or (max_parts is not None and parts + ticket_parts > max_parts)
        ):
            break
        queue.popleft()
        ticket._state = _IN_FLIGHT
        tickets.append(ticket)
        messages += n
        size += ticket_size
        parts += ticket_parts
    return tickets, messages, size


def has_caller_ids(ticket: Ticket) -> bool:
    """Whether the ids are the caller's own (they must not be queued twice at once)."""
    return ticket._has_caller_ids()


def wire_messages(tickets: Sequence[Ticket]) -> list[dict[str, object]]:
    """The ``messages`` of a request, merging equal texts into one message object.

    Messages that differ only by destinations and ids become one object with many
    destinations (the provider's bulk shape), which keeps a 500-message request small when
    a campaign sends the same text to everyone. Order is kept. Arrays are tuples (half the
    cost of lists, and nothing for the garbage collector to track) until a merge makes
    them lists.
    """
    if len(tickets) == 1 and type(tickets[0]) is RowRun and tickets[0]._distinct:
        return tickets[0].wire()  # a request of personalised texts: nothing to merge
    if set(map(type, tickets)) == _ROW_TICKETS_ONLY:
        rows: Sequence[_RowTicket] = tickets  # type: ignore[assignment]
        texts = [row._text for row in rows]
        if len(set(texts)) == len(texts):  # personalised texts: nothing to merge
            return [
                {
                    "destinations": (row._destination,),
                    "sender": row._sender,
                    "body": row._text,
                    "ids": (row._ids,),
                }
                for row in rows
            ]
    merged: dict[tuple[object, ...], dict[str, object]] = {}
    for ticket in tickets:
        if type(ticket) is RowRun:
            for wire in ticket.wire():
                _merge(merged, (wire["sender"], wire["body"], False, None, None), wire)
            continue
        key, wire = ticket._wire()
        _merge(merged, key, wire)
    return list(merged.values())


_ROW_TICKETS_ONLY = {_RowTicket}


def _merge(
    merged: dict[tuple[object, ...], dict[str, object]],
    key: tuple[object, ...],
    wire: dict[str, object],
) -> None:
    first = merged.setdefault(key, wire)
    if first is not wire:
        if type(first["destinations"]) is tuple:  # its first merge: grow lists from now on
            first["destinations"] = list(first["destinations"])
            first["ids"] = list(first["ids"])  # type: ignore[call-overload]
        first["destinations"].extend(wire["destinations"])  # type: ignore[attr-defined]
        first["ids"].extend(wire["ids"])  # type: ignore[attr-defined]


def cohort_of(ticket: Ticket) -> Cohort:
    """The wake-up ``ticket`` shares with the tickets queued with it."""
    return ticket._cohort


def accept_all(tickets: Sequence[Ticket], totals: RequestTotals) -> None:
    """Resolve a request's tickets as accepted: one loop, one wake-up per cohort, since
    this runs for every message the batcher sends."""
    woken = None
    for ticket in tickets:
        ticket._outcome = totals
        ticket._state = _ACCEPTED
        if type(ticket) is RowRun and ticket._rows is not None:
            accept_all(ticket._rows, totals)
        cohort = ticket._cohort
        if cohort is not woken:
            cohort.wake()
            woken = cohort


def fail_all(tickets: Iterable[Ticket], error: BaseException, *, withdrawn: bool = False) -> None:
    """Resolve tickets as failed (unknown for an :class:`OutcomeUnknownError`, or
    withdrawn), each exactly once."""
    if withdrawn:
        state = TicketState.WITHDRAWN
    elif isinstance(error, OutcomeUnknownError):
        state = TicketState.UNKNOWN
    else:
        state = TicketState.FAILED
    woken = None
    for ticket in tickets:
        assert not ticket.done(), f"a ticket is resolved once, not again as {state}"
        # A run whose rows were made into tickets is failed by its rows (unsettled()).
        assert type(ticket) is not RowRun or ticket._rows is None
        ticket._outcome = error
        ticket._state = state
        cohort = ticket._cohort
        if cohort is not woken:
            cohort.wake()
            woken = cohort
