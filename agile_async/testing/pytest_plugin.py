"""The pytest plugin of agile-async: a fake provider, clients wired to it, and a guard.

Installing ``agile-async`` registers it (the ``pytest11`` entry point): nothing to add to a
``conftest.py``. Disable it with ``-p no:agile_async.testing.pytest_plugin``.

Fixtures (each test gets its own fake):

- ``agile_fake``: a :class:`~agile_async.testing.FakeAgileServer`. Override it in your
  ``conftest.py`` to configure the account (credit, prices, allowed senders...): the other
  fixtures use yours.
- ``agile_client``: an :class:`~agile_async.AgileClient` wired to it in memory (async: an
  anyio test, ``@pytest.mark.anyio``, on asyncio or trio).
- ``agile_tls_server`` and ``agile_tls_client``: the fake over a real TLS socket, and a client
  trusting it (the ``server`` extra).
- ``agile_sync_client``: a blocking :class:`agile_async.sync.AgileClient` wired to it in
  memory.

The guard, on for every test: a request to the real provider's hosts (those of
:data:`agile_async.BASE_URLS` and their domain) through httpx's network layer fails the
test, whatever client made it, a user's own ``http_client=`` included (see
:mod:`agile_async.testing._guard` for where it hooks). A test that must reach the provider
says so with ``@pytest.mark.agile_allow_real_provider``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

from .._client import AgileClient
from .._public import claim_public_names
from .._sync_client import AgileClient as SyncAgileClient
from ._auth import client_credentials
from ._guard import ProviderGuard, RealProviderError
from ._server import FakeAgileServer
from ._tls import TLSServer

__all__ = [
    "ALLOW_REAL_PROVIDER",
    "RealProviderError",
    "agile_client",
    "agile_fake",
    "agile_sync_client",
    "agile_tls_client",
    "agile_tls_server",
]


#: The marker that lets one test reach the real provider.
ALLOW_REAL_PROVIDER = "agile_allow_real_provider"

_GUARD = pytest.StashKey[ProviderGuard]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ALLOW_REAL_PROVIDER}: let this test reach the real AgileTelecom provider (the "
        "agile_async plugin fails any test that tries, otherwise)",
    )
    guard = ProviderGuard()
    config.stash[_GUARD] = guard
    config.add_cleanup(guard.install())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """Each test (its fixtures included) may reach the provider only if marked."""
    guard = item.config.stash[_GUARD]
    guard.begin(allowed=item.get_closest_marker(ALLOW_REAL_PROVIDER) is not None)
    try:
        return (yield)
    finally:
        guard.begin(allowed=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None]:
    """A test that swallowed the guard's error (an app catching every exception, say)
    fails all the same."""
    result = yield
    attempts = item.config.stash[_GUARD].attempts
    if attempts:
        raise RealProviderError(
            f"this test tried to reach the real AgileTelecom provider {len(attempts)} "
            f"time(s), and went on: {', '.join(attempts)}"
        )
    return result


@pytest.fixture
def agile_fake() -> FakeAgileServer:
    """A fresh fake provider (override this fixture to configure the account)."""
    return FakeAgileServer()


@pytest.fixture
async def agile_client(agile_fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    """An async client wired to ``agile_fake`` in memory (an anyio test: asyncio or trio)."""
    async with agile_fake.client() as client:
        yield client


@pytest.fixture
def agile_tls_server(agile_fake: FakeAgileServer) -> Iterator[TLSServer]:
    """``agile_fake`` served over real TLS on a loopback port (the ``server`` extra)."""
    with agile_fake.serve_tls() as server:
        yield server


@pytest.fixture
async def agile_tls_client(agile_tls_server: TLSServer) -> AsyncIterator[AgileClient]:
    """An async client for ``agile_tls_server``, over real TLS, trusting its CA."""
    async with agile_tls_server.client() as client:
        yield client


@pytest.fixture
def agile_sync_client(agile_fake: FakeAgileServer) -> Iterator[SyncAgileClient]:
    """A blocking client (:mod:`agile_async.sync`) wired to ``agile_fake`` in memory."""
    options: dict[str, Any] = {"base_url": agile_fake.base_url, "transport": agile_fake.transport()}
    options.update(client_credentials(agile_fake.api_key, agile_fake.username, agile_fake.password))
    with SyncAgileClient(**options) as client:
        yield client


claim_public_names(__name__)  # RealProviderError is raised to users' tests: its public path
