"""The event loop a blocking client runs its async twin on, and the only door into it.

A blocking :class:`agile_async.sync.AgileClient` owns one asyncio event loop on a thread of its
own (an anyio blocking portal: :func:`anyio.from_thread.start_blocking_portal`). Every call
from the caller's threads into the async objects goes through :meth:`LoopThread.call`, so
those objects are only ever touched by their own loop, however many threads share the client.

Who keeps the loop running: the client (until ``close()``) and each open batcher (until its
``with`` block ends), counted as *holds*; each call under way holds it too. The loop stops
when the last hold is released. So ``close()`` inside a batcher's ``with`` block (on the same
thread) cannot deadlock: the client's own requests are stopped at once, the batcher's are
refused by the closed client, and the loop ends with the block.

A client that is never closed does not keep the interpreter alive: the portal's thread is a
daemon thread, and a :func:`weakref.finalize` (see :mod:`agile_async._sync_client`) closes
the client when it is garbage collected or, at the latest, when the interpreter exits
(``atexit`` runs before daemon threads are stopped), so its connections are closed politely.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar, overload

import anyio.from_thread

from ._exceptions import ClientClosedError

__all__ = ["LoopState", "LoopThread"]

T = TypeVar("T")

_CLOSED = "this AgileClient has been closed; create a new one to send again"

_FROM_LOOP = (
    "a blocking agile_async.sync call cannot be made from the client's own event-loop thread "
    "(from an on_result or before_send callback, say): it would wait for itself"
)


class LoopState(enum.Enum):
    """Where the loop thread is in its life."""

    #: The client holds it: calls are forwarded.
    RUNNING = "running"
    #: The client was closed; batchers still open keep the loop until their block ends.
    DRAINING = "draining"
    #: The thread has ended; nothing can be forwarded any more.
    STOPPED = "stopped"


class LoopThread:
    """An event loop on a daemon thread, shared by one client and its batchers.

    Args:
        name: the thread's name (shown by debuggers and ``threading.enumerate()``).
    """

    def __init__(self, name: str) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio", name=name)
        self._portal = self._portal_cm.__enter__()
        self._thread_id = self._portal.call(threading.get_ident)
        self._lock = threading.Lock()
        self._holds = 1  # the client's
        self._state = LoopState.RUNNING

    # -- holds -------------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep the loop running until :meth:`release` (a batcher's ``with`` block).

        Raises:
            ClientClosedError: the loop has stopped.
        """
        with self._lock:
            if self._state is LoopState.STOPPED:
                raise ClientClosedError(_CLOSED)
            self._holds += 1

    def release(self) -> None:
        """Give back a hold; the last one stops the loop and waits for its thread."""
        with self._lock:
            self._holds -= 1
            if self._holds:
                return
            self._state = LoopState.STOPPED
        # Outside the lock: stopping waits for the loop's remaining tasks (each ticket's
        # watcher, which ends with its ticket), and those never need the lock.
        self._portal_cm.__exit__(None, None, None)

    def close(self, aclose: Callable[[], Awaitable[object]]) -> None:
        """The client's close: run ``aclose`` on the loop, then give back the client's hold.

        Safe to call twice, or from several threads at once: only the first runs ``aclose``.

        Raises:
            RuntimeError: called from the loop's own thread (it would wait for itself).
        """
        if threading.get_ident() == self._thread_id:
            raise RuntimeError(_FROM_LOOP)
        with self._lock:
            if self._state is not LoopState.RUNNING:
                return
            self._state = LoopState.DRAINING
            self._holds += 1  # for the aclose call below
        try:
            self._portal.call(aclose)
        finally:
            self.release()  # the call's
            self.release()  # the client's

    # -- calls -------------------------------------------------------------------------------

    def _enter(self) -> None:
        if threading.get_ident() == self._thread_id:
            raise RuntimeError(_FROM_LOOP)
        self.hold()

    @overload
    def call(self, func: Callable[[], Awaitable[T]]) -> T: ...

    @overload
    def call(self, func: Callable[[], T]) -> T: ...

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func()`` on the loop (awaited if it returns an awaitable) and return its
        result, or raise its exception, in the calling thread.

        Raises:
            ClientClosedError: the loop has stopped (the client was closed).
        """
        self._enter()
        try:
            return self._portal.call(func)
        finally:
            self.release()

    def read(self, func: Callable[[], T]) -> T:
        """``func()`` on the loop while it runs; once it has stopped, nothing else can touch
        the objects any more, so here (a batcher's statistics after its client closed)."""
        if threading.get_ident() == self._thread_id:
            return func()
        with self._lock:
            stopped = self._state is LoopState.STOPPED
            if not stopped:
                self._holds += 1
        if stopped:
            return func()
        try:
            return self._portal.call(func)
        finally:
            self.release()

    def start(self, func: Callable[..., Awaitable[T]], *args: Any) -> tuple[Future[T], Any]:
        """Start ``func(*args, task_status=...)`` as a task of the loop; return its future and
        the value it passed to ``task_status.started()`` (:meth:`anyio.abc.TaskGroup.start`).

        The task keeps running after this returns; the loop outlives it (it stops only
        once its remaining tasks are done).
        """
        self._enter()
        try:
            return self._portal.start_task(func, *args)
        finally:
            self.release()

    def wrap(self, async_cm: AbstractAsyncContextManager[T]) -> AbstractContextManager[T]:
        """``async_cm`` as a blocking context manager, entered and exited in one task of the
        loop (call it under a :meth:`hold`)."""
        return self._portal.wrap_async_context_manager(async_cm)
