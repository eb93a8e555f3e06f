"""Per-message handles of the batcher: a :class:`Ticket` while waiting, a :class:`Receipt` after.

A ticket is resolved exactly once, to one of three outcomes: accepted (a :class:`Receipt`),
failed (an error saying why), or unknown (:class:`~agile_async.OutcomeUnknownError`). Each
caller awaiting a failed ticket gets its own copy of the error, so tracebacks from different
waiters never pile up on one exception object.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable
from decimal import Decimal

import anyio
import attrs

from ._exceptions import OutcomeUnknownError
from ._models import Message, SendOptions
from ._parts import parts_of

__all__ = ["Receipt", "RequestTotals", "Ticket", "TicketState"]


class TicketState(enum.Enum):
    """Where a submitted message is. The last four are final."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    WITHDRAWN = "withdrawn"


@attrs.frozen
class RequestTotals:
    """What the provider answered for one accepted request (it gives only totals)."""

    global_id: str
    processed_messages: int
    processed_sms_parts: int
    credit: Decimal


@attrs.frozen(kw_only=True)
class Receipt:
    """Proof that the provider accepted a message, with its request's totals.

    Attributes:
        message: the message as sent, with its ids.
        global_id: the ``globalId`` of the request that carried it.
        estimated_parts: the SDK's count of SMS parts for this message, all destinations.
        processed_messages: the provider's count for the whole request.
        processed_sms_parts: the provider's count of parts for the whole request.
        credit: the account's credit (EUR) after that request.
    """

    message: Message
    global_id: str
    estimated_parts: int
    processed_messages: int
    processed_sms_parts: int
    credit: Decimal

    @property
    def ids(self) -> tuple[str, ...]:
        """The message's ids, one per destination."""
        return self.message.ids or ()


class Ticket:
    """The handle of one submitted message: ``await ticket.result()`` for its outcome."""

    __slots__ = (
        "_error",
        "_event",
        "_parts",
        "_receipt",
        "_state",
        "_totals",
        "enqueued_at",
        "ids",
        "key",
        "message",
        "size",
    )

    def __init__(
        self,
        message: Message,
        ids: tuple[str, ...],
        key: SendOptions,
        size: int,
    ) -> None:
        #: The message as submitted (its ``ids`` may be ``None``; see :attr:`ids`).
        self.message = message
        #: The message's ids, one per destination (generated when none were given).
        self.ids = ids
        #: The request options: only messages with equal options share a request.
        self.key = key
        self._parts: int | None = None
        #: The message's approximate share of a request body, in bytes.
        self.size = size
        #: When the message was queued (``time.monotonic()``), for ``max_latency``.
        self.enqueued_at = 0.0
        self._state = TicketState.QUEUED
        self._totals: RequestTotals | None = None
        self._receipt: Receipt | None = None
        self._error: BaseException | None = None
        self._event: anyio.Event | None = None

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for the message, all destinations (counted on first
        use: only a parts-based rate limit needs it before sending)."""
        if self._parts is None:
            message = self.message
            per_destination = parts_of(
                message.body, message.hex_body, message.udh_data, self.key.enable_unicode
            )
            self._parts = per_destination * len(message.destinations)
        return self._parts

    @property
    def state(self) -> TicketState:
        """The ticket's current state."""
        return self._state

    def done(self) -> bool:
        """Whether the outcome is known (accepted, failed, unknown or withdrawn)."""
        return self._state not in (TicketState.QUEUED, TicketState.IN_FLIGHT)

    def exception(self) -> BaseException | None:
        """The failure, once done; ``None`` when accepted or not done yet."""
        return self._error

    def receipt(self) -> Receipt | None:
        """The receipt once accepted, else ``None`` (built on first use: campaigns that
        only count outcomes never pay for it)."""
        if self._receipt is None and self._totals is not None:
            message = self.message
            if message.ids is None:
                message = attrs.evolve(message, ids=self.ids)
            totals = self._totals
            self._receipt = Receipt(
                message=message,
                global_id=totals.global_id,
                estimated_parts=self.estimated_parts,
                processed_messages=totals.processed_messages,
                processed_sms_parts=totals.processed_sms_parts,
                credit=totals.credit,
            )
        return self._receipt

    async def wait(self) -> None:
        """Wait until the outcome is known, without raising a failure."""
        if not self.done():
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()

    async def result(self) -> Receipt:
        """Wait for the outcome: the receipt, or the error (a copy per caller)."""
        await self.wait()
        if self._error is not None:
            raise copy.copy(self._error)
        receipt = self.receipt()
        assert receipt is not None
        return receipt

    def __repr__(self) -> str:
        return f"<Ticket ids={list(self.ids)!r} state={self._state.value}>"

    # -- resolution (the batcher's side) -----------------------------------------------------

    @staticmethod
    def _accept_all(tickets: Iterable[Ticket], totals: RequestTotals) -> None:
        """Resolve a request's tickets as accepted: one loop, no call per ticket, since this
        runs for every message the batcher sends."""
        accepted = TicketState.ACCEPTED
        for ticket in tickets:
            ticket._totals = totals
            ticket._state = accepted
            if ticket._event is not None:
                ticket._event.set()

    def _fail(self, error: BaseException, *, withdrawn: bool = False) -> None:
        self._error = error
        if withdrawn:
            state = TicketState.WITHDRAWN
        elif isinstance(error, OutcomeUnknownError):
            state = TicketState.UNKNOWN
        else:
            state = TicketState.FAILED
        self._finish(state)

    def _finish(self, state: TicketState) -> None:
        assert not self.done(), f"a ticket is resolved once, not again as {state}"
        self._state = state
        if self._event is not None:
            self._event.set()
