"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os

import pytest

#: The backends we promise. ``AGILE_TEST_BACKENDS=asyncio`` narrows a run to one: CI runs the
#: other Pythons on asyncio alone (the standard library is what changes between Pythons;
#: the main session runs both).
BACKENDS = os.environ.get("AGILE_TEST_BACKENDS", "asyncio,trio").split(",")
if not BACKENDS or not set(BACKENDS) <= {"asyncio", "trio"}:
    raise pytest.UsageError(f"AGILE_TEST_BACKENDS: asyncio, trio or both, not {BACKENDS}")


@pytest.fixture(params=[pytest.param(backend, id=backend) for backend in BACKENDS])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Pin the backends we promise, rather than whatever the plugin finds installed."""
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a developer's real credentials or endpoint."""
    for name in ("AGILE_API_KEY", "AGILE_USERNAME", "AGILE_PASSWORD", "AGILE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
