"""Serve an ASGI app with uvicorn on loopback, on a thread of its own.

uvicorn runs only on asyncio, so it gets its own thread and event loop: the test itself
may then run on asyncio or trio. Shared by the tests that need a real HTTP socket.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

uvicorn = pytest.importorskip("uvicorn")  # the server extra


@contextmanager
def serve_in_thread(
    app: Any, *, lifespan: str = "on", certfile: Path | None = None
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port); yield its base URL: ``http://``, or
    ``https://`` with ``certfile`` (a PEM holding the certificate and its key)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    ready = threading.Event()

    class Server(uvicorn.Server):  # type: ignore[misc, name-defined]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            ready.set()

    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
        ssl_certfile=None if certfile is None else str(certfile),
    )
    server = Server(config)
    thread = threading.Thread(
        target=lambda: anyio.run(server.serve, [sock], backend="asyncio"), daemon=True
    )
    thread.start()
    try:
        assert ready.wait(10), "uvicorn did not start"
        assert server.started, "uvicorn did not start (lifespan refused?)"
        scheme = "http" if certfile is None else "https"
        yield f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
