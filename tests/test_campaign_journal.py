"""The SQLite journal: states, transitions, crash recovery, idempotent loading, deliveries."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from agile_async import DeliveryStatus, RequestTotals, SendOptions
from agile_async.campaigns import (
    CampaignDefinition,
    DeliveryUpdate,
    Failure,
    Journal,
    JournalError,
    LoadedRow,
    RowState,
    SQLiteJournal,
)

pytestmark = pytest.mark.anyio

DEFINITION = CampaignDefinition(
    campaign_id="c0ffee000001",
    source="/data/recipients.csv",
    source_format="csv",
    source_sha256="ab" * 32,
    source_size=1234,
    body="Hi {name}",
    sender="Shop",
    options=SendOptions(simulation=True),
    created_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
    defaults={"rate": 50.0},
)


def row(seq: int, *, body: str | None = None, message_id: str | None = None) -> LoadedRow:
    return LoadedRow(
        seq=seq,
        message_id=message_id or f"id-{seq}",
        destination=f"+39347{seq:07d}",
        body=body if body is not None else f"Hi {seq}",
        parts=1,
        encoding="GSM-7",
    )


def totals(global_id: str, parts: int = 1, credit: str = "9.5") -> RequestTotals:
    return RequestTotals(global_id, 1, parts, Decimal(credit))


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SQLiteJournal]:
    opened = await SQLiteJournal.open(tmp_path / "j.db", create=True)
    await opened.create(DEFINITION)
    await opened.append([row(seq) for seq in range(1, 11)], done=True)
    await opened.recover()
    yield opened
    await opened.aclose()


async def states(journal: SQLiteJournal) -> dict[int, RowState]:
    found: dict[int, RowState] = {}
    async for chunk in journal.rows():
        found.update((r.seq, r.state) for r in chunk)
    return found


async def test_implements_the_protocol(journal: SQLiteJournal) -> None:
    """The SQLite journal is a Journal (the engine's only view of it)."""
    assert isinstance(journal, Journal)


async def test_definition_round_trips(journal: SQLiteJournal) -> None:
    """What was recorded comes back equal, options and defaults included."""
    assert await journal.definition() == DEFINITION
    state = await journal.load_state()
    assert (state.loaded_through, state.done) == (10, True)


async def test_a_second_campaign_is_refused(journal: SQLiteJournal) -> None:
    """One journal holds one campaign."""
    with pytest.raises(JournalError, match="already holds a campaign"):
        await journal.create(DEFINITION)


async def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    """No journal, or an SQLite file of someone else's: a clear JournalError."""
    with pytest.raises(JournalError, match="no journal"):
        await SQLiteJournal.open(tmp_path / "missing.db")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(JournalError, match="not a campaign journal"):
        await SQLiteJournal.open(foreign)


async def test_one_process_runs_a_journal_readers_may_look(
    journal: SQLiteJournal,
) -> None:
    """The run lock refuses a second sender; a reader opens without it."""
    with pytest.raises(JournalError, match="in use by another process"):
        await SQLiteJournal.open(journal.path)
    async with await SQLiteJournal.open(journal.path, exclusive=False) as reader:
        assert (await reader.counts()).pending == 10


async def test_loading_is_idempotent(journal: SQLiteJournal) -> None:
    """Rows at or below loaded_through are ignored: a crashed loader may start over."""
    await journal.append([row(seq, body="changed") for seq in range(1, 11)], done=True)
    assert (await journal.counts()).pending == 10
    sent = await journal.next_rows(100)
    assert [r.body for r in sent] == [f"Hi {seq}" for seq in range(1, 11)]


async def test_a_duplicate_id_fails_its_row(tmp_path: Path) -> None:
    """A second row with a taken id is stored failed, naming the row that has it."""
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(1, message_id="x"), row(2, message_id="x")], done=False)
        await journal.append([row(3, message_id="x")], done=True)
        async for chunk in journal.rows([RowState.FAILED]):
            failed = {r.seq: r for r in chunk}
        assert sorted(failed) == [2, 3]
        assert failed[2].message_id is None
        assert failed[2].failure is not None
        assert "already used by row 1" in failed[2].failure.message


