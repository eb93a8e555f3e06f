"""Delivery reports into the journal: the sandbox's, as they come, and saved ones.

The sandbox's provider posts each report to a callback on its own server thread; the
callback only queues it (thread-safe), and a task in the CLI's event loop records what has
queued a few times a second, in one journal write each time: what a webhook receiver does
for a real account (``agile_async.webhooks``), in process.

For a real account the reports reach the user's own webhook; ``campaign reports`` records
the bodies it saved (JSON lines), which is how a CLI user confirms unknown messages.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
import attrs

from agile_async.campaigns import Campaign, DeliveryUpdate, Journal, JournalError, SQLiteJournal
from agile_async.webhooks import InvalidDeliveryReportError, parse_delivery_reports

__all__ = ["SandboxReports", "SavedReports", "SavedReportsSummary"]

#: Reports recorded per journal write.
_WRITE_CHUNK = 5000
#: Refused lines listed by name (the rest are counted).
_LISTED_PROBLEMS = 5


class SandboxReports:
    """Delivery reports the sandbox posted, waiting to be recorded."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Mapping[str, Any]] = queue.SimpleQueue()

    def callback(self, report: Mapping[str, Any]) -> None:
        """The sandbox's delivery callback (any thread)."""
        self._queue.put(report)

    async def drain(self, campaign: Campaign) -> int:
        """Record every queued report; how many matched a message of the campaign."""
        bodies: list[Mapping[str, Any]] = []
        while True:
            try:
                bodies.append(self._queue.get_nowait())
            except queue.Empty:
                break
        reports = [report for body in bodies for report in parse_delivery_reports(body)]
        return await campaign.record_deliveries(reports)

    async def settle(self, campaign: Campaign, fake: Any, *, grace: float = 5.0) -> None:
        """After a run: post what the sandbox still holds and record it, until two rounds
        in a row bring nothing new (the provider queues a request's reports only after
        answering it, so the last ones may trail the run by a moment)."""
        quiet = 0
        with anyio.move_on_after(grace):
            while quiet < 2:
                await fake.flush_reports()
                quiet = 0 if await self.drain(campaign) else quiet + 1
                await anyio.sleep(0.05)

    async def pump(self, campaign: Campaign, interval: float = 0.25) -> None:
        """Record reports as they come, until cancelled."""
        while True:
            await self.drain(campaign)
            await anyio.sleep(interval)


@attrs.frozen(kw_only=True)
class SavedReportsSummary:
    """What ``campaign reports`` did.

    Attributes:
        reports: reports read (one per SMS part).
        matched: reports for messages of this campaign (the rest are someone else's).
        confirmed: messages whose unknown outcome the reports confirmed (now accepted).
        refused: lines that are not delivery reports.
        problems: the first refused lines, as ``file:line: why``.
    """

    reports: int
    matched: int
    confirmed: int
    refused: int
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "reports": self.reports,
            "matched": self.matched,
            "confirmed": self.confirmed,
            "refused": self.refused,
            "problems": list(self.problems),
        }


class SavedReports:
    """Delivery report bodies saved in files (JSON lines), to record in a journal."""

    def __init__(self, files: Sequence[Path]) -> None:
        self._files = files

    async def record(self, journal: Path) -> SavedReportsSummary:
        """Record every report; unreadable lines are counted and named, not fatal."""
        # Not exclusive: reports may be recorded while the campaign runs (SQLite serialises
        # the writes); the journal's rule makes recording the same reports twice harmless.
        async with await SQLiteJournal.open(journal, exclusive=False) as store:
            if await store.definition() is None:
                raise JournalError(f"{journal} holds no campaign")
            return await self.record_into(store)

    async def record_into(self, store: Journal) -> SavedReportsSummary:
        """Record every report in an open journal (SQLite, or a campaign in Redis)."""
        before = (await store.counts()).confirmed
        reports = matched = refused = 0
        problems: list[str] = []
        for path in self._files:
            lines = _lines(path)
            try:
                while True:
                    batch = await anyio.to_thread.run_sync(_next_lines, lines, _WRITE_CHUNK)
                    if not batch:
                        break
                    updates: list[DeliveryUpdate] = []
                    for number, line in batch:
                        try:
                            parsed = parse_delivery_reports(line)
                        except InvalidDeliveryReportError as error:
                            refused += 1
                            if len(problems) < _LISTED_PROBLEMS:
                                problems.append(f"{_name(path)}:{number}: {error}")
                            continue
                        updates.extend(DeliveryUpdate.from_report(r) for r in parsed)
                    reports += len(updates)
                    if updates:
                        matched += await store.record_deliveries(updates)
            finally:
                lines.close()
        confirmed = (await store.counts()).confirmed - before
        return SavedReportsSummary(
            reports=reports,
            matched=matched,
            confirmed=confirmed,
            refused=refused,
            problems=tuple(problems),
        )


def _name(path: Path) -> str:
    return "stdin" if str(path) == "-" else str(path)


def _lines(path: Path) -> Generator[tuple[int, str], None, None]:
    """The non-blank lines of ``path`` (``-``: standard input), numbered from 1 (bytes that
    are not UTF-8 become U+FFFD, so such a line is refused as not JSON, not fatal)."""
    if str(path) == "-":
        handle: IO[str] = sys.stdin
    else:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line
    finally:
        if handle is not sys.stdin:
            handle.close()


def _next_lines(lines: Generator[tuple[int, str], None, None], limit: int) -> list[tuple[int, str]]:
    batch: list[tuple[int, str]] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= limit:
            break
    return batch
