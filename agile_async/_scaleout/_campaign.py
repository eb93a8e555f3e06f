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

Redis keeps the state string (1 byte per row), each chunk's export record (destinations,
and ids the input gave), the failure reasons, delivery records, counters and the chunks not
yet finished. Message bodies are gone once their chunk is finished. Delivery reports are
folded here, in Python, with :class:`~agile_async.campaigns.DeliveryState` (the one rule),
and written back by a check-and-set script.
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

from .._campaign._definition import definition_from_json, definition_json
from .._campaign._journal import (
    CRASH_FAILURE,
    CampaignDefinition,
    DeliveryUpdate,
    Failure,
    JournalRow,
    LoadedRow,
    LoadState,
    OutgoingRow,
    Recovery,
    RowState,
    StateCounts,
    Tally,
    taken_id_failure,
)
from .._delivery import DeliveryState
from .._exceptions import (
    CampaignError,
    CampaignStoppedError,
    ChunkFencedError,
    JournalError,
)
from .._models import DeliveryStatus
from .._setting_validators import (
    check_duration,
    check_flag,
    check_integer,
    check_number,
    invalid,
)
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


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def _ms(when: datetime | None) -> int | None:
    return None if when is None else (when - _EPOCH) // _MS


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + ms * _MS


def _delivery_stored(state: DeliveryState) -> tuple[str, str]:
    """How a message's delivery state is kept: its record in the ``:d`` string (status
    code, doneDate in ms, parts delivered: 17 bytes) and, while it is pending, the whole
    per-part state (JSON) that the next report is folded into."""
    assert state.status is not None
    ms = _ms(state.done_at)
    when = f"{ms:013d}" if ms is not None and 0 <= ms < 10**13 else " " * 13
    record = f"{int(state.status)}{when}{min(state.parts_delivered, 999):03d}"
    if state.final:
        return record, ""
    pending = {
        "s": int(state.status),
        "n": state.parts,
        "r": [[part, int(status)] for part, status in state.reported],
        "t": ms,
    }
    return record, json.dumps(pending, separators=(",", ":"))


def _delivery_state(record: str, pending: str) -> DeliveryState:
    """The state :func:`_delivery_stored` kept. A finished message keeps its record only:
    no report changes it any more, so its per-part detail is not needed."""
    if pending:
        data = json.loads(pending)
        return DeliveryState.restore(
            DeliveryStatus(data["s"]),
            data["n"],
            {part: DeliveryStatus(code) for part, code in data["r"]},
            _at(data["t"]),
        )
    summary = _delivery_summary(record)
    if summary is None:
        return DeliveryState()
    status, done_at, delivered = summary
    return DeliveryState(status, max(delivered, 1), (), done_at)


def _delivery_summary(record: str) -> tuple[DeliveryStatus, datetime | None, int] | None:
    """A record's status, doneDate and parts delivered (``None``: no report yet)."""
    if not record or not record[0].isdigit():
        return None
    when = record[1:14].strip()
    return DeliveryStatus(int(record[0])), _at(int(when) if when else None), int(record[14:17])


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


def _generated_seq(id_: str, prefix: str) -> int | None:
    """The row number ``id_`` names if it has the form of a generated id (``prefix`` and
    the number as ``str(seq)`` writes it), else ``None``."""
    digits = id_[len(prefix) :] if id_.startswith(prefix) else ""
    # A row number has fewer than 19 digits; int() refuses a string of thousands.
    if 0 < len(digits) < 19 and digits.isascii() and digits.isdigit() and digits[0] != "0":
        return int(digits)
    return None