async def test_a_body_repeated_nearby_is_stored_once(tmp_path: Path) -> None:
    """A campaign without variables stores its one body once, not per recipient."""
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(seq, body="Same for all") for seq in range(1, 501)], done=True)
        await journal.recover()
        sent = await journal.next_rows(1000)
        assert len(sent) == 500
        assert {r.body for r in sent} == {"Same for all"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM bodies").fetchone() == (1,)


async def test_next_rows_walks_pending_rows_once(journal: SQLiteJournal) -> None:
    """A session sees every pending row once, in input order."""
    first = await journal.next_rows(4)
    second = await journal.next_rows(4)
    third = await journal.next_rows(4)
    assert [r.seq for r in [*first, *second, *third]] == list(range(1, 11))
    assert await journal.next_rows(4) == []


async def test_the_life_of_rows(journal: SQLiteJournal) -> None:
    """pending -> in_flight -> accepted | failed | unknown, and release back to pending."""
    await journal.mark_in_flight([1, 2, 3], "g1")
    await journal.mark_in_flight([4, 5], "g2")
    await journal.mark_in_flight([6], "g3")
    await journal.mark_in_flight([7], "g4")
    await journal.record_accepted([1, 2, 3], totals("g1", parts=3, credit="9.85"))
    await journal.record_failed([4, 5], Failure("InvalidDestinationError", "bad", 7))
    await journal.record_unknown([6], Failure("OutcomeUnknownError", "timed out"))
    await journal.release([7])
    await journal.record_failed([8], Failure("ValidationError", "refused by the batcher"))
    counts = await journal.counts()
    assert (counts.pending, counts.in_flight) == (3, 0)
    assert (counts.accepted, counts.failed, counts.unknown) == (3, 3, 1)
    assert counts.parts == 3
    assert counts.credit == Decimal("9.85")
    async for chunk in journal.rows([RowState.FAILED, RowState.UNKNOWN]):
        by_seq = {r.seq: r for r in chunk}
    assert by_seq[4].failure == Failure("InvalidDestinationError", "bad", 7)
    assert by_seq[4].global_id == "g2"
    assert by_seq[6].state is RowState.UNKNOWN
    assert by_seq[8].attempts == 0


async def test_rows_with_an_outcome_cannot_go_out_again(journal: SQLiteJournal) -> None:
    """mark_in_flight refuses accepted rows, and changes nothing."""
    await journal.mark_in_flight([1], "g1")
    await journal.record_accepted([1], totals("g1"))
    with pytest.raises(JournalError, match="already have an outcome"):
        await journal.mark_in_flight([1, 2], "g2")
    assert (await states(journal))[2] is RowState.PENDING


async def test_a_bisected_request_marks_its_halves_again(journal: SQLiteJournal) -> None:
    """Halves of a split request go out under new globalIds: in flight twice is fine."""
    await journal.mark_in_flight([1, 2], "whole")
    await journal.mark_in_flight([1], "half-a")
    await journal.mark_in_flight([2], "half-b")
    await journal.record_accepted([1], totals("half-a"))
    async for chunk in journal.rows([RowState.ACCEPTED]):
        (accepted,) = chunk
    assert (accepted.global_id, accepted.attempts) == ("half-a", 2)


async def test_outcomes_only_move_rows_that_were_sent(journal: SQLiteJournal) -> None:
    """Unknown and release touch in-flight rows only; accepted never turns back."""
    await journal.record_unknown([1], Failure("OutcomeUnknownError", "?"))
    await journal.release([2])
    await journal.mark_in_flight([3], "g")
    await journal.record_accepted([3], totals("g"))
    await journal.record_failed([3], Failure("APIError", "late"))
    found = await states(journal)
    assert (found[1], found[2], found[3]) == (
        RowState.PENDING,
        RowState.PENDING,
        RowState.ACCEPTED,
    )


async def test_in_flight_rows_become_unknown_after_a_crash(tmp_path: Path) -> None:
    """A process dies with a request in flight: reopening reports those rows unknown."""
    path = tmp_path / "j.db"
    journal = await SQLiteJournal.open(path, create=True)
    await journal.create(DEFINITION)
    await journal.append([row(seq) for seq in range(1, 6)], done=True)
    await journal.recover()
    await journal.mark_in_flight([1, 2], "g1")
    await journal.record_accepted([1, 2], totals("g1"))
    await journal.mark_in_flight([3, 4], "g2")  # ... and the process dies here
    await journal.aclose()

    async with await SQLiteJournal.open(path) as reopened:
        recovery = await reopened.recover()
        assert recovery.became_unknown == 2
        assert recovery.requeued == 0
        found = await states(reopened)
        assert [found[s] for s in range(1, 6)] == [
            RowState.ACCEPTED,
            RowState.ACCEPTED,
            RowState.UNKNOWN,
            RowState.UNKNOWN,
            RowState.PENDING,
        ]
        assert [r.seq for r in await reopened.next_rows(10)] == [5]  # never 3 or 4
        async for chunk in reopened.rows([RowState.UNKNOWN]):
            assert all(r.failure and "in flight" in r.failure.message for r in chunk)


async def test_resend_unknown_puts_them_back(tmp_path: Path) -> None:
    """Only on request do unknown rows go out again (and count another attempt)."""
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(1), row(2)], done=True)
        await journal.recover()
        await journal.mark_in_flight([1], "g1")
    async with await SQLiteJournal.open(path) as reopened:
        recovery = await reopened.recover(resend_unknown=True)
        assert (recovery.became_unknown, recovery.requeued) == (1, 1)
        assert [r.seq for r in await reopened.next_rows(10)] == [1, 2]
        await reopened.mark_in_flight([1], "g2")
        async for chunk in reopened.rows():
            assert chunk[0].attempts == 2


