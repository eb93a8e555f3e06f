"""The slice of the ASGI 3 interface the fake provider speaks, written out by hand.

The fake is a plain ASGI application so it runs anywhere an ASGI app runs (httpx's
``ASGITransport``, uvicorn, a user's own framework) without pulling a web framework into the
core dependencies. These helpers read a request body and write a complete response.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]


class ClientDisconnected(Exception):
    """The client went away before the request body was complete."""


async def read_body(receive: Receive) -> bytes:
    """Read the whole request body.

    Raises:
        ClientDisconnected: the client disconnected first, so there is nobody to answer.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def json_bytes(payload: Any) -> bytes:
    """Encode a response payload compactly, as the provider's JSON would arrive."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def response_headers(
    content_type: str, body: bytes, extra: Iterable[tuple[str, str]] = ()
) -> Headers:
    """The headers of a complete response: content type, length and any extras."""
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra
    )
    return headers


async def send_response(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """Send a complete response in one start and one body message."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
