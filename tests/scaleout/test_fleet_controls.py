"""The Redis fleet's operator controls, against a real redis-server: a chunk that keeps
taking workers down is set aside (its pending rows held back, re-queueable), and a
fleet-wide stop is shown with its code and reason and can be cleared.

Workers that "die" are :class:`RedisCampaign` objects whose chunks are left idle past a
short lease (as in test_campaign.py); every test runs on asyncio with redis-py and
coredis, and on trio with coredis. The CLI tests go through click's runner.
"""

from __future__ import annotations

import json
import signal
import uuid
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from agile_async._cli._app import cli
from agile_async.campaigns import Campaign
from agile_async.scaleout import (
    ChunkFencedError,
    FleetStop,
    HeldChunk,
    RedisCampaign,
    work,
)
from agile_async.testing import FakeAgileServer, Fault, Hold

pytest_plugins = ("tests._redis_server",)


def recipients(path: Path, count: int) -> Path:
    lines = ["destination,name"] + [f"+3934{i:08d},N{i}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


async def enqueue(redis: Any, name: str, source: Path, **options: Any) -> RedisCampaign:
    journal = RedisCampaign(redis, name, **options)
    campaign = await Campaign.create(
        journal, source, body="Hi {name}", sender="Shop", exist_ok=True
    )
    async with campaign:
        await campaign.load()
    return journal


async def take_and_die(redis: Any, name: str, seqs: list[int], worker: str) -> None:
    """A worker takes the next chunk, claims ``seqs`` (its POST may have gone), and dies."""
    dying = RedisCampaign(redis, name, lease=0.1, worker=worker, max_chunk_takeovers=2)
    rows = await dying.take_chunk()
    assert rows is not None
    await dying.mark_in_flight(seqs, f"g-{worker}")
    await anyio.sleep(0.2)  # silent past its 0.1 s lease, by Redis's clock (real time)


@pytest.mark.anyio
async def test_a_chunk_that_keeps_killing_workers_is_set_aside(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 20), chunk_size=10)
    await take_and_die(redis, name, [1], "first")  # killed 1 worker
    await take_and_die(redis, name, [2], "second")  # takeover 1 (row 1 unknown); killed 2
    survivor = RedisCampaign(redis, name, lease=0.1, worker="survivor", max_chunk_takeovers=2)
    rows = await survivor.take_chunk()  # takeover 2: sets chunk 1 aside, takes chunk 2
    assert rows is not None
    assert [row.seq for row in rows] == list(range(11, 21))
    assert (survivor.became_unknown, survivor.held_back) == (1, 8)  # row 2; rows 3..10
    (held,) = await journal.held_chunks()
    assert isinstance(held, HeldChunk)
    assert (held.chunk, held.rows, held.takeovers) == (1, 8, 2)
    assert "taken over from 2 worker(s) that went silent" in held.reason
    assert held.at is not None
    assert held.at.tzinfo is not None
    # The held rows are pending, never sent; the rows in flight became unknown.
    counts = await journal.counts()
    assert (counts.pending, counts.unknown) == (18, 2)
    paused = RedisCampaign(redis, name, worker="second")
    await paused.definition()
    with pytest.raises(ChunkFencedError):  # the last owner, if only paused, is fenced out
        await paused.mark_in_flight([3], "g")
    # The fleet goes on and finishes what it may send.
    await survivor.mark_in_flight([row.seq for row in rows], "g-s")
    await survivor.record_accepted([row.seq for row in rows], _totals(10))
    assert await survivor.take_chunk() is None
    assert survivor.finished
    # An operator re-queues it: its pending rows (only those) are sent, once.
    assert await journal.requeue_held() == (1, 8)
    assert await journal.held_chunks() == []
    heir = RedisCampaign(redis, name, lease=0.4, worker="heir", max_chunk_takeovers=2)
    again = await heir.take_chunk()
    assert again is not None
    assert [row.seq for row in again] == list(range(3, 11))
    await heir.mark_in_flight([3, 4, 5], "g-h")
    await anyio.sleep(0.25)  # leases run on Redis's clock: real time
    assert await heir.heartbeat() == []  # a re-queued chunk's lease is renewed
    await anyio.sleep(0.25)
    other = RedisCampaign(redis, name, lease=0.4, worker="other", max_chunk_takeovers=2)
    assert await other.take_chunk() is None  # idle 0.25 s since the heartbeat: still owned
    assert not other.finished
    await heir.record_accepted([3, 4, 5], _totals(3))
    await heir.mark_in_flight(list(range(6, 11)), "g-h2")
    await heir.record_accepted(list(range(6, 11)), _totals(5))
    assert await heir.take_chunk() is None
    assert heir.finished
    counts = await journal.counts()
    assert (counts.pending, counts.accepted, counts.unknown) == (0, 18, 2)


