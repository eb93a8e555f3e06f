"""One HTTP exchange that a caller's cancellation can never turn into a poisoned pool.

The defect this module exists for (encode/httpcore#1093, open in httpcore 1.0.9): httpcore's
pool creates a connection *for* a queued request and hands it over; if the request's task is
cancelled before it starts connecting (while it waits for the pool, or between the TLS
handshake and the request line), that connection stays "CONNECTING" (or "NEW") for ever. It
holds a pool slot nobody reclaims, and once every slot is held, every later request fails with
``PoolTimeout``. A web app that times out a few sends loses its SMS sending until restart.
Cancellation elsewhere is safe: during the TCP/TLS handshake httpcore marks the connection
failed, and once the request is being written it closes the connection.

The choice, among those possible:

* shielding the whole exchange from the caller's cancellation would be safe but not prompt:
  a web app's 2 s timeout would become a 30 s hang;
* detecting and replacing a poisoned pool needs httpcore's private state, and a caller's own
  ``http_client`` cannot be replaced at all;
* so the exchange runs in a task of its own and the caller only waits for it. A cancelled
  caller leaves at once; the exchange is then *abandoned* and stops itself only where
  cancelling is safe, which it learns from httpcore's documented ``trace`` extension: during
  the handshake (cancelled at once), or at the next connection or request-line event (before
  a byte of the request is written: nothing is sent). An exchange whose request was already
  going out runs to its answer (bounded by the read timeout) and the client logs that answer,
  so the caller's cancellation never hides an outcome. This works on asyncio and trio, for
  the SDK's own pool and for a caller's ``http_client`` (whose transport emits the same
  events when it is httpx's default one; a transport that emits none, such as an in-memory
  test transport, runs an abandoned exchange to its end unless it had not begun).

The exchange's task is not in any task group: a client may be used without ``async with``,
and the task must outlive its caller. It is an asyncio task or a trio system task, tracked by
the client, which abandons (and, for its own pool, cancels) them all in ``aclose()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from ._concurrency import running_trio

__all__ = ["Exchange", "ExchangeAborted", "Phase"]

log = logging.getLogger("agile_async")

#: ``send(extensions)``: makes the request with these httpx extensions, returns the response.
Send = Callable[[dict[str, Any]], Awaitable[httpx.Response]]

_CONNECT_STARTED = frozenset(
    {
        "connection.connect_tcp.started",
        "connection.connect_unix_socket.started",
        "connection.start_tls.started",
    }
)
_CONNECT_ENDED = frozenset(
    {
        "connection.connect_tcp.complete",
        "connection.connect_unix_socket.complete",
        "connection.start_tls.complete",
    }
)
_REQUEST_STARTED = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)

#: Strong references to running asyncio tasks (the loop keeps only weak ones).
_ASYNCIO_TASKS: set[asyncio.Task[None]] = set()


class Phase(enum.Enum):
    """Where an exchange is, as far as cancelling it safely is concerned."""

    #: Waiting for a connection from the pool: cancelling may orphan one (httpcore#1093).
    WAITING = "waiting"
    #: In the TCP or TLS handshake: cancelling marks the connection failed (safe).
    CONNECTING = "connecting"
    #: Connected, the request not begun: cancelling may orphan the connection.
    CONNECTED = "connected"
    #: The request is being written or answered: the provider may have it.
    SENDING = "sending"
    #: Finished, one way or another.
    DONE = "done"


class ExchangeAborted(Exception):
    """The exchange was stopped before it finished (the client was closed)."""

    def __init__(self, *, may_have_reached_provider: bool) -> None:
        super().__init__("the request was stopped before an answer came back")
        self.may_have_reached_provider = may_have_reached_provider


def _spawn(function: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``function`` in a task of its own, outside the caller's cancel scopes."""
    if running_trio():
        import trio

        trio.lowlevel.spawn_system_task(
            function, name="agile_async.Exchange", context=contextvars.copy_context()
        )
        return

    task = asyncio.get_running_loop().create_task(function())
    _ASYNCIO_TASKS.add(task)
    task.add_done_callback(_ASYNCIO_TASKS.discard)


