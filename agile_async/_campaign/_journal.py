"""The journal contract: what a campaign records, and the states every recipient goes through.

A journal is the campaign's memory. It holds the campaign's definition and one row per
recipient *before anything is sent*, and every state change after:

```
pending ──mark_in_flight (durable, before the POST)──> in_flight ──> accepted
   ^                                                        │   └──> failed (reason)
   └───────── release (the request provably never went) ────┤
                                                            └──> unknown ──(a delivery
failed at load (bad destination, template) ──────> failed          report)──> accepted
```

The one rule that keeps a crash from texting anyone twice: a row whose request *may* have
gone out (``in_flight`` when its process died) becomes ``unknown`` when the journal is next
opened, and is never sent again unless the operator asks (``resend_unknown``). The provider
documents no idempotency key, so this is the only safe reading of a lost answer.

Unknown is resolvable. A delivery report for a row proves the provider took its message: an
``unknown`` row that gets one becomes ``accepted``, *confirmed by delivery report*, and so
does an ``in_flight`` row that got one before its request's answer was lost. What is left
unknown is what the provider never reported on; ``resend_unknown`` can be limited to rows
silent for a while (``silent_for``), since a report usually follows a send within minutes.

Delivery statuses follow the one rule of :class:`~agile_async.campaigns.DeliveryState` (the
tracker's too): a journal keeps each message's state (status, parts, each part's status) and
applies every report to it.

Backends implement :class:`Journal`: the embedded SQLite journal now, a Redis one for many
workers later (SCALEOUT.md §4); the engine is written against the protocol only.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol, overload, runtime_checkable

import attrs

from .._exceptions import APIError, OutcomeUnknownError
from .._models import DeliveryReport, DeliveryStatus, SendOptions
from .._tickets import RequestTotals

__all__ = [
    "CONFIRMED_BY_REPORT",
    "CampaignDefinition",
    "DeliveryUpdate",
    "Failure",
    "InputFormat",
    "Journal",
    "JournalRow",
    "LoadState",
    "LoadedRow",
    "OutgoingColumns",
    "OutgoingRow",
    "Recovery",
    "RowState",
    "StateCounts",
    "Tally",
]

#: How status and export describe an accepted row whose request's answer was lost, and which
#: a delivery report later proved the provider took.
CONFIRMED_BY_REPORT = "confirmed by delivery report"

#: How the recipients file is written: CSV with a header, or one JSON object per line.
InputFormat = Literal["csv", "jsonl"]


class RowState(str, enum.Enum):
    """Where one recipient's message is. ``accepted``, ``failed`` and ``unknown`` are final
    (``unknown`` goes back to ``pending`` only on an explicit ``resend_unknown``)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Failure:
    """Why a row failed or became unknown: the error's class, the provider code, the text.

    Attributes:
        kind: the error class name (``InvalidDestinationError``, ``ValidationError``,
            ``TemplateError``, ``OutcomeUnknownError``...).
        message: the error's text (never a secret: the SDK's errors carry none).
        code: the provider's error code, when the provider gave one.
    """

    kind: str
    message: str
    code: int | None = None

    @classmethod
    def from_exception(cls, error: BaseException) -> Failure:
        """The reason recorded for ``error``."""
        code = error.code if isinstance(error, APIError) else None
        text = str(error) or type(error).__name__
        return cls(type(error).__name__, text, code)

    def __str__(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        return f"{self.kind}{code}: {self.message}"


@attrs.frozen(kw_only=True)
class CampaignDefinition:
    """What a campaign is, recorded once, before its first row.

    Attributes:
        campaign_id: a short random id; generated message ids start with it.
        source: the recipients file, as an absolute path.
        source_format: ``"csv"`` or ``"jsonl"``.
        source_sha256: the file's SHA-256 (hex) when the campaign was created.
        source_size: the file's size in bytes.
        body: the body template (``{name}`` fields filled from each row).
        sender: the sender alias or number.
        options: the request options every message is sent with.
        created_at: when the campaign was created (UTC).
        defaults: run settings recorded for later resumes (rate limit...), JSON-friendly.
        source_encoding: the file's text encoding (a Python codec name: ``utf-8``,
            ``cp1252``...), so a resumed load reads it as the first did.
        source_delimiter: the CSV file's delimiter, given or sniffed when the campaign
            was created (``None`` for JSON lines; a CSV journal from before delimiters
            were recorded reads as ``","``).
    """

    campaign_id: str
    source: str
    source_format: InputFormat
    source_sha256: str
    source_size: int
    body: str
    sender: str
    options: SendOptions
    created_at: datetime
    defaults: Mapping[str, object] = attrs.field(factory=dict)
    source_encoding: str = "utf-8"
    source_delimiter: str | None = None


@attrs.frozen
class LoadState:
    """How far loading the input has come: rows up to ``loaded_through`` are recorded."""

    loaded_through: int
    done: bool


@attrs.frozen(kw_only=True)
class LoadedRow:
    """One input record, as the loader records it.

    A record refused at load (a bad destination, a template variable missing, a duplicate
    id) carries its ``failure`` and is stored as ``failed``, so the campaign reports it
    instead of stopping on it. It keeps the ``message_id`` the input gave it, even when
    that id is the reason (a journal keeps a duplicate's id beside the row, not as its id).
    ``line`` is the file line the record starts on, when known.
    """

    seq: int
    message_id: str | None
    destination: str
    body: str | None
    parts: int = 0
    encoding: str | None = None
    failure: Failure | None = None
    line: int | None = None


def taken_id_failure(row: LoadedRow, holder: int | None) -> Failure:
    """Why ``row`` is refused at load: its id is already the message id of row ``holder``
    (every journal's rule: the first row with an id keeps it, a later one fails, so no two
    messages of a campaign ever go out under one id and its delivery reports have one
    owner)."""
    line = f"line {row.line}: " if row.line else ""
    return Failure(
        "ValidationError",
        f"{line}id {row.message_id!r} is already used by an earlier row "
        f"(record {holder if holder is not None else '?'})",
    )


@attrs.frozen
class OutgoingRow:
    """A row to send: everything the engine needs to build its message."""

    seq: int
    message_id: str
    destination: str
    body: str


class OutgoingColumns(Sequence[OutgoingRow]):
    """Rows to send, kept as the two columns the engine uses: no object per row.

    The SQLite journal's ``next_rows`` returns one (private: a journal of one's own returns
    any sequence of :class:`OutgoingRow`): to anyone else it is a sequence of
    :class:`OutgoingRow` (made when read), while the engine hands :attr:`messages` to
    ``Batcher.submit_many`` as they are. A journal hands
    out about a row per microsecond of the send phase's budget, so an object per row
    (attrs' frozen init) was a twentieth of that budget.

    Attributes:
        seqs: the rows' numbers, in order.
        messages: ``(destination, body, message_id)`` per row, in the same order:
            ``submit_many``'s light rows.
    """

    __slots__ = ("messages", "seqs")

    def __init__(self, seqs: list[int], messages: list[tuple[str, str, str]]) -> None:
        if len(seqs) != len(messages):
            raise ValueError("seqs and messages differ in length")
        self.seqs = seqs
        self.messages = messages

    def __len__(self) -> int:
        return len(self.seqs)

    @overload
    def __getitem__(self, index: int) -> OutgoingRow: ...

    @overload
    def __getitem__(self, index: slice) -> OutgoingColumns: ...

    def __getitem__(self, index: int | slice) -> OutgoingRow | OutgoingColumns:
        if isinstance(index, slice):
            return OutgoingColumns(self.seqs[index], self.messages[index])
        destination, body, message_id = self.messages[index]
        return OutgoingRow(self.seqs[index], message_id, destination, body)

    def __repr__(self) -> str:
        return f"<OutgoingColumns of {len(self.seqs)} rows>"


@attrs.frozen(kw_only=True)
class JournalRow:
    """One row as reported by ``status``/``export`` (without its body).

    Attributes:
        seq: the record's number in the input, from 1.
        message_id: the id sent with the message (matches delivery reports' ``messageId``);
            for a row refused at load, the id the input gave it (a duplicate's too), or
            the generated one when it gave none.
        destination: the phone number as sent.
        state: the row's :class:`RowState`.
        parts: the SDK's count of SMS parts for the body.
        encoding: ``"GSM-7"`` or ``"UCS-2"`` (``None`` for rows refused at load).
        attempts: how many requests carried it (above 1 only after ``resend_unknown``).
        global_id: the ``globalId`` of the latest request that carried it.
        failure: why it failed or is unknown.
        delivery: its delivery status under the delivery rule: ``DELIVERED`` once every
            part is, the failure of a part, ``ACCEPTED`` while pending, ``None`` before
            any report.
        delivered_at: when that status was reached (the report's ``doneDate``).
        parts_delivered: how many of its parts are reported delivered.
        confirmed_by_report: accepted because a delivery report proved the provider took
            it, after its request's answer was lost (it was, or would have been, unknown).
    """

    seq: int
    message_id: str | None
    destination: str
    state: RowState
    parts: int
    encoding: str | None
    attempts: int
    global_id: str | None
    failure: Failure | None
    delivery: DeliveryStatus | None
    delivered_at: datetime | None
    parts_delivered: int = 0
    confirmed_by_report: bool = False


@attrs.frozen(kw_only=True)
class StateCounts:
    """How many rows are in each state, and what the provider reported for the accepted."""

    pending: int = 0
    in_flight: int = 0
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    #: SMS parts of the accepted rows, by the provider's count (``processedSmsParts``).
    parts: int = 0
    #: The credit (EUR) reported by the latest accepted request, if any.
    credit: Decimal | None = None
    #: Rows by delivery status (rows with no report yet are not counted).
    deliveries: Mapping[DeliveryStatus, int] = attrs.field(factory=dict)
    #: Accepted rows (counted in ``accepted``) confirmed by a delivery report after their
    #: request's answer was lost.
    confirmed: int = 0

    @property
    def total(self) -> int:
        """Every row of the campaign."""
        return self.pending + self.in_flight + self.accepted + self.failed + self.unknown

    @property
    def settled(self) -> int:
        """Rows with a final outcome (accepted, failed or unknown)."""
        return self.accepted + self.failed + self.unknown

    def of(self, state: RowState) -> int:
        """The count for one state."""
        return int(getattr(self, state.name.lower()))


@attrs.frozen
class DeliveryUpdate:
    """A delivery report to record for one message: the status of one of its parts.

    Attributes:
        message_id: the message's id (``messageId``).
        status: the part's status (``statusCode``).
        done_at: when it was reached (``doneDate``).
        part: which part, from 1 (``concatProgressive``).
        parts: how many parts the message has (``concatTotal``).
    """

    message_id: str
    status: DeliveryStatus
    done_at: datetime | None = None
    part: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    parts: int = attrs.field(default=1, validator=attrs.validators.ge(1))

    @classmethod
    def from_report(cls, report: DeliveryReport) -> DeliveryUpdate:
        """The update a parsed delivery report makes."""
        return cls(
            report.message_id,
            report.status,
            report.done_date,
            part=report.concat_progressive,
            parts=report.concat_total,
        )


@attrs.frozen
class Tally:
    """Rows grouped for a cost estimate: by destination prefix and encoding.

    Attributes:
        prefix: the destinations' first digits (as many as asked; ``""`` when none were).
        encoding: ``"GSM-7"`` or ``"UCS-2"``.
        rows: how many rows.
        parts: their SMS parts, by the SDK's count.
    """

    prefix: str
    encoding: str | None
    rows: int
    parts: int


@attrs.frozen
class Recovery:
    """What opening the journal found and did about an earlier run.

    Attributes:
        became_unknown: rows that were in flight when the previous run died, now unknown.
        requeued: unknown rows put back to pending because ``resend_unknown`` was asked.
        confirmed: rows that were in flight when the previous run died, but which a
            delivery report had already confirmed: accepted, not unknown.
        still_unknown: unknown rows ``resend_unknown`` left alone because they were sent
            less than ``silent_for`` ago (a report may still come).
    """

    became_unknown: int = 0
    requeued: int = 0
    confirmed: int = 0
    still_unknown: int = 0


#: A failure reason for rows whose request may have gone out when their process died.
CRASH_FAILURE = Failure(
    OutcomeUnknownError.__name__,
    "the process stopped while this message's request was in flight: it may or may not "
    "have been sent",
)


@runtime_checkable
class Journal(Protocol):
    """What the campaign engine needs from a journal backend.

    Every method may be called from any AnyIO backend and must not block the event loop.
    Row numbers (``seq``) are the records' positions in the input, from 1.
    """

    # -- definition and loading --------------------------------------------------------

    async def create(self, definition: CampaignDefinition) -> None:
        """Record a new campaign; fails if the journal already holds one."""

    async def definition(self) -> CampaignDefinition | None:
        """The campaign recorded here, or ``None`` for an empty journal."""

    async def load_state(self) -> LoadState:
        """How much of the input is recorded."""

    async def append(self, rows: Sequence[LoadedRow], *, done: bool) -> None:
        """Record the next input rows atomically, with ``done`` once the input is exhausted.

        A row whose ``message_id`` is already taken is stored as failed, naming the row
        that has it; :meth:`rows` still reports the id it was given (the export shows the
        input's ids for every row), though delivery reports for it go to the row that has
        it. Rows at or below :meth:`load_state`'s ``loaded_through`` are ignored,
        so a loader that crashed may simply start over.
        """

    # -- sending -------------------------------------------------------------------------

    async def recover(
        self, *, resend_unknown: bool = False, silent_for: timedelta | None = None
    ) -> Recovery:
        """Start a session: rows in flight from a dead session become unknown (never
        re-sent), or accepted if a delivery report already confirmed them.

        With ``resend_unknown``, unknown rows go back to pending: every one, or with
        ``silent_for`` only those whose latest request went out at least that long ago
        (an unknown row has had no report at all: one would have confirmed it).
        """

    async def next_rows(self, limit: int) -> Sequence[OutgoingRow]:
        """The next pending rows for this session to send (at most ``limit``), never the
        same row twice in one session; empty when there are none left."""

    async def mark_in_flight(self, seqs: Sequence[int], global_id: str) -> None:
        """Durably record that these rows are about to go out in request ``global_id``.
        Must be on stable storage before returning: the POST follows.

        Rows must be pending, or in flight in this session (the halves of a request split
        by bisection go out again under new ``globalId`` values).

        Raises:
            JournalError: a row already has an outcome (nothing is changed, nothing must
                be sent).
        """

    async def record_accepted(self, seqs: Sequence[int], totals: RequestTotals) -> None:
        """The provider accepted the request that carried these rows."""

    async def record_failed(self, seqs: Sequence[int], failure: Failure) -> None:
        """These rows failed for good (pending or in flight before)."""

    async def record_unknown(self, seqs: Sequence[int], failure: Failure) -> None:
        """The request carrying these rows may or may not have been taken. A row that
        already has a delivery report (it can arrive before the answer) was taken: it
        becomes accepted, confirmed by report, instead."""

    async def release(self, seqs: Sequence[int]) -> None:
        """The request carrying these in-flight rows provably never went (an account error,
        a refused connection): they are pending again, for a later run."""

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        done_at: datetime | None = None,
        *,
        part: int = 1,
        parts: int = 1,
    ) -> bool:
        """Record one part's delivery status; ``False`` if no row has that id.

        :meth:`record_deliveries` for one update.
        """

    async def record_deliveries(self, updates: Sequence[DeliveryUpdate]) -> int:
        """Record delivery reports in one write, in order; returns how many ids matched a row.

        Each message's state is folded with :meth:`DeliveryState.apply
        <agile_async.campaigns.DeliveryState.apply>`, the tracker's rule: delivered when
        every part is, failed when any part fails (the kind kept), pending otherwise. An
        ``unknown`` row that gets a report becomes accepted, confirmed by report.
        """

    # -- reading -------------------------------------------------------------------------

    async def counts(self) -> StateCounts:
        """Rows by state, with the provider's parts and latest credit."""

    async def tally(self, states: Sequence[RowState], *, prefix_digits: int = 0) -> list[Tally]:
        """Rows in ``states`` grouped by the first ``prefix_digits`` digits of their
        destination and by encoding: what a cost estimate needs, without reading every row."""

    def rows(
        self, states: Sequence[RowState] | None = None, *, chunk: int = 5000
    ) -> AsyncGenerator[Sequence[JournalRow], None]:
        """Every row (or those in ``states``) in input order, in chunks."""

    async def aclose(self) -> None:
        """Release the journal (its connection, its lock)."""
