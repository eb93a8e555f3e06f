"""The guard that keeps a test suite from reaching the real AgileTelecom provider.

Where it hooks, and why there: at httpx's network transports,
:class:`httpx.AsyncHTTPTransport` and :class:`httpx.HTTPTransport` (patched on the class, for
the whole test session). Every request that leaves the process through httpx goes through
one of them: the SDK's own client, a caller's ``http_client=`` (httpx's default transport, a
proxy mount, a custom ``AsyncHTTPTransport(verify=..., retries=...)`` or a subclass of it),
and plain httpx calls of the application under test. In-memory transports
(:meth:`FakeAgileServer.transport() <agile_async.testing.FakeAgileServer.transport>`,
``httpx.MockTransport``) never reach a network, so they pass, whatever host their URLs name.

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

import httpx

from .._config import BASE_URLS
from .._redact import redact_url

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

    def check(self, request: httpx.Request) -> None:
        """Refuse ``request`` if it would reach the provider and that is not allowed.

        Raises:
            RealProviderError: it would have (the attempt is also recorded, so a test that
                swallows the error fails all the same).
        """
        if self._allowed or not is_provider_host(request.url.host):
            return
        attempt = f"{request.method} {redact_url(request.url.copy_with(query=None))}"
        with self._lock:
            self._attempts.append(attempt)
        raise RealProviderError(
            f"this test tried to reach the real AgileTelecom provider ({attempt}); use the "
            "agile_fake / agile_client fixtures (agile_async.testing.FakeAgileServer), or "
            "mark the test @pytest.mark.agile_allow_real_provider if it really must"
        )

    def install(self) -> Callable[[], None]:
        """Patch httpx's network transports to call :meth:`check` first; returns the undo."""
        async_original = httpx.AsyncHTTPTransport.handle_async_request
        sync_original = httpx.HTTPTransport.handle_request
        check = self.check

        async def handle_async_request(
            transport: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            check(request)
            return await async_original(transport, request)

        def handle_request(
            transport: httpx.HTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            check(request)
            return sync_original(transport, request)

        # Replaced on the class, so every instance, subclass and caller's client is covered.
        httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign, assignment]
        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign, assignment]

        def undo() -> None:
            httpx.AsyncHTTPTransport.handle_async_request = async_original  # type: ignore[method-assign]
            httpx.HTTPTransport.handle_request = sync_original  # type: ignore[method-assign]

        return undo