def campaign_prefix(name: str) -> str:
    """The hash-tagged prefix of a campaign's keys: ``{agile:c:<name>}``."""
    return f"{{agile:c:{name}}}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _failure_json(
    failure: Failure, row: OutgoingRow | LoadedRow | None, *, keep_body: bool = False
) -> str:
    """A reason as stored: with the row's id and destination, and for an unknown row its
    body too (``resend_unknown`` sends it again after its chunk has left the stream)."""
    record: dict[str, Any] = {"k": failure.kind, "m": failure.message, "c": failure.code}
    if row is not None:
        record["i"] = row.message_id
        record["d"] = row.destination
        if keep_body:
            record["b"] = row.body
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
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise invalid(
                "name", "must be a campaign name of 1 to 64 letters, digits, '_', '.' or '-'", name
            )
        check_integer("chunk_size", chunk_size, minimum=1)
        check_number("lease", lease, minimum=0, exclusive=True, unit=" seconds")
        if max_chunk_takeovers is not None:
            check_integer("max_chunk_takeovers", max_chunk_takeovers, minimum=0, none="never")
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
        self._read_rows = host.script(scripts.READ_ROWS)
        self._read_confirmed = host.script(scripts.READ_CONFIRMED)
        self._delivery_read = host.script(scripts.DELIVERY_READ)
        self._delivery_write = host.script(scripts.DELIVERY_WRITE)
        self._resend = host.script(scripts.RESEND)
        self._renew = host.script(scripts.RENEW)
        self._append = host.script(scripts.APPEND)
        self._holders = host.script(scripts.HOLDERS)
        self._id_records = host.script(scripts.ID_RECORDS)
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
        self._reopened: set[int] = set()  # finished chunks reopened to send unknown rows
        self._rows: dict[int, OutgoingRow] = {}
        self._buffer: list[OutgoingRow] = []
        self._tail: list[LoadedRow] = []  # the loader's rows of an unfinished chunk
        self._size: int | None = None
        self._campaign_id: str | None = None
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
        args = (definition_json(definition), self.chunk_size)
        if not await self._call(self._create, args):
            raise JournalError(f"Redis already holds a campaign named {self.name!r}")
        self._size = self.chunk_size
        self._campaign_id = definition.campaign_id

    async def definition(self) -> CampaignDefinition | None:
        """The campaign recorded under this name, or ``None``."""
        meta = await self._call(self._read_meta, ())
        if meta[0] is None:
            return None
        self._size = int(_text(meta[1]))
        definition = definition_from_json(_text(meta[0]))
        self._campaign_id = definition.campaign_id
        return definition

    async def _id_prefix(self) -> str:
        """What a generated message id starts with: ``<campaign_id>-`` (its seq follows)."""
        if self._campaign_id is None and await self.definition() is None:
            raise JournalError(f"Redis holds no campaign named {self.name!r}")
        return f"{self._campaign_id}-"

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
            await self._call(self._append, (1, 0, 1, "", 0, "", 0, "", "{}"))

    async def _append_chunk(self, n: int, chunk: Sequence[LoadedRow], done: bool) -> None:
        prefix = await self._id_prefix()
        chunk, refused = await self._refuse_taken_ids(chunk, prefix)
        states = "".join("F" if row.failure is not None else "P" for row in chunk)
        sendable = [
            [row.seq, row.message_id, row.destination, row.body]
            for row in chunk
            if row.failure is None
        ]
        entry = json.dumps(sendable, separators=(",", ":")) if sendable else ""
        # The export record: [seq, destination] for a generated id, the id too otherwise.
        exported = [
            [row.seq, row.destination]
            if row.message_id == f"{prefix}{row.seq}"
            else [row.seq, row.destination, row.message_id]
            for row in chunk
            if row.failure is None
        ]
        # The ids the input gave (a generated id is known by its form): every row holds its
        # own, even one refused for another reason, but not one refused for its id.
        index = {
            row.message_id: row.seq
            for row in chunk
            if row.message_id is not None
            and row.message_id != f"{prefix}{row.seq}"
            and row.seq not in refused
        }
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
            json.dumps(exported, separators=(",", ":")) if exported else "",
            json.dumps(index, separators=(",", ":")) if index else "{}",
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

    async def _refuse_taken_ids(
        self, chunk: Sequence[LoadedRow], prefix: str
    ) -> tuple[list[LoadedRow], set[int]]:
        """``chunk`` with every row whose id an earlier row already holds refused (failed,
        naming that row), and the refused rows' numbers: what the SQLite journal's unique
        index does, so one input loads the same on both.

        The first row with an id holds it: the row the input gave it to (``:ids``), or for
        a generated id (``<campaign_id>-<seq>``) row ``seq``, unless that row had an id of
        its own. A later row that takes a generated id first (the input gave it that form)
        holds it, and row ``seq`` is refused when it loads. A reloaded chunk (a loader that
        resumed) finds its rows holding their own ids, and loads as it did.
        """
        first, last = chunk[0].seq, chunk[-1].seq
        given = [
            row.message_id
            for row in chunk
            if row.message_id is not None and row.message_id != f"{prefix}{row.seq}"
        ]
        reply = await self._call(self._holders, (prefix, first, last, *given))
        holders: dict[str, int] = {}
        if reply:  # some row has an id of its own: which of these are held, and by whom
            generated = [f"{prefix}{seq}" for seq in range(first, last + 1)]
            for asked, found in zip([*given, *generated], reply, strict=True):
                if found is not None:
                    holders[asked] = int(_text(found))
        claimed: dict[str, int] = {}
        rows: list[LoadedRow] = []
        refused: set[int] = set()
        for row in chunk:
            id_ = row.message_id
            if id_ is not None:
                holder = claimed.get(id_, holders.get(id_))
                if holder is None and id_ != f"{prefix}{row.seq}":
                    seq = _generated_seq(id_, prefix)
                    if seq is not None and seq < first:  # a row of an earlier chunk's id
                        holder = await self._generated_holder(seq, id_)
                if holder is not None and holder != row.seq:
                    rows.append(attrs.evolve(row, failure=taken_id_failure(row, holder)))
                    refused.add(row.seq)
                    continue
                claimed[id_] = row.seq
            rows.append(row)
        return rows, refused

    async def _generated_holder(self, seq: int, id_: str) -> int | None:
        """``seq`` if row ``seq`` (loaded already) holds ``id_`` as its generated id, that
        is, had no id of its own; else ``None``. Asked only of an input that holds ids in
        this campaign's own form (its random id): never, in practice."""
        exported, failure = await self._call(self._id_records, (self._chunk_of(seq), seq))
        for entry in json.loads(_text(exported)) if exported is not None else ():
            if entry[0] == seq:  # [seq, destination] for a generated id, [.., id] for its own
                return seq if len(entry) == 2 else None
        if failure is not None:  # refused at load: it holds the id it was loaded with
            return seq if json.loads(_text(failure)).get("i") == id_ else None
        return None

    # -- sending ---------------------------------------------------------------------------

    async def recover(
        self, *, resend_unknown: bool = False, silent_for: timedelta | None = None
    ) -> Recovery:
        """Start a session. Crash recovery of the stream happens chunk by chunk, when a
        worker reclaims an idle chunk (its rows in flight become unknown). Here:

        - an unknown row with a delivery report on record is accepted, confirmed by it;
        - with ``resend_unknown``, unknown rows go back to pending: every one, or with
          ``silent_for`` those that became unknown at least that long ago by Redis's clock
          (a row becomes unknown after its request went out: it is never resent early);
        - rows pending again whose chunk has left the stream are sent by this session: it
          reopens their chunks under a lease that :meth:`heartbeat` renews; if it dies,
          the next session's ``recover`` makes its rows in flight unknown and sends the
          rest. Rows of a chunk still on the stream are sent by its next owner.
        """
        check_flag("resend_unknown", resend_unknown)
        if silent_for is not None:
            silent_for = check_duration("silent_for", silent_for)
        await self._chunk_size()
        self._buffer.clear()
        silent = -1 if silent_for is None else silent_for // timedelta(milliseconds=1)
        args = (self.worker, int(self.lease * 1000), silent, int(resend_unknown))
        reply = await self._call(self._resend, args)
        became, requeued, confirmed, still = (int(value) for value in reply[:4])
        i = 4
        while i < len(reply):
            n, token, count = int(reply[i]), _text(reply[i + 1]), int(reply[i + 2])
            i += 3
            self._tokens[n] = token
            self._lost.discard(n)
            self._reopened.add(n)
            for _ in range(count):
                seq, message_id, destination, body = reply[i : i + 4]
                row = OutgoingRow(int(seq), _text(message_id), _text(destination), _text(body))
                self._rows[row.seq] = row
                self._buffer.append(row)
                i += 4
        self._buffer.sort(key=lambda row: row.seq)
        self.became_unknown += became
        return Recovery(became, requeued, confirmed, still)

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
                code=self.stopped_code,
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
            reason = (
                "" if failure is None else _failure_json(failure, row, keep_body=outcome == "U")
            )
            pairs += [seq, reason]
        parts = totals.processed_sms_parts if totals is not None else 0
        credit = str(totals.credit) if totals is not None else ""
        reply = await self._call(
            self._settle, (outcome, parts, credit, *self._token_args(seqs), *pairs)
        )
        for n in reply[2:]:
            self._tokens.pop(int(n), None)
            self._reopened.discard(int(n))
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
        reopened = [(n, token) for n, token in owned if n in self._reopened]
        if reopened:
            await self._call(
                self._renew,
                [int(self.lease * 1000), *(part for pair in reopened for part in pair)],
            )
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
        """Record one part's delivery status; ``False`` if no row has that id."""
        update = DeliveryUpdate(message_id, status, done_at, part=part, parts=parts)
        return await self.record_deliveries([update]) == 1

    async def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> int:
        """Record delivery reports, in order; returns how many ids matched a row.

        Each message's stored state is folded with :meth:`DeliveryState.apply
        <agile_async.campaigns.DeliveryState.apply>` here, in Python (the one copy of the
        rule), and written back by a script that first checks nothing changed since it was
        read: two processes recording reports for one message fold them both, in turn. An
        unknown row that gets a report becomes accepted, confirmed by report.
        """
        by_message: dict[str, list[DeliveryUpdate]] = {}
        for update in updates:  # in order, per message: the rule is a fold
            by_message.setdefault(update.message_id, []).append(update)
        if not by_message:
            return 0
        prefix = await self._id_prefix()
        args: list[object] = []
        for message_id in by_message:  # a generated id names its row (0: look it up)
            args += [message_id, _generated_seq(message_id, prefix) or 0]
        while True:
            reply = await self._call(self._delivery_read, args)
            matched = 0
            writes: list[object] = []
            for i, mine in enumerate(by_message.values()):
                seq, state, record, dv = reply[4 * i : 4 * i + 4]
                if not int(seq):
                    continue
                matched += len(mine)
                record, dv = _text(record), _text(dv)
                before = _delivery_state(record, dv)
                after = before
                for update in mine:
                    after = after.apply(
                        update.status, part=update.part, parts=update.parts, done_at=update.done_at
                    )
                if after != before or _text(state) == "U":
                    new_record, new_dv = (
                        _delivery_stored(after)
                        if after != before
                        else (
                            record,
                            dv,
                        )
                    )
                    writes += [int(seq), record, dv, new_record, new_dv]
            if not writes or int(await self._call(self._delivery_write, writes)):
                return matched

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
            deliveries={
                status: int(stats[f"d{int(status)}"])
                for status in DeliveryStatus
                if int(stats.get(f"d{int(status)}", 0))
            },
            confirmed=int(stats.get("confirmed", 0)),
        )

    async def tally(self, states: Sequence[RowState], *, prefix_digits: int = 0) -> list[Tally]:
        """Not available: Redis keeps no destinations or encodings for a cost estimate."""
        raise CampaignError("dry runs need the SQLite journal: Redis keeps no per-row details")

    async def rows(
        self, states: Sequence[RowState] | None = None, *, chunk: int = 5000
    ) -> AsyncGenerator[Sequence[JournalRow], None]:
        """Every row (or those in ``states``) in input order: its message id, destination,
        state, reason and delivery status. Bodies are not kept, nor SMS parts, encodings
        and request ids (``parts`` is 0, ``encoding`` and ``global_id`` are ``None``)."""
        wanted = None if states is None else set(states)
        loaded = (await self.load_state()).loaded_through
        prefix = await self._id_prefix()
        confirmed = {int(_text(seq)) for seq in await self._call(self._read_confirmed, ())}
        first = 1
        while first <= loaded:
            last = min(first + chunk - 1, loaded)
            reply = await self._call(self._read_rows, (first, last))
            letters, records = _text(reply[0]), _text(reply[1])
            nchunks = int(reply[3])
            known: dict[int, tuple[str, str]] = {}
            for entry in reply[4 : 4 + nchunks]:
                for seq, destination, *given in json.loads(_text(entry) or "[]"):
                    known[seq] = (given[0] if given else f"{prefix}{seq}", destination)
            tail = reply[4 + nchunks :]
            reasons = {int(s): _text(r) for s, r in zip(tail[::2], tail[1::2], strict=True)}
            found: list[JournalRow] = []
            for i, letter in enumerate(letters):
                state = _LETTER[letter]
                if wanted is not None and state not in wanted:
                    continue
                seq = first + i
                failure = None
                message_id, destination = known.get(seq, (None, ""))
                if reasons.get(seq):
                    failure, kept_id, kept_destination = _failure_from(reasons[seq])
                    message_id = message_id or kept_id
                    destination = destination or kept_destination
                width = scripts.DELIVERY_RECORD
                summary = _delivery_summary(records[i * width : (i + 1) * width])
                delivery, delivered_at, delivered = summary or (None, None, 0)
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
                        delivery=delivery,
                        delivered_at=delivered_at,
                        parts_delivered=delivered,
                        confirmed_by_report=seq in confirmed,
                    )
                )
            if found:
                yield found
            first = last + 1

    async def aclose(self) -> None:
        """Nothing to release: the Redis client belongs to the caller."""
