"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Pin the backends we promise, rather than whatever the plugin finds installed."""
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a developer's real credentials or endpoint."""
    for name in ("AGILE_API_KEY", "AGILE_USERNAME", "AGILE_PASSWORD", "AGILE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
