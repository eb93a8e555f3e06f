"""The embedded SQLite journal: one file per campaign, stdlib ``sqlite3``, off the event loop.

Durability. The database runs in WAL mode. Marking rows in flight commits with
``synchronous=FULL`` (the WAL is fsynced before the request is allowed to go out); every
other write commits with ``synchronous=NORMAL``, which survives a killed process (the OS
still holds the written pages) and, after a power loss, can only lose the *latest outcomes*:
their rows are then still in flight, so they become unknown, never re-sent. A crash can make
the journal more cautious, never make it send twice.

Threads. ``sqlite3`` blocks, so every call runs in a worker thread
(:func:`anyio.to_thread.run_sync`), one at a time under an :class:`anyio.Lock`: one
connection, used by one thread at a time, on asyncio and trio alike. Opened with
``process=True``, the same ``_Store`` runs in a child process instead
(:mod:`._store_process`), its calls made one at a time under the same lock. While a
campaign runs, an advisory lock on ``<journal>.lock`` keeps a second process from running
it too (POSIX ``flock``; released by the OS when the process dies, even by SIGKILL).

Schema (``PRAGMA user_version = 5``)::

    campaign  one row: the definition (with how the input is read: its encoding and CSV
              delimiter), the input's SHA-256, how far loading came
    bodies    id | hash (16 bytes of SHA-256) | text: a body repeated in nearby rows (a
              campaign without variables) is stored once
    requests  one row per request that went out: globalId, when, and the provider's totals
    rows      seq (input record number) | message_id (unique) | destination | body |
              parts | encoding | state | attempts | request | error_kind, error_code,
              error_message | delivery, delivered_at, delivery_total, delivery_parts |
              confirmed | input_id (the id the input gave a row refused as a duplicate:
              ``message_id`` is unique, so such a row has none)
    flights   request | first | last: the runs of rows a request carries, from the moment
              it is marked in flight until their outcome is recorded (then the runs are
              cut away); usually one record per request
    landed    first (key) | last | request | attempts: the runs of rows a request got
              accepted, all written ``pending``; usually one record per request
    row_states  a view: each row as status and export report it (a pending row that a
              landed run holds is accepted, with that run's request and attempts; one that
              a flight covers is in flight, with that request and one more attempt)

Marking a request in flight writes one record (its runs of rows), and so does its
acceptance: the rows stay written ``pending``. Only rows that fail or become unknown (few)
are rewritten with their outcome (``attempts`` and ``request`` then count the requests that
carried them, bisection's halves included). Schema 3 wrote every row twice (in flight,
then its outcome), schema 4 once (its outcome): each write of a row costs about 2 µs (SQLite
rewrites the whole record), a sixth of the send phase's time. Every reader takes the
covered rows as in flight or accepted: ``row_states``, :meth:`_Store.counts` (a landed
run's rows are a subtraction: they are all written pending), ``next_rows`` (which walks
around landed runs), ``mark_in_flight``'s check and ``record_failed``; and
:meth:`_Store.recover` turns the rows of flights unknown like rows a schema-3 journal left
``in_flight``.

``delivery``, ``delivery_total`` and ``delivery_parts`` (JSON: part number -> status code) are
a message's :class:`~agile_async.campaigns.DeliveryState`, the tracker's rule; ``confirmed``
marks an accepted row that a delivery report confirmed after its request's answer was lost.

Older versions are upgraded in place when opened. Version 1 (before per-part delivery
states) gets three columns; its rows keep the message-level delivery status they had (their
next report is applied on top of it), and its unknown rows that already had a report become
accepted, confirmed by it. Version 2 (before input encodings and delimiters) gets three
columns: its input was read as UTF-8 and, for CSV, comma-separated, which is what they say.
Version 3 (rows written ``in_flight`` one by one) gets ``flights``; its rows left
``in_flight`` by a dead run read and recover as they did. Version 4 (accepted rows
rewritten one by one) gets ``landed`` and the view that reads it; its rows keep their
states. An older agile-async refuses a journal of a newer schema (reading landed rows as
pending would send them again).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import operator
import os
import sqlite3
import sys
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from .._delivery import DeliveryState
from .._exceptions import JournalError
from .._models import DeliveryStatus
from .._setting_validators import check_duration, check_flag
from .._tickets import RequestTotals
from ._definition import COLUMNS, definition_from_columns, definition_to_columns
from ._journal import (
    CRASH_FAILURE,
    CampaignDefinition,
    DeliveryUpdate,
    Failure,
    JournalRow,
    LoadedRow,
    LoadState,
    OutgoingColumns,
    OutgoingRow,
    Recovery,
    RowState,
    StateCounts,
    Tally,
    taken_id_failure,
)
from ._store_process import StoreProcess

__all__ = ["SQLiteJournal"]

T = TypeVar("T")

#: Identifies our files (``PRAGMA application_id``): "AGLS".
_APPLICATION_ID = 0x41474C53
_SCHEMA_VERSION = 5

_SCHEMA = """
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
    loading_done INTEGER NOT NULL DEFAULT 0,
    source_encoding TEXT NOT NULL DEFAULT 'utf-8',
    source_delimiter TEXT
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
    delivered_at TEXT,
    delivery_total INTEGER NOT NULL DEFAULT 0,
    delivery_parts TEXT,
    confirmed INTEGER NOT NULL DEFAULT 0,
    input_id TEXT
);
"""

#: The requests in flight: one record per run of rows a request carries (schema 4).
_FLIGHTS = """
CREATE TABLE flights (
    request INTEGER NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL
);
"""


def _holding(column: str, row: str) -> str:
    """SQL for ``column`` of the landed run that starts nearest at or before ``row`` (a
    probe of the key, in reverse): the run that holds ``row`` if any does, which its
    ``last`` tells. Every question about landed rows is asked through it."""
    return (
        f"(SELECT h.{column} FROM landed AS h WHERE h.first <= {row} ORDER BY h.first DESC LIMIT 1)"
    )


#: The runs of rows accepted by a request, written once per request (schema 5). The runs
#: never overlap, so ``first`` is the key: the run holding a row is one probe of it.
_LANDED = """
CREATE TABLE landed (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    request INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
"""

#: Each row as status and export report it: a row written ``pending`` is accepted if a
#: landed run holds it (with that run's request and attempts), in flight if a flight does.
_ROW_STATES = """
CREATE VIEW row_states AS SELECT r.seq AS seq, r.message_id AS message_id,
    r.destination AS destination, r.body AS body, r.parts AS parts, r.encoding AS encoding,
    CASE WHEN r.state <> 'pending' THEN r.state
        WHEN l.first IS NOT NULL THEN 'accepted'
        WHEN EXISTS (SELECT 1 FROM flights AS f WHERE r.seq BETWEEN f.first AND f.last)
        THEN 'in_flight' ELSE 'pending' END AS state,
    r.attempts + CASE WHEN r.state <> 'pending' THEN 0
        WHEN l.first IS NOT NULL THEN l.attempts
        ELSE (SELECT count(*) FROM flights AS f WHERE r.seq BETWEEN f.first AND f.last)
        END AS attempts,
    CASE WHEN r.state <> 'pending' THEN r.request
        WHEN l.first IS NOT NULL THEN l.request
        ELSE coalesce((
            SELECT max(f.request) FROM flights AS f WHERE r.seq BETWEEN f.first AND f.last
        ), r.request) END AS request,
    r.error_kind AS error_kind, r.error_code AS error_code, r.error_message AS error_message,
    r.delivery AS delivery, r.delivered_at AS delivered_at,
    r.delivery_total AS delivery_total, r.delivery_parts AS delivery_parts,
    r.confirmed AS confirmed, r.input_id AS input_id
FROM rows AS r LEFT JOIN landed AS l ON r.state = 'pending'
    AND l.first = {holding} AND l.last >= r.seq;
""".format(holding=_holding("first", "r.seq"))

_SCHEMA += _FLIGHTS + _LANDED + _ROW_STATES

#: From schema 1 to 2: per-part delivery states, and rows confirmed by a delivery report.
_UPGRADE_FROM_1 = """
ALTER TABLE rows ADD COLUMN delivery_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rows ADD COLUMN delivery_parts TEXT;
ALTER TABLE rows ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
UPDATE rows SET state = 'accepted', confirmed = 1, error_kind = NULL, error_code = NULL,
    error_message = NULL WHERE state = 'unknown' AND delivery IS NOT NULL;
"""

#: From schema 2 to 3: how the input is read (a version-2 campaign read UTF-8, and CSV with
#: commas), and the input's id of a row refused as a duplicate.
_UPGRADE_FROM_2 = """
ALTER TABLE campaign ADD COLUMN source_encoding TEXT NOT NULL DEFAULT 'utf-8';
ALTER TABLE campaign ADD COLUMN source_delimiter TEXT;
UPDATE campaign SET source_delimiter = ',' WHERE source_format = 'csv';
ALTER TABLE rows ADD COLUMN input_id TEXT;
"""

#: From schema 3 to 4: requests in flight recorded once each (``flights``), not per row.
#: A schema-3 row marked ``in_flight`` keeps that state, which every reader still takes.
#: (Schema 4 created ``row_states`` here; the upgrade to 5 replaces it.)
_UPGRADE_FROM_3 = _FLIGHTS

#: From schema 4 to 5: accepted runs recorded once per request (``landed``), not per row;
#: the view reads them.
_UPGRADE_FROM_4 = "DROP VIEW IF EXISTS row_states;" + _LANDED + _ROW_STATES

#: The upgrade from each older version to the next.
_UPGRADES = {1: _UPGRADE_FROM_1, 2: _UPGRADE_FROM_2, 3: _UPGRADE_FROM_3, 4: _UPGRADE_FROM_4}

#: Bodies remembered while loading, to store a body repeated in nearby rows once.
_RECENT_BODIES = 1024

_PENDING = RowState.PENDING.value
_IN_FLIGHT = RowState.IN_FLIGHT.value
_ACCEPTED = RowState.ACCEPTED.value
_FAILED = RowState.FAILED.value
_UNKNOWN = RowState.UNKNOWN.value

#: The rows ``counts()`` groups: neither pending nor accepted (failed and unknown rows are
#: few), or with a delivery report. Pending rows are counted apart, accepted ones are the rest.
_COUNT_OTHERS = (
    "SELECT state, delivery, confirmed, count(*) FROM rows"
    " WHERE state NOT IN (?, ?) OR delivery IS NOT NULL OR confirmed <> 0"
    " GROUP BY state, delivery, confirmed"
)

#: Pending rows from a cursor, in order. CROSS JOIN keeps ``rows`` the outer loop: a walk
#: along seq from the cursor.
_NEXT_ROWS = (
    "SELECT r.destination, b.text, r.message_id, r.seq FROM rows AS r"
    " CROSS JOIN bodies AS b ON b.id = r.body"
    " WHERE r.seq > ? AND r.state = ? ORDER BY r.seq LIMIT ?"
)
#: The same, up to (not including) a row number.
_NEXT_ROWS_BEFORE = _NEXT_ROWS.replace("r.seq > ?", "r.seq > ? AND r.seq < ?")
#: The end of the last landed run starting at or before a row.
_LANDED_HOLDING = "SELECT " + _holding("last", "?")
#: The first landed run starting after a row.
_LANDED_AHEAD = "SELECT first FROM landed WHERE first > ? ORDER BY first LIMIT 1"

#: ``next_rows``' columns: ``(destination, body, message_id)``, and ``seq``.
_MESSAGE = operator.itemgetter(0, 1, 2)
_SEQ = operator.itemgetter(3)


def _now() -> str:
    return _timestamp(datetime.now(timezone.utc))


def body_hash(body: str) -> bytes:
    """The key a body is stored under: 128 bits of its SHA-256."""
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).digest()[:16]


#: How long opening waits for a run lock held by another process before calling the
#: journal in use: a run killed outright leaves its journal's process (``process=True``)
#: closing the journal for a moment after, and a resume started at once must not fail.
_LOCK_GRACE = 1.5


class _RunLock:
    """An advisory, process-wide lock on ``<journal>.lock`` (POSIX ``flock``).

    The OS drops it when the process dies, so a SIGKILL never leaves a stale lock behind.
    Where ``fcntl`` does not exist (Windows) it does nothing: run one process per journal.
    """

    def __init__(self, path: Path) -> None:
        self._path = path.with_name(path.name + ".lock")
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - no flock there
            return
        handle = open(self._path, "ab")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + _LOCK_GRACE
        while not _locked(handle):
            if time.monotonic() >= deadline:
                handle.close()
                raise JournalError(
                    f"the journal {self._path.with_suffix('')} is in use by another process "
                    "(a campaign runs from one process at a time)"
                )
            time.sleep(0.02)
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def _locked(handle: IO[bytes]) -> bool:
    """Whether this took the file's exclusive lock (``False``: another process holds it)."""
    import fcntl  # POSIX: _RunLock does not lock on Windows

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _Store:
    """The synchronous journal: every method runs in a worker thread (or in the journal's
    process), one at a time."""

    def __init__(self, path: Path, *, create: bool, exclusive: bool) -> None:
        self.path = path
        self._lock = _RunLock(path)
        if not create and not path.exists():
            raise JournalError(f"no journal at {path}")
        if exclusive:
            self._lock.acquire()
        try:
            if create and not path.exists():
                # Phone numbers and texts are personal data: readable by the owner only
                # (SQLite gives its -wal and -shm files the same permissions).
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            try:
                self._prepare(create)
            except BaseException:
                self._conn.close()  # a journal refused is not left open (3.13 warns)
                raise
        except sqlite3.DatabaseError as error:
            self._lock.release()
            raise JournalError(f"{path} is not a usable journal: {error}") from None
        except BaseException:
            self._lock.release()
            raise
        self._cursor = 0
        self._recent_bodies: dict[str, int] = {}

    def _prepare(self, create: bool) -> None:
        conn = self._conn
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if application_id == 0 and version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise JournalError(f"{self.path} is an SQLite file, but not a campaign journal")
            if not create:
                raise JournalError(f"{self.path} holds no campaign")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"PRAGMA application_id={_APPLICATION_ID};"
                + f"PRAGMA user_version={_SCHEMA_VERSION};"
                + "COMMIT;"
            )
        elif application_id != _APPLICATION_ID:
            raise JournalError(f"{self.path} is an SQLite file, but not a campaign journal")
        elif version in _UPGRADES:
            self._upgrade()
        elif version != _SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} has journal schema {version}; this agile-async reads "
                f"1 to {_SCHEMA_VERSION}"
            )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-16000")

    def _upgrade(self) -> None:
        """Bring an older schema to the current one in one transaction, once (another
        process may be upgrading it right now)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            while version in _UPGRADES:
                for statement in filter(None, map(str.strip, _UPGRADES[version].split(";"))):
                    conn.execute(statement)
                version += 1
            conn.execute(f"PRAGMA user_version={version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._lock.release()

    # -- definition and loading --------------------------------------------------------

    def create(self, d: CampaignDefinition) -> None:
        with self._transaction() as conn:
            if conn.execute("SELECT count(*) FROM campaign").fetchone()[0]:
                raise JournalError(f"{self.path} already holds a campaign")
            conn.execute(
                f"INSERT INTO campaign (id, {', '.join(COLUMNS)}) VALUES (1{', ?' * len(COLUMNS)})",
                definition_to_columns(d),
            )

    def definition(self) -> CampaignDefinition | None:
        row = self._conn.execute(f"SELECT {', '.join(COLUMNS)} FROM campaign").fetchone()
        if row is None:
            return None
        return definition_from_columns(dict(zip(COLUMNS, row, strict=True)))

    def load_state(self) -> LoadState:
        row = self._conn.execute("SELECT loaded_through, loading_done FROM campaign").fetchone()
        if row is None:
            raise JournalError(f"{self.path} holds no campaign")
        return LoadState(int(row[0]), bool(row[1]))

    def append(self, rows: Sequence[LoadedRow], done: bool) -> None:
        try:
            self._append(rows, done)
        except BaseException:
            self._recent_bodies.clear()  # they may name bodies that were rolled back
            raise

    def _append(self, rows: Sequence[LoadedRow], done: bool) -> None:
        with self._transaction() as conn:
            through = conn.execute("SELECT loaded_through FROM campaign").fetchone()[0]
            rows = [row for row in rows if row.seq > through]
            # Bodies get increasing ids (appended, never a random B-tree insert: that is
            # what keeps loading a million rows linear); a body seen recently is reused.
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM bodies").fetchone()[0]
            recent = self._recent_bodies
            new_bodies: list[tuple[int, bytes, str]] = []
            values: list[tuple[object, ...]] = []
            for row in rows:
                body_id = None
                if row.body is not None:
                    body_id = recent.get(row.body)
                    if body_id is None:
                        body_id = next_id
                        next_id += 1
                        new_bodies.append((body_id, body_hash(row.body), row.body))
                        if len(recent) >= _RECENT_BODIES:
                            recent.clear()
                        recent[row.body] = body_id
                failure = row.failure
                values.append(
                    (
                        row.seq,
                        row.message_id,
                        row.destination,
                        body_id,
                        row.parts,
                        row.encoding,
                        _PENDING if failure is None else _FAILED,
                        None if failure is None else failure.kind,
                        None if failure is None else failure.code,
                        None if failure is None else failure.message,
                    )
                )
            conn.executemany("INSERT INTO bodies (id, hash, text) VALUES (?, ?, ?)", new_bodies)
            inserted = conn.executemany(
                "INSERT INTO rows (seq, message_id, destination, body, parts, encoding,"
                " state, error_kind, error_code, error_message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                values,
            ).rowcount
            if inserted != len(values):
                self._record_duplicates(conn, rows)
            if rows:
                through = rows[-1].seq
            conn.execute(
                "UPDATE campaign SET loaded_through = ?, loading_done = ?", (through, int(done))
            )

    @staticmethod
    def _record_duplicates(conn: sqlite3.Connection, rows: Sequence[LoadedRow]) -> None:
        """Rows whose id another row already has: stored failed, their id kept beside
        (``input_id``: ``message_id`` is unique)."""
        first, last = rows[0].seq, rows[-1].seq
        stored = {
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM rows WHERE seq BETWEEN ? AND ?", (first, last)
            )
        }
        for row in rows:
            if row.seq in stored:
                continue
            holder = conn.execute(
                "SELECT seq FROM rows WHERE message_id = ?", (row.message_id,)
            ).fetchone()
            failure = taken_id_failure(row, holder[0] if holder else None)
            conn.execute(
                "INSERT INTO rows (seq, message_id, input_id, destination, parts, encoding,"
                " state, error_kind, error_message) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.seq,
                    row.message_id,
                    row.destination,
                    row.parts,
                    row.encoding,
                    _FAILED,
                    failure.kind,
                    failure.message,
                ),
            )

    # -- sending -------------------------------------------------------------------------

    def recover(self, resend_unknown: bool, silent_for: timedelta | None) -> Recovery:
        self._cursor = 0
        with self._transaction() as conn:
            # The rows of requests still in flight from a dead session (the rows'
            # ``in_flight`` state of a schema-3 journal is taken the same way below).
            flights = _union(conn.execute("SELECT first, last FROM flights").fetchall())
            pieces = _pieces(conn, flights)
            # A report that arrived while the request was in flight proves it was taken.
            confirmed = _move(
                conn, pieces, f"state = ?, {_CONFIRM}", (_ACCEPTED,), _CARRIED, (), _REPORTED
            )
            unknown = _move(
                conn,
                pieces,
                "state = ?, error_kind = ?, error_code = NULL, error_message = ?",
                (_UNKNOWN, CRASH_FAILURE.kind, CRASH_FAILURE.message),
                _CARRIED,
                (),
            )
            conn.execute("DELETE FROM flights")
            confirmed += conn.execute(
                f"UPDATE rows SET state = ?, {_CONFIRM}"
                " WHERE state IN (?, ?) AND delivery IS NOT NULL",
                (_ACCEPTED, _IN_FLIGHT, _UNKNOWN),
            ).rowcount
            unknown += conn.execute(
                "UPDATE rows SET state = ?, error_kind = ?, error_code = NULL, error_message = ?"
                " WHERE state = ?",
                (_UNKNOWN, CRASH_FAILURE.kind, CRASH_FAILURE.message, _IN_FLIGHT),
            ).rowcount
            requeued = still_unknown = 0
            if resend_unknown:
                silent = ""
                params: list[object] = [_PENDING, _UNKNOWN]
                if silent_for is not None:
                    # Sent at least ``silent_for`` ago (a row with no request on record has
                    # no known send time: it is not taken for silent).
                    silent = " AND request IN (SELECT id FROM requests WHERE started_at <= ?)"
                    params.append(_timestamp(datetime.now(timezone.utc) - silent_for))
                requeued = conn.execute(
                    "UPDATE rows SET state = ?, error_kind = NULL, error_code = NULL,"
                    f" error_message = NULL WHERE state = ?{silent}",
                    params,
                ).rowcount
                still_unknown = conn.execute(
                    "SELECT count(*) FROM rows WHERE state = ?", (_UNKNOWN,)
                ).fetchone()[0]
        return Recovery(unknown, requeued, confirmed, still_unknown)

    def next_rows(self, limit: int) -> OutgoingColumns:
        conn = self._conn
        cursor = self._cursor
        found: list[tuple[Any, ...]] = []
        # Rows a landed run holds are written pending but accepted: the walk goes around
        # them, a run at a time (while sending, the runs all lie behind the cursor: two
        # probes of their key per call).
        while len(found) < limit:
            (holding,) = conn.execute(_LANDED_HOLDING, (cursor + 1,)).fetchone()
            if holding is not None and holding > cursor:
                cursor = holding  # inside a landed run: past it
                continue
            ahead = conn.execute(_LANDED_AHEAD, (cursor,)).fetchone()
            if ahead is None:
                found += conn.execute(_NEXT_ROWS, (cursor, _PENDING, limit - len(found)))
                break
            found += conn.execute(
                _NEXT_ROWS_BEFORE, (cursor, ahead[0], _PENDING, limit - len(found))
            )
            cursor = ahead[0] - 1
        if not found:
            return OutgoingColumns([], [])
        self._cursor = found[-1][3]
        # Two passes in C: the batcher's light rows, and the rows' numbers.
        return OutgoingColumns(list(map(_SEQ, found)), list(map(_MESSAGE, found)))

    def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        with self._transaction(durable=True) as conn:
            request = conn.execute(
                "INSERT INTO requests (global_id, started_at, messages) VALUES (?, ?, ?)",
                (global_id, _now(), len(seqs)),
            ).lastrowid
            # Every row written pending and held by no landed run (a half of this session's
            # request split by bisection is such a row too; a session starts by turning
            # the rows a schema-3 journal wrote in flight into unknown). The rows are read,
            # not written: the request is one record of its runs of rows.
            runs = _runs(seqs)
            ready = sum(
                conn.execute(
                    "SELECT count(*) FROM rows WHERE seq BETWEEN ? AND ? AND state = ?",
                    (*run, _PENDING),
                ).fetchone()[0]
                - _landed_within(conn, *run)  # written pending, but accepted
                for run in runs
            )
            wanted = sum(last - first + 1 for first, last in runs)
            if ready != wanted:
                raise JournalError(
                    f"{wanted - ready} of {wanted} rows already have an outcome; "
                    f"request {global_id} is not sent"
                )
            conn.executemany(
                "INSERT INTO flights (request, first, last) VALUES (?, ?, ?)",
                [(request, *run) for run in runs],
            )

    def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE requests SET accepted_at = ?, processed_messages = ?,"
                " processed_sms_parts = ?, credit = ? WHERE global_id = ?",
                (
                    _now(),
                    totals.processed_messages,
                    totals.processed_sms_parts,
                    str(totals.credit),
                    totals.global_id,
                ),
            )
            runs = _runs(seqs)
            pieces = _pieces(conn, runs)
            # Rows a request carried land as one record per piece: rewriting every row
            # cost about 2 µs a row, a sixth of the send phase. They are all written
            # pending (mark_in_flight saw to it, and nothing rewrites a carried row but its
            # outcome), so counting them is a subtraction. The others (an unknown row
            # accepted late) are rewritten.
            conn.executemany(
                "INSERT INTO landed (first, last, request, attempts) VALUES (?, ?, ?, ?)",
                [
                    (first, last, request, carriers)
                    for first, last, carriers, request in pieces
                    if carriers
                ],
            )
            self._land(
                conn,
                seqs,
                "state = ?, error_kind = NULL, error_code = NULL, error_message = NULL",
                (_ACCEPTED,),
                (),  # no carried piece is left: they landed
                (_IN_FLIGHT, _UNKNOWN),
                pieces=[piece for piece in pieces if not piece[2]],
                runs=runs,
            )

    def record_failed(self, seqs: Sequence[int], failure: Failure) -> None:
        with self._transaction() as conn:
            self._land(
                conn,
                seqs,
                "state = ?, error_kind = ?, error_code = ?, error_message = ?",
                (_FAILED, failure.kind, failure.code, failure.message),
                _CARRIED,
                (_PENDING, _IN_FLIGHT),
                where=_NOT_LANDED,  # written pending, but accepted: it keeps its outcome
            )

    def record_unknown(self, seqs: Sequence[int], failure: Failure) -> None:
        with self._transaction() as conn:
            pieces = _pieces(conn, _runs(seqs))
            # A report that arrived before the lost answer proves the request was taken.
            _move(
                conn,
                pieces,
                f"state = ?, {_CONFIRM}",
                (_ACCEPTED,),
                _CARRIED,
                (_IN_FLIGHT,),
                _REPORTED,
            )
            self._land(
                conn,
                seqs,
                "state = ?, error_kind = ?, error_code = ?, error_message = ?",
                (_UNKNOWN, failure.kind, failure.code, failure.message),
                _CARRIED,
                (_IN_FLIGHT,),
                pieces=pieces,
            )

    def release(self, seqs: Sequence[int]) -> None:
        with self._transaction() as conn:
            # Back to pending, as carried by its requests (attempts, the latest one).
            self._land(conn, seqs, "state = ?", (_PENDING,), _CARRIED, (_IN_FLIGHT,))

    @staticmethod
    def _land(
        conn: sqlite3.Connection,
        seqs: Sequence[int],
        assignments: str,
        values: tuple[object, ...],
        carried: tuple[str, ...],
        alone: tuple[str, ...],
        *,
        pieces: list[_Piece] | None = None,
        runs: list[tuple[int, int]] | None = None,
        where: str = "",
    ) -> None:
        """Record an outcome for rows (see :func:`_move`), and take them off the requests
        in flight that carried them: one statement per run of rows, usually one."""
        if runs is None:
            runs = _runs(seqs)
        _move(
            conn,
            _pieces(conn, runs) if pieces is None else pieces,
            assignments,
            values,
            carried,
            alone,
            where,
        )
        for first, last in runs:
            over = conn.execute(
                "SELECT rowid, request, first, last FROM flights WHERE first <= ? AND last >= ?",
                (last, first),
            ).fetchall()
            for rowid, request, start, stop in over:
                conn.execute("DELETE FROM flights WHERE rowid = ?", (rowid,))
                remains = [(start, first - 1)] if start < first else []
                if stop > last:
                    remains.append((last + 1, stop))
                conn.executemany(
                    "INSERT INTO flights (request, first, last) VALUES (?, ?, ?)",
                    [(request, *piece) for piece in remains],
                )

    def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> int:
        by_message: dict[str, list[DeliveryUpdate]] = {}
        for update in updates:  # in order, per message: the rule is a fold
            by_message.setdefault(update.message_id, []).append(update)
        matched = 0
        with self._transaction() as conn:
            for message_id, mine in by_message.items():
                found = conn.execute(
                    "SELECT state, delivery, delivery_total, delivery_parts, delivered_at"
                    " FROM rows WHERE message_id = ?",
                    (message_id,),
                ).fetchone()
                if found is None:
                    continue
                matched += len(mine)
                before = _delivery_state(*found[1:])
                after = before
                for update in mine:
                    after = after.apply(
                        update.status, part=update.part, parts=update.parts, done_at=update.done_at
                    )
                if after != before:
                    conn.execute(
                        "UPDATE rows SET delivery = ?, delivery_total = ?, delivery_parts = ?,"
                        " delivered_at = ? WHERE message_id = ?",
                        (*_delivery_columns(after), message_id),
                    )
                if found[0] == _UNKNOWN:  # the report proves the provider took it
                    conn.execute(
                        f"UPDATE rows SET state = ?, {_CONFIRM} WHERE message_id = ?",
                        (_ACCEPTED, message_id),
                    )
        return matched

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> StateCounts:
        # One snapshot (a reader's counts while a run records outcomes must not see a
        # row's outcome without its request's flight cut, or the reverse).
        with self._snapshot():
            return self._counts()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        conn = self._conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _counts(self) -> StateCounts:
        conn = self._conn
        # It runs at the start and the end of every run, over every row: three walks that
        # each test little per row, about 0.2 µs a row in all. Every row; the pending ones;
        # and the few others, grouped. (A GROUP BY of every row sorts them all first; one
        # walk comparing each row with every state, and then one for the delivery reports,
        # cost 0.3 to 0.5 µs a row.)
        (total,) = conn.execute("SELECT count(*) FROM rows").fetchone()
        (pending,) = conn.execute(
            "SELECT count(*) FROM rows WHERE state = ?", (_PENDING,)
        ).fetchone()
        states = dict.fromkeys(RowState, 0)
        deliveries: dict[DeliveryStatus, int] = {}
        confirmed = 0
        for state, delivery, is_confirmed, count in conn.execute(
            _COUNT_OTHERS, (_PENDING, _ACCEPTED)
        ):
            if state != _PENDING and state != _ACCEPTED:
                states[RowState(state)] += count
            if is_confirmed and state == _ACCEPTED:
                confirmed += count
            if delivery is not None:
                status = DeliveryStatus(delivery)
                deliveries[status] = deliveries.get(status, 0) + count
        # Rows written pending that landed runs hold are accepted (every row of a landed
        # run is written pending: see record_accepted).
        (landed,) = conn.execute("SELECT coalesce(sum(last - first + 1), 0) FROM landed").fetchone()
        pending -= landed
        states[RowState.ACCEPTED] = total - pending - sum(states.values())  # the others'
        states[RowState.PENDING] = pending
        # Rows of requests in flight are written pending (the request is the record).
        carried = sum(
            conn.execute(
                "SELECT count(*) FROM rows WHERE seq BETWEEN ? AND ? AND state = ?",
                (*run, _PENDING),
            ).fetchone()[0]
            for run in _union(conn.execute("SELECT first, last FROM flights").fetchall())
        )
        states[RowState.PENDING] -= carried
        states[RowState.IN_FLIGHT] += carried
        parts = conn.execute(
            "SELECT coalesce(sum(processed_sms_parts), 0) FROM requests"
            " WHERE accepted_at IS NOT NULL"
        ).fetchone()[0]
        credit = conn.execute(
            "SELECT credit FROM requests WHERE accepted_at IS NOT NULL"
            " ORDER BY accepted_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return StateCounts(
            pending=states[RowState.PENDING],
            in_flight=states[RowState.IN_FLIGHT],
            accepted=states[RowState.ACCEPTED],
            failed=states[RowState.FAILED],
            unknown=states[RowState.UNKNOWN],
            parts=int(parts),
            credit=None if credit is None else Decimal(credit[0]),
            deliveries=dict(sorted(deliveries.items())),
            confirmed=confirmed,
        )

    def tally(self, states: Sequence[RowState], prefix_digits: int) -> list[Tally]:
        marks = ", ".join("?" * len(states))
        found = self._conn.execute(
            "SELECT substr(ltrim(destination, '+'), 1, ?) AS prefix, encoding, count(*),"
            f" sum(parts) FROM row_states WHERE state IN ({marks}) GROUP BY prefix, encoding",
            [prefix_digits, *(state.value for state in states)],
        ).fetchall()
        return [Tally(prefix, encoding, rows, parts) for prefix, encoding, rows, parts in found]

    def rows_after(
        self, after: int, states: Sequence[RowState] | None, limit: int
    ) -> list[JournalRow]:
        where = ""
        params: list[object] = [after]
        if states is not None:
            where = f" AND r.state IN ({', '.join('?' * len(states))})"
            params.extend(state.value for state in states)
        params.append(limit)
        found = self._conn.execute(
            "SELECT r.seq, coalesce(r.message_id, r.input_id), r.destination, r.state,"
            " r.parts, r.encoding,"
            " r.attempts, q.global_id, r.error_kind, r.error_code, r.error_message,"
            " r.delivery, r.delivery_total, r.delivery_parts, r.delivered_at, r.confirmed"
            " FROM row_states AS r"
            " LEFT JOIN requests AS q ON q.id = r.request"
            f" WHERE r.seq > ?{where} ORDER BY r.seq LIMIT ?",
            params,
        ).fetchall()
        return [_journal_row(row) for row in found]


def _runs(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """``seqs`` as runs of consecutive numbers, ``(first, last)``, each run holding only
    numbers of ``seqs``: one ``seq BETWEEN`` statement per run instead of one per row.

    A request's rows are mostly one run (rows are fed in input order), so recording it is
    one statement, stepped once: the worker thread takes the GIL once per statement, not
    once per row, which is what made the journal wait on the event loop's thread.
    """
    if not seqs:
        return []
    distinct = set(seqs)
    first, last = min(distinct), max(distinct)
    if last - first + 1 == len(distinct):  # the usual case, found without a loop in Python
        return [(first, last)]
    ordered = sorted(distinct)
    found: list[tuple[int, int]] = []
    first = last = ordered[0]
    for seq in ordered[1:]:
        if seq != last + 1:
            found.append((first, last))
            first = seq
        last = seq
    found.append((first, last))
    return found


#: A piece of a run of rows: ``(first, last, carried, request)``: the requests in flight
#: that carry every row of it (``flights``; usually one, more after bisection), and the
#: latest of them (``None`` when none does).
_Piece = tuple[int, int, int, "int | None"]

#: The states of a row carried by a request in flight: ``pending`` as written (schema 4
#: records the request, not the row), ``in_flight`` as a schema-3 journal wrote it.
_CARRIED = (_PENDING, _IN_FLIGHT)
#: Rows that a delivery report proved taken.
_REPORTED = " AND delivery IS NOT NULL"


def _union(runs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching runs merged, in order."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(runs):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _pieces(conn: sqlite3.Connection, runs: Sequence[tuple[int, int]]) -> list[_Piece]:
    """``runs`` cut where the requests in flight over them start or end (one piece per
    run, the whole of it, unless a request was split by bisection)."""
    flights = conn.execute("SELECT request, first, last FROM flights").fetchall()
    found: list[_Piece] = []
    for first, last in runs:
        over = [flight for flight in flights if flight[1] <= last and flight[2] >= first]
        cuts = {first, last + 1}
        cuts.update(start for _, start, _ in over if start > first)
        cuts.update(stop + 1 for _, _, stop in over if stop < last)
        for start, stop in itertools.pairwise(sorted(cuts)):
            carriers = [request for request, a, b in over if a <= start and b >= stop - 1]
            found.append((start, stop - 1, len(carriers), max(carriers, default=None)))
    return found


def _landed_within(conn: sqlite3.Connection, first: int, last: int) -> int:
    """How many rows of ``first..last`` landed runs hold (accepted, written pending)."""
    (count,) = conn.execute(_LANDED_WITHIN, {"first": first, "last": last}).fetchone()
    return int(count)


#: The rows of ``:first..:last`` that landed runs hold: the runs starting from the one that
#: holds ``:first`` (a probe of the key) through ``:last``.
_LANDED_WITHIN = (
    "SELECT coalesce(sum(min(last, :last) - max(first, :first) + 1), 0) FROM landed"
    " WHERE first <= :last AND last >= :first"
    f" AND first >= coalesce({_holding('first', ':first')}, :first)"
)

#: A ``WHERE`` clause for ``rows``: no landed run holds the row.
_NOT_LANDED = f" AND coalesce({_holding('last', 'seq')}, 0) < seq"


def _move(
    conn: sqlite3.Connection,
    pieces: Sequence[_Piece],
    assignments: str,
    values: tuple[object, ...],
    carried: tuple[str, ...],
    alone: tuple[str, ...],
    where: str = "",
) -> int:
    """Set ``assignments`` on the rows of ``pieces`` that are in one of the states
    ``carried`` (a piece carried by requests in flight: each counts as an attempt, the
    latest becomes the row's request) or ``alone`` (a piece no request carries); returns
    how many rows changed. One statement per piece: usually one per request."""
    width = max(len(carried), len(alone))
    marks = ", ".join("?" * width)
    params = []
    for first, last, carriers, request in pieces:
        states = carried if carriers else alone
        if states:
            states = (*states, *(states[-1:] * (width - len(states))))
            params.append((*values, carriers, request, first, last, *states))
    if not params:
        return 0
    return int(
        conn.executemany(
            f"UPDATE rows SET {assignments}, attempts = attempts + ?,"
            " request = coalesce(?, request)"
            f" WHERE seq BETWEEN ? AND ? AND state IN ({marks}){where}",
            params,
        ).rowcount
    )


def _journal_row(row: tuple[Any, ...]) -> JournalRow:
    (seq, message_id, destination, state, parts, encoding, attempts, global_id) = row[:8]
    kind, code, message = row[8:11]
    delivery = _delivery_state(*row[11:15])
    return JournalRow(
        seq=seq,
        message_id=message_id,
        destination=destination,
        state=RowState(state),
        parts=parts,
        encoding=encoding,
        attempts=attempts,
        global_id=global_id,
        failure=None if kind is None else Failure(kind, message or "", code),
        delivery=delivery.status,
        delivered_at=delivery.done_at,
        parts_delivered=delivery.parts_delivered,
        confirmed_by_report=bool(row[15]),
    )


#: What confirming a row by a delivery report sets, besides its state.
_CONFIRM = "confirmed = 1, error_kind = NULL, error_code = NULL, error_message = NULL"


def _timestamp(moment: datetime) -> str:
    """How the journal writes a time: UTC, ISO 8601, milliseconds (so text order is time
    order)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _delivery_state(
    delivery: int | None, total: int, parts: str | None, done_at: str | None
) -> DeliveryState:
    """A message's delivery state from its columns (a schema-1 row has no parts: its
    status alone)."""
    reported = {} if parts is None else json.loads(parts)
    return DeliveryState.restore(
        None if delivery is None else DeliveryStatus(delivery),
        total,
        {int(part): DeliveryStatus(status) for part, status in reported.items()},
        None if done_at is None else datetime.fromisoformat(done_at),
    )


def _delivery_columns(state: DeliveryState) -> tuple[object, ...]:
    """``delivery, delivery_total, delivery_parts, delivered_at`` for a delivery state."""
    parts = {str(part): int(status) for part, status in state.reported}
    return (
        None if state.status is None else int(state.status),
        state.parts,
        json.dumps(parts, separators=(",", ":")),
        None if state.done_at is None else state.done_at.isoformat(),
    )


class _Host(Protocol):
    """Where a journal's ``_Store`` lives: a worker thread, or a child process."""

    path: Path

    async def call(self, method: Callable[..., Any], args: tuple[Any, ...]) -> Any: ...

    async def close(self) -> None: ...


class _StoreThread:
    """The store in this process: each call in a worker thread (``sqlite3`` blocks), the
    caller holding the journal's lock (one connection, one thread at a time)."""

    def __init__(self, store: _Store) -> None:
        self.path = store.path
        self._store = store

    async def call(self, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(method, self._store, *args))

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._store.close)


