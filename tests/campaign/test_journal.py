"""The SQLite journal: states, transitions, crash recovery, idempotent loading, deliveries."""

from __future__ import annotations

import collections
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from agile_async import DeliveryStatus, RequestTotals, SendOptions
from agile_async.campaigns import (
    CONFIRMED_BY_REPORT,
    Campaign,
    CampaignDefinition,
    DeliveryUpdate,
    Failure,
    Journal,
    JournalError,
    JournalRow,
    LoadedRow,
    RowState,
    SQLiteJournal,
)
from agile_async.testing import FakeAgileServer

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


#: Where the journal's store runs (``process``): a worker thread (the default) or a child
#: process, and the tests' ids for them.
PROCESS, HOST_IDS = [False, True], ["thread", "process"]
HOSTS = pytest.mark.parametrize("process", PROCESS, ids=HOST_IDS)


@pytest.fixture(params=PROCESS, ids=HOST_IDS)
async def journal(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SQLiteJournal]:
    """A journal of ten pending rows, its store in a worker thread or in a child process:
    every test of the journal's contract runs on both."""
    opened = await SQLiteJournal.open(tmp_path / "j.db", create=True, process=request.param)
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
    with closing(sqlite3.connect(foreign)) as conn, conn:
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
    """A second row with a taken id is stored failed, naming the row that has it, and
    keeping the id it was given (for the export), though not as its message id."""
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(1, message_id="x"), row(2, message_id="x")], done=False)
        await journal.append([row(3, message_id="x")], done=True)
        async for chunk in journal.rows([RowState.FAILED]):
            failed = {r.seq: r for r in chunk}
        assert sorted(failed) == [2, 3]
        assert failed[2].message_id == "x"
        assert failed[2].failure is not None
        assert "already used by an earlier row (record 1)" in failed[2].failure.message
        # The id stays with the row that holds it: a report for "x" goes to row 1.
        assert await journal.record_delivery("x", DeliveryStatus.DELIVERED)
        rows = {r.seq: r async for chunk in journal.rows() for r in chunk}
        assert rows[1].delivery is DeliveryStatus.DELIVERED
        assert rows[2].delivery is None


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
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("SELECT count(*) FROM bodies").fetchone() == (1,)


async def test_next_rows_walks_pending_rows_once(journal: SQLiteJournal) -> None:
    """A session sees every pending row once, in input order."""
    first = await journal.next_rows(4)
    second = await journal.next_rows(4)
    third = await journal.next_rows(4)
    assert [r.seq for r in [*first, *second, *third]] == list(range(1, 11))
    assert len(await journal.next_rows(4)) == 0


async def test_the_life_of_rows(journal: SQLiteJournal) -> None:
    """pending -> in_flight -> accepted | failed | unknown, and release back to pending."""
    await journal.mark_in_flight([1, 2, 3], "g1")
    await journal.mark_in_flight([4, 5], "g2")
    await journal.mark_in_flight([6], "g3")
    await journal.mark_in_flight([7], "g4")
    counts = await journal.counts()
    assert (counts.pending, counts.in_flight) == (3, 7)
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
    released = await rows_by_seq(journal)
    assert (released[7].state, released[7].attempts, released[7].global_id) == (
        RowState.PENDING,
        1,
        "g4",
    )
    assert [(r.attempts, r.global_id) for r in (released[1], released[9])] == [(1, "g1"), (0, None)]


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


