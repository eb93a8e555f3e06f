"""Hands a batcher's outcomes to its ``on_result`` callback, in order, exactly once each.

The batcher settles outcomes synchronously (a request's answer resolves its tickets at once)
and drops each into an unbounded in-memory stream; a task of its own hands them to
``on_result`` one by one, so a slow journal write never holds up a request. Two promises
hold on every way out, cancellation included:

- each outcome is handed over **shielded**: a cancellation arriving while a journal records
  it must not leave it half recorded, nor lose the outcomes after it;
- outcomes settled after the reporting task was cancelled (requests cancelled with the
  batcher, queued messages failed) are still handed over by :meth:`OutcomeReporter.drain`.

Only once the batcher is cancelled is the callback's time limited (a grace period, then an
error logged): until then a journal may take as long as it needs, waiting out an outage of
its store, say.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from ._concurrency import call_maybe_async

__all__ = ["REPORT_GRACE", "OutcomeReporter"]

log = logging.getLogger("agile_async")

#: How long a cancelled batcher still hands settled outcomes to ``on_result``, in seconds.
REPORT_GRACE = 30.0

T = TypeVar("T")


class OutcomeReporter(Generic[T]):
    """The ``on_result`` side of a batcher; see the module's docstring.

    Args:
        callback: ``on_result``, plain or a coroutine function.
        size: how an outcome is described in the log when the grace runs out.
    """

    def __init__(self, callback: Callable[[T], object], size: Callable[[T], int]) -> None:
        self._callback = callback
        self._size = size
        self._send, self._receive = anyio.create_memory_object_stream[T](math.inf)
        self._handing_over: anyio.CancelScope | None = None
        self._deadline = math.inf  # set once cancelled: see limit()

    def report(self, outcome: T) -> None:
        """Queue an outcome for the callback (never waits)."""
        # Once closed, the tickets still carry the outcome; nothing is lost but the call.
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait(outcome)

    def close(self) -> None:
        """Every outcome is in: :meth:`run` ends once it has handed them all over."""
        self._send.close()

    async def run(self) -> None:
        """Hand outcomes over in order until :meth:`close` (a task of the batcher's)."""
        async for outcome in self._receive:
            await self._hand_over(outcome)

    async def drain(self) -> None:
        """After the batcher's tasks have ended: hand over what :meth:`run` did not."""
        self._send.close()
        with self._receive:
            while True:
                try:
                    outcome = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    return
                self.limit()  # left over: the reporting task was stopped
                await self._hand_over(outcome)

    def limit(self) -> None:
        """The batcher is cancelled: the callback has a grace period from now, no more."""
        if self._deadline == math.inf:
            self._deadline = anyio.current_time() + REPORT_GRACE
        if self._handing_over is not None:
            self._handing_over.deadline = min(self._handing_over.deadline, self._deadline)

    async def _hand_over(self, outcome: T) -> None:
        with anyio.CancelScope(shield=True, deadline=self._deadline) as scope:
            self._handing_over = scope
            try:
                await call_maybe_async(self._callback, outcome)
            except Exception:
                log.exception("agile_async batcher: the on_result callback raised; ignored")
            finally:
                self._handing_over = None
        if scope.cancelled_caught:
            log.error(
                "agile_async batcher: on_result did not return within %.0f s of the "
                "batcher's cancellation; gave up on reporting an outcome of %d messages to "
                "it (the tickets still carry it)",
                REPORT_GRACE,
                self._size(outcome),
            )
