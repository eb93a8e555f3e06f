"""``DeliveryTracker``: match delivery reports to what was sent, and await "delivered".

The provider posts one report per SMS part, in any order, perhaps more than once, perhaps
before the send call that caused it has even returned. The tracker folds the parts of a
message into one outcome with the delivery rule of :mod:`._delivery` (the very function every
campaign journal uses):

- delivered only when every part is delivered;
- failed as soon as any part reaches a failure status, keeping which one (rejected, expired,
  deleted, undeliverable: they mean different things to a sender);
- pending otherwise (no report yet, or only ``ACCEPTED`` ones).

Memory is bounded: finished entries beyond ``max_finished`` are forgotten oldest first (the
summary's counts stay exact), and ``on_final`` can hand each finished outcome to a store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import anyio
import attrs

from ._delivery import DeliveryState
from ._models import DeliveryReport, DeliveryStatus, Message, SendResult
from ._setting_validators import check_callable, check_integer, check_number, invalid
from ._tickets import Receipt, Ticket
from ._validation import is_collection

__all__ = ["DeliveryOutcome", "DeliverySummary", "DeliveryTracker", "Trackable"]

log = logging.getLogger("agile_async")

#: What :meth:`DeliveryTracker.track` accepts: results, receipts, tickets, messages with
#: ids, or ids themselves (and iterables of any of these).
Trackable = SendResult | Receipt | Ticket | Message | str
_TRACKABLE = (SendResult, Receipt, Ticket, Message, str)


def _ids_of(item: Trackable) -> list[tuple[str, str | None]]:
    """The ids ``item`` carries, each with its destination (``None`` for a bare id)."""
    if isinstance(item, str):
        return [(item, None)]
    if isinstance(item, SendResult):
        messages: Iterable[Message] = item.messages
    elif isinstance(item, Receipt):
        messages = (item.message,)
    elif isinstance(item, Ticket):
        return list(zip(item.ids, item.message.destinations, strict=True))
    else:
        messages = (item,)
    pairs: list[tuple[str, str | None]] = []
    for message in messages:
        if message.ids is None:
            raise invalid(
                "message.ids",
                "must be set: a Message without ids cannot be tracked; track the "
                "SendResult, Receipt or Ticket, which carry the ids the SDK generated",
            )
        pairs += zip(message.ids, message.destinations, strict=True)
    return pairs


def _untrackable(name: str, value: object) -> Exception:
    return invalid(
        name, "must be a SendResult, Receipt, Ticket, Message with ids or id (or many)", value
    )


@attrs.frozen
class DeliveryOutcome:
    """Where one message (one id, one destination) stands.

    Attributes:
        message_id: the message's id.
        destination: its phone number, once known (from what was tracked or a report).
        status: the message-level status: ``DELIVERED`` when every part is, the first
            failure reported for any part, ``ACCEPTED`` while parts are only accepted, or
            ``None`` before any report.
        parts: how many parts the message has, once a report said (``concatTotal``).
        parts_delivered: how many distinct parts are reported delivered.
        cost: the latest reported price of each part, added up (EUR).
        done_date: when the message reached its final status.
    """

    message_id: str
    destination: str | None
    status: DeliveryStatus | None
    parts: int | None
    parts_delivered: int
    cost: Decimal
    done_date: datetime | None

    @property
    def final(self) -> bool:
        """Whether the outcome will not change any more."""
        return self.status is not None and self.status.is_final

    @property
    def delivered(self) -> bool:
        """Whether every part reached the phone."""
        return self.status is DeliveryStatus.DELIVERED


class DeliverySummary(NamedTuple):
    """Counts over every tracked message, and what the reports cost.

    Attributes:
        tracked: messages (ids) being tracked.
        delivered: tracked messages delivered (every part).
        failed: tracked messages that reached a failure status.
        pending: tracked messages without a final status yet.
        by_status: final tracked messages by status (failures kept distinct).
        cost: the reported prices of tracked messages, added up (EUR).
        reports: reports fed, duplicates included.
        duplicates: reports already seen (the provider retries), ignored.
        untracked: reports for ids nobody tracked (kept, in case ``track`` comes later).
    """

    tracked: int
    delivered: int
    failed: int
    pending: int
    by_status: Mapping[DeliveryStatus, int]
    cost: Decimal
    reports: int
    duplicates: int
    untracked: int


class _Entry:
    """The mutable state behind one message's outcome: the rule's state, plus what only the
    tracker keeps (prices, the reports seen, the waiters)."""

    __slots__ = ("cost", "delivery", "destination", "event", "prices", "seen", "tracked")

    def __init__(self, destination: str | None, tracked: bool) -> None:
        self.destination = None if destination is None else _normalise(destination)
        self.tracked = tracked
        self.delivery = DeliveryState()
        self.prices: dict[int, Decimal] = {}
        self.seen: set[tuple[int, DeliveryStatus, datetime]] = set()
        self.cost = Decimal(0)
        self.event: anyio.Event | None = None

    @property
    def status(self) -> DeliveryStatus | None:
        return self.delivery.status

    @property
    def final(self) -> bool:
        return self.delivery.final

    def outcome(self, message_id: str) -> DeliveryOutcome:
        delivery = self.delivery
        return DeliveryOutcome(
            message_id=message_id,
            destination=self.destination,
            status=delivery.status,
            parts=delivery.parts or None,
            parts_delivered=delivery.parts_delivered,
            cost=self.cost,
            done_date=delivery.done_at if delivery.final else None,
        )


def _normalise(destination: str) -> str:
    return destination if destination.startswith("+") else f"+{destination}"


class DeliveryTracker:
    """Correlates delivery reports with what was sent; ``await wait(id)`` for the outcome.

    ```python
    tracker = DeliveryTracker()
    receiver = DeliveryReportReceiver(tracker.on_report)      # mount it in your web app
    result = await client.send(message)
    tracker.track(result)
    outcome = await tracker.wait(result.ids[0], timeout=600)
    ```

    Args:
        max_finished: finished outcomes kept for :meth:`outcome` lookups; older ones are
            forgotten first (the summary's counts stay exact).
        on_final: called once with each tracked message's final outcome (a journal, a
            database); keep it quick, or hand the work to a task.
    """

    def __init__(
        self,
        *,
        max_finished: int = 100_000,
        on_final: Callable[[DeliveryOutcome], object] | None = None,
    ) -> None:
        check_integer("max_finished", max_finished, minimum=0)
        self.max_finished = max_finished
        self._on_final = check_callable("on_final", on_final)
        self._entries: dict[str, _Entry] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._strays: OrderedDict[str, None] = OrderedDict()  # reported, never tracked
        self._counts: dict[DeliveryStatus, int] = {}
        self._tracked = 0
        self._final_tracked = 0
        self._cost = Decimal(0)
        self._reports = 0
        self._duplicates = 0
        self._untracked = 0

    # -- what was sent -----------------------------------------------------------------------

    def track(self, *items: Trackable | Iterable[Trackable]) -> None:
        """Track messages: results, receipts, tickets, messages with ids, or ids.

        Reports that arrived before their message was tracked are applied now. Every item
        is checked first: one that cannot be tracked is named, and nothing is tracked.
        """
        pairs: list[tuple[str, str | None]] = []
        for index, item in enumerate(items):
            if isinstance(item, _TRACKABLE):
                pairs += _ids_of(item)
            elif is_collection(item):
                for inner in item:
                    if not isinstance(inner, _TRACKABLE):
                        raise _untrackable(f"items[{index}][...]", inner)
                    pairs += _ids_of(inner)
            else:
                raise _untrackable(f"items[{index}]", item)
        for message_id, destination in pairs:
            self._register(message_id, destination)

    def _register(self, message_id: str, destination: str | None) -> None:
        entry = self._entries.get(message_id)
        if entry is None:
            entry = self._entries[message_id] = _Entry(destination, tracked=True)
            self._tracked += 1
            return
        if destination is not None and entry.destination is None:
            entry.destination = _normalise(destination)
        if not entry.tracked:  # its reports came first
            entry.tracked = True
            self._strays.pop(message_id, None)
            self._tracked += 1
            self._untracked -= 1
            self._cost += entry.cost
            if entry.final:
                self._count_final(message_id, entry)

    # -- what the provider reported ------------------------------------------------------

    def feed(self, report: DeliveryReport) -> DeliveryOutcome | None:
        """Apply one report; returns the outcome if this report made the message final.

        Raises:
            TypeError: ``report`` is not a :class:`~agile_async.DeliveryReport` (a raw body
                or dict: parse it with :func:`agile_async.webhooks.parse_delivery_reports`).
        """
        if not isinstance(report, DeliveryReport):
            raise TypeError(
                f"feed() takes a DeliveryReport, not {type(report).__name__}: parse a raw "
                "report with agile_async.webhooks.parse_delivery_reports()"
            )
        self._reports += 1
        entry = self._entries.get(report.message_id)
        if entry is None:
            entry = self._entries[report.message_id] = _Entry(report.destination, tracked=False)
            self._untracked += 1
            self._strays[report.message_id] = None
            if len(self._strays) > self.max_finished:  # ids nobody tracks: keep a window
                stray, _ = self._strays.popitem(last=False)
                self._entries.pop(stray, None)
                self._untracked -= 1
        key = (report.concat_progressive, report.status, report.done_date)
        if key in entry.seen:
            self._duplicates += 1
            return None
        entry.seen.add(key)
        was_final = entry.final
        if entry.destination is None:
            entry.destination = report.destination
        if report.price is not None:
            # A part may be reported more than once (accepted, then delivered): its cost is
            # its latest price, not the sum.
            delta = report.price - entry.prices.get(report.concat_progressive, Decimal(0))
            entry.prices[report.concat_progressive] = report.price
            entry.cost += delta
            if entry.tracked:
                self._cost += delta
        if was_final:
            return None  # late or extra parts of a finished message change only the cost
        entry.delivery = entry.delivery.apply_report(report)
        if not entry.final:
            return None
        if entry.tracked:
            self._count_final(report.message_id, entry)
        if entry.event is not None:
            entry.event.set()
        return entry.outcome(report.message_id)

    async def on_report(self, report: DeliveryReport) -> None:
        """:meth:`feed` as an async callback, for ``DeliveryReportReceiver(tracker.on_report)``."""
        self.feed(report)

    def _count_final(self, message_id: str, entry: _Entry) -> None:
        status = entry.status
        assert status is not None
        self._counts[status] = self._counts.get(status, 0) + 1
        self._final_tracked += 1
        self._finished[message_id] = None
        if self._on_final is not None:
            try:
                self._on_final(entry.outcome(message_id))
            except Exception:
                log.exception("agile_async tracker: the on_final callback raised; ignored")
        while len(self._finished) > self.max_finished:
            old, _ = self._finished.popitem(last=False)
            evicted = self._entries.pop(old, None)
            if evicted is not None and evicted.event is not None:
                evicted.event.set()

    # -- asking ----------------------------------------------------------------------------

    def outcome(self, message_id: str) -> DeliveryOutcome | None:
        """The current outcome of a message, or ``None`` if unknown (or forgotten)."""
        entry = self._entries.get(message_id)
        return None if entry is None else entry.outcome(message_id)

    async def wait(
        self,
        message_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - SPEC §4 names wait(id, timeout=...)
    ) -> DeliveryOutcome:
        """Wait until the message is final (delivered or failed) and return its outcome.

        An id not tracked yet is tracked now. Raises :class:`TimeoutError` after
        ``timeout`` seconds.
        """
        if not isinstance(message_id, str) or not message_id:
            raise invalid("message_id", "must be a message id (a non-empty string)", message_id)
        if timeout is not None:
            check_number("timeout", timeout, minimum=0, unit=" s")
        entry = self._entries.get(message_id)
        if entry is None:
            self._register(message_id, None)
            entry = self._entries[message_id]
        if not entry.final:
            if entry.event is None:
                entry.event = anyio.Event()
            with anyio.fail_after(timeout):
                await entry.event.wait()
        return entry.outcome(message_id)

    def summary(self) -> DeliverySummary:
        """Counts over the tracked messages (exact even after old entries are forgotten)."""
        delivered = self._counts.get(DeliveryStatus.DELIVERED, 0)
        return DeliverySummary(
            tracked=self._tracked,
            delivered=delivered,
            failed=self._final_tracked - delivered,
            pending=self._tracked - self._final_tracked,
            by_status=dict(self._counts),
            cost=self._cost,
            reports=self._reports,
            duplicates=self._duplicates,
            untracked=self._untracked,
        )

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<DeliveryTracker tracked={s.tracked} delivered={s.delivered} "
            f"failed={s.failed} pending={s.pending}>"
        )