class Exchange:
    """One request and its response, carried by a task of its own.

    Args:
        describe: what the request is, for logs (never a secret or a body).
        ids: the messages in the request, named in the log if its caller leaves early.
        on_done: called once the exchange has finished (the client forgets it).
    """

    def __init__(
        self,
        describe: str,
        ids: Sequence[str],
        on_done: Callable[[Exchange], None],
    ) -> None:
        self.describe = describe
        self.ids = tuple(ids)
        self._on_done = on_done
        self._phase = Phase.WAITING
        self._sent = False
        self._abandoned = False
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._response: httpx.Response | None = None
        self._error: Exception | None = None
        self._handshake_stream: Any = None

    @property
    def phase(self) -> Phase:
        """Where the exchange is now."""
        return self._phase

    @property
    def may_have_reached_provider(self) -> bool:
        """Whether a byte of the request may have been written."""
        return self._sent

    async def run(self, send: Send) -> httpx.Response:
        """Start the exchange in its own task and wait for its response.

        Raises whatever the request raised (an :class:`httpx.RequestError`, mostly), or
        :class:`ExchangeAborted` if the client stopped it. If the caller is cancelled, the
        exchange is abandoned (see the module docstring) and the cancellation goes on.
        """
        _spawn(lambda: self._carry(send))
        try:
            await self._done.wait()
        except anyio.get_cancelled_exc_class():
            self.abandon()
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._response is None:
            raise ExchangeAborted(may_have_reached_provider=self._sent)
        return self._response

    def abandon(self, *, force: bool = False) -> None:
        """Nobody waits for the answer any more: stop where it is safe.

        ``force`` (the client is closing its own pool) stops it wherever it is.
        """
        if self._phase is Phase.DONE:
            return
        if not self._abandoned and self._sent and self.ids:
            log.warning(
                "%s: the caller stopped waiting after the request went out; the outcome of "
                "%d message(s) is unknown until the answer is logged: %s",
                self.describe,
                len(self.ids),
                ", ".join(self.ids),
                extra={
                    "agile_event": "request.abandoned",
                    "messages": len(self.ids),
                    "ids": list(self.ids),
                },
            )
        self._abandoned = True
        if force or self._phase is Phase.CONNECTING:
            self._scope.cancel()

    async def finished(self) -> None:
        """Wait until the exchange has ended (and closed what it opened)."""
        await self._done.wait()

    async def _carry(self, send: Send) -> None:
        try:
            with self._scope:
                if self._abandoned:  # the caller left before this task began: send nothing
                    return
                try:
                    self._response = await send({"trace": self._trace})
                except Exception as error:  # handed to the caller, who decides
                    self._error = error
        finally:
            stream, self._handshake_stream = self._handshake_stream, None
            if stream is not None and self._scope.cancel_called:
                # httpcore leaves a socket cancelled mid-handshake open (for the GC to close).
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
            self._phase = Phase.DONE
            self._done.set()
            if self._abandoned and self._sent and self.ids:
                self._log_late_answer()
            self._on_done(self)

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's progress events: track the phase, and stop an abandoned exchange at
        the first point where cancelling is safe."""
        if self._sent:  # the request is going out: nothing more to learn (most events)
            return
        if event in _CONNECT_STARTED:
            self._phase = Phase.CONNECTING
            safe_stop = True
        elif event in _CONNECT_ENDED:
            self._phase = Phase.CONNECTED
            self._handshake_stream = info.get("return_value")  # not yet the connection's
            safe_stop = True  # still inside httpcore's connect step
        elif event in _REQUEST_STARTED:
            self._handshake_stream = None  # the connection owns it now, and closes it
            safe_stop = True  # nothing written yet
        else:
            safe_stop = False
        if self._abandoned and safe_stop:
            self._scope.cancel()
            await anyio.lowlevel.checkpoint()
        if event in _REQUEST_STARTED:
            self._phase = Phase.SENDING
            self._sent = True

    def _log_late_answer(self) -> None:
        if self._response is not None:
            log.warning(
                "%s: answer to a request whose caller stopped waiting: HTTP %d",
                self.describe,
                self._response.status_code,
                extra={
                    "agile_event": "request.late_answer",
                    "status": self._response.status_code,
                    "messages": len(self.ids),
                    "ids": list(self.ids),
                },
            )
        else:
            reason = type(self._error).__name__ if self._error else "stopped"
            log.warning(
                "%s: no answer to a request whose caller stopped waiting (%s): the outcome of "
                "%d message(s) stays unknown: %s",
                self.describe,
                reason,
                len(self.ids),
                ", ".join(self.ids),
                extra={
                    "agile_event": "request.late_answer",
                    "status": None,
                    "error": reason,
                    "messages": len(self.ids),
                    "ids": list(self.ids),
                },
            )
