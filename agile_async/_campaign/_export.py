"""Outcomes to CSV: one line per row, in input order, streamed from the journal.

``id`` is the id the input gave the row, for every row: a row refused at load keeps its own
(a duplicate's or one too long too, see :class:`~._journal.LoadedRow`), so an operator can
match every line to their records; rows the input gave no id have the generated one.
``error_message`` of a row refused at load starts with its file line (``line 92: ...``).
``delivery`` is the message's status under the delivery rule (delivered only when every
part is), ``parts_delivered`` how many of its parts are, and ``note`` says "confirmed by
delivery report" for an accepted row whose request's answer was lost and which a report
proved the provider took. New columns are only ever added at the end.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import AsyncIterator, Sequence
from typing import IO

import anyio.to_thread

from ._journal import CONFIRMED_BY_REPORT, JournalRow

__all__ = ["EXPORT_COLUMNS", "write_csv"]

#: The export's header, in order.
EXPORT_COLUMNS = (
    "seq",
    "id",
    "destination",
    "state",
    "attempts",
    "global_id",
    "parts",
    "encoding",
    "error",
    "error_code",
    "error_message",
    "delivery",
    "delivered_at",
    "parts_delivered",
    "note",
)


def _line(row: JournalRow) -> tuple[object, ...]:
    failure = row.failure
    return (
        row.seq,
        row.message_id or "",
        row.destination,
        row.state.value,
        row.attempts,
        row.global_id or "",
        row.parts,
        row.encoding or "",
        "" if failure is None else failure.kind,
        "" if failure is None or failure.code is None else failure.code,
        "" if failure is None else failure.message,
        "" if row.delivery is None else row.delivery.name.lower(),
        "" if row.delivered_at is None else row.delivered_at.isoformat(),
        row.parts_delivered,
        CONFIRMED_BY_REPORT if row.confirmed_by_report else "",
    )


def _write(writer: csv.Writer, rows: Sequence[JournalRow]) -> None:  # type: ignore[name-defined]
    writer.writerows(_line(row) for row in rows)


async def write_csv(
    rows: AsyncIterator[Sequence[JournalRow]], file: str | os.PathLike[str] | IO[str]
) -> int:
    """Write ``rows`` as CSV with :data:`EXPORT_COLUMNS` to a path or an open text file.

    Returns how many rows were written. Writes run in a worker thread.
    """
    if isinstance(file, (str, os.PathLike)):
        handle = await anyio.to_thread.run_sync(
            functools.partial(open, file, "w", newline="", encoding="utf-8")
        )
        try:
            return await _write_all(rows, handle)
        finally:
            await anyio.to_thread.run_sync(handle.close)
    return await _write_all(rows, file)


async def _write_all(rows: AsyncIterator[Sequence[JournalRow]], handle: IO[str]) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    async for chunk in rows:
        await anyio.to_thread.run_sync(_write, writer, chunk)
        count += len(chunk)
    await anyio.to_thread.run_sync(handle.flush)
    return count
