"""One run of a campaign: pending rows into the Batcher, every outcome into the journal.

```
journal.next_rows --> Batcher.submit_many     (light rows; waits while the queue is full, or
                                               while too many outcomes are not recorded yet)
before_send:  journal.mark_in_flight (durable) --> POST
on_result:    journal.record_accepted | record_failed | record_unknown | release
```

A run stops early, cleanly, on an error that will not go away by itself: an account error
(credentials, credit, IP allow-list) or a provider/network failure that outlasted the
retries. Messages not yet sent stay pending; messages in requests under way keep their real
outcome. :meth:`Runner.stop` does the same on request (the CLI's Ctrl-C).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import anyio

from .._batching import Batcher, RequestOutcome
from .._concurrency import call_maybe_async, task_group
from .._config import BatchSettings
from .._exceptions import (
    AgileError,
    APIError,
    ClientClosedError,
    JournalError,
    MessageWithdrawnError,
    RateLimitError,
    ServerError,
    ServiceTimeoutError,
    TransportError,
    ValidationError,
)
from .._ratelimit import RateLimiter
from .._setting_validators import check_callable, check_integer, check_number, invalid
from .._tickets import Ticket, TicketState, ids_of
from ._journal import Failure, Journal, OutgoingColumns, OutgoingRow
from ._report import CampaignProgress

if TYPE_CHECKING:
    from .._client import AgileClient

__all__ = ["Runner", "call_back"]

log = logging.getLogger("agile_async")

#: Rows read from the journal at a time while sending.
SEND_CHUNK = 1000
#: A light row's message id: ``(destination, body, message_id)``.
_MESSAGE_ID = itemgetter(2)
#: Progress rate is measured over this many recent seconds.
_RATE_WINDOW = 10.0


def _not_sent(error: BaseException) -> bool:
    """Whether a failed request did not send its messages, and the cause will not go away
    by retrying now: those rows go back to pending and the run stops.

    That is an account error, a failure the client retried in vain (the SDK retries only
    what the provider did not take: codes 8 and 9, 429, connection failures, gateway
    pages), and any answer that is not the provider's verdict (no provider code: a proxy's
    page, a wrong base URL), which must not fail every row one by one.
    """
    if isinstance(error, APIError) and (error.scope == "account" or error.code is None):
        return True
    return isinstance(
        error,
        (
            ClientClosedError,
            MessageWithdrawnError,
            TransportError,
            RateLimitError,
            ServerError,
            ServiceTimeoutError,
            JournalError,
        ),
    )


class Runner:
    """Sends a campaign's pending rows once, recording each outcome; one per run.

    Args:
        journal: where the rows are, and where outcomes go.
        sender: the campaign's sender.
        total: rows this run sets out to send (for progress).
        credit: the latest credit known before the run.
    """

    def __init__(self, journal: Journal, sender: str, total: int, credit: Decimal | None) -> None:
        self._journal = journal
        self._sender = sender
        self.total = total
        self.credit = credit
        self.accepted = self.failed = self.unknown = self.parts = 0
        self.stopped_by: BaseException | None = None
        self.interrupted = False
        self._stopping = False
        self._started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque(maxlen=256)
        #: The seq of each row handed to the batcher, by its message id.
        self._seq_of: dict[str, int] = {}
        self._in_flight: set[int] = set()
        self._max_marked = 0  # rows marked in flight at once: set by run()
        self._settled: anyio.Event | None = None
        self._feeding: anyio.CancelScope | None = None
        self._recorded: anyio.Event | None = None

    # -- what the caller sees ----------------------------------------------------------

    def progress(self) -> CampaignProgress:
        """A snapshot, from counters in memory (cheap)."""
        now = time.monotonic()
        elapsed = now - self._started
        done = self.accepted + self.failed + self.unknown
        rate = _rate(self._samples, now, done, elapsed)
        left = max(self.total - done, 0)
        return CampaignProgress(
            total=self.total,
            accepted=self.accepted,
            failed=self.failed,
            unknown=self.unknown,
            in_flight=len(self._in_flight),
            parts=self.parts,
            credit=self.credit,
            elapsed=elapsed,
            rate=rate,
            eta=(left / rate) if rate > 0 else (0.0 if left == 0 else None),
        )

    def stop(self, error: BaseException | None = None, *, interrupted: bool = False) -> None:
        """Send nothing more: stop feeding, refuse new requests, let those under way end.

        ``error`` is what stopped the run (the first one is kept); ``interrupted`` marks a
        stop asked for by the user.
        """
        if interrupted and not self._stopping:
            self.interrupted = True
        if error is not None and self.stopped_by is None and not self.interrupted:
            log.warning("agile_async campaign stopping: %s", error)
            self.stopped_by = error
        self._stopping = True
        self._wake_markers()  # a request waiting to be marked is refused now
        if self._feeding is not None:
            self._feeding.cancel()

    async def run(
        self,
        client: AgileClient,
        settings: BatchSettings,
        *,
        limiter: RateLimiter | None,
        limit: int | None,
        on_progress: Callable[[CampaignProgress], object] | None,
        interval: float,
    ) -> None:
        """Send until every pending row (or ``limit`` of them) has an outcome, or a stop."""
        self._max_marked = settings.max_in_flight * settings.max_messages
        try:
            async with task_group() as tasks:
                if on_progress is not None:
                    tasks.start_soon(self._report_progress, on_progress, interval)
                async with client.batcher(
                    settings,
                    limiter=limiter,
                    before_send=self._before_send,
                    on_result=self._on_result,
                ) as batcher:
                    # A stop cancels this scope, whether rows are still being fed or the
                    # last requests are going out: what is still queued is then taken back.
                    with anyio.CancelScope() as self._feeding:
                        if not self._stopping:
                            await self._feed(batcher, limit, _outstanding_limit(settings))
                            await batcher.flush()
                    if self._stopping:
                        await batcher.aclose(cancel=True)
                tasks.cancel_scope.cancel()
        finally:
            self._feeding = None
            self._stopping = True
        if on_progress is not None:
            await call_back(on_progress, self.progress())

    # -- feeding -----------------------------------------------------------------------

    async def _feed(self, batcher: Batcher, limit: int | None, outstanding: int) -> None:
        """Hand pending rows to the batcher, many at a time (``submit_many``, light rows).

        Two kinds of backpressure keep memory flat: ``submit_many`` waits while the
        batcher's queue is full, and the feeder waits while more than ``outstanding``
        messages have no outcome *recorded* yet (the journal may be slower than the
        network).
        """
        submitted = 0
        while True:
            chunk = SEND_CHUNK if limit is None else min(SEND_CHUNK, limit - submitted)
            try:
                rows = await self._journal.next_rows(chunk) if chunk > 0 else ()
            except Exception as error:  # the rows stay pending: stop, as for any journal error
                self.stop(_journal_error("the journal could not hand out rows", error))
                return
            if not rows:
                return
            seqs, messages = _columns(rows)
            start = 0
            while start < len(seqs):
                while len(self._seq_of) >= outstanding:
                    self._recorded = anyio.Event()
                    await self._recorded.wait()
                end = start + outstanding - len(self._seq_of)
                if not await self._submit(batcher, seqs[start:end], messages[start:end]):
                    return
                submitted += min(end, len(seqs)) - start
                start = end

    async def _submit(
        self, batcher: Batcher, seqs: list[int], messages: list[tuple[str, str, str]]
    ) -> bool:
        """Queue rows as light rows ``(destination, body, message_id)``; ``False`` once
        the run must stop.

        A row's seq is found again by its message id (the batcher may send, and report,
        the first rows before the call returns). A row the batcher's checks refuse fails
        alone: the rows are then queued one by one. A message id already under way in this
        run (a journal holding it twice) fails the second row, never overwrites the first.
        """
        seq_of = self._seq_of
        ids = list(map(_MESSAGE_ID, messages))
        duplicates: list[int] = []
        if not (seq_of.keys().isdisjoint(ids) and len(set(ids)) == len(ids)):  # unusual
            kept_seqs: list[int] = []
            kept: list[tuple[str, str, str]] = []
            for seq, message, id_ in zip(seqs, messages, ids, strict=True):
                if id_ in seq_of:
                    duplicates.append(seq)
                    continue
                seq_of[id_] = seq
                kept_seqs.append(seq)
                kept.append(message)
            seqs, messages = kept_seqs, kept
        else:
            seq_of.update(zip(ids, seqs, strict=True))
        if duplicates and not await self._fail_rows(
            duplicates,
            ValidationError.single("message.ids", "this message id is already being sent"),
        ):
            return False
        try:
            try:
                await batcher.submit_many(messages, sender=self._sender, handles=False)
            except ValidationError:  # some row is refused: find it, let the others through
                for seq, message in zip(seqs, messages, strict=True):
                    try:
                        await batcher.submit_many([message], sender=self._sender, handles=False)
                    except ValidationError as error:  # a row the batcher's checks refuse
                        del seq_of[message[2]]
                        if not await self._fail_rows([seq], error):
                            return False
        except AgileError as error:  # the batcher stopped: an account-wide error
            self.stop(error)
            return False
        return True

    async def _fail_rows(self, seqs: list[int], error: BaseException) -> bool:
        """Record rows as failed before sending; ``False`` if the journal could not."""
        try:
            await self._journal.record_failed(seqs, Failure.from_exception(error))
        except Exception as failed:  # the rows stay pending
            self.stop(_journal_error("the journal could not record an outcome", failed))
            return False
        self.failed += len(seqs)
        return True

    # -- the batcher's hooks -----------------------------------------------------------

    async def _before_send(self, tickets: Sequence[Ticket], global_id: str) -> None:
        """Durably mark the request's rows in flight; refuse once the run is stopping.

        Rows stay marked until their outcome is *recorded*, which may come after the
        request's slot went to the next request (the journal can be slower than the
        network). So that a crash leaves at most ``max_in_flight`` requests' rows unknown,
        a request waits here while marking it would take the marked rows past
        ``max_in_flight * max_messages`` (a bisected half, already marked, never waits).
        """
        seq_of = self._seq_of
        seqs = list(map(seq_of.__getitem__, ids_of(tickets)))  # rows: one id each
        in_flight = self._in_flight
        while True:
            if self._stopping:
                raise ClientClosedError("the campaign is stopping: this request is not sent")
            if not in_flight or len(in_flight) + len(seqs) <= self._max_marked:
                break  # room even if none of them is marked yet (the usual case)
            new = len(seqs) - len(in_flight.intersection(seqs))
            if len(in_flight) + new <= self._max_marked:
                break
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()
        # Counted from now: if the mark fails, its outcome (not sent) clears them again.
        self._in_flight.update(seqs)
        try:
            await self._journal.mark_in_flight(seqs, global_id)
        except JournalError:
            raise
        except Exception as error:  # the disk is full, the file vanished, Redis is away...
            raise _journal_error(
                f"the journal could not record request {global_id}", error
            ) from error

    def _wake_markers(self) -> None:
        """Wake the requests waiting in ``_before_send`` to look again."""
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    async def _on_result(self, outcome: RequestOutcome) -> None:
        """Record a request's outcome; stop the run on errors that will not go away."""
        seqs = list(map(self._seq_of.pop, outcome.ids, repeat(-1)))
        if -1 in seqs:  # tickets not fed by this run (seqs count from 1): none, usually
            seqs = [seq for seq in seqs if seq != -1]
        if self._recorded is not None:
            self._recorded.set()
        try:
            await self._record(outcome, seqs)
        except Exception as error:
            surprise = not isinstance(error, AgileError)
            if surprise or not self._stopping:  # once stopping, its reason was logged
                log.error(
                    "agile_async campaign: the journal failed to record an outcome",
                    exc_info=surprise,  # a traceback for a bug, not for an outage
                )
            self.stop(_journal_error("the journal could not record an outcome", error))
        except BaseException:  # cancelled: the batcher gives up on a slow callback in time
            if not self._stopping:  # the rows stay in flight: sending on would never finish
                self.stop(JournalError("an outcome was not recorded in time: stopping"))
            raise
        finally:
            self._in_flight.difference_update(seqs)
            self._wake_markers()
        self._samples.append((time.monotonic(), self.accepted + self.failed + self.unknown))

    async def _record(self, outcome: RequestOutcome, seqs: list[int]) -> None:
        journal = self._journal
        error = outcome.error
        if outcome.state is TicketState.ACCEPTED:
            assert outcome.totals is not None
            await journal.record_accepted(seqs, outcome.totals)
            self.accepted += len(seqs)
            self.parts += outcome.totals.processed_sms_parts
            self.credit = outcome.totals.credit
        elif outcome.state is TicketState.UNKNOWN:
            assert error is not None
            await journal.record_unknown(seqs, Failure.from_exception(error))
            self.unknown += len(seqs)
        elif outcome.state is TicketState.WITHDRAWN:
            await journal.release(seqs)  # taken back unsent: pending again
        elif error is not None and _not_sent(error):
            await journal.release(seqs)  # rows still queued were never in flight: no-op
            if not isinstance(error, ClientClosedError) or not self._stopping:
                self.stop(error)
        elif error is not None:
            await journal.record_failed(seqs, Failure.from_exception(error))
            self.failed += len(seqs)

    async def _report_progress(
        self, on_progress: Callable[[CampaignProgress], object], interval: float
    ) -> None:
        while True:
            await anyio.sleep(interval)
            await call_back(on_progress, self.progress())


