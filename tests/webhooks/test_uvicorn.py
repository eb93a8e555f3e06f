"""The receiver served alone by uvicorn on loopback HTTP, as a user would run it.

uvicorn runs on a thread of its own (on asyncio), so the test may run on asyncio or trio.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agile_async import DeliveryReport
from agile_async.webhooks import DeliveryReportReceiver
from tests._serving import serve_in_thread

pytestmark = pytest.mark.anyio

TOKEN = "uvicorn-token-0123456789"


def report(message_id: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "destination": "41793026727",
        "statusCode": 3,
        "description": "Delivered",
        "doneDate": "2022-05-09 09:00:05.002+0200",
        "concatTotal": 1,
        "concatProgressive": 1,
        "price": 0.003,
    }


@pytest.fixture
def served() -> Iterator[tuple[str, list[DeliveryReport]]]:
    """A receiver (path token, 64 KiB cap) served by uvicorn with lifespan on."""
    seen: list[DeliveryReport] = []
    receiver = DeliveryReportReceiver(seen.append, path_token=TOKEN, max_body_bytes=65536)
    with serve_in_thread(receiver) as base_url:
        yield base_url, seen


async def test_reports_over_real_http(served: tuple[str, list[DeliveryReport]]) -> None:
    base_url, seen = served
    async with httpx.AsyncClient(base_url=base_url) as http:
        ok = await http.post(f"/hooks/{TOKEN}", json=[report("a"), report("b")])
        again = await http.post(f"/hooks/{TOKEN}", json=report("a"))
        hidden = await http.post("/hooks/guess", json=report("c"))
        wrong = await http.get(f"/hooks/{TOKEN}")
        bad = await http.post(f"/hooks/{TOKEN}", content=b"{oops")
        huge = await http.post(f"/hooks/{TOKEN}", content=json.dumps([report("x")] * 1000))
        after = await http.post(f"/hooks/{TOKEN}", json=report("d"))
    assert ok.json() == {"accepted": 2, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert (hidden.status_code, wrong.status_code, bad.status_code) == (404, 405, 400)
    assert huge.status_code == 413
    assert after.status_code == 200
    assert [r.message_id for r in seen] == ["a", "b", "d"]
    assert seen[0].destination == "+41793026727"
