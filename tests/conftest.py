"""Shared fixtures: every async test runs on asyncio and on trio.

The backend is parametrised here, by :func:`pytest_generate_tests`, rather than by the
fixture's own ``params``, so that a test's other backend-bound parameter can be generated
with it, in valid pairs only: a Redis test (one that uses ``redis_kind``) gets
``asyncio-redis-py``, ``asyncio-coredis`` and ``trio-coredis``, and never ``trio-redis-py``,
which redis-py's asyncio client cannot run and which used to be generated only to be skipped.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from agile_async.testing import FakeAgileServer

#: Property tests explore new examples on every run on a developer's machine, and the same
#: ones under CI (CI=true): a clean clone has no example database, and an example nobody
#: has seen must not turn one landing red and the next green. What a local run finds is
#: kept in .hypothesis/ and fixed with a regression test of its own.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")

#: The backends we promise, rather than whatever the plugin finds installed.
#: ``AGILE_TEST_BACKENDS=asyncio`` narrows a run to one: CI runs the other Pythons on asyncio
#: alone (the standard library is what changes between Pythons; the main session runs both).
BACKENDS = tuple(os.environ.get("AGILE_TEST_BACKENDS", "asyncio,trio").split(","))
if not BACKENDS or not set(BACKENDS) <= {"asyncio", "trio"}:
    raise pytest.UsageError(f"AGILE_TEST_BACKENDS: asyncio, trio or both, not {BACKENDS}")
#: The Redis clients each backend can drive (redis-py's client is asyncio-only).
REDIS_CLIENTS = {"asyncio": ("redis-py", "coredis"), "trio": ("coredis",)}


@pytest.hookimpl(tryfirst=True)  # first, so that the backend comes first in every test id
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``anyio_backend`` once per backend; a Redis test once per pair
    of backend and client that can run together."""
    names = metafunc.fixturenames
    if "anyio_backend" not in names or "anyio_backend" in parametrized_by_marks(metafunc):
        return
    if "redis_kind" in names:
        pairs = [(backend, kind) for backend in BACKENDS for kind in REDIS_CLIENTS[backend]]
        ids = [f"{backend}-{kind}" for backend, kind in pairs]
        metafunc.parametrize(("anyio_backend", "redis_kind"), pairs, indirect=True, ids=ids)
    else:
        metafunc.parametrize("anyio_backend", BACKENDS, indirect=True)


def parametrized_by_marks(metafunc: pytest.Metafunc) -> set[str]:
    """The names a test parametrises itself with ``@pytest.mark.parametrize``: those win."""
    names: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs["argnames"]
        if isinstance(argnames, str):
            argnames = argnames.split(",")
        names.update(name.strip() for name in argnames)
    return names


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake(**options): the FakeAgileServer options of the fake fixture"
    )


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> FakeAgileServer:
    """A fresh fake provider for the test, built with the options of the closest
    ``@pytest.mark.fake(...)`` (the test's own, its class's or its module's ``pytestmark``),
    or its defaults: a module says once which account it plays instead of defining its own
    ``fake`` fixture."""
    marker = request.node.get_closest_marker("fake")
    return FakeAgileServer(**(marker.kwargs if marker else {}))


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test's parameter set (see :func:`pytest_generate_tests`)."""
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a developer's real credentials or endpoint."""
    for name in ("AGILE_API_KEY", "AGILE_USERNAME", "AGILE_PASSWORD", "AGILE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
