"""Scripted faults: the ways a real provider (or the network in front of it) misbehaves.

A test scripts faults up front with :meth:`FakeAgileServer.inject`; each matching request then
consumes the next one, in order. The faults are the cases the SDK's retry rules (SPEC §3) tell
apart: a provider 5XX with code 8 or 9, a 429 with ``Retry-After``, an HTML page from a proxy,
a slow answer, and a connection lost before or after the provider processed the request.
"""

from __future__ import annotations

import http
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Literal

import attrs

from ._asgi import Headers, json_bytes, response_headers
from ._codes import SERVICE_UNAVAILABLE, text_for

__all__ = ["ConnectionDropped", "Fault", "FaultKind", "FaultScript", "endpoint_of"]

FaultKind = Literal["error", "rate_limited", "html", "delay", "drop"]

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
            raise ValueError("retry_after: a datetime must be timezone-aware")
        return format_datetime(retry_after.astimezone(timezone.utc), usegmt=True)
    seconds = (
        retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
    )
    if seconds < 0:
        raise ValueError(f"retry_after: must not be negative, got {seconds}")
    return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted misbehaviour. Build it with the class methods, not the constructor.

    Attributes:
        kind: ``"error"`` (a provider error body), ``"rate_limited"`` (429), ``"html"`` (a
            proxy's page), ``"delay"`` (answer late) or ``"drop"`` (lose the connection).
        status: the HTTP status for the kinds that answer.
        code: the provider error code (``"error"`` only).
        data: the 4XX ``data`` (a mapping of field to problem, or a text) or the 5XX
            ``message``.
        retry_after: the ``Retry-After`` header value (``"rate_limited"`` only).
        body: the page's text (``"html"`` only).
        seconds: how long to wait before processing (``"delay"`` only).
        after_processing: for ``"drop"``: whether the provider processed (and charged) the
            request before the connection was lost.
    """

    kind: FaultKind
    status: int | None = None
    code: int | None = None
    data: Mapping[str, str] | str | None = None
    retry_after: str | None = None
    body: str | None = None
    seconds: float = 0.0
    after_processing: bool = False

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
            raise ValueError(f"status: an error needs a 4XX or 5XX status, got {status}")
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
            raise ValueError(f"status: a server error needs a 5XX status, got {status}")
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
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before handling the request normally, to provoke client timeouts.

        Over TLS the fake keeps processing after the client gives up, as a real server
        would. In memory (:meth:`FakeAgileServer.transport`) the client's read timeout cancels
        the request during the wait, so nothing is processed.
        """
        if seconds < 0:
            raise ValueError(f"seconds: must not be negative, got {seconds}")
        return cls(kind="delay", seconds=float(seconds))

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
        if times is not None and times < 1:
            raise ValueError(f"times: must be at least 1 (or None for always), got {times}")
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
