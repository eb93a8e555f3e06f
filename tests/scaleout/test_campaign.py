"""RedisCampaign against a real redis-server: loading, chunks, fencing, crash recovery, workers.

Every test runs on asyncio with redis-py and coredis, and on trio with coredis. Crashes are
simulated in one process: a worker that "dies" is a :class:`RedisCampaign` whose chunks are
left idle past a short lease; the multi-process versions are in test_campaign_fleet.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from agile_async import ConfigurationError, DeliveryStatus, RateLimit, SendOptions
from agile_async._scaleout._redis_client import adapt
from agile_async._tickets import RequestTotals
from agile_async.campaigns import (
    Campaign,
    CampaignDefinition,
    CampaignError,
    DeliveryUpdate,
    Failure,
    Journal,
    JournalError,
    LoadedRow,
    Recovery,
    RowState,
    SQLiteJournal,
)
from agile_async.scaleout import (
    CampaignStoppedError,
    ChunkFencedError,
    RedisCampaign,
    RedisLimiter,
    account_key,
    work,
)
from agile_async.testing import FakeAgileServer, Fault

pytest_plugins = ("tests._redis_server",)
pytestmark = pytest.mark.anyio
S = DeliveryStatus


class Raw:
    """Any Redis command through a one-line script: the same call on both clients."""

    def __init__(self, client: Any) -> None:
        self._call = adapt(client).script("return redis.call(unpack(ARGV))")

    async def __call__(self, *args: object) -> Any:
        return await self._call((), [str(a) for a in args])


def recipients(path: Path, count: int, *, bad: tuple[int, ...] = ()) -> Path:
    lines = ["destination,name"]
    for i in range(1, count + 1):
        destination = "not-a-number" if i in bad else f"+3934{i:08d}"
        lines.append(f"{destination},N{i}")
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


def totals(count: int) -> RequestTotals:
    return RequestTotals("g", count, count, Decimal("10"))


async def state_string(raw: Raw, journal: RedisCampaign) -> str:
    value = await raw("GET", journal.keys[2])
    return value.decode() if isinstance(value, bytes) else str(value)


# -- loading ---------------------------------------------------------------------------------


async def test_load_records_rows_chunks_and_failures(redis: Any, name: str, tmp_path: Path) -> None:
    source = recipients(tmp_path / "r.csv", 25, bad=(3,))
    journal = await enqueue(redis, name, source, chunk_size=10)
    raw = Raw(redis)
    counts = await journal.counts()
    assert (counts.pending, counts.failed, counts.total) == (24, 1, 25)
    assert await state_string(raw, journal) == "PPF" + "P" * 22
    assert int(await raw("XLEN", journal.keys[1])) == 3
    state = await journal.load_state()
    assert (state.loaded_through, state.done) == (25, True)
    [failed] = [row async for rows in journal.rows([RowState.FAILED]) for row in rows]
    assert (failed.seq, failed.destination) == (3, "notanumber")
    assert failed.failure is not None
    assert failed.failure.kind


async def test_loading_again_changes_nothing(redis: Any, name: str, tmp_path: Path) -> None:
    source = recipients(tmp_path / "r.csv", 25)
    journal = await enqueue(redis, name, source, chunk_size=10)
    await enqueue(redis, name, source, chunk_size=10)
    assert (await journal.counts()).pending == 25
    assert int(await Raw(redis)("XLEN", journal.keys[1])) == 3


async def test_a_killed_loader_resumes_without_duplicates(
    redis: Any, name: str, tmp_path: Path
) -> None:
    source = recipients(tmp_path / "r.csv", 30)
    first = RedisCampaign(redis, name, chunk_size=10)
    campaign = await Campaign.create(first, source, body="Hi {name}", sender="Shop")
    rows = [row async for row in _loaded_rows(campaign, 15)]
    await first.append(rows, done=False)  # 10 recorded, 5 waiting for their chunk: "killed"
    assert (await first.load_state()).loaded_through == 10
    await enqueue(redis, name, source, chunk_size=10)  # a new loader starts over
    raw = Raw(redis)
    assert int(await raw("XLEN", first.keys[1])) == 3
    assert (await first.counts()).pending == 30


async def _loaded_rows(campaign: Campaign, count: int) -> AsyncIterator[Any]:
    from agile_async._campaign._input import RecordReader, RowBuilder

    d = campaign.definition
    reader = RecordReader(Path(d.source), d.source_format)
    builder = RowBuilder(campaign._template, d.campaign_id, d.options)
    try:
        for record in reader:
            if record.seq > count:
                break
            yield builder.build(record)
    finally:
        reader.close()


async def test_a_changed_input_is_refused(redis: Any, name: str, tmp_path: Path) -> None:
    source = recipients(tmp_path / "r.csv", 30)
    journal = RedisCampaign(redis, name, chunk_size=10)
    async with await Campaign.create(journal, source, body="Hi {name}", sender="Shop"):
        pass
    recipients(source, 31)
    with pytest.raises(JournalError):
        await enqueue(redis, name, source, chunk_size=10)


async def test_the_loader_waits_for_room(redis: Any, name: str, tmp_path: Path) -> None:
    source = recipients(tmp_path / "r.csv", 50)
    journal = RedisCampaign(redis, name, chunk_size=10, max_queued_chunks=2, poll=0.02)
    worker = RedisCampaign(redis, name, lease=30)
    raw = Raw(redis)
    campaign = await Campaign.create(journal, source, body="Hi {name}", sender="Shop")
    async with campaign, anyio.create_task_group() as tg:
        tg.start_soon(campaign.load)
        await anyio.sleep(0.2)  # ten of the loader's 0.02 s polls for room (real time)
        assert int(await raw("XLEN", journal.keys[1])) == 2
        assert (await journal.load_state()).loaded_through == 20
        seen = 0
        while seen < 50:  # a worker sends everything: the loader follows
            rows = await worker.take_chunk()
            if rows is None:
                await anyio.sleep(0.02)  # the loader's next chunk is on its way, over Redis
                continue
            seqs = [row.seq for row in rows]
            await worker.mark_in_flight(seqs, "g")
            await worker.record_accepted(seqs, totals(len(seqs)))
            seen += len(seqs)
            assert int(await raw("XLEN", journal.keys[1])) <= 2
    assert (await journal.counts()).accepted == 50
    assert int(await raw("XLEN", journal.keys[1])) == 0


# -- chunks, claims, fencing -----------------------------------------------------------------


async def test_a_chunk_is_acknowledged_and_deleted_when_settled(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 20), chunk_size=10)
    raw = Raw(redis)
    worker = RedisCampaign(redis, name)
    rows = await worker.take_chunk()
    assert rows is not None
    assert [row.seq for row in rows] == list(range(1, 11))
    assert rows[0].body == "Hi N1"
    assert rows[0].destination == "+393400000001"
    await worker.mark_in_flight([1, 2, 3], "g1")
    await worker.mark_in_flight([1, 2, 3], "g2")  # a bisected half: in flight again is fine
    await worker.record_accepted([1, 2], totals(2))
    await worker.record_failed([3], Failure("InvalidDestinationError", "no", 5))
    await worker.mark_in_flight(list(range(4, 11)), "g3")
    await worker.record_unknown(list(range(4, 11)), Failure("OutcomeUnknownError", "lost"))
    assert await state_string(raw, journal) == "AAF" + "U" * 7 + "P" * 10
    assert int(await raw("XLEN", journal.keys[1])) == 1
    assert (await raw("XPENDING", journal.keys[1], "senders"))[0] == 0  # 1 acked, 2 unread
    counts = await journal.counts()
    assert (counts.accepted, counts.failed, counts.unknown, counts.pending) == (2, 1, 7, 10)
    assert counts.parts == 2
    assert counts.credit == Decimal("10")
    with pytest.raises(JournalError):
        await worker.mark_in_flight([1], "g4")  # an outcome is final


async def test_a_dead_workers_rows_in_flight_become_unknown_never_resent(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    raw = Raw(redis)
    dead = RedisCampaign(redis, name, lease=0.1, worker="dead")
    assert await dead.take_chunk() is not None
    await dead.mark_in_flight([1, 2, 3], "g1")  # then it dies, its POST maybe sent
    await anyio.sleep(0.2)  # silent past the 0.1 s lease, by Redis's clock (real time)
    heir = RedisCampaign(redis, name, lease=0.1, worker="heir")
    rows = await heir.take_chunk()
    assert rows is not None
    assert [row.seq for row in rows] == list(range(4, 11))
    assert heir.became_unknown == 3
    assert await state_string(raw, journal) == "UUU" + "P" * 7
    unknown = [row async for rows_ in journal.rows([RowState.UNKNOWN]) for row in rows_]
    assert next((row.seq, row.message_id is not None, row.destination) for row in unknown) == (
        1,
        True,
        "+393400000001",
    )
    with pytest.raises(ChunkFencedError):  # it was only paused: it is fenced out
        await dead.mark_in_flight([4], "g2")
    # Its late answer may only say what happened to the unknown rows.
    await dead.record_accepted([1, 2], totals(2))
    await dead.record_failed([3], Failure("X", "y"))
    assert await state_string(raw, journal) == "AAF" + "P" * 7
    seqs = [row.seq for row in rows]
    await heir.mark_in_flight(seqs, "g3")
    await heir.record_accepted(seqs, totals(7))
    assert await state_string(raw, journal) == "AAF" + "A" * 7
    assert int(await raw("XLEN", journal.keys[1])) == 0
    assert await heir.take_chunk() is None
    assert heir.finished


async def test_a_reclaimed_chunk_with_nothing_left_is_just_acknowledged(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    dead = RedisCampaign(redis, name, lease=0.1)
    assert await dead.take_chunk() is not None
    await dead.mark_in_flight(list(range(1, 11)), "g1")
    await anyio.sleep(0.2)  # silent past the 0.1 s lease, by Redis's clock (real time)
    heir = RedisCampaign(redis, name, lease=0.1)
    assert await heir.take_chunk() is None
    assert heir.became_unknown == 10
    assert heir.finished
    assert (await journal.counts()).unknown == 10


async def test_heartbeats_keep_a_chunk_and_report_a_lost_one(
    redis: Any, name: str, tmp_path: Path
) -> None:
    await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    owner = RedisCampaign(redis, name, lease=0.3, worker="owner")
    assert await owner.take_chunk() is not None
    other = RedisCampaign(redis, name, lease=0.3, worker="other")
    for _ in range(4):
        await anyio.sleep(0.1)  # leases run on Redis's clock: real time
        assert await owner.heartbeat() == []
        assert await other.take_chunk() is None  # still owned
    await anyio.sleep(0.4)  # silent past the 0.3 s lease, by Redis's clock
    assert await other.take_chunk() is not None  # silent too long: reclaimed
    assert await owner.heartbeat() == [1]


async def test_an_account_error_stops_the_fleet(redis: Any, name: str, tmp_path: Path) -> None:
    await enqueue(redis, name, recipients(tmp_path / "r.csv", 20), chunk_size=10)
    one, two = RedisCampaign(redis, name), RedisCampaign(redis, name)
    assert await one.take_chunk() is not None
    assert await two.stop_fleet(2) == 2
    assert await one.stop_fleet(1) == 2  # sticky: the first code stays
    with pytest.raises(CampaignStoppedError) as caught:
        await one.mark_in_flight([1], "g")
    assert caught.value.code == 2
    assert await two.take_chunk() is None
    assert two.stopped_code == 2


async def test_keys_carry_the_name_only(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 5))
    assert all(key.startswith(f"{{agile:c:{name}}}:") for key in journal.keys)
    with pytest.raises(Exception, match="campaign name"):
        RedisCampaign(redis, "a b")


async def test_unsupported_journal_features_say_so(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 5))
    with pytest.raises(CampaignError):
        await journal.tally([RowState.PENDING])


# -- workers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"client": None}, "client must be an AgileClient"),
        ({"progress_interval": 0}, "progress_interval must be > 0 s"),
        ({"on_progress": 1}, "on_progress must be callable or None"),
        ({"max_mesages": 7}, "max_mesages is not a batcher setting"),
    ],
)
async def test_a_worker_names_an_argument_that_cannot_be_right_before_any_work(
    redis: Any, name: str, tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    """As Campaign.run() does (one rule): refused before a chunk is taken or a row sent."""
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 5))
    fake = FakeAgileServer()
    async with fake.client() as client:
        call = {"client": client, **arguments}
        with pytest.raises(ConfigurationError, match=expected):
            await work(call.pop("client"), RedisCampaign(redis, name), **call)
    assert (await journal.counts()).pending == 5
    assert len(fake.requests) == 0


async def test_workers_send_every_row_exactly_once(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 230), chunk_size=20)
    fake = FakeAgileServer(credit=Decimal("1000"))
    results = []
    async with fake.client() as client:
        limiter = RedisLimiter(
            redis, RateLimit(rate=5000, burst=50), account=account_key(fake.base_url, name)
        )
        async with limiter, anyio.create_task_group() as tg:

            async def one() -> None:
                worker = RedisCampaign(redis, name, poll=0.02)
                results.append(await work(client, worker, limiter=limiter, max_messages=7))

            for _ in range(3):
                tg.start_soon(one)
    ids = Counter(message.message_id for message in fake.accepted)
    assert len(ids) == 230
    assert max(ids.values()) == 1
    counts = await journal.counts()
    assert counts.accepted == 230
    assert all(result.finished for result in results)
    assert int(await Raw(redis)("XLEN", journal.keys[1])) == 0


async def test_a_worker_stopped_by_an_account_error_stops_the_others(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 50), chunk_size=10)
    fake = FakeAgileServer(credit=Decimal("1000"))
    fake.inject(Fault.error(status=402, code=2), times=None, path="/sms/send")
    async with fake.client() as client:
        result = await work(client, RedisCampaign(redis, name, poll=0.02), max_messages=5)
        assert result.stopped_code == 2
        assert not result.finished
        other = await work(client, RedisCampaign(redis, name, poll=0.02))
        assert other.stopped_code == 2
        assert other.progress.accepted == 0
    counts = await journal.counts()
    assert counts.pending == 50
    assert counts.in_flight == 0


async def test_a_heartbeat_racing_the_last_settle_loses_nothing(
    redis: Any, name: str, tmp_path: Path
) -> None:
    await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    worker = RedisCampaign(redis, name)
    rows = await worker.take_chunk()
    assert rows is not None
    token = worker._tokens[1]
    seqs = [row.seq for row in rows]
    await worker.mark_in_flight(seqs, "g")
    await worker.record_accepted(seqs, totals(10))  # the chunk is finished and deleted
    worker._tokens[1] = token  # as a heartbeat that read its chunks just before
    assert await worker.heartbeat() == []


class SlowRecorder(RedisCampaign):
    """A journal slower than the network: each outcome takes a while to record. Notes the
    most rows it ever held in flight at once."""

    most_in_flight = 0

    async def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        await super().mark_in_flight(seqs, global_id)
        in_flight = (await self.counts()).in_flight
        self.most_in_flight = max(self.most_in_flight, in_flight)

    async def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        await anyio.sleep(0.03)  # a slow store: real time in which more could go in flight
        await super().record_accepted(seqs, totals)


async def test_a_slow_journal_never_holds_more_than_the_requests_in_flight(
    redis: Any, name: str, tmp_path: Path
) -> None:
    # What a crash can leave unknown is what is marked in flight: at most max_in_flight
    # requests' rows, even when answers come faster than the journal records them.
    await enqueue(redis, name, recipients(tmp_path / "r.csv", 120), chunk_size=20)
    fake = FakeAgileServer(credit=Decimal("1000"))
    journal = SlowRecorder(redis, name, poll=0.02)
    async with fake.client() as client:
        result = await work(client, journal, max_messages=5, max_in_flight=2)
    assert result.finished
    assert result.counts.accepted == 120
    assert 5 <= journal.most_in_flight <= 2 * 5


# -- ids: one row each ---------------------------------------------------------------------


async def failed_rows(journal: Journal) -> dict[int, tuple[str | None, str]]:
    """Each failed row's id as the export shows it, and its reason."""
    return {
        row.seq: (row.message_id, row.failure.message if row.failure else "")
        async for rows in journal.rows([RowState.FAILED])
        for row in rows
    }


