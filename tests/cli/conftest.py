"""The CLI's account: a fake provider served over real TLS, the CLI pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agile_async.testing import FakeAgileServer, TLSServer


@pytest.fixture
def provider(fake: FakeAgileServer) -> Iterator[tuple[FakeAgileServer, TLSServer]]:
    """The test's ``fake`` (its module says which account it plays) over real TLS: the CLI
    reaches it in this process and from a child, as it would reach the real provider."""
    pytest.importorskip("uvicorn")  # served over TLS (the server extra)
    with fake.serve_tls() as server:
        yield fake, server


@pytest.fixture
def account(
    provider: tuple[FakeAgileServer, TLSServer], monkeypatch: pytest.MonkeyPatch
) -> FakeAgileServer:
    """The CLI pointed at the provider as at the real one, with the account's key in
    ``AGILE_API_KEY`` (a test about missing or wrong credentials changes it)."""
    fake, server = provider
    monkeypatch.setenv("AGILE_BASE_URL", server.base_url)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_cert_path))
    if fake.api_key is not None:
        monkeypatch.setenv("AGILE_API_KEY", fake.api_key)
    return fake
