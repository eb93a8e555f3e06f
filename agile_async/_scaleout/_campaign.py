"""``RedisCampaign``: the campaign journal on Redis, shared by a loader and any number of workers.

It implements the same :class:`~agile_async.campaigns.Journal` contract as the SQLite
journal, so the campaign engine (loading, the Runner that drives the Batcher) is shared and
only the storage differs (SCALEOUT.md §4):

```
loader:  Campaign.create(RedisCampaign) + load()   -> chunks of C rows on a stream, explicit
                                                      ids <n>-1, at most max_queued ahead
worker:  next (a chunk and a fresh owner token)    -> the Batcher
         before_send: claim (P -> I, fenced by the token, durable before the POST)
         on_result:   settle (I -> A/F/U, or back to P); a chunk with nothing pending or
                      in flight is XACKed and XDELed in the same script
         heartbeat:   XCLAIM JUSTID of the chunks still owned, every lease/3
a chunk idle longer than the lease is reclaimed by the next worker that asks: its rows in
flight become unknown (never re-sent), its pending rows are sent by the new owner; a chunk
taken over max_chunk_takeovers times is set aside (held back) until an operator re-queues it.
```

The one rule that keeps a crash from texting anyone twice is the journal's: a row whose
request *may* have gone out becomes ``unknown``. A paused worker that comes back finds its
token replaced: its next ``claim`` is refused (:class:`ChunkFencedError`) and it stops; a
late ``settle`` of its may only turn ``unknown`` into what really happened.

Redis keeps the state string (1 byte per row), the failure reasons, counters and the chunks
not yet finished: memory stays flat while the campaign streams through. Message bodies are
gone once their chunk is finished, so per-row export lists ids and destinations for failed
and unknown rows only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._campaign._journal import (
    CRASH_FAILURE,
    CampaignDefinition,
    CampaignError,
    DeliveryUpdate,
    Failure,
    JournalError,
    JournalRow,
    LoadedRow,
    LoadState,
    OutgoingRow,
    Recovery,
    RowState,
    StateCounts,
    Tally,
)
from .._exceptions import ConfigurationError
from .._models import DeliveryStatus, SendOptions
from .._tickets import RequestTotals
from . import _campaign_scripts as scripts
from ._outage import DEFAULT_REDIS_TIMEOUT, check_timeout
from ._redis_client import Script, ScriptHost, adapt

if TYPE_CHECKING:
    from ._redis_client import RedisClient

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_CHUNK_TAKEOVERS",
    "DEFAULT_MAX_QUEUED_CHUNKS",
    "CampaignStoppedError",
    "ChunkFencedError",
    "FleetStop",
    "HeldChunk",
    "RedisCampaign",
    "campaign_prefix",
]

log = logging.getLogger("agile_async")

#: Rows per stream entry: the unit a worker takes. A crash makes unknown only the rows of
#: the requests the worker had in flight, never a whole chunk.
DEFAULT_CHUNK_SIZE = 100
#: Seconds a worker may stay silent before its chunks are reclaimed: longer than the
#: longest POST, retries included.
DEFAULT_LEASE = 60.0
#: Chunks the loader keeps on the stream ahead of the workers (Redis memory stays flat).
DEFAULT_MAX_QUEUED_CHUNKS = 64
#: Takeovers (reclaims from a worker that went silent while sending it) after which a chunk
#: is set aside: a chunk that keeps killing the workers that send it must not take the
#: whole fleet down.
DEFAULT_MAX_CHUNK_TAKEOVERS = 3
#: How often an idle worker asks again, and a loader waits for room, in seconds.
DEFAULT_POLL = 0.2

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LETTER = {
    "P": RowState.PENDING,
    "I": RowState.IN_FLIGHT,
    "A": RowState.ACCEPTED,
    "F": RowState.FAILED,
    "U": RowState.UNKNOWN,
}
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'def', ARGV[1], 'C', ARGV[2], 'loaded', '0')
redis.call('XGROUP', 'CREATE', KEYS[2], 'senders', '0', 'MKSTREAM')
return 1
"""
_READ_META = "return redis.call('HMGET', KEYS[1], 'def', 'C', 'loaded', 'done', 'stop')"
_READ_STATS = "return redis.call('HGETALL', KEYS[7])"
_READ_ROWS = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local bytes = redis.call('GETRANGE', KEYS[3], first - 1, last - 1)
local reply = {bytes}
for i = 1, #bytes do
  local b = string.sub(bytes, i, i)
  if b == 'F' or b == 'U' then
    reply[#reply + 1] = first + i - 1
    reply[#reply + 1] = redis.call('HGET', KEYS[6], first + i - 1) or ''
  end
end
return reply
"""


class ChunkFencedError(JournalError):
    """This worker's chunk was reclaimed by another worker (it was silent past its lease):
    nothing more is sent from it, and the worker stops."""


class CampaignStoppedError(JournalError):
    """The campaign was stopped fleet-wide after an account error (credentials, credit,
    IP allow-list): no worker sends until an operator clears it."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class FleetStop:
    """Why every worker of a campaign stopped: the account error's code and message, and
    when. It stays until an operator clears it (:meth:`RedisCampaign.clear_stop`)."""

    code: int
    reason: str
    at: datetime | None


@attrs.frozen
class HeldChunk:
    """A chunk set aside after ``takeovers`` workers went silent while sending it (it may be
    what kills them). Its rows in flight became unknown; its ``rows`` pending rows were never
    sent and stay pending, held back, until :meth:`RedisCampaign.requeue_held`."""

    chunk: int
    rows: int
    takeovers: int
    reason: str
    at: datetime | None


def _stop_from(reply: Sequence[Any]) -> FleetStop | None:
    if reply[0] is None:
        return None
    at = _text(reply[2]) if reply[2] is not None else ""
    return FleetStop(
        int(_text(reply[0])),
        _text(reply[1]) if reply[1] is not None else "",
        datetime.fromisoformat(at) if at else None,
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def campaign_prefix(name: str) -> str:
    """The hash-tagged prefix of a campaign's keys: ``{agile:c:<name>}``."""
    return f"{{agile:c:{name}}}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _failure_json(failure: Failure, row: OutgoingRow | LoadedRow | None) -> str:
    record: dict[str, Any] = {"k": failure.kind, "m": failure.message, "c": failure.code}
    if row is not None:
        record["i"] = row.message_id
        record["d"] = row.destination
    return json.dumps(record, separators=(",", ":"))


def _failure_from(text: str) -> tuple[Failure, str | None, str]:
    """A stored reason, with the row's message id and destination when they were kept."""
    record = json.loads(text)
    if record.get("k") == "crash":
        return CRASH_FAILURE, record.get("i"), record.get("d") or ""
    return (
        Failure(record["k"], record["m"], record.get("c")),
        record.get("i"),
        record.get("d") or "",
    )


def _definition_json(d: CampaignDefinition) -> str:
    return json.dumps(
        {
            "campaign_id": d.campaign_id,
            "source": d.source,
            "source_format": d.source_format,
            "source_sha256": d.source_sha256,
            "source_size": d.source_size,
            "body": d.body,
            "sender": d.sender,
            "options": {k: getattr(d.options, k) for k in _option_names()},
            "created_at": d.created_at.isoformat(),
            "defaults": dict(d.defaults),
            "source_encoding": d.source_encoding,
            "source_delimiter": d.source_delimiter,
        },
        sort_keys=True,
    )


def _option_names() -> list[str]:
    import attrs

    return [field.name for field in attrs.fields(SendOptions)]


def _definition_from(text: str) -> CampaignDefinition:
    data = json.loads(text)
    return CampaignDefinition(
        campaign_id=data["campaign_id"],
        source=data["source"],
        source_format=data["source_format"],
        source_sha256=data["source_sha256"],
        source_size=data["source_size"],
        body=data["body"],
        sender=data["sender"],
        options=SendOptions(**data["options"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        defaults=data["defaults"],
        # A campaign recorded before these were read its file as UTF-8 (CSV: commas).
        source_encoding=data.get("source_encoding", "utf-8"),
        source_delimiter=data.get(
            "source_delimiter", "," if data["source_format"] == "csv" else None
        ),
    )


class RedisCampaign:
    """A campaign journal in Redis: one loader, any number of workers, on any hosts.

    ```python
    async with coredis.Redis.from_url(url) as redis:
        # the loader (once; run it again after a crash: it resumes)
        journal = RedisCampaign(redis, "spring")
        async with await Campaign.create(journal, "recipients.csv", body=..., sender=...,
                                         exist_ok=True) as campaign:
            await campaign.load()
        # each worker
        await work(client, RedisCampaign(redis, "spring"), limiter=limiter)
    ```

    Args:
        client: a ``redis.asyncio`` client (asyncio) or an entered ``coredis`` client
            (asyncio and trio).
        name: the campaign's name in Redis keys (letters, digits, ``_.-``; up to 64).
        chunk_size: rows per stream entry (fixed when the campaign is created).
        lease: seconds a silent worker keeps its chunks; must exceed the longest POST.
        max_queued_chunks: how many chunks the loader keeps ahead of the workers.
        worker: this process's consumer name (a random one by default).
        max_chunk_takeovers: after how many takeovers (reclaims from a worker that went
            silent while sending it: crashed, killed, stalled past its lease, with rows of
            the chunk in flight) a chunk is set aside instead of handed out again, so a
            chunk that kills every worker sending it does not stop the fleet; ``None`` or
            0: never (a chunk a dead worker had only taken ahead is not counted). Its rows
            in flight become unknown as in any takeover; its pending rows stay pending,
            held back, listed by :meth:`held_chunks`, until an operator calls
            :meth:`requeue_held`.
        redis_timeout: how long, in seconds, a Redis outage (a restart, a failover, a
            network blip) is waited out: every call keeps retrying with backoff, then
            raises :class:`RedisUnavailableError`. Nothing is lost by it: rows not sent stay
            pending, and an outcome that could not be written leaves its rows in flight
            (unknown once their chunk is reclaimed).
        poll: seconds between asks when there is no work yet.
    """

    def __init__(
        self,
        client: RedisClient,
        name: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        lease: float = DEFAULT_LEASE,
        max_queued_chunks: int = DEFAULT_MAX_QUEUED_CHUNKS,
        worker: str | None = None,
        max_chunk_takeovers: int | None = DEFAULT_MAX_CHUNK_TAKEOVERS,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        poll: float = DEFAULT_POLL,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ConfigurationError(
                f"campaign name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
            )
        if chunk_size < 1:
            raise ConfigurationError(f"chunk_size must be >= 1, got {chunk_size!r}")
        if not lease > 0:
            raise ConfigurationError(f"lease must be > 0 seconds, got {lease!r}")
        if max_chunk_takeovers is not None and max_chunk_takeovers < 0:
            raise ConfigurationError(
                f"max_chunk_takeovers must be >= 1 (or None: never), got {max_chunk_takeovers!r}"
            )
        import secrets

        self.name = name
        self.key_prefix = campaign_prefix(name)
        self.keys = tuple(f"{self.key_prefix}:{suffix}" for suffix in scripts.KEY_SUFFIXES)
        self.chunk_size = chunk_size
        self.lease = float(lease)
        self.max_queued_chunks = max_queued_chunks
        self.worker = worker or f"w-{secrets.token_hex(4)}"
        self.max_chunk_takeovers = max_chunk_takeovers or 0
        self.poll = poll
        self.redis_timeout = check_timeout(redis_timeout)
        self._host: ScriptHost = adapt(client)
        host = self._host
        self._create = host.script(_CREATE)
        self._read_meta = host.script(_READ_META)
        self._read_stats = host.script(_READ_STATS)
        self._read_rows = host.script(_READ_ROWS)
        self._append = host.script(scripts.APPEND)
        self._next = host.script(scripts.NEXT)
        self._claim = host.script(scripts.CLAIM)
        self._settle = host.script(scripts.SETTLE)
        self._heartbeat = host.script(scripts.HEARTBEAT)
        self._stop = host.script(scripts.STOP)
        self._read_stop = host.script(scripts.READ_STOP)
        self._clear_stop = host.script(scripts.CLEAR_STOP)
        self._read_held = host.script(scripts.READ_HELD)
        self._requeue = host.script(scripts.REQUEUE)
        # The session: chunks this worker owns (n -> token), rows handed out, not settled.
        self._tokens: dict[int, str] = {}
        self._lost: set[int] = set()
        self._rows: dict[int, OutgoingRow] = {}
        self._buffer: list[OutgoingRow] = []
        self._tail: list[LoadedRow] = []  # the loader's rows of an unfinished chunk
        self._size: int | None = None
        #: Rows this worker found in flight in reclaimed chunks (now unknown).
        self.became_unknown = 0
        #: Pending rows of the chunks this worker set aside (see ``max_chunk_takeovers``).
        self.held_back = 0
        #: The sticky account error code that stopped the fleet, once seen.
        self.stopped_code: int | None = None
        #: Whether Redis last said the whole campaign is finished (loaded, every chunk done).
        self.finished = False

    def __repr__(self) -> str:
        return f"<RedisCampaign {self.name} worker={self.worker}>"

    @property
    def redis(self) -> Any:
        """The Redis client this campaign talks through (to share it with a RedisLimiter)."""
        return self._host.client

    # -- plumbing --------------------------------------------------------------------------

    async def _call(self, script: Script, args: Sequence[object]) -> Any:
        """Run a script, waiting out an outage (each one may safely run twice)."""
        return await self._host.call(
            script, self.keys, [str(arg) for arg in args], tolerance=self.redis_timeout
        )

    async def _chunk_size(self) -> int:
        if self._size is None:
            meta = await self._call(self._read_meta, ())
            if meta[1] is None:
                raise JournalError(f"Redis holds no campaign named {self.name!r}")
            self._size = int(_text(meta[1]))
        return self._size

    def _chunk_of(self, seq: int) -> int:
        assert self._size is not None
        return (seq - 1) // self._size + 1

    def _token_args(self, seqs: Sequence[int]) -> list[object]:
        chunks = sorted({self._chunk_of(seq) for seq in seqs})
        args: list[object] = [len(chunks)]
        for n in chunks:
            args += [n, self._tokens.get(n, "-")]
        return args

    # -- definition and loading ------------------------------------------------------------

    async def create(self, definition: CampaignDefinition) -> None:
        """Record a new campaign (its keys, the stream and its consumer group)."""
        args = (_definition_json(definition), self.chunk_size)
        if not await self._call(self._create, args):
            raise JournalError(f"Redis already holds a campaign named {self.name!r}")
        self._size = self.chunk_size

    async def definition(self) -> CampaignDefinition | None:
        """The campaign recorded under this name, or ``None``."""
        meta = await self._call(self._read_meta, ())
        if meta[0] is None:
            return None
        self._size = int(_text(meta[1]))
        return _definition_from(_text(meta[0]))

    async def load_state(self) -> LoadState:
        """How many rows are recorded, and whether loading is over."""
        meta = await self._call(self._read_meta, ())
        if meta[0] is None:
            raise JournalError(f"Redis holds no campaign named {self.name!r}")
        return LoadState(int(_text(meta[2] or b"0")), _text(meta[3] or b"") == "1")

    async def append(self, rows: Sequence[LoadedRow], *, done: bool) -> None:
        """Record rows, one whole chunk per script call (atomic and idempotent).

        Rows of a chunk not yet complete wait here until the next call (or ``done``), so
        chunk ``n`` always holds rows ``(n-1)*C+1 .. n*C``. While the stream holds
        ``max_queued_chunks`` chunks the loader waits for the workers.
        """
        size = await self._chunk_size()
        self._tail.extend(rows)
        while self._tail:
            first = self._tail[0].seq
            n = (first - 1) // size + 1
            end = n * size
            if self._tail[-1].seq < end and not done:
                return
            chunk = [row for row in self._tail if row.seq <= end]
            del self._tail[: len(chunk)]
            last_chunk = done and not self._tail
            await self._append_chunk(n, chunk, last_chunk)
        if done:
            await self._call(self._append, (1, 0, 1, "", 0, "", 0))

    async def _append_chunk(self, n: int, chunk: Sequence[LoadedRow], done: bool) -> None:
        states = "".join("F" if row.failure is not None else "P" for row in chunk)
        sendable = [
            [row.seq, row.message_id, row.destination, row.body]
            for row in chunk
            if row.failure is None
        ]
        entry = json.dumps(sendable, separators=(",", ":")) if sendable else ""
        failures: list[object] = []
        for row in chunk:
            if row.failure is not None:
                failures += [row.seq, _failure_json(row.failure, row)]
        args = [
            chunk[0].seq,
            chunk[-1].seq,
            int(done),
            states,
            n,
            entry,
            self.max_queued_chunks,
            *failures,
        ]
        while True:
            status, loaded = await self._call(self._append, args)
            if status == 2:  # the stream is full: wait for the workers
                await anyio.sleep(self.poll)
                continue
            if status == -1:
                raise JournalError(
                    f"rows {chunk[0].seq}..{chunk[-1].seq} do not follow the {loaded} rows recorded"
                )
            return

    # -- sending ---------------------------------------------------------------------------

    async def recover(
        self, *, resend_unknown: bool = False, silent_for: timedelta | None = None
    ) -> Recovery:
        """Start a session. Crash recovery happens chunk by chunk, when a worker reclaims an
        idle chunk (its rows in flight become unknown), so there is nothing to do here.

        Raises:
            CampaignError: ``resend_unknown``: the bodies of finished chunks are no longer
                in Redis (resend unknown rows from the input file with a new campaign).
        """
        if resend_unknown:
            raise CampaignError(
                "resend_unknown is not supported by the Redis campaign: message bodies "
                "leave Redis with their finished chunk"
            )
        await self._chunk_size()
        self._buffer.clear()
        return Recovery()

    async def take_chunk(self) -> Sequence[OutgoingRow] | None:
        """Ask Redis for a chunk: its pending rows (possibly none), or ``None`` when there
        is nothing to take right now (see :attr:`finished` and :attr:`stopped_code`)."""
        size = await self._chunk_size()
        while True:
            reply = await self._call(
                self._next,
                (self.worker, int(self.lease * 1000), self.max_chunk_takeovers, _now()),
            )
            kind = _text(reply[0])
            if kind == "stop":
                self.stopped_code = int(_text(reply[1]))
                return None
            if kind == "again":
                self.became_unknown += int(reply[1])
                continue
            if kind == "held":
                self.became_unknown += int(reply[2])
                self.held_back += int(reply[3])
                log.warning(
                    "agile_async campaign %s: chunk %s set aside after %d takeovers "
                    "(%d rows held back, %d became unknown); requeue it once its cause is "
                    "known",
                    self.name,
                    _text(reply[1]),
                    self.max_chunk_takeovers,
                    int(reply[3]),
                    int(reply[2]),
                )
                continue
            if kind == "empty":
                self.finished = int(reply[1]) == 1
                return None
            n, token = int(reply[1]), _text(reply[2])
            self.became_unknown += int(reply[4])
            self._tokens[n] = token
            self._lost.discard(n)
            first = (n - 1) * size + 1
            states = await self._call(self._read_rows, (first, first + size - 1))
            pending = {first + i for i, b in enumerate(_text(states[0])) if b == "P"}
            rows = [
                OutgoingRow(seq, message_id, destination, body)
                for seq, message_id, destination, body in json.loads(_text(reply[3]))
                if seq in pending
            ]
            for row in rows:
                self._rows[row.seq] = row
            return rows

    async def next_rows(self, limit: int) -> Sequence[OutgoingRow]:
        """Pending rows from this worker's chunks; waits while other workers still hold
        chunks that may come back, and returns nothing once the campaign is finished or
        stopped."""
        while not self._buffer:
            rows = await self.take_chunk()
            if rows is None:
                if self.finished or self.stopped_code is not None:
                    return ()
                await anyio.sleep(self.poll)
                continue
            self._buffer.extend(rows)
        taken, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return taken

    async def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        """Claim the rows for request ``global_id``, fenced by this worker's tokens.

        Raises:
            ChunkFencedError: another worker owns one of the chunks now.
            CampaignStoppedError: the fleet was stopped by an account error.
            JournalError: a row already has an outcome.
        """
        await self._chunk_size()
        reply = await self._call(self._claim, (*self._token_args(seqs), *seqs))
        kind = _text(reply[0])
        if kind == "ok":
            return
        if kind == "fenced":
            self._lost.add(int(_text(reply[1])))
            raise ChunkFencedError(
                f"chunk {_text(reply[1])} of campaign {self.name!r} was reclaimed by another "
                f"worker (this one, {self.worker}, was silent past its lease): stopping"
            )
        if kind == "stop":
            self.stopped_code = int(_text(reply[1]))
            raise CampaignStoppedError(
                f"campaign {self.name!r} was stopped after account error {self.stopped_code}",
                self.stopped_code,
            )
        raise JournalError(f"row {_text(reply[1])} is {_LETTER[_text(reply[2])]}, not pending")

    async def _settle_rows(
        self,
        outcome: str,
        seqs: Sequence[int],
        failure: Failure | None = None,
        totals: RequestTotals | None = None,
    ) -> None:
        if not seqs:
            return
        await self._chunk_size()
        pairs: list[object] = []
        for seq in seqs:
            row = self._rows.pop(seq, None) if outcome != "P" else self._rows.get(seq)
            pairs += [seq, _failure_json(failure, row) if failure is not None else ""]
        parts = totals.processed_sms_parts if totals is not None else 0
        credit = str(totals.credit) if totals is not None else ""
        reply = await self._call(
            self._settle, (outcome, parts, credit, *self._token_args(seqs), *pairs)
        )
        for n in reply[2:]:
            self._tokens.pop(int(n), None)
        if int(reply[1]):
            log.warning(
                "agile_async campaign %s: %d outcome(s) from worker %s came after its "
                "chunk was reclaimed",
                self.name,
                int(reply[1]),
                self.worker,
            )

    async def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        """The provider accepted the request that carried these rows."""
        await self._settle_rows("A", seqs, totals=totals)

    async def record_failed(self, seqs: Sequence[int], failure: Failure) -> None:
        """These rows failed for good."""
        await self._settle_rows("F", seqs, failure)

    async def record_unknown(self, seqs: Sequence[int], failure: Failure) -> None:
        """The request carrying these rows may or may not have been taken."""
        await self._settle_rows("U", seqs, failure)

    async def release(self, seqs: Sequence[int]) -> None:
        """The request provably never went: the rows are pending again. The chunk stays
        with this worker until its lease runs out; then another worker sends them."""
        await self._settle_rows("P", seqs)

    async def stop_fleet(self, code: int, reason: str = "") -> int:
        """Stop every worker of the campaign (sticky): an account error was seen. ``reason``
        (the error's message) is kept with the code for ``status``. Returns the code that
        stopped it (the first one recorded wins, with its reason)."""
        reply = await self._call(self._stop, (code, reason, _now()))
        self.stopped_code = int(_text(reply[0]))
        return self.stopped_code

    async def fleet_stop(self) -> FleetStop | None:
        """The fleet-wide stop in force (code, reason, time), or ``None``."""
        return _stop_from(await self._call(self._read_stop, ()))

    async def clear_stop(self) -> FleetStop | None:
        """Lift the fleet-wide stop, once its cause is fixed (credit topped up, credentials
        or IP allow-list corrected): workers started from now on send again. Returns the
        stop that was cleared, or ``None`` if there was none."""
        cleared = _stop_from(await self._call(self._clear_stop, ()))
        self.stopped_code = None
        return cleared

    async def held_chunks(self) -> list[HeldChunk]:
        """The chunks set aside after too many takeovers (see ``max_chunk_takeovers``)."""
        flat = await self._call(self._read_held, ())
        held = []
        for n, text in zip(flat[::2], flat[1::2], strict=True):
            record = json.loads(_text(text))
            at = record.get("at") or ""
            held.append(
                HeldChunk(
                    int(_text(n)),
                    int(record["h"]),
                    int(record["t"]),
                    str(record["r"]),
                    datetime.fromisoformat(at) if at else None,
                )
            )
        return sorted(held, key=lambda chunk: chunk.chunk)

    async def requeue_held(self, chunks: Sequence[int] = ()) -> tuple[int, int]:
        """Put chunks set aside back on the stream (all of them by default), each with a
        fresh takeover count: the operator's explicit choice once the cause is known.
        Returns how many chunks and pending rows were re-queued."""
        reply = await self._call(self._requeue, [int(n) for n in chunks])
        return int(reply[0]), int(reply[1])

    async def heartbeat(self) -> list[int]:
        """Renew the lease of the chunks this worker still owns; returns chunks it lost."""
        owned = [(n, token) for n, token in self._tokens.items() if n not in self._lost]
        if not owned:
            return []
        args: list[object] = [self.worker]
        for n, token in owned:
            args += [n, token]
        lost = [int(_text(n)) for n in await self._call(self._heartbeat, args)]
        self._lost.update(lost)
        return lost

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        done_at: datetime | None = None,
        *,
        part: int = 1,
        parts: int = 1,
    ) -> bool:
        """Not kept in Redis (there is no id index): see :meth:`record_deliveries`."""
        raise CampaignError("delivery reports are not recorded by the Redis campaign")

    async def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> int:
        """Not kept in Redis: there is no message id index (it would cost ~70 bytes a row)."""
        raise CampaignError("delivery reports are not recorded by the Redis campaign")

    # -- reading ---------------------------------------------------------------------------

    async def counts(self) -> StateCounts:
        """Rows by state, from the counters the scripts keep (no scan)."""
        flat = await self._call(self._read_stats, ())
        stats = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
        credit = stats.get("credit")
        return StateCounts(
            pending=int(stats.get("P", 0)),
            in_flight=int(stats.get("I", 0)),
            accepted=int(stats.get("A", 0)),
            failed=int(stats.get("F", 0)),
            unknown=int(stats.get("U", 0)),
            parts=int(stats.get("parts", 0)),
            credit=Decimal(credit) if credit else None,
        )

    async def tally(self, states: Sequence[RowState], *, prefix_digits: int = 0) -> list[Tally]:
        """Not available: Redis keeps no destinations or encodings for a cost estimate."""
        raise CampaignError("dry runs need the SQLite journal: Redis keeps no per-row details")

    async def rows(
        self, states: Sequence[RowState] | None = None, *, chunk: int = 5000
    ) -> AsyncGenerator[Sequence[JournalRow], None]:
        """Every row (or those in ``states``) in input order. Message ids and destinations
        are known for failed and unknown rows (the ones an operator acts on); other rows
        carry their number and state only."""
        wanted = None if states is None else set(states)
        loaded = (await self.load_state()).loaded_through
        first = 1
        while first <= loaded:
            last = min(first + chunk - 1, loaded)
            reply = await self._call(self._read_rows, (first, last))
            reasons = {int(s): _text(r) for s, r in zip(reply[1::2], reply[2::2], strict=True)}
            found: list[JournalRow] = []
            for i, letter in enumerate(_text(reply[0])):
                state = _LETTER[letter]
                if wanted is not None and state not in wanted:
                    continue
                seq = first + i
                failure, message_id, destination = None, None, ""
                if reasons.get(seq):
                    failure, message_id, destination = _failure_from(reasons[seq])
                found.append(
                    JournalRow(
                        seq=seq,
                        message_id=message_id,
                        destination=destination,
                        state=state,
                        parts=0,
                        encoding=None,
                        attempts=0 if state is RowState.PENDING else 1,
                        global_id=None,
                        failure=failure,
                        delivery=None,
                        delivered_at=None,
                    )
                )
            if found:
                yield found
            first = last + 1

    async def aclose(self) -> None:
        """Nothing to release: the Redis client belongs to the caller."""