async def test_a_repeated_id_is_refused_at_load_and_never_sent_twice(
    redis: Any, name: str, tmp_path: Path
) -> None:
    # Once, a later row with a taken id was sent under it (after the first row's outcome)
    # or failed while sending (while the first was under way), as timing had it; the SQLite
    # journal refuses it at load. Both journals now load one input the same way.
    source = tmp_path / "r.csv"
    source.write_text(
        "destination,name,id\n"
        "+393400000001,A,dup\n"  # 1
        "+393400000002,B,x\n"  # 2
        "+393400000003,C,dup\n"  # 3: row 1's, in another chunk
        "+393400000004,D,\n"  # 4: a generated id
        "+393400000005,E,x\n"  # 5: row 2's
        "not-a-number,F,bad-id\n"  # 6: refused at load, still holds its id
        "+393400000007,G,bad-id\n"  # 7: row 6's
        "+393400000008,H,twice\n"  # 8
        "+393400000009,I,twice\n"  # 9: row 8's, in the same chunk
    )
    journal = await enqueue(redis, name, source, chunk_size=2)
    fake = FakeAgileServer(credit=Decimal("1000"))
    async with fake.client() as client:
        # Row 1 is accepted before row 3 is taken: a taken id is refused even when its
        # holder has its outcome (the case that went out twice).
        first = RedisCampaign(redis, name)
        rows = await first.take_chunk()
        assert rows is not None
        await first.mark_in_flight([row.seq for row in rows], "g")
        await first.record_accepted([row.seq for row in rows], totals(2))
        result = await work(client, RedisCampaign(redis, name, poll=0.02))
    assert result.finished
    # Rows 1 and 2 were recorded by hand above; 6 was refused at load, 3, 5, 7 and 9 for
    # their ids: only rows 4 and 8 went out.
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    assert sorted(message.message_id for message in fake.accepted) == [f"{prefix}4", "twice"]
    failed = await failed_rows(journal)
    assert sorted(failed) == [3, 5, 6, 7, 9]
    for seq, (id_, holder, line) in {
        3: ("dup", 1, 4),
        5: ("x", 2, 6),
        7: ("bad-id", 6, 8),
        9: ("twice", 8, 10),
    }.items():
        assert failed[seq] == (
            id_,
            f"line {line}: id {id_!r} is already used by an earlier row (record {holder})",
        )
    counts = await journal.counts()
    assert (counts.accepted, counts.failed, counts.pending) == (4, 5, 0)

    # The SQLite journal, from the same file: the same rows refused, for the same reasons.
    async with await Campaign.create(
        tmp_path / "c.journal", source, body="Hi {name}", sender="Shop"
    ) as reference:
        await reference.load()
        assert await failed_rows(reference.journal) == failed


