"""The README's examples of per-call options and raw responses, run as written against the
fake provider, on asyncio and trio."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import agile_async as aa
from agile_async import AgileClient, Message
from agile_async.testing import FakeAgileServer, Fault
from tests._docs import doc_block

PAGE = "docs/guides/web-apps.md"

pytestmark = [pytest.mark.anyio, pytest.mark.fake(credit=Decimal("10.00"))]


def example(name: str) -> types.ModuleType:
    module = types.ModuleType(f"readme_{name.replace('-', '_')}")
    exec(compile(doc_block(PAGE, name), f"{PAGE}[{name}]", "exec"), module.__dict__)
    return module


@pytest.fixture
async def client(fake: FakeAgileServer) -> AsyncIterator[AgileClient]:
    async with fake.client() as client:  # the default policy: retries server errors
        yield client


async def test_the_call_options_example(
    fake: FakeAgileServer, client: AgileClient, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = example("call-options")
    await readme.send_login_code(client, "+393471234567", "1234")
    assert [m.body for m in fake.accepted] == ["Your code is 1234"]
    fake.inject(Fault.server_error(), times=1)  # the client would retry; this call does not
    with pytest.raises(aa.ServerError):
        await readme.send_login_code(client, "+393471234567", "5678")
    await readme.nightly_credit(client)
    assert capsys.readouterr().out == "credit: 9.95\n"


async def test_the_raw_response_example(
    fake: FakeAgileServer, client: AgileClient, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = example("raw-response")
    message = Message(destinations="+393471234567", sender="MyApp", body="Hi")
    await readme.send_and_log(client, message)
    global_id = fake.accepted[0].global_id
    out = capsys.readouterr().out
    assert out.startswith("200 application/json")
    assert f" {global_id} ('{fake.accepted[0].message_id}',)" in out
    fake.inject(Fault.error(status=401, code=1))
    with pytest.raises(aa.AuthenticationError):
        await readme.send_and_log(client, message)
    assert capsys.readouterr().out.startswith("refused: 401 {")