async def test_a_request_of_scattered_rows_moves_exactly_those(journal: SQLiteJournal) -> None:
    """A request's rows need not be consecutive, in order or distinct (the journal writes
    them as runs of consecutive rows): exactly those rows move, the rows between stay."""
    await journal.mark_in_flight([7, 2, 3, 9, 3], "g1")
    found = await states(journal)
    assert {seq for seq, state in found.items() if state is RowState.IN_FLIGHT} == {2, 3, 7, 9}
    await journal.record_accepted([9, 2], totals("g1"))
    await journal.record_unknown([3], Failure("OutcomeUnknownError", "?"))
    await journal.release([7])
    await journal.record_failed([5, 6], Failure("ValidationError", "refused"))
    expected = dict.fromkeys(range(1, 11), RowState.PENDING)
    expected.update({2: RowState.ACCEPTED, 9: RowState.ACCEPTED, 3: RowState.UNKNOWN})
    expected.update({5: RowState.FAILED, 6: RowState.FAILED})
    assert await states(journal) == expected
    with pytest.raises(JournalError, match="2 of 4 rows already have an outcome"):
        await journal.mark_in_flight([1, 2, 4, 6], "g2")
    assert await states(journal) == expected  # nothing moved
    async for chunk in journal.rows([RowState.UNKNOWN]):
        assert [(r.seq, r.attempts, r.global_id) for r in chunk] == [(3, 1, "g1")]


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
    """A final status stays; unknown ids are reported."""
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
    """Operators can query a journal with the sqlite3 shell: states are words, and the
    view ``row_states`` shows the rows of a request in flight as such (the journal records
    the request once, its rows stay written as pending)."""
    await journal.mark_in_flight([1, 2], "g1")
    await journal.mark_in_flight([2], "g2")  # a half of it, after bisection
    with closing(sqlite3.connect(journal.path)) as conn, conn:
        found = dict(conn.execute("SELECT state, count(*) FROM row_states GROUP BY state"))
        attempts = conn.execute("SELECT attempts FROM row_states WHERE seq <= 3").fetchall()
    assert found == {"in_flight": 2, "pending": 8}
    assert attempts == [(1,), (2,), (0,)]


async def test_a_new_journal_is_private(tmp_path: Path) -> None:
    """Phone numbers and texts: only the owner may read the file."""
    async with await SQLiteJournal.open(tmp_path / "j.db", create=True) as journal:
        await journal.create(DEFINITION)
    assert (tmp_path / "j.db").stat().st_mode & 0o077 == 0


async def rows_by_seq(journal: SQLiteJournal) -> dict[int, JournalRow]:
    found: dict[int, JournalRow] = {}
    async for chunk in journal.rows():
        found.update((r.seq, r) for r in chunk)
    return found


async def delivered_seqs(journal: SQLiteJournal) -> list[int]:
    """The rows recorded delivered, in order."""
    rows = await rows_by_seq(journal)
    return [seq for seq, r in rows.items() if r.delivery is DeliveryStatus.DELIVERED]


async def deliver_in_scope(
    journal: SQLiteJournal,
    seq: int,
    scope: anyio.CancelScope,
    answered: set[int],
    then: Callable[[], object] | None = None,
) -> None:
    """Record row ``seq`` delivered inside ``scope``; it joins ``answered`` once the call
    answers (and ``then`` runs)."""
    with scope:
        await journal.record_delivery(f"id-{seq}", DeliveryStatus.DELIVERED)
        answered.add(seq)
        if then is not None:
            then()


LOST = Failure("OutcomeUnknownError", "the answer was lost")


async def test_a_message_is_delivered_when_every_part_is(journal: SQLiteJournal) -> None:
    """Defect 9: a 3-part message is not delivered on its first part's report."""
    await journal.record_delivery("id-1", DeliveryStatus.DELIVERED, part=2, parts=3)
    await journal.record_deliveries(
        [
            DeliveryUpdate("id-1", DeliveryStatus.ACCEPTED, part=1, parts=3),
            DeliveryUpdate("id-1", DeliveryStatus.DELIVERED, part=1, parts=3),
        ]
    )
    row = (await rows_by_seq(journal))[1]
    assert (row.delivery, row.parts_delivered) == (DeliveryStatus.ACCEPTED, 2)
    done = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    await journal.record_delivery("id-1", DeliveryStatus.DELIVERED, done, part=3, parts=3)
    row = (await rows_by_seq(journal))[1]
    assert (row.delivery, row.parts_delivered, row.delivered_at) == (
        DeliveryStatus.DELIVERED,
        3,
        done,
    )


async def test_a_report_confirms_an_unknown_row(journal: SQLiteJournal) -> None:
    """A report proves the provider took the message: unknown becomes accepted."""
    await journal.mark_in_flight([1, 2, 3], "g1")
    await journal.record_unknown([1, 2, 3], LOST)
    assert await journal.record_delivery("id-2", DeliveryStatus.ACCEPTED, part=1, parts=2)
    await journal.record_deliveries([DeliveryUpdate("id-3", DeliveryStatus.UNDELIVERABLE)])
    rows = await rows_by_seq(journal)
    assert [rows[s].state for s in (1, 2, 3)] == [
        RowState.UNKNOWN,
        RowState.ACCEPTED,
        RowState.ACCEPTED,
    ]
    assert [rows[s].confirmed_by_report for s in (1, 2, 3)] == [False, True, True]
    assert rows[2].failure is None  # no longer "unknown: the answer was lost"
    assert rows[3].delivery is DeliveryStatus.UNDELIVERABLE  # taken, then not delivered
    counts = await journal.counts()
    assert (counts.accepted, counts.unknown, counts.confirmed) == (2, 1, 2)
    assert CONFIRMED_BY_REPORT == "confirmed by delivery report"  # status and export say it