async def test_an_id_of_the_generated_form_with_thousands_of_digits_loads(
    redis: Any, name: str, tmp_path: Path
) -> None:
    # The load reads an id of the generated form as a row number: one of 5,000 digits is
    # past what int() parses (4,300), and stopped the load with a ValueError.
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 2))
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    long_id = prefix + "9" * 5000
    await journal.append(
        [
            LoadedRow(
                seq=3,
                message_id=long_id,
                destination="+393400000003",
                body="Hi",
                failure=Failure("ValidationError", "id too long"),
            ),
            LoadedRow(seq=4, message_id=long_id, destination="+393400000004", body="Hi"),
        ],
        done=True,
    )
    failed = await failed_rows(journal)
    assert sorted(failed) == [3, 4]
    assert "already used by an earlier row (record 3)" in failed[4][1]
    # A delivery report naming such an id (or "²", a digit to str.isdigit() and not to
    # int()) matched no row, and stopped the receiver's callback with a ValueError too.
    when = datetime(2026, 11, 26, tzinfo=timezone.utc)
    updates = [
        DeliveryUpdate(prefix + "9" * 5000, S.DELIVERED, when),
        DeliveryUpdate(prefix + "\u00b2", S.DELIVERED, when),
    ]
    assert await journal.record_deliveries(updates) == 1  # row 3 holds the long id


