"""``Campaign``: record a campaign, dry-run it, run it, resume it after a crash.

The façade the CLI and users' code share. It owns the journal and the campaign's
definition; checks before creation live in :mod:`._setup`, reading the input in
:mod:`._input`, and each run is a :class:`._runner.Runner`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._config import BatchSettings, batch_settings
from .._exceptions import CampaignError, InputChangedError, JournalError
from .._models import DeliveryReport, DeliveryStatus, SendOptions
from .._pricing import PriceList
from .._ratelimit import RateLimiter
from .._setting_validators import check_duration, check_flag, invalid
from .._validation import is_collection
from ._export import write_csv
from ._input import BodyTemplate, RecordReader, RowBuilder
from ._journal import (
    CampaignDefinition,
    DeliveryUpdate,
    InputFormat,
    Journal,
    JournalRow,
    LoadedRow,
    LoadState,
    Recovery,
    RowState,
    StateCounts,
)
from ._report import (
    CampaignProgress,
    CampaignReport,
    CampaignResult,
    CampaignStatus,
    LoadProgress,
    price_tallies,
)
from ._runner import Runner, call_back, check_run
from ._setup import (
    another_campaign,
    check_definition,
    check_journal,
    digest_if_present,
    inspect_source,
    journal_name,
    new_definition,
    open_journal,
    price_list,
    same_campaign,
)

if TYPE_CHECKING:
    from .._client import AgileClient

__all__ = ["Campaign"]

#: Rows recorded per journal transaction while loading.
LOAD_CHUNK = 5000


class Campaign:
    """A bulk campaign recorded in a journal: dry-run it, run it, resume it after a crash.

    ```python
    from agile_async import AgileClient, RateLimit
    from agile_async.campaigns import Campaign

    async with await Campaign.create(
        "spring.journal", "recipients.csv", body="Hi {name}, -20% today", sender="Shop"
    ) as campaign, AgileClient() as client:
        report = await campaign.dry_run(client, prices="0.045")
        result = await campaign.run(client, rate_limit=RateLimit(rate=100))
    ```

    After a crash, :meth:`open` the same journal and :meth:`run` again: pending rows are
    sent once, accepted rows never again, and rows that were in flight become *unknown*
    (reported, not re-sent) unless ``resend_unknown=True``.

    Build one with :meth:`create` or :meth:`open`, not the constructor.
    """

    def __init__(
        self,
        journal: Journal,
        definition: CampaignDefinition,
        *,
        recovery: Recovery,
        read_only: bool = False,
    ) -> None:
        self.journal = journal
        self.definition = definition
        #: What opening found: rows in flight in a dead run (now unknown), rows requeued.
        self.recovery = recovery
        self._read_only = read_only
        self._template = BodyTemplate(definition.body)
        self._runs = 0
        self._runner: Runner | None = None
        self._running = False

    # -- creating and opening --------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        journal: str | os.PathLike[str] | Journal,
        source: str | os.PathLike[str],
        *,
        body: str,
        sender: str,
        options: SendOptions | None = None,
        format: InputFormat | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        defaults: Mapping[str, object] | None = None,
        exist_ok: bool = False,
        resend_unknown: bool = False,
        silent_for: timedelta | float | None = None,
        journal_process: bool = False,
    ) -> Campaign:
        """Record a new campaign from a recipients file (rows are read by :meth:`load`).

        Args:
            journal: the journal's path (an SQLite file, created) or a :class:`Journal`.
            source: the recipients: CSV with a header (a ``destination`` column, an optional
                ``id`` column, other columns are template variables) or JSON lines with
                the same keys.
            body: the body template: ``{column}`` fields are filled from each row.
            sender: the sender alias (up to 11 characters) or number (up to 16 digits).
            options: request options for every message (``global_id`` must be ``None``).
            format: ``"csv"`` or ``"jsonl"``; guessed from the file name when omitted.
            encoding: the file's text encoding, a Python codec name (``"cp1252"``,
                ``"latin-1"``...). A byte that does not decode fails its row, naming the
                line; a UTF-8 byte order mark is skipped.
            delimiter: the CSV delimiter (one character, or ``"tab"``); sniffed from the
                file's start when omitted (comma, semicolon or tab). Both are recorded,
                so a resumed load reads the file the same way.
            defaults: run settings to remember for resumes (JSON-friendly values).
            exist_ok: when the journal already holds *this* campaign (same file content,
                body, sender and options), open it instead of failing.
            resend_unknown: with ``exist_ok``, as in :meth:`open`.
            silent_for: with ``resend_unknown``, as in :meth:`open`.
            journal_process: as in :meth:`open`.

        Raises:
            CampaignError: the file, template, sender or options are unusable (nothing is
                created; a file error names its line), or the journal holds another
                campaign.
            ValidationError: ``encoding`` or ``delimiter`` is not one.
        """
        check_flag("exist_ok", exist_ok)
        check_journal(journal, journal_process)
        silence = _silence(resend_unknown, silent_for)
        options = options if options is not None else SendOptions()
        check_definition(sender, options, body=body, source=source, defaults=defaults)
        template = BodyTemplate(body)
        found = await anyio.to_thread.run_sync(
            inspect_source, source, format, template, encoding, delimiter
        )
        definition = new_definition(
            source=found,
            body=body,
            sender=sender,
            options=options,
            defaults=defaults,
        )
        store = await open_journal(
            journal, create=True, exclusive=True, journal_process=journal_process
        )
        try:
            existing = await store.definition()
            if existing is None:
                await store.create(definition)
            elif exist_ok and same_campaign(existing, definition):
                definition = existing
            else:
                raise JournalError(another_campaign(journal, existing, definition))
            recovery = await store.recover(resend_unknown=resend_unknown, silent_for=silence)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.aclose()
            raise
        return cls(store, definition, recovery=recovery)

    @classmethod
    async def open(
        cls,
        journal: str | os.PathLike[str] | Journal,
        *,
        resend_unknown: bool = False,
        silent_for: timedelta | float | None = None,
        read_only: bool = False,
        journal_process: bool = False,
    ) -> Campaign:
        """Open a recorded campaign to resume it (or, ``read_only``, to read its state).

        Opening for sending takes the journal's run lock, then turns rows left in flight by
        a dead run into ``unknown`` (see :attr:`recovery`): their request may have gone out,
        and the provider has no idempotency key, so they are reported, not re-sent. A
        delivery report proves the provider took a message: rows it arrived for are
        accepted instead (*confirmed by delivery report*), also when it arrives later.

        With ``resend_unknown``, unknown rows go back to pending and are sent again (some
        recipients may then get the message twice): all of them, or with ``silent_for``
        (a :class:`~datetime.timedelta` or seconds) only those sent at least that long ago,
        so that a report still on its way can confirm the others first.

        With ``journal_process`` (and a path), the SQLite journal's work runs in a child
        process of its own (:meth:`SQLiteJournal.open` with ``process=True``): a large
        campaign sends about half again as fast, for a third of a second of start-up. The
        CLI's ``campaign run`` and ``resume`` do this.

        Raises:
            JournalError: no campaign there, or another process is running it.
            ValueError: ``silent_for`` without ``resend_unknown``, or negative.
        """
        check_flag("read_only", read_only)
        silence = _silence(resend_unknown, silent_for)
        store = await open_journal(
            journal, create=False, exclusive=not read_only, journal_process=journal_process
        )
        try:
            definition = await store.definition()
            if definition is None:
                raise JournalError(f"{journal_name(journal)} holds no campaign")
            recovery = Recovery()
            if not read_only:
                recovery = await store.recover(resend_unknown=resend_unknown, silent_for=silence)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.aclose()
            raise
        return cls(store, definition, recovery=recovery, read_only=read_only)

    async def aclose(self) -> None:
        """Close the journal (and release its run lock)."""
        await self.journal.aclose()

    async def __aenter__(self) -> Campaign:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Campaign {self.definition.campaign_id} journal={self.journal!r}>"

    # -- loading ---------------------------------------------------------------------------

    async def load(
        self, *, on_progress: Callable[[LoadProgress], object] | None = None
    ) -> LoadState:
        """Record every input row in the journal (resuming an interrupted load).

        Returns at once when loading is done. Otherwise the input must be the very file the
        campaign was created from: its SHA-256 is checked first, and again over the bytes
        actually read.

        Raises:
            InputChangedError: the file is gone or differs, and rows are still missing.
        """
        self._writable()
        state = await self.journal.load_state()
        if state.done:
            return state
        d = self.definition
        path = Path(d.source)
        missing = f"the journal holds {state.loaded_through} rows of {path}; "
        digest = await anyio.to_thread.run_sync(digest_if_present, path)
        if digest is None:
            raise InputChangedError(missing + "the file is gone, so the rest cannot be read")
        if digest != d.source_sha256:
            raise InputChangedError(missing + "the file changed since the campaign was created")
        reader = await anyio.to_thread.run_sync(
            functools.partial(
                RecordReader,
                path,
                d.source_format,
                encoding=d.source_encoding,
                # A CSV campaign recorded before delimiters were has none: it was read
                # with commas.
                delimiter=d.source_delimiter or ("," if d.source_format == "csv" else None),
            )
        )
        builder = RowBuilder(self._template, d.campaign_id, d.options)
        rows = 0
        try:
            while True:
                chunk, done = await anyio.to_thread.run_sync(
                    _next_chunk, reader, builder, state.loaded_through
                )
                if done and reader.sha256 != d.source_sha256:
                    raise InputChangedError(f"{path} changed while it was being read")
                await self.journal.append(chunk, done=done)
                rows += len(chunk)
                if on_progress is not None:
                    progress = LoadProgress(
                        rows=rows, bytes_read=reader.bytes_read, size=d.source_size
                    )
                    await call_back(on_progress, progress)
                if done:
                    break
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)
        return await self.journal.load_state()

    # -- reading ---------------------------------------------------------------------------

    async def counts(self) -> StateCounts:
        """The campaign's rows by state."""
        return await self.journal.counts()

    async def status(self) -> CampaignStatus:
        """The campaign's definition, loading state and counts."""
        return CampaignStatus(
            definition=self.definition,
            loading=await self.journal.load_state(),
            counts=await self.journal.counts(),
            journal=journal_name(self.journal),
        )

    def rows(
        self, states: Iterable[RowState] | None = None
    ) -> AsyncGenerator[Sequence[JournalRow], None]:
        """Every row (or those in ``states``), in input order, in chunks."""
        return self.journal.rows(_states(states))

    async def export(
        self, file: str | os.PathLike[str] | IO[str], *, states: Iterable[RowState] | None = None
    ) -> int:
        """Write the rows' outcomes as CSV (see :func:`write_csv` columns); returns the count."""
        return await write_csv(self.journal.rows(_states(states)), file)

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        done_at: datetime | None = None,
        *,
        part: int = 1,
        parts: int = 1,
    ) -> bool:
        """Record the delivery status of one part (``part`` of ``parts``) of a message.

        Returns ``False`` when no row has that id (a report for another campaign). A
        report for a row whose outcome is unknown makes it accepted, confirmed by report.
        With a parsed report at hand, :meth:`on_report` is simpler.
        """
        return await self.journal.record_delivery(
            message_id, status, done_at, part=part, parts=parts
        )

    async def on_report(self, report: DeliveryReport) -> None:
        """Record one delivery report: the callback for a webhook receiver,
        ``DeliveryReportReceiver(campaign.on_report)`` (like ``DeliveryTracker.on_report``)."""
        await self.journal.record_deliveries([DeliveryUpdate.from_report(report)])

    async def record_deliveries(self, reports: Iterable[DeliveryReport | DeliveryUpdate]) -> int:
        """Record many delivery reports (one per SMS part) in one journal write, in order.

        A message is delivered when every part is, failed when any part fails, pending
        otherwise: the rule of :class:`~agile_async.DeliveryTracker`. Returns how many
        reports matched a message of this campaign.
        """
        updates = [
            report if isinstance(report, DeliveryUpdate) else DeliveryUpdate.from_report(report)
            for report in reports
        ]
        return await self.journal.record_deliveries(updates) if updates else 0

    async def dry_run(
        self,
        client: AgileClient | None = None,
        *,
        prices: PriceList | Decimal | str | int | None = None,
    ) -> CampaignReport:
        """What sending the pending rows will take: parts, encodings, cost, credit.

        Loads the input first if needed. Nothing is sent.

        Args:
            client: when given, the account's credit is fetched and compared.
            prices: a :class:`~agile_async.segments.PriceList`, or one price per SMS part.

        Raises:
            ValidationError: a destination has no price in ``prices``.
        """
        if not self._read_only:
            await self.load()
        prices_ = price_list(prices)
        counts = await self.journal.counts()
        digits = max((len(prefix) for prefix in prices_.prices), default=0) if prices_ else 0
        tallies = await self.journal.tally([RowState.PENDING], prefix_digits=digits)
        problems: list[JournalRow] = []
        async with contextlib.aclosing(self.journal.rows([RowState.FAILED], chunk=10)) as rows:
            async for chunk in rows:
                problems.extend(chunk)
                break
        credit = await client.credit() if client is not None else None
        return CampaignReport(
            campaign_id=self.definition.campaign_id,
            total=counts.total,
            to_send=counts.pending,
            accepted=counts.accepted,
            failed=counts.failed,
            unknown=counts.unknown,
            parts=sum(t.parts for t in tallies),
            gsm7=sum(t.rows for t in tallies if t.encoding == "GSM-7"),
            ucs2=sum(t.rows for t in tallies if t.encoding == "UCS-2"),
            cost=None if prices_ is None else price_tallies(prices_, tallies),
            currency="EUR" if prices_ is None else prices_.currency,
            credit=credit,
            problems=tuple(problems),
        )

    # -- sending ---------------------------------------------------------------------------

    def progress(self) -> CampaignProgress:
        """A snapshot of the current (or last) run; cheap, from counters in memory."""
        if self._runner is None:
            return Runner(self.journal, self.definition.sender, 0, None).progress()
        return self._runner.progress()

    def stop(self) -> None:
        """Stop the run cleanly: no new request starts; requests under way finish and are
        recorded; everything else stays pending for a later run. Safe to call twice."""
        if self._runner is not None:
            self._runner.stop(interrupted=True)

    async def run(
        self,
        client: AgileClient,
        *,
        settings: BatchSettings | None = None,
        limiter: RateLimiter | None = None,
        limit: int | None = None,
        on_progress: Callable[[CampaignProgress], object] | None = None,
        progress_interval: float = 0.25,
        **overrides: Any,
    ) -> CampaignResult:
        """Send every pending row (or the next ``limit``), and record each outcome.

        Args:
            client: the client to send with.
            settings: the :class:`~agile_async.BatchSettings` (rate limit, batch size...);
                keyword ``overrides`` (any of its fields) apply on top. Their ``options``
                are replaced by the campaign's own.
            limiter: a shared :class:`~agile_async.RateLimiter` instead of the settings'.
            limit: send at most this many rows in this run; the rest stay pending.
            on_progress: called with a :class:`CampaignProgress` every
                ``progress_interval`` seconds and once at the end (it may be async).

        Returns:
            How the run ended (:attr:`CampaignResult.stopped_by` holds an account or network
            error that stopped it early) and where the whole campaign stands.
        """
        self._writable()
        check_run(client, limit, on_progress, progress_interval)
        if "options" in overrides:
            raise invalid(
                "options",
                "must not be given to run(): a campaign sends with the options it was created "
                "with (Campaign.create(options=...))",
            )
        batch = batch_settings(settings, overrides, options=self.definition.options)
        if self._running:
            raise RuntimeError("this campaign is already running")
        self._running = True
        try:
            await self.load()
            if self._runs:
                await self.journal.recover()  # a new session: rewind, settle leftovers
            self._runs += 1
            counts = await self.journal.counts()
            total = counts.pending if limit is None else min(counts.pending, limit)
            runner = self._runner = Runner(
                self.journal, self.definition.sender, total, counts.credit
            )
            await runner.run(
                client,
                batch,
                limiter=limiter,
                limit=limit,
                on_progress=on_progress,
                interval=progress_interval,
            )
        finally:
            self._running = False
        return CampaignResult(
            counts=await self.journal.counts(),
            progress=runner.progress(),
            stopped_by=runner.stopped_by,
            interrupted=runner.interrupted,
        )

    def _writable(self) -> None:
        if self._read_only:
            raise CampaignError("this campaign was opened read-only")