async def test_a_report_before_the_lost_answer_confirms_the_row(journal: SQLiteJournal) -> None:
    """Reports can beat the answer; if the answer is then lost, the report still counts."""
    await journal.mark_in_flight([1, 2], "g1")
    await journal.record_delivery("id-1", DeliveryStatus.DELIVERED)
    await journal.record_unknown([1, 2], LOST)
    rows = await rows_by_seq(journal)
    assert (rows[1].state, rows[1].confirmed_by_report) == (RowState.ACCEPTED, True)
    assert (rows[2].state, rows[2].confirmed_by_report) == (RowState.UNKNOWN, False)


async def test_a_crash_with_reports_in_flight_confirms_those_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(seq) for seq in range(1, 4)], done=True)
        await journal.recover()
        await journal.mark_in_flight([1, 2], "g1")
        await journal.record_delivery("id-2", DeliveryStatus.ACCEPTED)  # ... and it dies
    async with await SQLiteJournal.open(path) as reopened:
        recovery = await reopened.recover(resend_unknown=True)
        assert (recovery.became_unknown, recovery.confirmed, recovery.requeued) == (1, 1, 1)
        assert [r.seq for r in await reopened.next_rows(10)] == [1, 3]


def sent_ago(path: Path, global_id: str, age: timedelta) -> None:
    """Pretend request ``global_id`` went out ``age`` ago."""
    moment = (datetime.now(timezone.utc) - age).isoformat(timespec="milliseconds")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE requests SET started_at = ? WHERE global_id = ?", (moment, global_id))


async def test_silent_for_resends_only_rows_silent_that_long(tmp_path: Path) -> None:
    """Unknown rows sent two hours ago go out again; those sent a minute ago wait for
    their report; without silent_for every unknown row goes."""
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(DEFINITION)
        await journal.append([row(seq) for seq in range(1, 6)], done=True)
        await journal.recover()
        for seqs, global_id in (([1, 2], "old"), ([3, 4], "new")):
            await journal.mark_in_flight(seqs, global_id)
            await journal.record_unknown(seqs, LOST)
    sent_ago(path, "old", timedelta(hours=2))
    sent_ago(path, "new", timedelta(minutes=1))
    async with await SQLiteJournal.open(path) as reopened:
        recovery = await reopened.recover(resend_unknown=True, silent_for=timedelta(hours=1))
        assert (recovery.requeued, recovery.still_unknown) == (2, 2)
        assert [r.seq for r in await reopened.next_rows(10)] == [1, 2, 5]
        with pytest.raises(ValueError, match="negative"):
            await reopened.recover(resend_unknown=True, silent_for=timedelta(seconds=-1))
        recovery = await reopened.recover(resend_unknown=True, silent_for=timedelta(0))
        assert (recovery.requeued, recovery.still_unknown) == (2, 0)
        assert [r.seq for r in await reopened.next_rows(10)] == [1, 2, 3, 4, 5]


#: The schema of the first journals (``user_version`` 1), as that version created it.
SCHEMA_1 = """
CREATE TABLE campaign (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    campaign_id TEXT NOT NULL,
    source TEXT NOT NULL,
    source_format TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_size INTEGER NOT NULL,
    body TEXT NOT NULL,
    sender TEXT NOT NULL,
    options TEXT NOT NULL,
    defaults TEXT NOT NULL,
    created_at TEXT NOT NULL,
    loaded_through INTEGER NOT NULL DEFAULT 0,
    loading_done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE bodies (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    global_id TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    messages INTEGER NOT NULL,
    accepted_at TEXT,
    processed_messages INTEGER,
    processed_sms_parts INTEGER,
    credit TEXT
);
CREATE TABLE rows (
    seq INTEGER PRIMARY KEY,
    message_id TEXT UNIQUE,
    destination TEXT NOT NULL,
    body INTEGER,
    parts INTEGER NOT NULL DEFAULT 0,
    encoding TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    request INTEGER,
    error_kind TEXT,
    error_code INTEGER,
    error_message TEXT,
    delivery INTEGER,
    delivered_at TEXT
);
"""