async def test_resend_unknown_is_true_or_false(redis: Any, name: str, tmp_path: Path) -> None:
    # "false" from a configuration file was true: unknown rows, perhaps sent, went again.
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 3))
    no: Any = "false"
    with pytest.raises(ConfigurationError) as caught:
        await journal.recover(resend_unknown=no)
    assert [problem.field for problem in caught.value.problems] == ["resend_unknown"]
    async with FakeAgileServer().client() as client:
        with pytest.raises(ConfigurationError, match="resend_unknown"):
            await work(client, RedisCampaign(redis, name), resend_unknown=no)
    assert (await journal.counts()).pending == 3  # nothing was sent


async def test_generated_ids_are_held_by_their_rows_against_the_inputs_ids(
    redis: Any, name: str, tmp_path: Path
) -> None:
    # A generated id is <campaign_id>-<seq>: an input that holds ids of that form (only an
    # input made with this campaign's own random id can) must not put two rows under one.
    definition = CampaignDefinition(
        campaign_id="c1",
        source=str(tmp_path / "r.csv"),
        source_format="csv",
        source_sha256="ab" * 32,
        source_size=1,
        body="Hi",
        sender="Shop",
        options=SendOptions(),
        created_at=datetime(2026, 11, 26, tzinfo=timezone.utc),
    )

    def row(seq: int, id_: str | None = None, *, bad: bool = False) -> LoadedRow:
        return LoadedRow(
            seq=seq,
            message_id=id_ or f"c1-{seq}",
            destination=f"+3934{seq:08d}",
            body=None if bad else f"Hi {seq}",
            parts=1,
            encoding="GSM-7",
            failure=Failure("ValidationError", "a bad row") if bad else None,
            line=seq + 1,
        )

    rows = [
        row(1),  # generated: c1-1
        row(2),
        row(3, "c1-1"),  # row 1's generated id, an earlier chunk: refused
        row(4, "c1-6"),  # row 6's generated id, before row 6: holds it
        row(5, bad=True),  # refused at load: holds c1-5
        row(6),  # its generated id is row 4's now: refused
        row(7, "c1-8"),  # row 8 has an id of its own: c1-8 is free
        row(8, "own"),
        row(9, "c1-2"),  # row 2's, an earlier chunk: refused
        row(10, "c1-5"),  # row 5's (refused at load, not exported): refused
        row(11, "c1-07"),  # not a generated id's form: free
        row(12),
    ]
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as sqlite:
        await sqlite.create(definition)
        await sqlite.append(rows, done=True)
        expected = await failed_rows(sqlite)
    assert sorted(expected) == [3, 5, 6, 9, 10]
    assert expected[6] == ("c1-6", "line 7: id 'c1-6' is already used by an earlier row (record 4)")

    loader = RedisCampaign(redis, name, chunk_size=3)
    await loader.create(definition)
    await loader.append(rows[:7], done=False)  # two chunks, and row 7 waiting for its chunk
    # A loader that died and starts over: what is recorded loads again the same way.
    resumed = RedisCampaign(redis, name, chunk_size=3)
    await resumed.append(rows[:7], done=False)
    await resumed.append(rows[7:], done=True)
    assert await failed_rows(resumed) == expected
    assert (await resumed.counts()).failed == 5