@pytest.mark.anyio
async def test_no_limit_keeps_handing_a_chunk_out(redis: Any, name: str, tmp_path: Path) -> None:
    await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    for n in range(4):
        dying = RedisCampaign(redis, name, lease=0.1, worker=f"w{n}", max_chunk_takeovers=None)
        assert await dying.take_chunk() is not None
        await dying.mark_in_flight([n + 1], "g")
        await anyio.sleep(0.2)  # silent past its 0.1 s lease, by Redis's clock (real time)
    assert dying.held_back == 0
    assert await dying.held_chunks() == []


@pytest.mark.anyio
async def test_a_worker_goes_on_past_a_chunk_set_aside(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 30), chunk_size=10)
    await take_and_die(redis, name, [1, 2], "first")
    fake = FakeAgileServer(credit=Decimal("1000"))
    async with fake.client() as client:
        worker = RedisCampaign(redis, name, poll=0.02, lease=0.1, max_chunk_takeovers=1)
        result = await work(client, worker, max_messages=5)
    assert (result.became_unknown, result.held_back) == (2, 8)
    assert result.stopped_by is None
    assert not result.finished  # the held rows are pending
    assert len({message.message_id for message in fake.accepted}) == 20
    assert (result.counts.accepted, result.counts.pending, result.counts.unknown) == (20, 8, 2)
    assert [chunk.chunk for chunk in await journal.held_chunks()] == [1]


@pytest.mark.anyio
async def test_a_fleet_stop_keeps_its_reason_until_cleared(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 20), chunk_size=10)
    assert await journal.fleet_stop() is None
    fake = FakeAgileServer(credit=Decimal("1000"))
    fake.inject(Fault.error(status=402, code=2), times=1, path="/sms/send")
    async with fake.client() as client:
        first = RedisCampaign(redis, name, poll=0.02, lease=0.2)
        stopped = await work(client, first, max_messages=5)
        assert stopped.stopped_code == 2
        stop = await journal.fleet_stop()
        assert isinstance(stop, FleetStop)
        assert stop.code == 2
        assert stop.reason == str(stopped.stopped_by)
        assert stop.at is not None
        assert stop.at.tzinfo is not None
        assert await journal.stop_fleet(1, "later") == 2  # the first stop and reason stay
        assert await journal.fleet_stop() == stop
        assert await journal.clear_stop() == stop
        assert await journal.fleet_stop() is None
        assert await journal.clear_stop() is None
        # (the stopped worker's chunks come back once its lease has run out)
        heir = RedisCampaign(redis, name, poll=0.02, lease=0.2)
        resumed = await work(client, heir, max_messages=5)
    assert resumed.stopped_code is None
    assert resumed.finished
    assert (await journal.counts()).accepted == 20


