"""The Batcher's queue: messages waiting to be sent, grouped by request options.

Pure bookkeeping, with no event loop and no clock of its own (callers pass the time), so
every rule about what goes into which request is tested without a server or a clock:

- **groups** by request options: only messages with equal options share a request; each
  group keeps its messages oldest first;
- **accounting in one unit**, messages as the provider counts them: destinations (a text to
  three numbers is three messages), for the queue's capacity and a request's size alike;
- **taking a batch**: the oldest messages of a group that fit one request (its messages,
  bytes and, when counted, SMS parts);
- **withdrawing** one message, or **draining** all (to fail them);
- **pending ids**: callers' own ids that are queued or in flight, so none is sent twice at
  once.

Tickets queued together share a :class:`~agile_async._tickets.Cohort` (one wake-up for all
their waiters); a cohort holds about one request's worth, so a request usually wakes one.
The cohort also keeps the time its first message was queued: ``max_latency`` is measured
from there, which for a message left behind by a smaller request is earlier than its own
time, so it may go out sooner than it had to, never later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ._exceptions import ValidationError
from ._models import Message, SendOptions
from ._tickets import (
    REQUEST_OVERHEAD,
    Cohort,
    RowRun,
    Ticket,
    cohort_of,
    count,
    fitting_run,
    has_caller_ids,
    join,
    message_size,
    message_ticket,
    size_of,
    take_fitting,
)

__all__ = ["REQUEST_OVERHEAD", "RequestLimits", "SendQueue", "message_size"]


class RequestLimits(NamedTuple):
    """What one request may carry."""

    messages: int
    #: Bytes of body (estimated), the request's own overhead excluded.
    size: int
    #: SMS parts; ``None`` when parts are not counted before sending.
    parts: float | None = None


class _Group:
    """Queued tickets that share request options, oldest first."""

    __slots__ = ("cohort", "cohort_messages", "messages", "options", "size", "tickets")

    def __init__(self, options: SendOptions) -> None:
        self.options = options
        self.tickets: deque[Ticket] = deque()
        self.messages = 0
        self.size = 0
        self.cohort = Cohort(options)
        self.cohort_messages = 0


class SendQueue:
    """Queued messages by request options; see the module's docstring.

    Args:
        limits: what one request may carry (a batch never exceeds it, but always has at
            least one message).
        capacity: messages the queue holds before :meth:`has_room` says no; one message
            bigger than that is still let into an empty queue.
    """

    __slots__ = ("_groups", "_last", "_pending_ids", "capacity", "limits", "queued")

    def __init__(self, limits: RequestLimits, capacity: int) -> None:
        self.limits = limits
        self.capacity = capacity
        #: Messages (destinations) queued.
        self.queued = 0
        self._groups: dict[SendOptions, _Group] = {}
        #: The group last queued into: usually every message has the same options, and
        #: finding it by identity spares hashing them (a Python ``__hash__``) per message.
        self._last: _Group | None = None
        self._pending_ids: set[str] = set()

    def has_room(self, count: int) -> bool:
        """Whether ``count`` more messages fit."""
        return not self.queued or self.queued + count <= self.capacity

    def has_pending(self, ids: Iterable[str]) -> bool:
        """Whether any of ``ids`` (callers' own) is queued or in flight."""
        return bool(self._pending_ids) and not self._pending_ids.isdisjoint(ids)

    def check_ids(self, ids: Iterable[str]) -> None:
        """Refuse callers' own ids that are already queued or in flight."""
        if self._pending_ids:
            duplicates = self._pending_ids.intersection(ids)
            if duplicates:
                raise ValidationError.single(
                    "message.ids", f"{sorted(duplicates)!r} already queued or in flight"
                )

    def put(
        self, message: Message, ids: tuple[str, ...] | str, options: SendOptions, now: float
    ) -> tuple[Ticket, bool]:
        """Queue a message (``ids``: one per destination, or the one id of a single
        destination); its ticket, and whether the dispatcher should look now (work arrived
        in an empty queue, or a request just filled up)."""
        group = self._last
        if group is None or group.options is not options:
            group = self._group(options)
        ticket = message_ticket(message, ids, group.cohort)
        group.tickets.append(ticket)
        count = len(message.destinations)
        if not group.cohort_messages:
            group.cohort.opened_at = now
        group.cohort_messages += count
        if group.cohort_messages >= self.limits.messages:  # the next request's waiters apart
            group.cohort = Cohort(options)
            group.cohort_messages = 0
        if message.ids is not None:
            self._pending_ids.update(message.ids)
        return ticket, self._account(group, count, message_size(message.body, count))

    def put_many(
        self, tickets: Sequence[Ticket], start: int, now: float, caller_ids: bool
    ) -> tuple[int, bool]:
        """Queue ``tickets[start:]`` (made for one request options, not queued yet) as far
        as there is room, and at least one into an empty queue; how many were queued, and
        whether the dispatcher should look now. ``caller_ids``: some carry the caller's own
        ids (to be kept pending).

        The bulk path of ``submit_many()``: the accounting is done once for the run, and
        waiters share a cohort per request's worth of tickets.
        """
        options = tickets[start].key
        group = self._group(options)
        room = self.capacity - self.queued
        if self.queued and count(tickets[start]) > room:
            return 0, False
        end, messages, size = fitting_run(tickets, start, room)
        group.tickets.extend(tickets[start:end])
        limits = self.limits
        index = start
        while index < end:  # a cohort per request's worth (counted in tickets here)
            if not group.cohort_messages:
                group.cohort.opened_at = now
            step = min(end - index, max(limits.messages - group.cohort_messages, 1))
            join(tickets, index, index + step, group.cohort)
            group.cohort_messages += step
            index += step
            if group.cohort_messages >= limits.messages:
                group.cohort = Cohort(options)
                group.cohort_messages = 0
        if caller_ids:
            for ticket in tickets[start:end]:
                if has_caller_ids(ticket):
                    self._pending_ids.update(ticket.ids)
        return end - start, self._account(group, messages, size)

    def put_run(self, run: RowRun, now: float) -> bool:
        """Queue a run of light rows (cut to fit one request; it has its own wake-up);
        whether the dispatcher should look now."""
        options = run.key
        group = self._group(options)
        group.tickets.append(run)
        cohort_of(run).opened_at = now
        if has_caller_ids(run):
            self._pending_ids.update(run.ids)
        return self._account(group, count(run), size_of(run))

    def _group(self, options: SendOptions) -> _Group:
        """The group of ``options`` (made if need be), remembered as the last one used."""
        group = self._groups.get(options)
        if group is None:
            group = self._groups[options] = _Group(options)
        self._last = group
        return group

    def _drop(self, options: SendOptions) -> None:
        """Forget the group of ``options`` (it is empty)."""
        del self._groups[options]
        self._last = None

    def _account(self, group: _Group, messages: int, size: int) -> bool:
        """Count ``messages`` (of ``size`` bytes) just queued in ``group``; whether the
        dispatcher should look now: work arrived in an empty queue, or a request filled up."""
        limits = self.limits
        was_empty = not self.queued
        before_messages, before_size = group.messages, group.size
        group.messages += messages
        group.size += size
        self.queued += messages
        return (
            was_empty
            or before_messages < limits.messages <= group.messages
            or before_size < limits.size <= group.size
        )

    def oldest(self) -> tuple[SendOptions, float] | None:
        """The options of the group whose oldest message was queued first, and when (at
        the latest: the time its cohort opened)."""
        groups = self._groups
        if not groups:
            return None
        if len(groups) == 1:
            options, group = next(iter(groups.items()))
            return options, cohort_of(group.tickets[0]).opened_at
        return min(
            ((options, cohort_of(group.tickets[0]).opened_at) for options, group in groups.items()),
            key=lambda oldest: oldest[1],
        )

    def is_full(self, options: SendOptions) -> bool:
        """Whether the group of ``options`` has a whole request's worth queued."""
        group = self._groups[options]
        return group.messages >= self.limits.messages or group.size >= self.limits.size

    def take(self, options: SendOptions) -> list[Ticket]:
        """Take the oldest messages of a group that fit one request (at least one), and
        mark them in flight."""
        group = self._groups[options]
        queue = group.tickets
        tickets, messages, size = take_fitting(queue, *self.limits)
        group.messages -= messages
        group.size -= size
        self.queued -= messages
        if not queue:
            self._drop(options)
        elif cohort_of(queue[0]) is group.cohort:
            # Those left behind would share a wake-up with the ones under way: new ones
            # queued from now on wait apart (the left-behind may be woken once for nothing).
            group.cohort = Cohort(options)
            group.cohort_messages = 0
        return tickets

    def withdraw(self, ticket: Ticket) -> bool:
        """Take a queued ticket out; ``False`` when it is no longer queued."""
        group = self._groups.get(ticket.key)
        if group is None:
            return False
        try:
            group.tickets.remove(ticket)
        except ValueError:
            return False
        n = count(ticket)
        group.messages -= n
        group.size -= size_of(ticket)
        self.queued -= n
        if not group.tickets:
            self._drop(ticket.key)
        self.release((ticket,))
        return True

    def drain(self) -> list[Ticket]:
        """Take every queued ticket out (to be failed), oldest group first."""
        tickets = [t for group in self._groups.values() for t in group.tickets]
        self._groups.clear()
        self._last = None
        self.queued = 0
        self.release(tickets)
        return tickets

    def queued_tickets(self) -> list[Ticket]:
        """The tickets queued now (a snapshot)."""
        return [t for group in self._groups.values() for t in group.tickets]

    def release(self, tickets: Sequence[Ticket] | Iterable[Ticket]) -> None:
        """Callers' own ids may be used again once their message has an outcome."""
        if self._pending_ids:
            for ticket in tickets:
                if has_caller_ids(ticket):
                    self._pending_ids.difference_update(ticket.ids)