# -- delivery reports and export -------------------------------------------------------------


async def all_rows(journal: RedisCampaign) -> list[Any]:
    return [row async for rows in journal.rows(chunk=7) for row in rows]


async def test_delivery_reports_follow_the_per_part_rule_and_export_lists_every_row(
    redis: Any, name: str, tmp_path: Path
) -> None:
    source = tmp_path / "r.csv"
    source.write_text(
        "destination,name,id\n+393400000001,A,\n+393400000002,B,mine-2\nbad,C,\n+393400000004,D,\n"
    )
    journal = await enqueue(redis, name, source, chunk_size=2)
    worker = RedisCampaign(redis, name)
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    for _ in range(2):
        rows = await worker.take_chunk()
        assert rows is not None
        seqs = [row.seq for row in rows]
        await worker.mark_in_flight(seqs, "g")
        await worker.record_accepted(seqs, totals(len(seqs)))
    when = datetime(2026, 4, 8, 14, 35, 22, 123000, tzinfo=timezone(timedelta(hours=2)))
    # Row 1: two parts, out of order, a late ACCEPTED, a duplicate; row 2 by the input's id.
    assert await journal.record_delivery(f"{prefix}1", S.DELIVERED, when, part=2, parts=2)
    assert (
        await journal.record_deliveries(
            [
                DeliveryUpdate("mine-2", S.ACCEPTED, when),
                DeliveryUpdate("nobody", S.DELIVERED, when),
                DeliveryUpdate(f"{prefix}4", S.EXPIRED, when, part=1, parts=3),
            ]
        )
        == 2
    )
    [one, two, bad, four] = await all_rows(journal)
    assert (one.delivery, one.parts_delivered) == (S.ACCEPTED, 1)
    await journal.record_deliveries(
        [
            DeliveryUpdate(f"{prefix}1", S.ACCEPTED, when, part=1, parts=2),
            DeliveryUpdate(f"{prefix}1", S.DELIVERED, when + timedelta(seconds=1), part=1, parts=2),
            DeliveryUpdate(f"{prefix}1", S.REJECTED, when, part=2, parts=2),  # too late
            DeliveryUpdate(f"{prefix}4", S.DELIVERED, when, part=2, parts=3),  # failed stays
        ]
    )
    [one, two, bad, four] = await all_rows(journal)
    assert (one.message_id, one.destination, one.state) == (
        f"{prefix}1",
        "+393400000001",
        RowState.ACCEPTED,
    )
    assert (one.delivery, one.delivered_at, one.parts_delivered) == (
        S.DELIVERED,
        when + timedelta(seconds=1),
        2,
    )
    assert (two.message_id, two.destination, two.delivery, two.delivered_at) == (
        "mine-2",
        "+393400000002",
        S.ACCEPTED,
        when,
    )
    assert (bad.state, bad.destination, bad.delivery) == (RowState.FAILED, "bad", None)
    assert (four.message_id, four.delivery, four.delivered_at) == (f"{prefix}4", S.EXPIRED, when)
    counts = await journal.counts()
    assert counts.deliveries == {S.DELIVERED: 1, S.ACCEPTED: 1, S.EXPIRED: 1}
    assert [row.seq async for rows in journal.rows([RowState.FAILED]) for row in rows] == [3]