def write_schema_1_journal(path: Path) -> None:
    """A journal exactly as the previous version left it: rows delivered, unknown, and
    unknown although a report came (that version did not confirm them)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SCHEMA_1)
        conn.execute(f"PRAGMA application_id={0x41474C53}")
        conn.execute("PRAGMA user_version=1")
        conn.execute(
            "INSERT INTO campaign (id, campaign_id, source, source_format, source_sha256,"
            " source_size, body, sender, options, defaults, created_at, loaded_through,"
            " loading_done) VALUES (1, 'c0ffee000001', '/data/r.csv', 'csv', ?, 10, 'Hi',"
            " 'Shop', ?, '{}', '2026-03-01T09:30:00+00:00', 4, 1)",
            ("ab" * 32, '{"simulation": true}'),
        )
        conn.execute("INSERT INTO bodies (id, hash, text) VALUES (1, x'00', 'Hi')")
        conn.execute(
            "INSERT INTO requests (id, global_id, started_at, messages, accepted_at,"
            " processed_messages, processed_sms_parts, credit) VALUES (1, 'g1',"
            " '2026-03-01T09:31:00.000+00:00', 3, '2026-03-01T09:31:01+00:00', 3, 3, '9.5')"
        )
        conn.executemany(
            "INSERT INTO rows (seq, message_id, destination, body, parts, encoding, state,"
            " attempts, request, delivery, delivered_at) VALUES (?, ?, ?, 1, 1, 'GSM-7', ?,"
            " 1, 1, ?, ?)",
            [
                (1, "id-1", "+393470000001", "accepted", 3, "2026-03-01T09:32:00+00:00"),
                (2, "id-2", "+393470000002", "accepted", 1, "2026-03-01T09:32:00+00:00"),
                (3, "id-3", "+393470000003", "unknown", None, None),
                (4, "id-4", "+393470000004", "unknown", 1, "2026-03-01T09:32:00+00:00"),
            ],
        )


@pytest.mark.parametrize("exclusive", [True, False])
async def test_a_journal_of_the_previous_version_opens(tmp_path: Path, exclusive: bool) -> None:
    """Schema 1 is upgraded in place (columns added): its rows keep their delivery
    statuses, unknown rows with a report are confirmed, new reports follow the rule."""
    path = tmp_path / "old.journal"
    write_schema_1_journal(path)
    async with await SQLiteJournal.open(path, exclusive=exclusive) as journal:
        definition = await journal.definition()
        assert definition is not None
        assert definition.campaign_id == "c0ffee000001"
        rows = await rows_by_seq(journal)
        assert rows[1].delivery is DeliveryStatus.DELIVERED
        assert rows[1].delivered_at == datetime(2026, 3, 1, 9, 32, tzinfo=timezone.utc)
        assert rows[3].state is RowState.UNKNOWN
        assert (rows[4].state, rows[4].confirmed_by_report) == (RowState.ACCEPTED, True)
        await journal.record_delivery("id-2", DeliveryStatus.DELIVERED, part=1, parts=2)
        await journal.record_delivery("id-3", DeliveryStatus.DELIVERED)
        rows = await rows_by_seq(journal)
        assert (rows[2].delivery, rows[2].parts_delivered) == (DeliveryStatus.ACCEPTED, 1)
        assert (rows[3].state, rows[3].confirmed_by_report) == (RowState.ACCEPTED, True)
        # It read its CSV as UTF-8 with commas: what the upgraded definition says.
        assert (definition.source_encoding, definition.source_delimiter) == ("utf-8", ",")
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    async with await SQLiteJournal.open(path) as again:  # the upgrade happens once
        assert (await again.counts()).confirmed == 2


def write_schema_2_journal(path: Path) -> None:
    """A journal as version 2 left it: schema 1 with the three columns it added."""
    write_schema_1_journal(path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            "ALTER TABLE rows ADD COLUMN delivery_total INTEGER NOT NULL DEFAULT 0;"
            "ALTER TABLE rows ADD COLUMN delivery_parts TEXT;"
            "ALTER TABLE rows ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;"
            "PRAGMA user_version=2;"
        )


@pytest.mark.parametrize("exclusive", [True, False])
async def test_a_journal_of_schema_2_opens(tmp_path: Path, exclusive: bool) -> None:
    """Schema 2 (before encodings and delimiters) is upgraded in place: its CSV input reads
    as UTF-8 with commas, as it was read, and its rows are all there."""
    path = tmp_path / "v2.journal"
    write_schema_2_journal(path)
    async with await SQLiteJournal.open(path, exclusive=exclusive) as journal:
        definition = await journal.definition()
        assert definition is not None
        assert (definition.source_encoding, definition.source_delimiter) == ("utf-8", ",")
        rows = await rows_by_seq(journal)
        assert [rows[seq].message_id for seq in (1, 2, 3, 4)] == ["id-1", "id-2", "id-3", "id-4"]
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5


def write_schema_3_journal(path: Path) -> None:
    """A journal as schema 3 left it when its process died: rows 5 and 6 in flight (a
    report already came for 6), row 7 pending, rows 1 to 4 as schema 1 left them."""
    write_schema_2_journal(path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            "ALTER TABLE campaign ADD COLUMN source_encoding TEXT NOT NULL DEFAULT 'utf-8';"
            "ALTER TABLE campaign ADD COLUMN source_delimiter TEXT;"
            "ALTER TABLE rows ADD COLUMN input_id TEXT;"
            "UPDATE campaign SET source_delimiter = ',', loaded_through = 7, options = '{}';"
            "UPDATE rows SET state = 'accepted', confirmed = 1 WHERE seq = 4;"
            "INSERT INTO requests (id, global_id, started_at, messages)"
            " VALUES (2, 'g2', '2026-03-01T09:40:00.000+00:00', 2);"
            "INSERT INTO rows (seq, message_id, destination, body, parts, encoding, state,"
            " attempts, request, delivery, delivered_at) VALUES"
            " (5, 'id-5', '+393470000005', 1, 1, 'GSM-7', 'in_flight', 1, 2, NULL, NULL),"
            " (6, 'id-6', '+393470000006', 1, 1, 'GSM-7', 'in_flight', 1, 2, 1,"
            " '2026-03-01T09:41:00+00:00'),"
            " (7, 'id-7', '+393470000007', 1, 1, 'GSM-7', 'pending', 0, NULL, NULL, NULL);"
            "PRAGMA user_version=3;"
        )


async def campaign_rows(campaign: Campaign) -> dict[int, JournalRow]:
    found: dict[int, JournalRow] = {}
    async for chunk in campaign.rows():
        found.update((r.seq, r) for r in chunk)
    return found


#: The view schema 4 created (``row_states`` without landed runs), as that version wrote it.
SCHEMA_4_FLIGHTS = """
CREATE TABLE flights (request INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL);
CREATE VIEW row_states AS SELECT seq, message_id, destination, body, parts, encoding,
    CASE WHEN state = 'pending' AND EXISTS (
        SELECT 1 FROM flights AS f WHERE seq BETWEEN f.first AND f.last
    ) THEN 'in_flight' ELSE state END AS state,
    attempts + CASE WHEN state = 'pending' THEN (
        SELECT count(*) FROM flights AS f WHERE seq BETWEEN f.first AND f.last
    ) ELSE 0 END AS attempts,
    CASE WHEN state = 'pending' THEN coalesce((
        SELECT max(f.request) FROM flights AS f WHERE seq BETWEEN f.first AND f.last
    ), request) ELSE request END AS request,
    error_kind, error_code, error_message, delivery, delivered_at, delivery_total,
    delivery_parts, confirmed, input_id
