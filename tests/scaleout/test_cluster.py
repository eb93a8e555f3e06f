"""Redis Cluster: the limiter and the campaign from a ``redis+cluster://`` URL and from the
CLI, against a real 3-master cluster on loopback, with their keys on different nodes."""

from __future__ import annotations

import gc
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agile_async import Cost, RateLimit
from agile_async.campaigns import Campaign
from agile_async.scaleout import RedisCampaign, RedisLimiter, account_key, work
from agile_async.testing import FakeAgileServer
from tests.scaleout._fleet import cli, finish, recipients, serving

if TYPE_CHECKING:
    from tests.scaleout._redis_cluster import RedisCluster

pytest_plugins = ("tests.scaleout._redis_cluster",)
pytestmark = [
    pytest.mark.anyio,
    # coredis 6.9's ClusterLayout opens an anyio memory stream it never closes: its
    # ResourceWarning surfaces when the client is collected. Collected below, per test.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_coredis_leftovers() -> Iterator[None]:
    """Collect this test's clients now, so coredis's warning stays inside this module."""
    yield
    gc.collect()


BASE_URL = "https://fake.agiletelecom.test/services/"


def limiter_key(account: str) -> str:
    return f"{{agile:l:{account}}}:cfg"


def campaign_key(name: str) -> str:
    return f"{{agile:c:{name}}}:meta"


def account_on(cluster: RedisCluster, port: int) -> str:
    """An account whose limiter keys live on the master at ``port``."""
    while True:
        account = account_key(BASE_URL, uuid.uuid4().hex)
        if cluster.node_of(limiter_key(account)) == port:
            return account


def campaign_not_on(cluster: RedisCluster, port: int) -> str:
    """A campaign name whose keys live on another master than ``port``."""
    while True:
        name = f"cl-{uuid.uuid4().hex[:8]}"
        if cluster.node_of(campaign_key(name)) != port:
            return name


@pytest.mark.parametrize("node", [0, 1, 2])
async def test_the_limiter_runs_from_a_cluster_url_on_every_node(
    redis_cluster: RedisCluster, cluster_url: str, node: int
) -> None:
    """Whichever master holds the account's keys, the URL's client reaches it."""
    account = account_on(redis_cluster, redis_cluster.ports[node])
    limit = RateLimit(rate=1000, burst=20)
    async with RedisLimiter(cluster_url, limit, account=account) as limiter:
        for _ in range(3):
            await limiter.acquire(Cost(messages=5, parts=5))
        limiter.penalize(0.01)
    assert limiter.statistics().granted == 3


@asynccontextmanager
async def cluster_client(url: str, anyio_backend: str) -> AsyncIterator[Any]:
    """A cluster client object built in Python: redis-py on asyncio, coredis on trio."""
    plain = url.replace("redis+cluster://", "redis://")
    if anyio_backend == "trio":
        import coredis
        from coredis.connection import TCPLocation

        host, _, port = plain.removeprefix("redis://").partition(":")
        nodes = [TCPLocation(host, int(port))]
        async with coredis.RedisCluster(startup_nodes=nodes) as coredis_client:
            yield coredis_client
    else:
        import redis.asyncio

        client = redis.asyncio.RedisCluster.from_url(plain)
        try:
            yield client
        finally:
            await client.aclose()


async def test_a_campaign_and_the_limiter_on_different_nodes_send_every_row_once(
    redis_cluster: RedisCluster, cluster_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    """One cluster client shared by the campaign and the limiter (as the CLI does), their
    keys on two different masters."""
    fake = FakeAgileServer(credit=Decimal(1000))
    source = recipients(tmp_path / "r.csv", 120)
    limiter_port = redis_cluster.ports[0]
    name = campaign_not_on(redis_cluster, limiter_port)
    async with cluster_client(cluster_url, anyio_backend) as redis, fake.client() as client:
        campaign = await Campaign.create(
            RedisCampaign(redis, name, chunk_size=25), source, body="Hi", sender="Shop"
        )
        async with campaign:
            await campaign.load()
        journal = RedisCampaign(redis, name, lease=5)
        limit = RateLimit(rate=2000, burst=50)
        account = account_on(redis_cluster, limiter_port)
        async with RedisLimiter(redis, limit, account=account) as limiter:
            result = await work(client, journal, limiter=limiter, max_messages=10)
    assert result.counts.accepted == 120
    assert result.counts.failed == result.counts.unknown == 0
    ids = Counter(m.message_id for m in fake.accepted)
    assert len(ids) == 120
    assert max(ids.values()) == 1


@pytest.mark.slow
def test_the_cli_enqueues_and_two_workers_share_a_rate_on_a_cluster(
    redis_cluster: RedisCluster, cluster_url: str, tmp_path: Path
) -> None:
    """``enqueue`` + two ``work --rate`` from a ``redis+cluster://`` URL: every row once."""
    fake = FakeAgileServer(credit=Decimal(1000))
    source = recipients(tmp_path / "r.csv", 200)
    with serving(fake) as env:
        account = account_key(env["AGILE_BASE_URL"], env["AGILE_API_KEY"])
        name = campaign_not_on(redis_cluster, redis_cluster.node_of(limiter_key(account)))
        loaded = cli(env, "enqueue", "--redis", cluster_url, str(source), "--name", name,
                     "--sender", "Shop", "--body", "Hi", "--chunk-size", "20")  # fmt: skip
        assert finish(loaded, timeout=60)[0] == 0
        arguments = ["work", "--redis", cluster_url, name, "--rate", "400", "--burst", "40",
                     "--batch-size", "10", "--lease", "5", "--json"]  # fmt: skip
        workers = [cli(env, *arguments) for _ in range(2)]
        finished = [finish(w, timeout=60) for w in workers]
        assert [code for code, _ in finished] == [0, 0], finished
        reports = [report for _, report in finished]
        code, status = finish(cli(env, "status", "--redis", cluster_url, name, "--json"))
        assert code == 0
        exported = tmp_path / "out.csv"
        code, _ = finish(cli(env, "export", "--redis", cluster_url, name, "-o", str(exported)))
        assert code == 0
    assert status["counts"]["accepted"] == 200
    assert len(exported.read_text().splitlines()) == 201
    assert sum(r["sent_by_this_worker"]["accepted"] for r in reports) == 200
    assert reports[-1]["campaign_counts"]["accepted"] == 200
    ids = Counter(m.message_id for m in fake.accepted)
    assert len(ids) == 200
    assert max(ids.values()) == 1
