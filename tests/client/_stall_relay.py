"""A loopback TCP relay in front of a real server, for cancellation tests.

While *stalling* it accepts every connection and never says a word: a client's TLS handshake
through it never completes, which is exactly "cancelled while the connection is being made".
Once told to *forward*, it closes the stalled connections and pipes every new one to the
target port, so the same client, with the same pool, can then reach a working server.

It runs in the test's own event loop (anyio), so it works on asyncio and on trio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

__all__ = ["StallRelay", "stall_relay"]


class StallRelay:
    """Accepts connections on 127.0.0.1; stalls them or forwards them to ``target_port``."""

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        self.port = port
        self.accepted = 0
        self._forwarding = anyio.Event()
        self._accepted_changed = anyio.Event()

    def forward(self) -> None:
        """Stop stalling: close the stalled connections, forward every new one."""
        self._forwarding.set()

    async def wait_accepted(self, count: int) -> None:
        """Wait until ``count`` connections in all have been accepted."""
        while self.accepted < count:
            await self._accepted_changed.wait()
            self._accepted_changed = anyio.Event()

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            self.accepted += 1
            self._accepted_changed.set()
            if not self._forwarding.is_set():
                await self._forwarding.wait()  # silent: the handshake never completes
                return  # closing it fails the handshake at last
            async with (
                await anyio.connect_tcp("127.0.0.1", self.target_port) as upstream,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(_pump, client, upstream)
                tg.start_soon(_pump, upstream, client)


async def _pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
        await sink.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await sink.aclose()


@asynccontextmanager
async def stall_relay(target_port: int) -> AsyncIterator[StallRelay]:
    """Run a :class:`StallRelay` (stalling) for the duration of the block."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    relay = StallRelay(target_port, port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay.handle, tg)
        try:
            yield relay
        finally:
            relay.forward()
            tg.cancel_scope.cancel()
