"""Infrastructure errors are never message outcomes: a campaign on the SQLite journal whose
rate limiter or journal fails stops cleanly, counts nothing failed, and a later run
finishes it. (The Redis versions, with a real outage, are in scaleout/test_outage.py.)"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from agile_async import BatcherStoppedError, Cost, RequestTotals
from agile_async.campaigns import Campaign, JournalError, OutgoingRow, SQLiteJournal
from agile_async.testing import FakeAgileServer

pytestmark = pytest.mark.anyio

TOTAL = 60


class BrokenLimiter:
    """A shared limiter whose backend goes away after ``grants`` requests."""

    def __init__(self, grants: int) -> None:
        self.grants = grants

    async def acquire(self, cost: Cost) -> None:
        if self.grants <= 0:
            raise OSError("the limiter's backend is gone")
        self.grants -= 1

    def penalize(self, retry_after: float | None) -> None:
        pass


class FlakyJournal(SQLiteJournal):
    """An SQLite journal one of whose calls starts failing after ``ok`` successful calls."""

    failing: str = ""
    ok: int = 0

    def _trip(self, name: str) -> None:
        if name == self.failing:
            if self.ok <= 0:
                raise OSError(f"{name}: the disk went away")
            self.ok -= 1

    async def next_rows(self, limit: int) -> Sequence[OutgoingRow]:
        self._trip("next_rows")
        return await super().next_rows(limit)

    async def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        self._trip("mark_in_flight")
        await super().mark_in_flight(seqs, global_id)

    async def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        self._trip("record_accepted")
        await super().record_accepted(seqs, totals)


def recipients(path: Path) -> Path:
    lines = ["destination"] + [f"+3934{i:08d}" for i in range(1, TOTAL + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


async def create(tmp_path: Path, failing: str = "", ok: int = 0) -> Campaign:
    journal = await FlakyJournal.open(tmp_path / "c.journal", create=True)
    assert isinstance(journal, FlakyJournal)
    journal.failing, journal.ok = failing, ok
    campaign = await Campaign.create(
        journal, recipients(tmp_path / "r.csv"), body="Hi", sender="Shop"
    )
    await campaign.load()
    return campaign


async def finish_later(tmp_path: Path, fake: FakeAgileServer) -> collections.Counter[str]:
    """A later run (a new process, as it were) sends what is left."""
    async with await Campaign.open(tmp_path / "c.journal") as campaign, fake.client() as client:
        result = await campaign.run(client, max_messages=5)
    assert result.counts.pending == result.counts.in_flight == 0
    assert result.counts.failed == 0
    ids = collections.Counter(m.message_id for m in fake.accepted)
    assert max(ids.values()) == 1
    return ids


async def test_a_failing_limiter_fails_no_row(tmp_path: Path) -> None:
    fake = FakeAgileServer(credit=Decimal(100))
    async with await create(tmp_path) as campaign, fake.client() as client:
        result = await campaign.run(client, limiter=BrokenLimiter(3), max_messages=5)
    assert isinstance(result.stopped_by, BatcherStoppedError)
    assert isinstance(result.stopped_by.__cause__, OSError)
    counts = result.counts
    assert counts.failed == counts.unknown == counts.in_flight == 0
    assert counts.accepted <= 15  # at most the 3 requests granted went out
    assert counts.pending == TOTAL - counts.accepted
    assert len(await finish_later(tmp_path, fake)) == TOTAL


@pytest.mark.parametrize(("failing", "ok"), [("next_rows", 1), ("mark_in_flight", 2)])
async def test_a_journal_that_cannot_hand_out_or_mark_rows_fails_none(
    tmp_path: Path, failing: str, ok: int
) -> None:
    fake = FakeAgileServer(credit=Decimal(100))
    async with await create(tmp_path, failing, ok) as campaign, fake.client() as client:
        result = await campaign.run(client, max_messages=5)
    assert isinstance(result.stopped_by, JournalError)
    assert isinstance(result.stopped_by.__cause__, OSError)  # the cause is kept
    counts = result.counts
    assert counts.failed == counts.unknown == counts.in_flight == 0
    assert counts.pending + counts.accepted == TOTAL
    assert len(await finish_later(tmp_path, fake)) == TOTAL


async def test_an_outcome_that_cannot_be_recorded_is_unknown_never_failed(
    tmp_path: Path,
) -> None:
    fake = FakeAgileServer(credit=Decimal(100))
    async with await create(tmp_path, "record_accepted", ok=2) as campaign:
        async with fake.client() as client:
            result = await campaign.run(client, max_messages=5, max_in_flight=1)
        assert isinstance(result.stopped_by, JournalError)
        assert result.counts.failed == 0
        assert result.counts.in_flight == 5  # sent, its acceptance not recorded
    ids = await finish_later(tmp_path, fake)
    async with await Campaign.open(tmp_path / "c.journal", read_only=True) as campaign:
        counts = await campaign.journal.counts()
    assert (counts.unknown, counts.accepted, counts.failed) == (5, TOTAL - 5, 0)
    assert len(ids) == TOTAL  # the unknown batch went once, and was not sent again