async def test_a_report_confirms_an_unknown_row(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 4), chunk_size=4)
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    worker = RedisCampaign(redis, name)
    assert await worker.take_chunk() is not None
    await worker.mark_in_flight([1, 2, 3, 4], "g")
    # A report for row 2 comes before its request's answer, which is then lost.
    await journal.record_delivery(f"{prefix}2", S.DELIVERED)
    await worker.record_unknown([1, 2, 3], Failure("OutcomeUnknownError", "lost"))
    await worker.record_accepted([4], totals(1))
    assert await journal.record_delivery(f"{prefix}3", S.ACCEPTED)
    rows = await all_rows(journal)
    assert [(row.state, row.confirmed_by_report) for row in rows] == [
        (RowState.UNKNOWN, False),
        (RowState.ACCEPTED, True),
        (RowState.ACCEPTED, True),
        (RowState.ACCEPTED, False),
    ]
    assert rows[1].failure is None
    counts = await journal.counts()
    assert (counts.accepted, counts.unknown, counts.confirmed) == (3, 1, 2)
    await journal.record_delivery(f"{prefix}3", S.DELIVERED)  # confirmed once only
    assert (await journal.counts()).confirmed == 2


# -- resending unknown rows ------------------------------------------------------------------


async def unknown_after_crash(redis: Any, name: str, tmp_path: Path) -> RedisCampaign:
    """Rows 1-3 unknown after a crash (chunk 1 reclaimed), 4-6 unknown after a lost answer,
    7-10 accepted: chunk 1 finished and gone from the stream."""
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 10), chunk_size=10)
    dead = RedisCampaign(redis, name, lease=0.1, worker="dead")
    assert await dead.take_chunk() is not None
    await dead.mark_in_flight([1, 2, 3], "g1")
    await anyio.sleep(0.2)  # silent past the 0.1 s lease, by Redis's clock (real time)
    heir = RedisCampaign(redis, name, lease=0.1, worker="heir")
    assert await heir.take_chunk()
    await heir.mark_in_flight(list(range(4, 11)), "g2")
    await heir.record_unknown([4, 5, 6], Failure("OutcomeUnknownError", "lost"))
    await heir.record_accepted(list(range(7, 11)), totals(4))
    assert await state_string(Raw(redis), journal) == "U" * 6 + "A" * 4
    assert int(await Raw(redis)("XLEN", journal.keys[1])) == 0
    return journal


