"""Waking an event loop from another thread, without blocking: the fake's cross-thread signals.

The fake provider may serve in the test's own event loop (in memory) or in a uvicorn thread
with a loop of its own (:meth:`FakeAgileServer.serve_tls`), while the test runs on asyncio,
trio or a plain thread. Whatever has to wait for something another thread does (a courier
for new reports, a held request for its release, a test for a request to be held) waits
here, without polling and without parking a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import anyio

__all__ = ["Gauge", "loop_waker"]


def loop_waker(poke: Callable[[], None]) -> Callable[[], None]:
    """A thread-safe, non-blocking way to run ``poke`` soon in the current event loop.

    ``anyio.from_thread.run_sync`` would block the calling thread (and two servers on two
    threads waking each other could deadlock), so this uses each backend's "call soon" hook.
    Once the loop has finished, waking it does nothing: nobody is left to wake.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio

        token = trio.lowlevel.current_trio_token()

        def wake_trio() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(poke)

        return wake_trio

    def wake_asyncio() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody left to wake
            loop.call_soon_threadsafe(poke)

    return wake_asyncio


class Gauge:
    """A counter that only goes up, awaited from any event loop or thread until it reaches a
    value.

    ``add()`` may be called from any thread; ``await reach(n)`` (asyncio or trio) and
    ``reach_blocking(n)`` (a plain thread) return once the count is at least ``n``.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._value = 0
        self._wakers: list[Callable[[], None]] = []

    @property
    def value(self) -> int:
        """The count so far."""
        with self._changed:
            return self._value

    def add(self, amount: int = 1) -> int:
        """Count ``amount`` more; returns the new count."""
        with self._changed:
            self._value += amount
            value = self._value
            wakers = list(self._wakers)
            self._changed.notify_all()
        for wake in wakers:  # outside the lock: a waker may run its poke at once
            wake()
        return value

    async def reach(self, target: int) -> None:
        """Wait in the current event loop until the count is at least ``target``."""
        while True:
            changed = anyio.Event()
            wake = loop_waker(changed.set)
            with self._changed:
                if self._value >= target:
                    return
                self._wakers.append(wake)
            try:
                await changed.wait()
            finally:
                with self._changed:
                    self._wakers.remove(wake)

    def reach_blocking(self, target: int, timeout: float | None = None) -> bool:
        """Block this thread until the count is at least ``target``; ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._value >= target, timeout)
