"""The in-memory transport: httpx's ASGI transport, plus the network failures it cannot fake.

``httpx.ASGITransport`` calls the app directly, so on its own it can neither lose a connection
nor time out. This wrapper turns the app's :class:`ConnectionDropped` into the error a real
connection would give, and enforces the request's read timeout, so the client under test sees
the same exceptions in memory as over a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx

from ._faults import ConnectionDropped

if TYPE_CHECKING:
    from ._server import FakeAgileServer

__all__ = ["FakeTransport"]


class FakeTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that serves requests from a :class:`FakeAgileServer` in memory.

    - ``Fault.drop()`` raises ``httpx.ConnectError``: the request never reached the provider.
    - ``Fault.drop(after_processing=True)`` raises ``httpx.ReadError`` after the fake accepted
      and charged the request: the response was lost.
    - A request that outlasts its read timeout (``Fault.delay``, ``Fault.hold``) raises
      ``httpx.ReadTimeout``; the fake abandons it: unprocessed when the fault waits before
      processing, already accepted and charged with ``after_processing=True``.

    Args:
        fake: the server to call.
        client_ip: the source address the fake sees.
    """

    def __init__(self, fake: FakeAgileServer, *, client_ip: str = "127.0.0.1") -> None:
        self._asgi = httpx.ASGITransport(app=fake, client=(client_ip, 50000))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve one request through the fake, mapping scripted failures to httpx errors."""
        timeouts = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        try:
            with anyio.fail_after(read_timeout):
                return await self._asgi.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"FakeAgileServer did not answer within the read timeout ({read_timeout} s)",
                request=request,
            ) from None
        except ConnectionDropped as dropped:
            if dropped.after_processing:
                raise httpx.ReadError(
                    "connection lost before the response (FakeAgileServer: scripted drop after "
                    "processing)",
                    request=request,
                ) from dropped
            raise httpx.ConnectError(
                "connection failed (FakeAgileServer: scripted drop before processing)",
                request=request,
            ) from dropped

    async def aclose(self) -> None:
        """Nothing to release: no sockets were opened."""
        await self._asgi.aclose()