async def test_resend_unknown_sends_them_again_once(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await unknown_after_crash(redis, name, tmp_path)
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    await journal.record_delivery(f"{prefix}5", S.ACCEPTED)  # the provider took row 5
    again = RedisCampaign(redis, name, lease=5)
    recovery = await again.recover(resend_unknown=True)
    assert (recovery.requeued, recovery.confirmed, recovery.still_unknown) == (5, 0, 0)
    rows = await again.next_rows(100)
    assert [(row.seq, row.body) for row in rows] == [
        (1, "Hi N1"),
        (2, "Hi N2"),
        (3, "Hi N3"),
        (4, "Hi N4"),
        (6, "Hi N6"),
    ]
    assert rows[0].message_id == f"{prefix}1"
    assert rows[0].destination == "+393400000001"
    assert (await journal.counts()).pending == 5
    other = RedisCampaign(redis, name)  # nobody else gets them
    assert await other.recover() == Recovery()
    assert await other.take_chunk() is None
    assert other.finished
    assert await again.heartbeat() == []
    seqs = [row.seq for row in rows]
    await again.mark_in_flight(seqs, "g3")
    await again.record_accepted(seqs, totals(5))
    counts = await journal.counts()
    assert (counts.accepted, counts.unknown, counts.confirmed) == (10, 0, 1)
    assert await again.recover(resend_unknown=True) == Recovery()
    assert await again.next_rows(100) == ()


async def test_resend_unknown_with_silent_for_waits_for_reports(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await unknown_after_crash(redis, name, tmp_path)
    again = RedisCampaign(redis, name)
    recovery = await again.recover(resend_unknown=True, silent_for=timedelta(minutes=10))
    assert (recovery.requeued, recovery.still_unknown) == (0, 6)
    assert (await journal.counts()).unknown == 6
    await anyio.sleep(0.3)  # silent_for is measured on Redis's clock: real time
    recovery = await again.recover(resend_unknown=True, silent_for=timedelta(seconds=0.2))
    assert (recovery.requeued, recovery.still_unknown) == (6, 0)
    assert [row.seq for row in await again.next_rows(100)] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="negative"):
        await again.recover(resend_unknown=True, silent_for=timedelta(seconds=-1))


async def test_a_dead_resending_session_leaves_its_rows_to_the_next(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await unknown_after_crash(redis, name, tmp_path)
    dying = RedisCampaign(redis, name, lease=0.1, worker="dying")
    assert (await dying.recover(resend_unknown=True)).requeued == 6
    rows = await dying.next_rows(2)
    await dying.mark_in_flight([row.seq for row in rows], "g3")  # then it dies
    await anyio.sleep(0.2)  # silent past the 0.1 s lease, by Redis's clock (real time)
    heir = RedisCampaign(redis, name, lease=5, worker="heir2")
    recovery = await heir.recover()
    assert recovery.became_unknown == 2  # maybe sent: never twice without being asked
    assert [row.seq for row in await heir.next_rows(100)] == [3, 4, 5, 6]
    assert await state_string(Raw(redis), journal) == "UUPPPP" + "A" * 4
    with pytest.raises(ChunkFencedError):
        await dying.mark_in_flight([3], "g4")


async def test_work_resends_unknown_rows_on_request(redis: Any, name: str, tmp_path: Path) -> None:
    journal = await unknown_after_crash(redis, name, tmp_path)
    fake = FakeAgileServer()
    async with fake.client() as client:
        await work(client, RedisCampaign(redis, name), resend_unknown=True)
    counts = await journal.counts()
    assert (counts.accepted, counts.unknown) == (10, 0)
    sent = Counter(m.destination for m in fake.accepted)
    assert sorted(sent) == [f"+3934{i:08d}" for i in range(1, 7)]
    assert set(sent.values()) == {1}


async def test_a_reclaimed_row_with_a_report_is_confirmed_by_the_next_session(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 3), chunk_size=3)
    prefix = f"{(await journal.definition()).campaign_id}-"  # type: ignore[union-attr]
    dead = RedisCampaign(redis, name, lease=0.1)
    assert await dead.take_chunk()
    await dead.mark_in_flight([1, 2, 3], "g1")
    await journal.record_delivery(f"{prefix}2", S.DELIVERED)  # then the worker dies
    await anyio.sleep(0.2)  # silent past the 0.1 s lease, by Redis's clock (real time)
    heir = RedisCampaign(redis, name, lease=0.1)
    assert await heir.take_chunk() is None
    recovery = await heir.recover()
    assert (recovery.confirmed, recovery.requeued) == (1, 0)
    assert await state_string(Raw(redis), journal) == "UAU"
    assert (await journal.counts()).confirmed == 1


async def test_resend_leaves_a_set_aside_chunk_alone_until_it_is_finished(
    redis: Any, name: str, tmp_path: Path
) -> None:
    journal = await enqueue(redis, name, recipients(tmp_path / "r.csv", 20), chunk_size=10)
    for seq, worker in ((1, "first"), (2, "second")):  # chunk 1 kills two workers
        dying = RedisCampaign(redis, name, lease=0.1, worker=worker, max_chunk_takeovers=2)
        assert await dying.take_chunk()
        await dying.mark_in_flight([seq], f"g-{worker}")
        await anyio.sleep(0.2)  # silent past its 0.1 s lease, by Redis's clock (real time)
    survivor = RedisCampaign(redis, name, lease=0.1, max_chunk_takeovers=2)
    rows = await survivor.take_chunk()  # chunk 1 set aside (rows 1, 2 unknown), chunk 2
    assert rows is not None
    await survivor.mark_in_flight([row.seq for row in rows], "g")
    await survivor.record_accepted([row.seq for row in rows], totals(10))
    resender = RedisCampaign(redis, name, lease=5)
    recovery = await resender.recover(resend_unknown=True)
    assert (recovery.requeued, recovery.still_unknown) == (0, 2)  # what killed the workers
    assert await journal.requeue_held() == (1, 8)
    rows = await survivor.take_chunk()
    assert rows is not None
    await survivor.mark_in_flight([row.seq for row in rows], "g2")
    await survivor.record_accepted([row.seq for row in rows], totals(8))
    recovery = await resender.recover(resend_unknown=True)  # the operator insists
    assert (recovery.requeued, recovery.still_unknown) == (2, 0)
    assert [row.body for row in await resender.next_rows(10)] == ["Hi N1", "Hi N2"]
    await resender.mark_in_flight([1, 2], "g3")
    await resender.record_accepted([1, 2], totals(2))
    assert (await journal.counts()).accepted == 20