# -- the CLI -----------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_status_shows_the_stop_and_held_chunks_and_commands_clear_them(
    tmp_path: Path, redis_url: str
) -> None:
    coredis = pytest.importorskip("coredis")
    name = f"t-{uuid.uuid4().hex[:12]}"
    source = recipients(tmp_path / "r.csv", 20)
    result = invoke("campaign", "enqueue", "--redis", redis_url, str(source), "--name", name,
                    "--sender", "Shop", "--body", "Hi {name}", "--chunk-size", "10")  # fmt: skip
    assert result.exit_code == 0, result.output

    async def break_it() -> None:
        async with coredis.Redis.from_url(redis_url) as redis:
            await take_and_die(redis, name, [1], "first")
            await take_and_die(redis, name, [2], "second")
            survivor = RedisCampaign(redis, name, lease=0.1, max_chunk_takeovers=2)
            assert await survivor.take_chunk() is not None
            await survivor.stop_fleet(2, "InsufficientCreditError: code 2: no credit left")

    anyio.run(break_it)
    status = invoke("campaign", "status", "--redis", redis_url, name, "--json")
    assert status.exit_code == 0, status.output
    about = json.loads(status.stdout)
    assert about["fleet_stop"]["code"] == 2
    assert about["fleet_stop"]["reason"] == "InsufficientCreditError: code 2: no credit left"
    (held,) = about["held_back"]
    assert (held["chunk"], held["rows"], held["takeovers"]) == (1, 8, 2)
    assert (about["counts"]["pending"], about["counts"]["unknown"]) == (18, 2)
    human = " ".join(invoke("campaign", "status", "--redis", redis_url, name).output.split())
    assert "Stopped for every worker at " in human
    assert "account error 2 (InsufficientCreditError: code 2: no credit left)" in human
    assert f"agile-sms campaign clear-stop --redis URL {name}" in human
    assert "Held back: 8 pending rows in 1 chunk(s) set aside, never sent" in human
    assert "chunk 1: 8 rows, taken over from 2 worker(s) that went silent" in human
    assert f"agile-sms campaign requeue-held --redis URL {name}" in human

    env = {"AGILE_API_KEY": "k", "AGILE_BASE_URL": "https://127.0.0.1:9/services/"}
    refused = CliRunner(env=env).invoke(cli, ["campaign", "work", "--redis", redis_url, name])
    assert refused.exit_code == 3, refused.output  # the stop holds: nothing is sent
    said = " ".join(refused.output.split())
    assert f"Campaign {name} is stopped for every worker (account error 2)" in said
    assert f"once the cause is fixed, agile-sms campaign clear-stop --redis URL {name}" in said
    assert redis_url not in refused.output
    cleared = invoke("campaign", "clear-stop", "--redis", redis_url, name)
    assert cleared.exit_code == 0, cleared.output
    assert "the stop for account error 2 is cleared" in cleared.output
    again = invoke("campaign", "clear-stop", "--redis", redis_url, name, "--json")
    assert json.loads(again.stdout) == {"campaign": name, "cleared": None}
    requeued = invoke("campaign", "requeue-held", "--redis", redis_url, name, "--json")
    assert json.loads(requeued.stdout) == {"campaign": name, "chunks": 1, "rows": 8}
    about = json.loads(invoke("campaign", "status", "--redis", redis_url, name, "--json").stdout)
    assert (about["fleet_stop"], about["held_back"]) == (None, [])
    human = invoke("campaign", "status", "--redis", redis_url, name).output
    assert "Stopped" not in human
    assert "Held back" not in human
    missing = invoke("campaign", "clear-stop", "--redis", redis_url, "no-such-campaign")
    assert missing.exit_code == 2
    assert "no campaign named 'no-such-campaign'" in missing.output


def _totals(count: int) -> Any:
    from agile_async._tickets import RequestTotals

    return RequestTotals("g", count, count, Decimal("10"))


@pytest.mark.slow
def test_cli_workers_set_a_killer_chunk_aside_and_an_operator_requeues_it(
    redis_url: str, tmp_path: Path
) -> None:
    """Worker processes: one is SIGKILLed holding chunk 1 (the provider took its batch);
    the next, with ``--max-chunk-takeovers 1``, sets chunk 1 aside and finishes chunk 2;
    ``requeue-held`` gives chunk 1 back and a third worker sends its held rows, once."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("trustme")
    from tests.scaleout._fleet import (
        assert_sent_once,
        cli,
        enqueue,
        finish,
        hold_next_send,
        serving,
        states,
        stop,
        worker,
    )
    from tests.scaleout._fleet import recipients as numbers

    name = f"held-{uuid.uuid4().hex[:8]}"
    fake = FakeAgileServer(credit=Decimal(1000))
    with serving(fake) as env, Hold() as hold, ExitStack() as stack:  # released, then stopped
        code, _ = finish(enqueue(env, redis_url, name, numbers(tmp_path / "r.csv", 200)))
        assert code == 0
        hold_next_send(fake, hold)
        victim = worker(env, redis_url, name)
        stack.callback(stop, victim)
        assert hold.wait_held_blocking(timeout=15), "the worker sent nothing"
        victim.send_signal(signal.SIGKILL)  # chunk 1 "killed" it, its batch taken
        victim.communicate(timeout=5)
        hold.release()
        code, report = finish(worker(env, redis_url, name, "--max-chunk-takeovers", "1"))
        assert code == 0, report
        # Chunk 1 is set aside; the chunks the victim had only taken ahead are sent.
        assert (report["became_unknown"], report["held_back"]) == (5, 15)
        assert report["campaign_counts"] == {
            "pending": 15, "in_flight": 0, "accepted": 180, "failed": 0, "unknown": 5,
        }  # fmt: skip
        code, status = finish(cli(env, "status", "--redis", redis_url, name, "--json"))
        assert code == 0
        held = [(h["chunk"], h["rows"], h["takeovers"]) for h in status["held_back"]]
        assert held == [(1, 15, 1)]
        code, requeued = finish(cli(env, "requeue-held", "--redis", redis_url, name, "--json"))
        assert (code, requeued) == (0, {"campaign": name, "chunks": 1, "rows": 15})
        code, report = finish(worker(env, redis_url, name, "--max-chunk-takeovers", "1"))
    assert code == 0, report
    assert report["held_back"] == 0
    assert report["campaign_counts"]["accepted"] == 195
    assert len(assert_sent_once(fake)) == 200  # the unknown batch was never sent again
    assert states(redis_url, name) == "U" * 5 + "A" * 195
