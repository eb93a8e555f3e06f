"""Serving the fake over a real TLS socket, for end-to-end tests.

uvicorn serves it (asyncio only), so it runs on a thread with its own event loop and the test
itself may run on asyncio or trio. trustme makes a throwaway CA and a certificate for the
host; the client trusts that CA through :meth:`TLSServer.ssl_context` or
:attr:`TLSServer.ca_cert_path`. Both come from the ``server`` extra, imported only here.

Delivery reports flow by themselves here: the server thread runs ``fake.delivering()`` around
uvicorn, so a courier posts the fake's reports from that thread's event loop for as long as
the server runs (reports still queued when it stops stay queued for ``fake.flush_reports()``).

Scripted drops need the socket: a drop before processing closes the connection without a
response; a drop after processing sends the status line and half the body under a longer
``Content-Length``, then closes. uvicorn's ASGI interface has no "close this connection" call,
so :func:`_close_connection` closes the transport of uvicorn's h11 request cycle directly.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import httpx

from .._asgi import Receive, Scope, Send
from ._auth import client_credentials
from ._faults import ConnectionDropped

if TYPE_CHECKING:
    from .._client import AgileClient
    from ._server import FakeAgileServer

__all__ = ["TLSServer"]

#: How long to wait for uvicorn to start or stop before giving up.
_STARTUP_TIMEOUT = 10.0
_SHUTDOWN_TIMEOUT = 10.0


class TLSServer:
    """A :class:`FakeAgileServer` served over HTTPS on a local port, on a thread of its own.

    Get one from :meth:`FakeAgileServer.serve_tls`; use it as ``with`` or ``async with``
    (entering starts it, leaving stops it; it is not reusable). The async form waits for
    the start and the stop on a worker thread, so the event loop is never blocked.
    """

    def __init__(self, fake: FakeAgileServer, *, host: str, port: int) -> None:
        self._fake = fake
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca_cert_path: Path | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"TLSServer({where})"

    # -- what a test uses ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``https://<host>:<port>/services/``, the provider-shaped base URL."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self.port}/services/"

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("the TLS server is not running; enter it with `with` first")
        return self._port

    @property
    def ca_cert_path(self) -> Path:
        """The PEM file of the throwaway CA that signed the server certificate."""
        if self._ca_cert_path is None:
            raise RuntimeError("the TLS server is not running; enter it with `with` first")
        return self._ca_cert_path

    def ssl_context(self) -> ssl.SSLContext:
        """A new client-side context that trusts this server's CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_cert_path))

    def environment(self) -> dict[str, str]:
        """The variables that point another process at this server, as a user would:
        ``AGILE_BASE_URL``, the credentials (``AGILE_API_KEY`` or ``AGILE_USERNAME`` and
        ``AGILE_PASSWORD``) and ``SSL_CERT_FILE`` (the CA). Merge them into ``os.environ``
        for a subprocess: the SDK's own client reads exactly these."""
        names = {
            "api_key": "AGILE_API_KEY",
            "username": "AGILE_USERNAME",
            "password": "AGILE_PASSWORD",
        }
        fake = self._fake
        credentials = client_credentials(fake.api_key, fake.username, fake.password)
        return {
            "AGILE_BASE_URL": self.base_url,
            **{names[key]: value for key, value in credentials.items()},
            "SSL_CERT_FILE": str(self.ca_cert_path),
        }

    def client(self, **kwargs: Any) -> AgileClient:
        """An :class:`~agile_async.AgileClient` for this server, over real TLS.

        It owns its transport (an ``httpx.AsyncHTTPTransport`` trusting the CA), so closing
        the client closes everything. Keyword arguments go to ``AgileClient`` and win.
        """
        from .._client import AgileClient

        options: dict[str, Any] = {"base_url": self.base_url}
        if not {"http_client", "transport"} & kwargs.keys():
            options["transport"] = httpx.AsyncHTTPTransport(verify=self.ssl_context())
        if not {"api_key", "username", "password"} & kwargs.keys():
            fake = self._fake
            options.update(client_credentials(fake.api_key, fake.username, fake.password))
        options.update(kwargs)
        return AgileClient(**options)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("a TLSServer can be started only once")
        uvicorn, trustme = _server_extra()
        self._tmp = tempfile.TemporaryDirectory(prefix="agile-fake-tls-")
        try:
            self._ca_cert_path, certfile = _write_certificates(
                trustme, Path(self._tmp.name), self._host
            )
            self._sock = _bind(self._host, self._requested_port)
            self._server = _make_server(uvicorn, _SocketFaults(self._fake), certfile, self._ready)
            self._thread = threading.Thread(
                target=self._run, name="FakeAgileServer-TLS", daemon=True
            )
            self._thread.start()
            if not self._ready.wait(_STARTUP_TIMEOUT) or not self._server.started:
                raise RuntimeError("the fake TLS server did not start") from self._error
        except BaseException:
            self.stop()
            raise
        self._port = int(self._sock.getsockname()[1])

    def stop(self) -> None:
        """Stop serving and remove the certificate files; waits for the server thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_SHUTDOWN_TIMEOUT)
        if self._sock is not None:
            self._sock.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _run(self) -> None:
        try:
            anyio.run(self._serve, backend="asyncio")
        except BaseException as exc:  # uvicorn exits with SystemExit on startup errors
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        """uvicorn, with the fake's delivery-report courier beside it in the same loop."""
        # Nobody to raise to on this thread: lost reports are logged, counted and kept, and
        # the test's next flush_reports() raises them.
        async with self._fake.delivering(drain=False, strict_callbacks=False):
            await self._server.serve([self._sock])

    def __enter__(self) -> TLSServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> TLSServer:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)


