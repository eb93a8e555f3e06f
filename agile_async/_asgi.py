"""The slice of ASGI 3 and HTTP that the package's two servers speak, written once.

The package serves HTTP twice: the delivery-report receiver (:mod:`._webhook_receiver`), which
faces the internet, and the fake provider (:mod:`.testing`), which faces the code under test.
Neither pulls in a web framework, so the plumbing is written by hand, and written here only:
reading a body under a cap, the lifespan handshake, the ``Authorization: Basic`` header, what
counts as a JSON ``Content-Type``, and writing a complete response. One home keeps the two
servers from drifting apart: a body the receiver calls JSON is one the fake calls JSON too.

What stays with each server is what differs between them: which checks run in which order,
what a refusal says, and the secrets each compares (with :func:`same_secret`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, NamedTuple

__all__ = [
    "ASGIApp",
    "BodyTooLarge",
    "ClientDisconnected",
    "Headers",
    "InvalidContentLength",
    "Message",
    "Receive",
    "Response",
    "Scope",
    "Send",
    "authorization_scheme",
    "basic_credentials",
    "check_declared_length",
    "dispatch",
    "header",
    "is_json_media_type",
    "json_bytes",
    "json_response",
    "read_body",
    "read_request_body",
    "response_headers",
    "same_secret",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]

#: A JSON media type (RFC 8259 §11 registers ``application/json``; RFC 6839 §3.1 the ``+json``
#: structured syntax suffix): ``application/json``, or an ``application/`` subtype whose name
#: (RFC 6838 §4.2's restricted-name: a letter or digit first, at most 127 characters in all)
#: ends in ``+json``. Matched against the lower-cased type and subtype, parameters removed.
_JSON_MEDIA_TYPE = re.compile(r"application/(?:json|[a-z0-9][a-z0-9!#$&^_.+-]{0,121}\+json)")
#: RFC 7230 §3.3.2: ``Content-Length = 1*DIGIT``. ASCII digits only (``str.isdigit`` would take
#: Arabic-Indic ones).
_DIGITS = re.compile(r"[0-9]+")
#: More digits than this is over any cap we could be given; ``int()`` is not even tried on
#: thousands of digits (it refuses them, slowly).
_MAX_LENGTH_DIGITS = 18
#: RFC 7617's ``Authorization: Basic <token68>``, with RFC 7235's ``1*SP`` between them.
_SCHEME = re.compile(r"\s*([^\s]+)(?:\s+(.*?))?\s*")


class ClientDisconnected(Exception):
    """The client went away before the request body was complete: nobody to answer."""


class InvalidContentLength(Exception):
    """The ``Content-Length`` header is not a number, or its copies disagree (answer 400)."""


class BodyTooLarge(Exception):
    """The body is over the server's cap, declared or read (answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes")
        self.limit = limit


class Response(NamedTuple):
    """A complete response: sent as one start and one body message."""

    status: int
    headers: Headers
    body: bytes


# -- scopes ----------------------------------------------------------------------------------


