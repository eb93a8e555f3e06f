"""Scripted faults: the ways a real provider (or the network in front of it) misbehaves.

A test scripts faults up front with :meth:`FakeAgileServer.inject`; each matching request then
consumes the next one, in order. The faults are the cases the SDK's retry rules (SPEC §3) tell
apart: a provider 5XX with code 8 or 9, a 429 with ``Retry-After``, an HTML page from a proxy,
and, before or after the provider processed the request, a slow answer, an answer held until
the test releases it (:class:`Hold`), or a lost connection. :func:`interfere` applies a fault
around the fake's normal handling of a request.
"""

from __future__ import annotations

import http
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Literal

import anyio
import attrs

from .._asgi import Headers, json_bytes, response_headers
from .._setting_validators import check_integer, check_number, flag, invalid
from ._codes import SERVICE_UNAVAILABLE, text_for
from ._wakeup import Gauge

__all__ = [
    "ConnectionDropped",
    "Fault",
    "FaultKind",
    "FaultScript",
    "Hold",
    "endpoint_of",
    "interfere",
]

#: Every kind of :class:`Fault`: ``typing.get_args(FaultKind)`` lists them.
FaultKind = Literal["error", "rate_limited", "html", "delay", "hold", "drop"]

_Response = tuple[int, Headers, bytes]

#: The kinds that answer by themselves, instead of the provider.
_ANSWERING = ("error", "rate_limited", "html")

#: The path prefix the provider serves under; faults and routes use the path after it.
PATH_PREFIX = "/services"