async def test_delivery_statuses_never_downgrade(journal: SQLiteJournal) -> None:
    """Accepted < delivered < a failure of any part; unknown ids are reported."""
    done = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert await journal.record_delivery("id-1", DeliveryStatus.DELIVERED, done)
    assert await journal.record_delivery("id-1", DeliveryStatus.ACCEPTED)
    assert await journal.record_delivery("id-2", DeliveryStatus.UNDELIVERABLE)
    assert await journal.record_delivery("id-2", DeliveryStatus.DELIVERED)
    assert not await journal.record_delivery("someone-else", DeliveryStatus.DELIVERED)
    matched = await journal.record_deliveries(
        [
            DeliveryUpdate("id-3", DeliveryStatus.ACCEPTED),
            DeliveryUpdate("id-3", DeliveryStatus.EXPIRED),
            DeliveryUpdate("nobody", DeliveryStatus.EXPIRED),
        ]
    )
    assert matched == 2
    async for chunk in journal.rows():
        by_id = {r.message_id: r for r in chunk}
    assert by_id["id-1"].delivery is DeliveryStatus.DELIVERED
    assert by_id["id-1"].delivered_at == done
    assert by_id["id-2"].delivery is DeliveryStatus.UNDELIVERABLE
    assert by_id["id-3"].delivery is DeliveryStatus.EXPIRED
    counts = await journal.counts()
    assert counts.deliveries == {
        DeliveryStatus.DELIVERED: 1,
        DeliveryStatus.EXPIRED: 1,
        DeliveryStatus.UNDELIVERABLE: 1,
    }


async def test_tally_groups_by_prefix_and_encoding(tmp_path: Path) -> None:
    """What a cost estimate needs, without reading rows one by one."""
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as journal:
        await journal.create(DEFINITION)
        rows = [
            LoadedRow(seq=1, message_id="a", destination="+393471", body="x", parts=2,
                      encoding="GSM-7"),
            LoadedRow(seq=2, message_id="b", destination="+393472", body="°", parts=1,
                      encoding="UCS-2"),
            LoadedRow(seq=3, message_id="c", destination="+44777", body="x", parts=3,
                      encoding="GSM-7"),
        ]  # fmt: skip
        await journal.append(rows, done=True)
        tallies = await journal.tally([RowState.PENDING], prefix_digits=2)
        assert {(t.prefix, t.encoding, t.rows, t.parts) for t in tallies} == {
            ("39", "GSM-7", 1, 2),
            ("39", "UCS-2", 1, 1),
            ("44", "GSM-7", 1, 3),
        }


async def test_the_schema_is_readable_with_plain_sqlite(journal: SQLiteJournal) -> None:
    """Operators can query a journal with the sqlite3 shell: states are words."""
    await journal.mark_in_flight([1], "g1")
    with sqlite3.connect(journal.path) as conn:
        found = dict(conn.execute("SELECT state, count(*) FROM rows GROUP BY state"))
    assert found == {"in_flight": 1, "pending": 9}


async def test_a_new_journal_is_private(tmp_path: Path) -> None:
    """Phone numbers and texts: only the owner may read the file."""
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as journal:
        await journal.create(DEFINITION)
    assert (tmp_path / "j.db").stat().st_mode & 0o077 == 0