def _server_extra() -> tuple[Any, Any]:
    """uvicorn and trustme, or an error that says which extra to install."""
    try:
        import trustme
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            "FakeAgileServer.serve_tls needs the 'server' extra: pip install 'agile-async[server]'"
        ) from exc
    return uvicorn, trustme


def _write_certificates(trustme: Any, directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for ``host`` (and ``localhost``), as PEM files.

    Returns:
        The CA certificate's path (for clients) and the server's key and chain (for uvicorn).
    """
    ca = trustme.CA()
    names = [host] if host == "localhost" else [host, "localhost"]
    ca_path, server_path = directory / "ca.pem", directory / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ca.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(server_path))
    return ca_path, server_path


def _make_server(uvicorn: Any, app: _SocketFaults, certfile: Path, ready: threading.Event) -> Any:
    """A quiet uvicorn server for ``app`` that sets ``ready`` once it accepts connections.

    h11 is pinned because :func:`_close_connection` knows its request cycle; proxy headers
    are off so ``allowed_ips`` sees the real peer address.
    """

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class _Server(uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            ready.set()

    class _H11Protocol(H11Protocol):
        """uvicorn's h11 protocol, closing its transport however the connection was lost.

        uvicorn closes it only after a clean end of stream. On Python 3.10, asyncio's TLS
        transport is not marked closed when the connection is lost (3.11's is), so a client
        that resets the connection (a worker killed mid-request) left an unclosed transport
        behind and a ``ResourceWarning`` when it was collected. Closing a lost transport
        sends nothing.
        """

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            self.transport.close()

    config = uvicorn.Config(
        app,
        ssl_certfile=str(certfile),
        http=_H11Protocol,
        ws="none",
        lifespan="off",
        interface="asgi3",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=1,
    )
    return _Server(config)


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so port 0 gives a real port before uvicorn starts."""
    candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    # IPv4 first: clients try 127.0.0.1 first for "localhost" on most systems.
    candidates.sort(key=lambda candidate: candidate[0] != socket.AF_INET)
    family, kind, proto, _, address = candidates[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _SocketFaults:
    """Wraps the fake so a scripted drop really loses the TCP connection."""

    def __init__(self, fake: FakeAgileServer) -> None:
        self._fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._fake(scope, receive, send)
        except ConnectionDropped as dropped:
            if dropped.after_processing:
                await _send_truncated(send, dropped)
            if not await _close_connection(send):
                raise


async def _send_truncated(send: Send, dropped: ConnectionDropped) -> None:
    """Start the response that would have been sent, promise more body than comes, stop."""
    headers = [(k, v) for k, v in dropped.headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(dropped.body) + 1024).encode()))
    await send({"type": "http.response.start", "status": dropped.status, "headers": headers})
    half = dropped.body[: len(dropped.body) // 2]
    await send({"type": "http.response.body", "body": half, "more_body": True})


async def _close_connection(send: Send) -> bool:
    """Close the connection under uvicorn's h11 request cycle; ``False`` if there is none.

    Closing (rather than aborting) flushes what was written and ends TLS cleanly, so the
    client sees an orderly end of stream where a response (or the rest of one) should be.
    Waiting for uvicorn to notice keeps it from answering 500 or logging an incomplete
    response when the app returns.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.close()
    with anyio.move_on_after(1):
        # uvicorn offers no event for this; connection_lost runs within a few loop turns.
        while not getattr(cycle, "disconnected", True):  # noqa: ASYNC110
            await anyio.sleep(0.001)
    return True