# -- helpers -------------------------------------------------------------------------------


def _states(states: Iterable[RowState] | None) -> tuple[RowState, ...] | None:
    """``states`` as given, when it is ``None`` or a collection of :class:`RowState`."""
    if states is None:
        return None
    chosen = tuple(states) if is_collection(states) else None  # a generator read once
    if chosen is None or not all(isinstance(state, RowState) for state in chosen):
        raise invalid("states", "must be RowState values (a list or a set) or None", states)
    return chosen  # type: ignore[return-value]


def _silence(resend_unknown: bool, silent_for: timedelta | float | None) -> timedelta | None:
    """``silent_for`` as a duration, checked (and ``resend_unknown``: a ``"false"`` read as
    true would send unknown messages again)."""
    check_flag("resend_unknown", resend_unknown)
    if silent_for is None:
        return None
    if not resend_unknown:
        raise invalid("silent_for", "limits resend_unknown: give resend_unknown=True too")
    return check_duration("silent_for", silent_for)


def _next_chunk(
    reader: RecordReader, builder: RowBuilder, after: int
) -> tuple[list[LoadedRow], bool]:
    """The next rows to record (skipping those already recorded), and whether that was all."""
    chunk: list[LoadedRow] = []
    for record in reader:
        if record.seq <= after:
            continue
        chunk.append(builder.build(record))
        if len(chunk) >= LOAD_CHUNK:
            return chunk, False
    return chunk, True