# -- helpers -------------------------------------------------------------------------------


async def call_back(callback: Callable[[Any], object], value: object) -> None:
    """Call a progress callback (sync or async); its errors are logged, never fatal."""
    try:
        await call_maybe_async(callback, value)
    except Exception:
        log.exception("agile_async campaign: the progress callback raised; ignored")


def _journal_error(what: str, error: BaseException) -> JournalError:
    """A journal failure that stops the run, keeping its cause (a caller may need it: a
    Redis outage, say, has its own exit code)."""
    if isinstance(error, JournalError):
        return error
    wrapped = JournalError(f"{what}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _rate(samples: deque[tuple[float, int]], now: float, done: int, elapsed: float) -> float:
    """Messages per second over the last few seconds (over the whole run at first)."""
    while len(samples) > 1 and now - samples[0][0] > _RATE_WINDOW:
        samples.popleft()
    if samples and now - samples[0][0] >= 1.0:
        start, count = samples[0]
        return (done - count) / (now - start)
    return done / elapsed if elapsed > 0 else 0.0


def check_run(client: object, limit: object, on_progress: object, progress_interval: float) -> None:
    """Refuse the arguments of a run (``Campaign.run()``, the Redis ``work()``) that cannot
    be right, naming them, before anything is loaded or recovered."""
    from .._client import AgileClient  # at call time: the client module imports this one

    if not isinstance(client, AgileClient):
        raise invalid("client", "must be an AgileClient", client)
    if limit is not None:
        check_integer("limit", limit, minimum=0, none="no limit")  # type: ignore[arg-type]
    check_callable("on_progress", on_progress)
    check_number("progress_interval", progress_interval, minimum=0, exclusive=True, unit=" s")


def _columns(rows: Sequence[OutgoingRow]) -> tuple[list[int], list[tuple[str, str, str]]]:
    """Rows' numbers, and their ``(destination, body, message_id)`` for ``submit_many``:
    as they are from a journal that keeps them so (:class:`OutgoingColumns`)."""
    if isinstance(rows, OutgoingColumns):
        return rows.seqs, rows.messages
    return [row.seq for row in rows], [(row.destination, row.body, row.message_id) for row in rows]


def _outstanding_limit(settings: BatchSettings) -> int:
    """How many messages may wait for their outcome to be recorded: a full queue plus every
    request under way (so the batcher is never starved by this limit)."""
    return settings.queue_capacity + settings.max_in_flight * settings.max_messages