class SQLiteJournal:
    """The default :class:`~agile_async.campaigns.Journal`: one SQLite file per campaign.

    ```python
    async with await SQLiteJournal.open("spring-sale.journal", create=True) as journal:
        ...
    ```

    Open it with :meth:`open`. ``exclusive`` (the default) takes the journal's run lock:
    a second process opening the same journal exclusively gets :class:`JournalError`.
    Readers (``status``, ``export``) open it with ``exclusive=False`` and may do so while a
    campaign runs.
    """

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._lock = anyio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        exclusive: bool = True,
        process: bool = False,
    ) -> SQLiteJournal:
        """Open (or, with ``create``, create) the journal at ``path``.

        ``process`` runs the journal's SQLite work in a child process of its own instead
        of a worker thread: a large campaign then sends about half again as fast (the
        worker thread shares the interpreter's lock with the event loop), for about a third
        of a second of start-up. The child ends with the journal (or with this process).

        Raises:
            JournalError: no journal there (without ``create``), not a journal, another
                schema version, or (``exclusive``) in use by another process.
        """
        check_flag("create", create)
        check_flag("exclusive", exclusive)
        check_flag("process", process)
        where = Path(path)
        if process:
            return cls(await StoreProcess.start(where, create=create, exclusive=exclusive))
        store = await anyio.to_thread.run_sync(
            functools.partial(_Store, where, create=create, exclusive=exclusive)
        )
        return cls(_StoreThread(store))

    @property
    def path(self) -> Path:
        """Where the journal lives."""
        return self._host.path

    def __repr__(self) -> str:
        return f"<SQLiteJournal {str(self.path)!r}>"

    async def __aenter__(self) -> SQLiteJournal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        """``method`` (a ``_Store`` method) on the journal's store, one call at a time."""
        if self._closed:
            raise JournalError("the journal is closed")
        async with self._lock:
            value: T = await self._host.call(method, args)
            return value

    async def aclose(self) -> None:
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                await self._host.close()

    # -- the Journal protocol ------------------------------------------------------------

    async def create(self, definition: CampaignDefinition) -> None:
        await self._call(_Store.create, definition)

    async def definition(self) -> CampaignDefinition | None:
        return await self._call(_Store.definition)

    async def load_state(self) -> LoadState:
        return await self._call(_Store.load_state)

    async def append(self, rows: Sequence[LoadedRow], *, done: bool) -> None:
        await self._call(_Store.append, rows, done)

    async def recover(
        self, *, resend_unknown: bool = False, silent_for: timedelta | None = None
    ) -> Recovery:
        check_flag("resend_unknown", resend_unknown)
        if silent_for is not None:
            silent_for = check_duration("silent_for", silent_for)
        return await self._call(_Store.recover, resend_unknown, silent_for)

    async def next_rows(self, limit: int) -> Sequence[OutgoingRow]:
        return await self._call(_Store.next_rows, limit)

    async def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        await self._call(_Store.mark_in_flight, seqs, global_id)

    async def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        await self._call(_Store.record_accepted, seqs, totals)

    async def record_failed(self, seqs: Sequence[int], failure: Failure) -> None:
        await self._call(_Store.record_failed, seqs, failure)

    async def record_unknown(self, seqs: Sequence[int], failure: Failure) -> None:
        await self._call(_Store.record_unknown, seqs, failure)

    async def release(self, seqs: Sequence[int]) -> None:
        await self._call(_Store.release, seqs)

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        done_at: datetime | None = None,
        *,
        part: int = 1,
        parts: int = 1,
    ) -> bool:
        update = DeliveryUpdate(message_id, status, done_at, part=part, parts=parts)
        return bool(await self._call(_Store.record_deliveries, [update]))

    async def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> int:
        return await self._call(_Store.record_deliveries, updates)

    async def counts(self) -> StateCounts:
        return await self._call(_Store.counts)

    async def tally(self, states: Sequence[RowState], *, prefix_digits: int = 0) -> list[Tally]:
        return await self._call(_Store.tally, states, prefix_digits)

    async def rows(
        self, states: Sequence[RowState] | None = None, *, chunk: int = 5000
    ) -> AsyncGenerator[Sequence[JournalRow], None]:
        after = 0
        while True:
            found = await self._call(_Store.rows_after, after, states, chunk)
            if not found:
                return
            yield found
            after = found[-1].seq