async def dispatch(scope: Scope, receive: Receive, send: Send, http: ASGIApp) -> None:
    """Serve one ASGI scope: ``http`` to the app's handler, the rest the same for every app.

    Lifespan is acknowledged, so a server may run the app alone with its lifespan on (there
    is nothing to start or stop). A websocket is closed before it is accepted, which the
    server answers with 403. Any other scope type raises, as the ASGI spec asks of an app
    that does not understand it.
    """
    kind = scope.get("type")
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    elif kind == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})  # policy violation
    else:
        raise ValueError(f"unsupported ASGI scope type {kind!r}")


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown; return after shutdown, as the spec asks."""
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- request headers -------------------------------------------------------------------------


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), decoded as latin-1.

    Latin-1 maps every byte to one character, so no header value can fail to decode.
    """
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` says JSON: ``application/json`` or ``application/*+json``.

    Type and subtype are case-insensitive and parameters are ignored (RFC 7231 §3.1.1.1), so
    ``Application/JSON; charset=utf-8`` is JSON: RFC 8259 defines no ``charset`` for it (JSON
    is UTF-8) and says adding one has no effect. A ``+json`` suffix says the representation
    is JSON (RFC 6839 §3.1), so ``application/problem+json`` and ``application/vnd.x+json``
    are JSON too; but only under ``application/``, where RFC 6838 §4.2.5 puts data for
    programs, and only after a real subtype name: ``text/json``, ``foo+json`` (no type),
    ``application/+json`` (no name) and ``application/json-seq`` are not. A missing header
    is not JSON.
    """
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return _JSON_MEDIA_TYPE.fullmatch(media_type) is not None


def authorization_scheme(authorization: str | None) -> str | None:
    """The scheme of an ``Authorization`` header, lower-cased (``"basic"``); ``None`` if none."""
    if authorization is None:
        return None
    match = _SCHEME.fullmatch(authorization)
    return match.group(1).lower() if match else None


def basic_credentials(authorization: str | None) -> tuple[bytes, bytes] | None:
    """``(user, password)`` from an ``Authorization: Basic <base64>`` header, else ``None``.

    ``None`` for another scheme, a token that is not strict base64 (RFC 4648 alphabet and
    padding), or one without the ``:`` that splits user from password (RFC 7617 §2). The
    halves stay bytes: RFC 7617 suggests UTF-8, and comparing bytes with the expected
    strings' UTF-8 needs no decoding step that could fail. Nothing here keeps, logs or
    raises with the header's text.
    """
    if authorization is None:
        return None
    match = _SCHEME.fullmatch(authorization)
    if match is None or match.group(1).lower() != "basic" or not match.group(2):
        return None
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


def same_secret(given: bytes, expected: bytes) -> bool:
    """Constant-time equality that does not even leak the expected length.

    Both sides are hashed first, so the comparison always runs over 32 bytes, however long
    either secret is.
    """
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


# -- request bodies --------------------------------------------------------------------------


def check_declared_length(scope: Scope, *, limit: int) -> None:
    """Refuse a request from its ``Content-Length`` alone, before a byte of body is read.

    Every copy of the header counts (repeated, or as a comma-separated list): copies that
    disagree are refused, as RFC 7230 §3.3.2 allows, since two parsers could each pick a
    different one. No header is fine: the body is then capped while it is read.

    Raises:
        InvalidContentLength: a value that is not ASCII digits, or copies that disagree.
        BodyTooLarge: a declared length over ``limit``.
    """
    values = {
        value.strip()
        for key, raw in scope.get("headers", ())
        if bytes(key).lower() == b"content-length"
        for value in bytes(raw).decode("latin-1").split(",")
    }
    if not values:
        return
    lengths = {value.lstrip("0") or "0" for value in values}
    if not all(_DIGITS.fullmatch(value) for value in values) or len(lengths) > 1:
        raise InvalidContentLength
    (length,) = lengths
    if len(length) > _MAX_LENGTH_DIGITS or int(length) > limit:
        raise BodyTooLarge(limit)


async def read_body(receive: Receive, *, limit: int) -> bytes:
    """The whole request body, read only as far as ``limit`` bytes.

    Reading stops at the first chunk past the cap, so a client that lies about its length,
    or sends none, costs at most ``limit`` bytes (plus one chunk) of memory.

    Raises:
        BodyTooLarge: the body passed ``limit``.
        ClientDisconnected: the client went away first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            raise ClientDisconnected
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_request_body(scope: Scope, receive: Receive, *, limit: int) -> bytes:
    """:func:`check_declared_length`, then :func:`read_body`: the whole body, capped."""
    check_declared_length(scope, limit=limit)
    return await read_body(receive, limit=limit)


# -- responses -------------------------------------------------------------------------------


def json_bytes(payload: Any) -> bytes:
    """A payload as compact JSON, ASCII only.

    ASCII because escaping cannot fail: text that came from a request (a lone surrogate
    included) is written as ``\\uXXXX``, and every JSON reader reads back the same text.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def response_headers(
    content_type: str, body: bytes, extra: Iterable[tuple[str, str]] = ()
) -> Headers:
    """The headers of a complete response: content type, length, then any extras."""
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra
    )
    return headers


def json_response(status: int, payload: Any, extra: Iterable[tuple[str, str]] = ()) -> Response:
    """A complete ``application/json`` response."""
    body = json_bytes(payload)
    return Response(status, response_headers("application/json", body, extra), body)


async def send_response(
    send: Send, status: int, headers: Headers, body: bytes, *, head: bool = False
) -> None:
    """Send a complete response in one start and one body message.

    ``head``: the request was ``HEAD``, so the headers (``Content-Length`` included) are
    those of the full response, but no body is sent (RFC 7231 §4.3.2).
    """
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})
