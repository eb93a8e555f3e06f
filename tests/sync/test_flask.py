"""The blocking client in a WSGI app: the README's Flask example, run as written.

The app is configured as a user would configure it, through the environment
(``AGILE_BASE_URL``, ``AGILE_API_KEY``, ``SSL_CERT_FILE``), pointed at the fake provider over
real TLS; Flask's test client calls it from many threads at once, as a threaded WSGI server
would.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from agile_async import ClientState
from agile_async.testing import FakeAgileServer
from tests._docs import doc_block

pytest.importorskip("flask")

GUARD = 30.0
PAGE = "docs/guides/web-apps.md"

pytestmark = pytest.mark.tls


@pytest.fixture
def fake() -> FakeAgileServer:
    return FakeAgileServer(credit=Decimal("100"), price_per_part=Decimal("0.05"))


@pytest.fixture
def app_module(fake: FakeAgileServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The README's app module, imported with the environment pointing at the fake."""
    with fake.serve_tls() as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        module = types.ModuleType("readme_sync_flask")
        exec(compile(doc_block(PAGE, "sync-flask"), f"{PAGE}[sync-flask]", "exec"), module.__dict__)
        try:
            yield module
        finally:
            module.sms.close()
    assert module.sms.state is ClientState.CLOSED


def phone(n: int) -> str:
    return f"+39347{n:07d}"


def test_the_readme_app_sends_from_many_request_threads(
    fake: FakeAgileServer, app_module: Any
) -> None:
    app = app_module.app

    def signup(n: int) -> str:
        response = app.test_client().post("/signup", data={"phone": phone(n)})
        assert response.status_code == 200, response.text
        return str(response.json["sms_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [f.result(GUARD) for f in [pool.submit(signup, n) for n in range(32)]]

    assert sorted(m.destination for m in fake.accepted) == [phone(n) for n in range(32)]
    assert sorted(ids) == sorted(m.message_id for m in fake.accepted)
    assert fake.credit == Decimal("98.40")


def test_the_readme_batcher_view_sends_few_requests(fake: FakeAgileServer, app_module: Any) -> None:
    fake.reject_destinations([phone(7)])
    phones = [phone(n) for n in range(20)]
    response = app_module.app.test_client().post("/newsletter", data={"phone": phones})
    assert response.status_code == 200, response.text
    assert response.json == {"accepted": 19}  # the bad number is failed alone, by bisection
    assert sorted(m.destination for m in fake.accepted) == [p for p in phones if p != phone(7)]
    assert len(fake.requests) < len(phones)


def test_the_client_outlives_requests_and_is_shared(fake: FakeAgileServer, app_module: Any) -> None:
    client = app_module.app.test_client()
    first = client.post("/signup", data={"phone": phone(1)})
    second = client.post("/signup", data={"phone": phone(2)})
    assert first.status_code == second.status_code == 200
    assert app_module.sms.state is ClientState.UNOPENED  # used without `with`, never closed
    assert len(fake.accepted) == 2