_HTML_PAGE = """<html>
<head><title>{status} {phrase}</title></head>
<body>
<center><h1>{status} {phrase}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


def endpoint_of(path: str) -> str:
    """The endpoint a path names, without the ``/services`` prefix: ``/sms/send``."""
    if not path.startswith("/"):
        path = "/" + path
    if path == PATH_PREFIX or path.startswith(PATH_PREFIX + "/"):
        path = path[len(PATH_PREFIX) :] or "/"
    return path


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_after_value(retry_after: float | timedelta | datetime | str) -> str:
    if isinstance(retry_after, str):
        return retry_after
    if isinstance(retry_after, datetime):
        if retry_after.tzinfo is None:
            raise invalid("retry_after", "must be a timezone-aware datetime", retry_after)
        return format_datetime(retry_after.astimezone(timezone.utc), usegmt=True)
    seconds = (
        retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
    )
    check_number("retry_after", seconds, minimum=0, unit=" seconds")
    return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


class Hold:
    """Where requests scripted with :meth:`Fault.hold` wait, until the test releases them.

    A deterministic stand-in for "the provider is slow": the test knows when a request is
    being held (and, with ``after_processing=True``, that the provider already accepted and
    charged it), does what it wants meanwhile (kill the client, pause it, cancel it...), then
    lets the answer go. Thread-safe and loop-agnostic: the fake may serve in memory or over
    :meth:`FakeAgileServer.serve_tls` (its own thread), and the test may wait on asyncio, on
    trio or from a plain thread. A held request does not block the server: others are served
    meanwhile.

    Once released, a hold stays open: requests reaching it later go straight on. Release it
    in any case (``with hold:`` releases on exit), or a request over TLS waits until the
    server stops. In memory, a client's read timeout ends the wait as it would over a socket.

    Example::

        hold = Hold()
        fake.inject(Fault.hold(hold, after_processing=True), path="/sms/send")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.send, message)
            await hold.wait_held()          # the provider has the message, the client not yet
            ...
            hold.release()
    """

    def __init__(self) -> None:
        self._held = Gauge()
        self._released = Gauge()

    def __repr__(self) -> str:
        return f"Hold(held={self.held}, released={self.released})"

    @property
    def held(self) -> int:
        """How many requests have reached the hold so far (waiting or let through)."""
        return self._held.value

    @property
    def released(self) -> bool:
        """Whether :meth:`release` was called."""
        return self._released.value > 0

    async def wait_held(self, count: int = 1) -> None:
        """Wait until ``count`` requests in all have reached the hold (asyncio or trio).

        Bound it with ``anyio.fail_after``: it waits as long as no request comes.
        """
        await self._held.reach(count)

    def wait_held_blocking(self, count: int = 1, timeout: float | None = None) -> bool:
        """:meth:`wait_held` for synchronous tests and threads; ``False`` on timeout.

        Never call it from the thread of a running event loop: it blocks that loop.
        """
        return self._held.reach_blocking(count, timeout)

    def release(self) -> None:
        """Let every held request go on, and every later one through (from any thread)."""
        if not self.released:
            self._released.add()

    async def _pass(self) -> None:
        """Where a request waits (the fake's side)."""
        self._held.add()
        await self._released.reach(1)

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted misbehaviour. Build it with the class methods, not the constructor.

    Attributes:
        kind: ``"error"`` (a provider error body), ``"rate_limited"`` (429), ``"html"`` (a
            proxy's page), ``"delay"`` (answer late), ``"hold"`` (answer when the test
            says) or ``"drop"`` (lose the connection); see :data:`FaultKind`.
        status: the HTTP status for the kinds that answer.
        code: the provider error code (``"error"`` only).
        data: the 4XX ``data`` (a mapping of field to problem, or a text) or the 5XX
            ``message``.
        retry_after: the ``Retry-After`` header value (``"rate_limited"`` only).
        body: the page's text (``"html"`` only).
        seconds: how long to wait (``"delay"`` only).
        gate: the :class:`Hold` the request waits at (``"hold"`` only).
        after_processing: for ``"delay"``, ``"hold"`` and ``"drop"``: whether the provider
            processed (and charged) the request before the wait or the lost connection.
    """

    kind: FaultKind
    status: int | None = None
    code: int | None = None
    data: Mapping[str, str] | str | None = None
    retry_after: str | None = None
    body: str | None = None
    seconds: float = 0.0
    gate: Hold | None = None
    after_processing: bool = attrs.field(default=False, validator=flag)

    @classmethod
    def error(cls, *, status: int, code: int, data: Mapping[str, str] | str | None = None) -> Fault:
        """Any provider error, shaped as the seed documents it.

        A 4XX answers ``{"status": "fail", "data": data, "code": code}``; a 5XX answers
        ``{"status": "error", "message": data, "code": code}``. Handy for account-wide codes a
        test cannot otherwise provoke, e.g. ``Fault.error(status=401, code=1)``.

        Args:
            status: the HTTP status, 400..599.
            code: the provider's error code.
            data: the details; defaults to the documentation's text for the code.
        """
        if not 400 <= status <= 599:
            raise invalid("status", "must be a 4XX or 5XX status for an error", status)
        return cls(kind="error", status=status, code=code, data=data)

    @classmethod
    def server_error(cls, code: int = 8, *, status: int = 500, message: str | None = None) -> Fault:
        """A provider 5XX: code 8 (server error) or 9 (service timeout); both are retryable.

        Args:
            code: the provider code.
            status: the HTTP status, 500..599 (e.g. 503 for code 9).
            message: the ``message`` text; defaults to the documentation's wording (its
                example "Number check service unavailable" for code 9).
        """
        if not 500 <= status <= 599:
            raise invalid("status", "must be a 5XX status for a server error", status)
        default = SERVICE_UNAVAILABLE if code == 9 else text_for(code)
        text = message if message is not None else default
        return cls(kind="error", status=status, code=code, data=text)

    @classmethod
    def rate_limited(
        cls, retry_after: float | timedelta | datetime | str | None = 1, *, status: int = 429
    ) -> Fault:
        """HTTP 429 with a ``Retry-After`` header (the provider documents no code for it).

        Args:
            retry_after: seconds (an int gives the standard form; a float such as ``0.2`` is
                written as is, which some clients accept and keeps tests fast), a
                ``timedelta``, an aware ``datetime`` (sent as an HTTP date), a raw header value,
                or ``None`` for no header.
            status: the HTTP status.
        """
        value = None if retry_after is None else _retry_after_value(retry_after)
        return cls(kind="rate_limited", status=status, retry_after=value)

    @classmethod
    def html(cls, status: int = 502, *, body: str | None = None) -> Fault:
        """An HTML error page from a proxy in front of the provider (``text/html``, no code).

        Args:
            status: the HTTP status (502, 503 and 504 are the usual ones).
            body: the page; defaults to an nginx-style page.
        """
        return cls(kind="html", status=status, body=body)

    @classmethod
    def delay(cls, seconds: float, *, after_processing: bool = False) -> Fault:
        """Answer ``seconds`` late, to provoke client timeouts.

        Args:
            seconds: how long to wait.
            after_processing: ``False``: wait, then handle the request. Over TLS the fake
                still processes it after the client gave up, as a real server would; in
                memory (:meth:`FakeAgileServer.transport`) the client's read timeout cancels
                the request during the wait, so nothing is processed. ``True``: handle the
                request at once (accepted and charged), then wait before answering: a read
                timeout then leaves the client not knowing what the provider already did.
        """
        check_number("seconds", seconds, minimum=0, unit=" seconds")
        return cls(kind="delay", seconds=float(seconds), after_processing=after_processing)

    @classmethod
    def hold(cls, hold: Hold, *, after_processing: bool = False) -> Fault:
        """Keep the request waiting until ``hold`` is released (see :class:`Hold`).

        Args:
            hold: the hold the request waits at; one hold may serve many requests (with
                ``times=`` or several faults), and :meth:`Hold.wait_held` counts them.
            after_processing: ``False``: wait, then handle the request. ``True``: handle it
                first (accepted and charged, in ``fake.accepted``), then hold the answer: the
                test knows the provider has the messages while the client cannot yet.
        """
        if not isinstance(hold, Hold):
            raise invalid("hold", "must be a Hold: a Hold is needed", hold)
        return cls(kind="hold", gate=hold, after_processing=after_processing)

    @classmethod
    def drop(cls, *, after_processing: bool = False) -> Fault:
        """Lose the connection instead of answering.

        Args:
            after_processing: ``False``: the request never reached the provider; nothing is
                accepted or charged. ``True``: the provider accepted and charged the request
                (it is in ``fake.accepted``), then the connection was lost before the
                response: the outcome the client cannot know.
        """
        return cls(kind="drop", after_processing=after_processing)

    def response(self) -> tuple[int, Headers, bytes]:
        """The status, headers and body this fault answers with (answering kinds only)."""
        status = self.status if self.status is not None else 500
        if self.kind == "error":
            text = self.data if self.data is not None else text_for(self.code)
            if status >= 500:
                payload: object = {"status": "error", "message": text, "code": self.code}
            else:
                payload = {"status": "fail", "data": text, "code": self.code}
            body = json_bytes(payload)
            return status, response_headers("application/json", body), body
        if self.kind == "rate_limited":
            body = json_bytes({"status": "fail", "data": "Too many requests"})
            extra = [("retry-after", self.retry_after)] if self.retry_after is not None else []
            return status, response_headers("application/json", body, extra), body
        if self.kind == "html":
            page = self.body or _HTML_PAGE.format(status=status, phrase=_phrase(status))
            body = page.encode()
            return status, response_headers("text/html; charset=utf-8", body), body
        raise ValueError(f"a {self.kind!r} fault does not answer by itself")

    async def _interrupt(self, response: _Response | None) -> None:
        """What a non-answering fault does: before processing (``response`` is ``None``), or
        after it, with the response the provider made."""
        if self.kind == "delay":
            await anyio.sleep(self.seconds)
        elif self.kind == "hold":
            assert self.gate is not None
            await self.gate._pass()
        elif self.kind == "drop":
            if response is None:
                raise ConnectionDropped(after_processing=False)
            status, headers, body = response
            raise ConnectionDropped(
                after_processing=True, status=status, headers=headers, body=body
            )


async def interfere(fault: Fault | None, process: Callable[[], _Response]) -> _Response:
    """The response to a request, with ``fault`` (if any) applied around ``process``.

    ``process`` is the fake's normal handling (authentication, validation, charging); an
    answering fault replaces it, the others act before or after it.

    Raises:
        ConnectionDropped: for :meth:`Fault.drop`.
    """
    if fault is None:
        return process()
    if fault.kind in _ANSWERING:
        return fault.response()
    if not fault.after_processing:
        await fault._interrupt(None)
        return process()
    response = process()
    await fault._interrupt(response)
    return response


class ConnectionDropped(Exception):
    """Raised by the ASGI app to ask the server layer to lose the connection.

    :meth:`FakeAgileServer.transport` turns it into an ``httpx`` network error and
    :meth:`FakeAgileServer.serve_tls` closes the socket. Any other ASGI server shows it as an
    application error: serve the fake through one of those two to script drops.

    Attributes:
        after_processing: whether the request was processed first.
        status, headers, body: the response that would have been sent (``after_processing``).
    """

    def __init__(
        self,
        *,
        after_processing: bool,
        status: int = 0,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        when = "after processing" if after_processing else "before processing"
        super().__init__(
            f"FakeAgileServer dropped the connection {when} (a scripted Fault.drop); serve "
            "the fake through fake.transport() or fake.serve_tls() to see a network error"
        )
        self.after_processing = after_processing
        self.status = status
        self.headers = headers or []
        self.body = body


@attrs.define
class _Entry:
    fault: Fault
    remaining: int | None
    endpoint: str | None


class FaultScript:
    """The queue of scripted faults, consumed in order by matching requests.

    Thread-safe: a test on one thread may script faults for a server running on another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def push(self, fault: Fault, *, times: int | None = 1, path: str | None = None) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``path`` (``None``: forever/any)."""
        if times is not None:
            check_integer("times", times, minimum=1, none="always")
        endpoint = None if path is None else endpoint_of(path)
        with self._lock:
            self._entries.append(_Entry(fault, times, endpoint))

    def take(self, endpoint: str) -> Fault | None:
        """Consume the first queued fault that applies to ``endpoint``, if any."""
        with self._lock:
            for position, entry in enumerate(self._entries):
                if entry.endpoint is not None and entry.endpoint != endpoint:
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        del self._entries[position]
                return entry.fault
        return None

    def pending(self) -> tuple[Fault, ...]:
        """The faults still queued, in order, each repeated by its remaining count.

        A fault queued with ``times=None`` appears once.
        """
        with self._lock:
            return tuple(
                entry.fault
                for entry in self._entries
                for _ in range(entry.remaining if entry.remaining is not None else 1)
            )

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._entries.clear()
