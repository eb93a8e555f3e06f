"""The guard that keeps a test suite from reaching the real AgileTelecom provider.

Where it hooks, and why there: at httpcore's connection pools,
:class:`httpcore.AsyncConnectionPool` and :class:`httpcore.ConnectionPool` (patched on the
class, for the whole test session), the layer under httpx's network transports where a
request is about to be given a connection. Every request that leaves the process through
httpx goes through one of them: the SDK's own client, a caller's ``http_client=`` (httpx's
default transport, an ``AsyncHTTPTransport(verify=..., proxy=...)`` or a subclass of it; a
proxy pool is one too), and plain httpx calls of the application under test. In-memory
transports (:meth:`FakeAgileServer.transport() <agile_async.testing.FakeAgileServer.transport>`,
``httpx.MockTransport``) never get there, so they pass, whatever host their URLs name; and so
do requests that mocking libraries answer (respx replaces these same pool methods while it
mocks, and calls them, so the guard, for a request it lets through to the network).

Checked there, a request is judged by where it would really go: its URL's host, which a
proxy does not change. An httpx event hook would see only clients the plugin made, and a
check of the client's base URL would miss a user's own ``http_client`` or a redirect. A
transport that is not httpx's (another HTTP library underneath) is out of its reach.

The provider's hosts are those of :data:`agile_async.BASE_URLS`, and every other host of
their domain (``agiletelecom.com``): an ``AGILE_BASE_URL`` naming another of the provider's
hosts is refused as well.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpcore
import httpx

from .._config import BASE_URLS

__all__ = ["ProviderGuard", "RealProviderError", "is_provider_host"]


class RealProviderError(AssertionError):
    """A test's request would have reached the real AgileTelecom provider (refused)."""


def _provider_domains() -> frozenset[str]:
    """The domains of the documented base URLs (the last two labels of each host)."""
    hosts = (httpx.URL(url).host for url in BASE_URLS.values())
    return frozenset(".".join(host.split(".")[-2:]) for host in hosts)


_DOMAINS = _provider_domains()


def is_provider_host(host: str) -> bool:
    """Whether ``host`` is one of the provider's (its domain or a subdomain of it)."""
    host = host.rstrip(".").lower()
    return any(host == domain or host.endswith("." + domain) for domain in _DOMAINS)


class ProviderGuard:
    """Refuses requests to the provider's hosts unless the running test allows them.

    :meth:`install` patches httpx's network transports; :meth:`begin` starts each test
    (allowed or not) and clears what the previous one attempted. Requests may come from any
    thread (a blocking client's event loop, a TLS server's), so :attr:`attempts` is guarded.
    """

    def __init__(self) -> None:
        self._allowed = False
        self._lock = threading.Lock()
        self._attempts: list[str] = []

    @property
    def attempts(self) -> tuple[str, ...]:
        """The requests refused since :meth:`begin`, as ``"METHOD url"``."""
        with self._lock:
            return tuple(self._attempts)

    def begin(self, *, allowed: bool) -> None:
        """A test starts: it may reach the provider only when ``allowed``."""
        with self._lock:
            self._allowed = allowed
            self._attempts.clear()

    def check(self, request: httpcore.Request) -> None:
        """Refuse ``request`` if it would reach the provider and that is not allowed.

        Raises:
            RealProviderError: it would have (the attempt is also recorded, so a test that
                swallows the error fails all the same).
        """
        url = request.url
        host = url.host.decode("ascii", "replace")
        if self._allowed or not is_provider_host(host):
            return
        port = f":{url.port}" if url.port is not None else ""
        path = url.target.decode("ascii", "replace").partition("?")[0]
        shown = f"{url.scheme.decode('ascii', 'replace')}://{host}{port}{path}"
        attempt = f"{request.method.decode('ascii', 'replace')} {shown}"
        with self._lock:
            self._attempts.append(attempt)
        raise RealProviderError(
            f"this test tried to reach the real AgileTelecom provider ({attempt}); use the "
            "agile_fake / agile_client fixtures (agile_async.testing.FakeAgileServer), or "
            "mark the test @pytest.mark.agile_allow_real_provider if it really must"
        )

    def install(self) -> Callable[[], None]:
        """Patch httpcore's connection pools to call :meth:`check` first; returns the undo."""
        async_original = httpcore.AsyncConnectionPool.handle_async_request
        sync_original = httpcore.ConnectionPool.handle_request
        check = self.check

        async def handle_async_request(
            pool: httpcore.AsyncConnectionPool, request: httpcore.Request
        ) -> httpcore.Response:
            check(request)
            return await async_original(pool, request)

        def handle_request(
            pool: httpcore.ConnectionPool, request: httpcore.Request
        ) -> httpcore.Response:
            check(request)
            return sync_original(pool, request)

        # Replaced on the class, so every pool, proxy pool and caller's client is covered.
        httpcore.AsyncConnectionPool.handle_async_request = handle_async_request  # type: ignore[method-assign, assignment]
        httpcore.ConnectionPool.handle_request = handle_request  # type: ignore[method-assign, assignment]

        def undo() -> None:
            httpcore.AsyncConnectionPool.handle_async_request = async_original  # type: ignore[method-assign]
            httpcore.ConnectionPool.handle_request = sync_original  # type: ignore[method-assign]

        return undo
