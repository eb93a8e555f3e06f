"""``agile_async.scaleout.open_redis``: a client for a URL that fits the running event loop,
against a real redis-server, on asyncio and trio (what the CLI's ``--redis URL`` uses)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from agile_async.campaigns import Campaign
from agile_async.scaleout import RedisCampaign, open_redis

pytest_plugins = ("tests._redis_server",)

pytestmark = pytest.mark.anyio


async def test_a_campaign_round_trip_on_the_client_it_opens(
    redis_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    """The client it yields is one a RedisCampaign runs on, on this event loop: coredis on
    trio (redis-py cannot run there), whichever is installed on asyncio."""
    if anyio_backend == "trio":
        pytest.importorskip("coredis")
    source = tmp_path / "r.csv"
    source.write_text("destination,name\n+393471234567,Ada\n+393471234568,Bob\n")
    name = f"t-{uuid.uuid4().hex[:12]}"
    async with open_redis(redis_url) as redis:
        if anyio_backend == "trio":
            assert type(redis).__module__.startswith("coredis")
        journal = RedisCampaign(redis, name)
        async with await Campaign.create(journal, source, body="Hi {name}", sender="Shop") as c:
            await c.load()
            assert (await c.counts()).pending == 2
    async with open_redis(redis_url) as redis:  # a second client sees what the first wrote
        definition = await RedisCampaign(redis, name).definition()
        assert definition is not None
        assert definition.body == "Hi {name}"


async def test_an_unreadable_url_is_refused_without_its_password() -> None:
    from agile_async import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        async with open_redis("redis://:hunter2-secret@127.0.0.1:not-a-port/0"):
            pass
    assert "hunter2-secret" not in str(caught.value)