FROM rows;
"""


def write_schema_4_journal(path: Path) -> None:
    """A journal as schema 4 left it when its process died: request g2 in flight over
    rows 5 and 6 (written pending; a report already came for 6), row 7 pending."""
    write_schema_3_journal(path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            SCHEMA_4_FLIGHTS + "UPDATE rows SET state = 'pending', attempts = 0, request = NULL"
            " WHERE seq IN (5, 6);"
            "INSERT INTO flights (request, first, last) VALUES (2, 5, 6);"
            "PRAGMA user_version=4;"
        )


@pytest.mark.parametrize("write", [write_schema_3_journal, write_schema_4_journal])
async def test_a_journal_of_an_older_schema_left_in_flight_reads_and_resumes(
    tmp_path: Path, write: Callable[[Path], None]
) -> None:
    """Schema 3 wrote each row in flight, schema 4 each accepted row; schema 5 records a
    request in flight, and an accepted one, once. An older journal whose process died
    mid-request reads as it did (status, rows), and resumes as it did: its rows in flight
    become unknown (or accepted, confirmed by a report), never sent again; only the pending
    row goes out, and the next runs, in the same session or another, send nothing again."""
    path = tmp_path / "old.journal"
    write(path)
    async with await Campaign.open(path, read_only=True) as campaign:
        counts = (await campaign.status()).counts
        rows = await campaign_rows(campaign)
    assert (counts.pending, counts.in_flight, counts.accepted, counts.unknown) == (1, 2, 3, 1)
    assert (rows[5].state, rows[5].attempts, rows[5].global_id) == (RowState.IN_FLIGHT, 1, "g2")
    assert rows[6].state is RowState.IN_FLIGHT
    assert rows[7].state is RowState.PENDING

    fake = FakeAgileServer()
    async with await Campaign.open(path) as campaign, fake.client() as agile:
        assert (campaign.recovery.became_unknown, campaign.recovery.confirmed) == (1, 1)
        result = await campaign.run(agile)
        again = await campaign.run(agile)  # the same session's journal, rewound
        rows = await campaign_rows(campaign)
    async with await Campaign.open(path) as campaign, fake.client() as agile:
        third = await campaign.run(agile)
    assert [m.destination for m in fake.accepted] == ["+393470000007"]
    for counts in (result.counts, again.counts, third.counts):
        assert (counts.accepted, counts.unknown, counts.pending, counts.in_flight) == (5, 2, 0, 0)
        assert counts.confirmed == 2
    assert (rows[5].state, rows[5].attempts, rows[5].global_id) == (RowState.UNKNOWN, 1, "g2")
    assert rows[5].failure is not None
    assert rows[5].failure.kind == "OutcomeUnknownError"
    assert (rows[6].state, rows[6].confirmed_by_report) == (RowState.ACCEPTED, True)
    assert (rows[7].state, rows[7].attempts, rows[7].failure) == (RowState.ACCEPTED, 1, None)
    assert rows[7].global_id is not None
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5


async def test_a_journal_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.journal"
    async with await SQLiteJournal.open(path, create=True) as journal:
        await journal.create(DEFINITION)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA user_version=6")
    with pytest.raises(JournalError, match="schema 6"):
        await SQLiteJournal.open(path)


class Schema3Model:
    """What schema 3 did to each row (it wrote every row in flight): the reference the
    journal's answers are held to, row by row, after every step."""

    def __init__(self, rows: int) -> None:
        self.rows: dict[int, tuple[RowState, int, str | None]] = dict.fromkeys(
            range(1, rows + 1), (RowState.PENDING, 0, None)
        )

    def mark(self, seqs: set[int], global_id: str) -> bool:
        if any(self.rows[seq][0] not in (RowState.PENDING, RowState.IN_FLIGHT) for seq in seqs):
            return False
        for seq in seqs:
            self.rows[seq] = (RowState.IN_FLIGHT, self.rows[seq][1] + 1, global_id)
        return True

    def move(self, seqs: set[int], to: RowState, before: tuple[RowState, ...]) -> None:
        for seq in seqs:
            state, attempts, global_id = self.rows[seq]
            if state in before:
                self.rows[seq] = (to, attempts, global_id)


