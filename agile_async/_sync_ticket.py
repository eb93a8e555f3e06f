"""The blocking handle of a message submitted to a blocking batcher: a future-like ``Ticket``.

It mirrors :class:`agile_async.Ticket`, with waits that block the calling thread (each with
an optional ``timeout``, as :class:`concurrent.futures.Future` has them). The outcome comes
from the async ticket's own ``result()``, awaited once on the loop by a task that lives as
long as the message is pending; that task completes a :class:`concurrent.futures.Future`,
which any thread can wait on, also after the client is closed. ``state``, ``receipt()`` and
the message's fields read the async ticket's attributes directly (one attribute each, atomic
in Python; final once ``done()``).
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Message
    from ._tickets import Receipt, TicketState
    from ._tickets import Ticket as AsyncTicket

__all__ = ["Ticket"]


class Ticket:
    """The handle of one submitted message: ``ticket.result()`` waits for its outcome.

    Like a :class:`concurrent.futures.Future`: :meth:`result` and :meth:`exception` wait
    (at most ``timeout`` seconds, then raise :class:`TimeoutError`), :meth:`done` does not.
    A failed message's error is raised by :meth:`result` each time it is called (the same
    error object, as a ``Future`` does).
    """

    __slots__ = ("_settled", "_ticket")

    def __init__(self, ticket: AsyncTicket, settled: concurrent.futures.Future[Receipt]) -> None:
        self._ticket = ticket
        self._settled = settled

    @property
    def message(self) -> Message:
        """The message as submitted (its ``ids`` may be ``None``; see :attr:`ids`)."""
        return self._ticket.message

    @property
    def ids(self) -> tuple[str, ...]:
        """The message's ids, one per destination (generated when none were given)."""
        return self._ticket.ids

    @property
    def estimated_parts(self) -> int:
        """The SDK's count of SMS parts for the message, all destinations."""
        return self._ticket.estimated_parts

    @property
    def state(self) -> TicketState:
        """The ticket's current state."""
        return self._ticket.state

    def done(self) -> bool:
        """Whether the outcome is known (accepted, failed, unknown or withdrawn)."""
        return self._settled.done()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the outcome: the failure, or ``None`` when accepted."""
        self._wait_or_raise(timeout)
        return self._settled.exception()

    def receipt(self) -> Receipt | None:
        """The receipt once accepted, else ``None`` (does not wait)."""
        return self._ticket.receipt()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the outcome is known, without raising a failure; whether it is."""
        concurrent.futures.wait((self._settled,), timeout)
        return self._settled.done()

    def result(self, timeout: float | None = None) -> Receipt:
        """Wait for the outcome: the receipt, or raise the message's error."""
        self._wait_or_raise(timeout)
        return self._settled.result()

    def _wait_or_raise(self, timeout: float | None) -> None:
        """Wait, then raise the built-in :class:`TimeoutError` if the outcome is not known:
        on Python 3.10 a future raises ``concurrent.futures.TimeoutError``, another class."""
        if not self.wait(timeout):
            raise TimeoutError(f"the outcome is not known after {timeout} s")

    def __repr__(self) -> str:
        return f"<agile_async.sync.Ticket ids={list(self.ids)!r} state={self.state.value}>"
