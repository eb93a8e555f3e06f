"""Fixtures of the fake provider's own tests, which talk raw HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agile_async.testing import FakeAgileServer


@pytest.fixture
async def http(fake: FakeAgileServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client to the fake, in memory, with its API key: what a caller that
    skips the SDK sends."""
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"X-Api-Key": fake.api_key or ""},
    ) as client:
        yield client