async def observed(journal: SQLiteJournal) -> dict[int, tuple[RowState, int, str | None]]:
    return {
        seq: (r.state, r.attempts, r.global_id) for seq, r in (await rows_by_seq(journal)).items()
    }


@pytest.mark.parametrize("seed", range(6))
async def test_rows_read_as_schema_3_wrote_them_through_any_walk(tmp_path: Path, seed: int) -> None:
    """Requests marked in flight (and their halves, as bisection marks them again), then
    accepted, failed, unknown or released, in a random order, and a crash half-way: after
    every step, rows(), counts() and tally() answer what schema 3 answered, which wrote
    each row in flight instead of recording the request once (and each accepted row,
    instead of its request's runs); a new session hands out exactly the pending rows."""
    rng = random.Random(seed)
    path = tmp_path / "walk.journal"
    journal = await SQLiteJournal.open(path, create=True)
    await journal.create(DEFINITION)
    await journal.append([row(seq) for seq in range(1, 25)], done=True)
    await journal.recover()
    model = Schema3Model(24)
    requests = 0
    try:
        for step in range(80):
            live = [seq for seq, (state, _, _) in model.rows.items() if state is RowState.IN_FLIGHT]
            action = rng.choice(["mark", "mark", "half", "accept", "fail", "unknown", "release"])
            if action == "mark" or (action == "half" and not live):
                start = rng.randint(1, 24)
                seqs = set(range(start, min(start + rng.randint(1, 6), 25)))
            elif action == "half":
                seqs = set(rng.sample(live, max(1, len(live) // 2)))
            else:  # an outcome for some rows in flight, and now and then for others too
                seqs = set(rng.sample(live, len(live) // 2 or len(live)))
                seqs.update(rng.sample(range(1, 25), rng.choice([0, 0, 1])))
                if not seqs:
                    continue
            ordered = sorted(seqs)
            if action in ("mark", "half"):
                requests += 1
                global_id = f"g{requests}"
                if model.mark(seqs, global_id):
                    await journal.mark_in_flight(ordered, global_id)
                else:
                    with pytest.raises(JournalError, match="already have an outcome"):
                        await journal.mark_in_flight(ordered, global_id)
            elif action == "accept":
                await journal.record_accepted(ordered, totals(f"g{requests}"))
                model.move(seqs, RowState.ACCEPTED, (RowState.IN_FLIGHT, RowState.UNKNOWN))
            elif action == "fail":
                await journal.record_failed(ordered, Failure("APIError", "refused", 7))
                model.move(seqs, RowState.FAILED, (RowState.PENDING, RowState.IN_FLIGHT))
            elif action == "unknown":
                await journal.record_unknown(ordered, Failure("OutcomeUnknownError", "?"))
                model.move(seqs, RowState.UNKNOWN, (RowState.IN_FLIGHT,))
            else:
                await journal.release(ordered)
                model.move(seqs, RowState.PENDING, (RowState.IN_FLIGHT,))
            assert await observed(journal) == model.rows, f"step {step}: {action} {ordered}"
            counts = await journal.counts()
            expected = collections.Counter(state for state, _, _ in model.rows.values())
            assert {state: counts.of(state) for state in RowState} == {
                state: expected[state] for state in RowState
            }
            tallies = await journal.tally([RowState.IN_FLIGHT])
            assert sum(t.rows for t in tallies) == expected[RowState.IN_FLIGHT]
            if step == 40:  # the process dies: what was in flight is unknown from now on
                await journal.aclose()
                journal = await SQLiteJournal.open(path)
                recovery = await journal.recover()
                assert recovery.became_unknown == expected[RowState.IN_FLIGHT]
                model.move(set(model.rows), RowState.UNKNOWN, (RowState.IN_FLIGHT,))
                assert await observed(journal) == model.rows
                await handed_out_are_the_pending(journal, model)
        await journal.recover()  # a new session: what it hands out
        model.move(set(model.rows), RowState.UNKNOWN, (RowState.IN_FLIGHT,))
        await handed_out_are_the_pending(journal, model)
    finally:
        await journal.aclose()


async def handed_out_are_the_pending(journal: SQLiteJournal, model: Schema3Model) -> None:
    """A session's ``next_rows``, a few at a time, hands out exactly the pending rows, in
    order: never an accepted one (written pending, held by a landed run), never twice."""
    handed: list[int] = []
    while rows := await journal.next_rows(3):
        handed.extend(r.seq for r in rows)
    pending = [seq for seq, (state, _, _) in model.rows.items() if state is RowState.PENDING]
    assert handed == sorted(pending)


# -- calls from many tasks at once (one connection: one call at a time, thread or process) --


async def test_calls_from_many_tasks_each_get_their_own_answer(journal: SQLiteJournal) -> None:
    """Calls made at once run one at a time (in a worker thread, or the child process):
    every caller gets its own call's answer, errors included."""
    await journal.append([row(seq) for seq in range(1, 41)], done=True)
    answers: dict[str, object] = {}

    async def deliver(seq: int) -> None:
        answers[f"id-{seq}"] = await journal.record_delivery(f"id-{seq}", DeliveryStatus.DELIVERED)

    async def mark_twice(global_id: str) -> None:
        try:
            await journal.mark_in_flight([40], global_id)
        except JournalError as error:
            answers[global_id] = error
        else:
            answers[global_id] = "marked"

    async with anyio.create_task_group() as tasks:
        for seq in range(1, 31):
            tasks.start_soon(deliver, seq)
        tasks.start_soon(deliver, 999)  # no such message
        tasks.start_soon(mark_twice, "g1")
    await journal.record_accepted([40], totals("g1"))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(mark_twice, "g2")  # row 40 has its outcome now
        for seq in range(31, 39):
            tasks.start_soon(deliver, seq)
    assert answers.pop("id-999") is False
    assert answers.pop("g1") == "marked"
    refused = answers.pop("g2")
    assert isinstance(refused, JournalError)
    assert "already have an outcome" in str(refused)
    assert answers == {f"id-{seq}": True for seq in range(1, 39)}
    assert await delivered_seqs(journal) == list(range(1, 39))
    assert (await journal.counts()).accepted == 1


@pytest.mark.parametrize("seed", range(8))
async def test_a_cancelled_call_either_ran_and_answered_or_never_ran(
    journal: SQLiteJournal, seed: int
) -> None:
    """Callers cancelled at random moments: a call still waiting for its turn is withdrawn
    (its caller sees the cancellation, the journal never sees the call); a call under way
    in the worker thread or the child process ends, and its caller gets the answer (a call
    abandoned there would be applied unanswered). The journal then works on."""
    rng = random.Random(seed)
    await journal.append([row(seq) for seq in range(1, 61)], done=True)
    answered: set[int] = set()
    scopes: list[anyio.CancelScope] = []
    async with anyio.create_task_group() as tasks:
        for seq in range(1, 61):
            scopes.append(scope := anyio.CancelScope())
            tasks.start_soon(deliver_in_scope, journal, seq, scope, answered)
        for scope in rng.sample(scopes, 40):  # spread over the calls' turns
            await anyio.sleep(rng.choice([0, 0, 0.0002, 0.001]))
            scope.cancel()
    assert set(await delivered_seqs(journal)) == answered
    assert await journal.record_delivery("id-60", DeliveryStatus.DELIVERED)
    assert (await journal.counts()).pending == 60


async def test_cancelling_every_waiting_call_at_once_leaves_the_journal_working(
    journal: SQLiteJournal,
) -> None:
    """The first caller answered cancels every other caller at once: the withdrawn calls
    never run, those that ran answered, and the next call is not left waiting for its turn
    (the journal's turns are not lost with their cancelled waiters)."""
    await journal.append([row(seq) for seq in range(1, 41)], done=True)
    answered: set[int] = set()
    scopes: list[anyio.CancelScope] = []

    def cancel_the_others() -> None:
        if len(answered) == 1:  # back first: before anyone else resumes
            for other in scopes:
                other.cancel()

    async with anyio.create_task_group() as tasks:
        for seq in range(1, 40):
            scopes.append(scope := anyio.CancelScope())
            tasks.start_soon(deliver_in_scope, journal, seq, scope, answered, cancel_the_others)
    assert set(await delivered_seqs(journal)) == answered
    assert len(answered) < 39
    with anyio.fail_after(10):
        assert await journal.record_delivery("id-40", DeliveryStatus.DELIVERED)


@HOSTS
async def test_closing_lets_the_calls_already_made_finish(tmp_path: Path, process: bool) -> None:
    """``aclose()`` waits for the calls made before it; a call made after it is refused."""
    journal = await SQLiteJournal.open(tmp_path / "closing.journal", create=True, process=process)
    await journal.create(DEFINITION)
    await journal.append([row(seq) for seq in range(1, 11)], done=True)
    answers: list[bool] = []
    calling: list[int] = []
    all_calling = anyio.Event()

    async def deliver(seq: int) -> None:
        calling.append(seq)  # the call is made before its first checkpoint
        if len(calling) == 10:
            all_calling.set()
        answers.append(await journal.record_delivery(f"id-{seq}", DeliveryStatus.DELIVERED))

    async with anyio.create_task_group() as tasks:
        for seq in range(1, 11):
            tasks.start_soon(deliver, seq)
        await all_calling.wait()  # each backend starts its tasks in its own order
        await journal.aclose()
    assert answers == [True] * 10
    with pytest.raises(JournalError, match="closed"):
        await journal.counts()
    async with await SQLiteJournal.open(tmp_path / "closing.journal") as reopened:
        assert (await reopened.counts()).deliveries == {DeliveryStatus.DELIVERED: 10}
