"""Delivery reports: the fake provider posting one JSON report per SMS part to a webhook.

Three layers, each testable on its own:

- :class:`DeliveryScript` (frozen, pure) decides what happens to an accepted message: the final
  status of each part (by destination prefix, by seeded probability, then a per-part rule),
  an optional intermediate "Accepted" report, delays and duplicates. Its random draws are
  seeded per message (``seed``, message id, destination), so the outcome of a message does not
  depend on the order in which concurrent sends reached the fake.
- :class:`Outbox` (thread-safe) holds the reports waiting to be posted, the bounded log of
  every attempt and the counters. The fake's ASGI app only *enqueues* into it, so a send is
  answered at once, whatever the webhook does.
- :class:`Courier` (bound to one event loop) takes reports from the outbox and posts them: to a
  URL with an ``httpx.AsyncClient`` it owns, or to an in-process callback (a
  :class:`~agile_async.DeliveryReport`, parsed by the SDK's own parser, or the raw ``dict`` for
  a target added with ``raw=True``); it retries failures
  with capped exponential backoff and keeps the reports of one part in order (the intermediate
  report, then the final one, then its duplicate). A courier runs wherever its caller is:
  ``fake.delivering()`` or ``fake.flush_reports()`` in the test's loop, and a background one in
  the uvicorn thread's loop for ``fake.serve_tls()``. Couriers on different threads share the
  outbox; a thread-safe, non-blocking wake-up tells each one that there is new work.

A callback is the test's own code, so its failure is never only stored: each raising (or
overrunning) attempt is logged at ERROR with its traceback on ``agile_async.testing``, counted
(:attr:`DeliveryStatistics.callback_errors`) and kept with its exception
(``fake.callback_errors``). A report a callback *lost* (its last attempt failed) is also
raised, once, as :class:`DeliveryCallbackError` by a strict courier (``fake.delivering()``,
``fake.flush_reports()``), which cancels the test's block: a test waiting for that report fails
at once instead of at its timeout.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import anyio
import attrs
import httpx

from .._asgi import json_bytes
from .._concurrency import call_maybe_async, task_group
from .._exceptions import AgileError
from .._models import DeliveryReport, DeliveryStatus
from .._serde import format_provider_datetime
from .._setting_validators import at_least, check_integer, check_number, flag, invalid, real
from .._webhook_parsing import parse_delivery_report
from ._send import digits_of
from ._wakeup import loop_waker

if TYPE_CHECKING:
    from ._records import AcceptedMessage

__all__ = [
    "DESCRIPTIONS",
    "Courier",
    "DeliveryAttempt",
    "DeliveryCallback",
    "DeliveryCallbackError",
    "DeliveryScript",
    "DeliveryStatistics",
    "DeliveryTarget",
    "DestinationFormat",
    "Outbox",
    "PartRule",
    "RawDeliveryCallback",
    "Step",
    "Target",
    "plan_reports",
]

log = logging.getLogger("agile_async.testing")

#: An in-process receiver of reports, given each one as a :class:`~agile_async.DeliveryReport`
#: (what ``DeliveryReportReceiver`` hands its ``on_report``), so ``tracker.feed``,
#: ``tracker.on_report`` or a receiver's own callback plug in as they are. A coroutine function
#: or a plain one; what it returns is awaited if awaitable, else ignored. Raising (or
#: overrunning the script's ``timeout``) counts as a failed attempt, and is logged and counted.
DeliveryCallback = Callable[[DeliveryReport], object]

#: The same, given the report's JSON object as posted (a fresh ``dict`` each time), for tests of
#: the wire format: add it with ``deliver_to(callback, raw=True)`` or ``raw_delivery_callback=``.
RawDeliveryCallback = Callable[[dict[str, Any]], object]

#: Where reports go: a webhook URL (``http://`` or ``https://``) or a callback.
DeliveryTarget = str | DeliveryCallback | RawDeliveryCallback

#: How a report writes the destination: exactly as it was sent, always with ``+``, or digits
#: only. The seed's English page shows ``"+393471234567"``, the Italian one ``"41793026727"``.
DestinationFormat = Literal["as_sent", "with_plus", "digits"]

#: A per-part rule: ``(message, part, status) -> status``, where ``part`` counts from 1 and
#: ``status`` is what the script drew for that part; return it unchanged to keep it.
PartRule = Callable[["AcceptedMessage", int, DeliveryStatus], DeliveryStatus]

#: The ``description`` the provider writes for each status (the seed's table).
DESCRIPTIONS: Mapping[DeliveryStatus, str] = MappingProxyType(
    {
        DeliveryStatus.ACCEPTED: "Accepted",
        DeliveryStatus.REJECTED: "Rejected",
        DeliveryStatus.DELIVERED: "Delivered",
        DeliveryStatus.EXPIRED: "Expired",
        DeliveryStatus.DELETED: "Deleted",
        DeliveryStatus.UNDELIVERABLE: "Undeliverable",
    }
)


# -- the script ------------------------------------------------------------------------------


def _weights(value: Mapping[Any, float]) -> dict[DeliveryStatus, float]:
    weights = {DeliveryStatus(status): float(weight) for status, weight in value.items()}
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise invalid("outcomes", "must have weights >= 0 with a positive sum", value)
    return weights


def _prefixes(value: Mapping[str, Any]) -> dict[str, DeliveryStatus]:
    return {digits_of(prefix): DeliveryStatus(status) for prefix, status in value.items()}


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if check_number(attribute.name, value, minimum=0) > 1:
        raise invalid(attribute.name, "must be a probability, from 0 to 1", value)


def _delay(_: object, attribute: attrs.Attribute[Any], value: float | tuple[float, float]) -> None:
    low, high = value if isinstance(value, tuple) else (value, value)
    if not 0 <= low <= high:
        raise invalid(
            "delay", "must be seconds >= 0, or a (low, high) range with low <= high", value
        )


_at_least_one = at_least(1)
_not_negative = real(minimum=0, unit=" seconds")
_positive = real(minimum=0, exclusive=True, unit=" seconds")


@attrs.frozen(kw_only=True)
class DeliveryScript:
    """What the fake does after it accepts a message: which reports it posts, and how.

    Outcomes are decided per destination of each message: a ``by_prefix`` match (longest wins)
    first, else a weighted draw from ``outcomes``; ``independent_parts`` draws each part on its
    own; ``part_outcome`` then has the last word for each part. With a ``seed`` every draw is
    reproducible and independent of arrival order; :meth:`statuses_for` tells a test the
    statuses a message will get.

    Attributes:
        outcomes: final statuses and their weights (normalised), e.g.
            ``{DeliveryStatus.DELIVERED: 0.9, DeliveryStatus.UNDELIVERABLE: 0.1}``.
        by_prefix: destination prefix (``+`` optional) to final status, e.g.
            ``{"+44": DeliveryStatus.EXPIRED}``; wins over ``outcomes``.
        independent_parts: draw each part of a multipart message separately (otherwise all
            parts share the message's status).
        part_outcome: a :data:`PartRule` applied to every part, e.g. to fail the last one.
        intermediate: the probability of an "Accepted" (1) report before the final one.
        delay: seconds before each report (after acceptance, or after the previous report of
            the same part): a number, or a ``(low, high)`` range drawn uniformly.
        duplicates: the probability that a report is posted a second time, right after.
        attempts: posts per report and target before giving up (1 = no retries).
        backoff: seconds before the first retry; doubles after each failure.
        max_backoff: the cap on the backoff.
        timeout: seconds one post (or callback) may take before it counts as failed.
        concurrency: posts in flight at once, per courier.
        destination_format: see :data:`DestinationFormat`.
        lcr_operator: ``lcrOperator``; ``None`` leaves the field out.
        real_operator: ``realOperator``; ``None`` leaves the field out.
        include_price: whether reports carry ``price`` (per part, a JSON number).
        seed: makes every draw reproducible; ``None`` draws from fresh entropy.
    """

    outcomes: Mapping[DeliveryStatus, float] = attrs.field(
        factory=lambda: {DeliveryStatus.DELIVERED: 1.0}, converter=_weights
    )
    by_prefix: Mapping[str, DeliveryStatus] = attrs.field(factory=dict, converter=_prefixes)
    independent_parts: bool = attrs.field(default=False, validator=flag)
    part_outcome: PartRule | None = None
    intermediate: float = attrs.field(default=0.0, validator=_probability)
    delay: float | tuple[float, float] = attrs.field(default=0.0, validator=_delay)
    duplicates: float = attrs.field(default=0.0, validator=_probability)
    attempts: int = attrs.field(default=3, validator=_at_least_one)
    backoff: float = attrs.field(default=0.05, validator=_not_negative)
    max_backoff: float = attrs.field(default=1.0, validator=_not_negative)
    timeout: float = attrs.field(default=5.0, validator=_positive)
    concurrency: int = attrs.field(default=16, validator=_at_least_one)
    destination_format: DestinationFormat = "as_sent"
    lcr_operator: str | None = "22210"
    real_operator: str | None = "22201"
    include_price: bool = attrs.field(default=True, validator=flag)
    seed: int | str | None = None

    def statuses_for(self, message: AcceptedMessage) -> tuple[DeliveryStatus, ...]:
        """The final status of each part of ``message`` (reproducible when seeded)."""
        rng = self._rng("status", message)
        prefix = max(
            (p for p in self.by_prefix if digits_of(message.destination).startswith(p)),
            key=len,
            default=None,
        )
        drawn = self.by_prefix[prefix] if prefix is not None else self._draw(rng)
        statuses = []
        for part in range(1, message.parts + 1):
            status = drawn
            if prefix is None and self.independent_parts and part > 1:
                status = self._draw(rng)
            if self.part_outcome is not None:
                status = DeliveryStatus(self.part_outcome(message, part, status))
            statuses.append(status)
        return tuple(statuses)

    def backoff_before(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    def _draw(self, rng: random.Random) -> DeliveryStatus:
        statuses = list(self.outcomes)
        return rng.choices(statuses, weights=[self.outcomes[s] for s in statuses])[0]

    def _seconds(self, rng: random.Random) -> float:
        if isinstance(self.delay, tuple):
            return rng.uniform(*self.delay)
        return float(self.delay)

    def _rng(self, purpose: str, message: AcceptedMessage) -> random.Random:
        if self.seed is None:
            return random.Random()
        destination = digits_of(message.destination)
        return random.Random(f"{self.seed}|{purpose}|{message.message_id}|{destination}")


# -- planning: what to post, in which order --------------------------------------------------


@attrs.frozen
class Step:
    """One report still to be built: its message, part and status, and the wait before it."""

    message: AcceptedMessage
    part: int
    status: DeliveryStatus
    delay: float
    duplicate: bool
    script: DeliveryScript

    def report(self, done_date: datetime) -> dict[str, Any]:
        """The JSON object, in the seed's field order."""
        message, script = self.message, self.script
        destination = message.destination
        if script.destination_format == "with_plus":
            destination = "+" + digits_of(destination)
        elif script.destination_format == "digits":
            destination = digits_of(destination)
        report: dict[str, Any] = {
            "messageId": message.message_id,
            "destination": destination,
            "statusCode": int(self.status),
            "description": DESCRIPTIONS[self.status],
            "doneDate": format_provider_datetime(done_date),
            "concatTotal": message.parts,
            "concatProgressive": self.part,
        }
        if script.lcr_operator is not None:
            report["lcrOperator"] = script.lcr_operator
        if script.real_operator is not None:
            report["realOperator"] = script.real_operator
        if script.include_price:
            report["price"] = float(message.price / message.parts)
        return report


def plan_reports(script: DeliveryScript, message: AcceptedMessage) -> list[tuple[Step, ...]]:
    """One chain of steps per part: the optional "Accepted" report, then the final one."""
    timing = script._rng("timing", message)
    chains = []
    for part, status in enumerate(script.statuses_for(message), start=1):
        kinds = [status]
        if status is not DeliveryStatus.ACCEPTED and timing.random() < script.intermediate:
            kinds.insert(0, DeliveryStatus.ACCEPTED)
        chains.append(
            tuple(
                Step(
                    message=message,
                    part=part,
                    status=kind,
                    delay=script._seconds(timing),
                    duplicate=timing.random() < script.duplicates,
                    script=script,
                )
                for kind in kinds
            )
        )
    return chains


# -- targets, queue items and the log --------------------------------------------------------


@attrs.frozen(eq=False)
class Target:
    """A configured destination for reports (compared by identity)."""

    endpoint: DeliveryTarget
    verify: ssl.SSLContext | str | bool = True
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: A callback given the JSON ``dict`` rather than a :class:`~agile_async.DeliveryReport`.
    raw: bool = attrs.field(default=False, validator=flag)

    @property
    def is_callback(self) -> bool:
        return not isinstance(self.endpoint, str)


@attrs.define(eq=False)
class _Item:
    """One report for one target, waiting in the outbox (or being posted)."""

    target: Target
    chain: tuple[Step, ...]  # chain[0] is this report; the rest follow it, in order
    due: float  # time.monotonic()
    attempt: int = 0  # attempts made so far
    report: dict[str, Any] | None = None  # built at the first attempt; retries re-send it
    duplicate: bool = False
    sent_at: datetime | None = None  # when the latest attempt started


@attrs.frozen
class DeliveryAttempt:
    """One post of one report to one target, as the fake's log keeps it.

    Attributes:
        report: the JSON object posted (read-only).
        target: the webhook URL or the callback.
        attempt: 1 for the first post of this report to this target, 2 for the first
            retry...
        ok: whether it succeeded (a 2XX, or a callback that returned).
        http_status: the webhook's status (``None`` for callbacks and network errors).
        error: what went wrong (``"HTTP 500"``, ``"ConnectError: ..."``), else ``None``.
        will_retry: whether the fake will post this report again.
        duplicate: a scripted second post of a report already posted.
        sent_at: when the attempt started, by the fake's clock.
        exception: what a callback raised (``TimeoutError`` when it overran), so a test can
            re-raise or inspect it; ``None`` for URLs and for callbacks that returned.
    """

    report: Mapping[str, Any]
    target: DeliveryTarget
    attempt: int
    ok: bool
    http_status: int | None
    error: str | None
    will_retry: bool
    duplicate: bool
    sent_at: datetime
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def lost(self) -> bool:
        """Whether this failed attempt was the report's last: the target never got it."""
        return not self.ok and not self.will_retry

    @property
    def message_id(self) -> str:
        """The report's ``messageId``."""
        return str(self.report["messageId"])

    @property
    def status(self) -> DeliveryStatus:
        """The report's ``statusCode``."""
        return DeliveryStatus(self.report["statusCode"])


class DeliveryStatistics(NamedTuple):
    """Counters of the fake's delivery reports (see :meth:`FakeAgileServer.delivery_statistics`).

    Attributes:
        pending: reports queued (waiting for their delay, a retry, or a courier).
        in_flight: reports being posted right now.
        delivered: successful posts (duplicates and every target count).
        failed_attempts: posts that failed (retried or not).
        gave_up: reports abandoned after their last attempt.
        dropped: reports never queued because the queue was full.
        callback_errors: attempts whose callback raised or overran its ``timeout`` (also in
            ``failed_attempts``); each is in ``fake.callback_errors`` with its exception.
    """

    pending: int
    in_flight: int
    delivered: int
    failed_attempts: int
    gave_up: int
    dropped: int
    callback_errors: int


class DeliveryCallbackError(AgileError):
    """The fake's delivery callback lost reports: it raised (or overran) on every attempt.

    Raised, once per lost report, by ``fake.delivering()`` (which cancels the block it wraps, so
    a test awaiting that report fails now rather than at its timeout) and by
    ``fake.flush_reports()``, unless the fake was made with ``strict_callbacks=False``. The
    first callback exception is the ``__cause__``.

    Attributes:
        attempts: the last attempt of each lost report, with its ``exception``.
    """

    def __init__(self, message: str, *, attempts: tuple[DeliveryAttempt, ...] = ()) -> None:
        super().__init__(message)
        self.attempts = attempts

    @classmethod
    def from_attempts(cls, attempts: tuple[DeliveryAttempt, ...]) -> DeliveryCallbackError:
        first = attempts[0]
        report = first.report
        return cls(
            f"{len(attempts)} delivery report(s) lost: the callback {_name(first.target)} "
            f"failed on every attempt; first: message {first.message_id!r} part "
            f"{report['concatProgressive']}/{report['concatTotal']}, attempt {first.attempt}: "
            f"{first.error} (every failed attempt is in fake.callback_errors; "
            "strict_callbacks=False only logs them)",
            attempts=attempts,
        )


def _name(target: DeliveryTarget) -> str:
    return str(getattr(target, "__qualname__", None) or type(target).__name__)


# -- the outbox: shared, thread-safe ---------------------------------------------------------


class Outbox:
    """Pending reports (a heap by due time), the attempt log and counters, behind one lock.

    The lock is never held across an ``await``; wake-ups run after it is released.
    """

    def __init__(self, *, max_pending: int, log_size: int) -> None:
        check_integer("max_pending_reports", max_pending, minimum=1)
        check_integer("delivery_log_size", log_size, minimum=1)
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._heap: list[tuple[float, int, _Item]] = []
        self._order = itertools.count()
        self._in_flight = 0
        self._log: deque[DeliveryAttempt] = deque(maxlen=log_size)
        self._callback_errors: deque[DeliveryAttempt] = deque(maxlen=log_size)
        self._lost: list[DeliveryAttempt] = []  # lost to a callback, not yet raised
        self._wakers: list[Callable[[], None]] = []
        self._delivered = self._failed = self._gave_up = self._dropped = 0
        self._callback_error_count = 0

    def submit(self, targets: tuple[Target, ...], chains: list[tuple[Step, ...]]) -> None:
        """Queue the first report of each chain, for each target; count what does not fit."""
        now = time.monotonic()
        with self._lock:
            for chain in chains:
                for target in targets:
                    if len(self._heap) + self._in_flight >= self._max_pending:
                        self._dropped += 1
                        continue
                    self._push(_Item(target, chain, now + chain[0].delay))
        self._wake()

    def take(self, limit: int, *, everything: bool) -> tuple[list[_Item], float | None]:
        """Up to ``limit`` due reports (or any, with ``everything``), now in flight.

        Returns:
            The reports, and the due time of the next one left (``None`` when none is left).
        """
        now = time.monotonic()
        taken: list[_Item] = []
        with self._lock:
            while self._heap and len(taken) < limit and (everything or self._heap[0][0] <= now):
                taken.append(heapq.heappop(self._heap)[2])
            self._in_flight += len(taken)
            return taken, self._heap[0][0] if self._heap else None

    def finish(self, item: _Item, attempt: DeliveryAttempt) -> None:
        """Log an attempt on ``item``; queue its retry, its duplicate or the next report."""
        now = time.monotonic()
        script = item.chain[0].script
        with self._lock:
            self._in_flight -= 1
            self._log.append(attempt)
            if attempt.ok:
                self._delivered += 1
            else:
                self._failed += 1
            if attempt.exception is not None:
                self._callback_errors.append(attempt)
                self._callback_error_count += 1
                if attempt.lost:
                    self._lost.append(attempt)
            if attempt.will_retry:
                item.due = now + script.backoff_before(attempt.attempt)
                self._push(item)
            else:
                if not attempt.ok:
                    self._gave_up += 1
                self._push_next(item, now)
        self._wake()

    def release(self, item: _Item, attempt: DeliveryAttempt | None) -> None:
        """Put back a report whose post was cut short (its courier stopped), logging the
        attempt if one had started; it is retried whatever its attempt count."""
        with self._lock:
            self._in_flight -= 1
            if attempt is not None:
                self._log.append(attempt)
                self._failed += 1
            self._push(item)
        self._wake()

    def idle(self) -> bool:
        """Nothing queued and nothing being posted."""
        with self._lock:
            return not self._heap and self._in_flight == 0

    def add_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (thread-safe, non-blocking) whenever the queue changes."""
        with self._lock:
            self._wakers.append(wake)

    def remove_waker(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.remove(wake)

    def log(self) -> tuple[DeliveryAttempt, ...]:
        with self._lock:
            return tuple(self._log)

    def callback_errors(self) -> tuple[DeliveryAttempt, ...]:
        with self._lock:
            return tuple(self._callback_errors)

    def claim_lost(self) -> tuple[DeliveryAttempt, ...]:
        """The reports callbacks lost since the last claim (each is claimed once)."""
        with self._lock:
            lost, self._lost = tuple(self._lost), []
            return lost

    def statistics(self) -> DeliveryStatistics:
        with self._lock:
            return DeliveryStatistics(
                pending=len(self._heap),
                in_flight=self._in_flight,
                delivered=self._delivered,
                failed_attempts=self._failed,
                gave_up=self._gave_up,
                dropped=self._dropped,
                callback_errors=self._callback_error_count,
            )

    def _push(self, item: _Item) -> None:
        heapq.heappush(self._heap, (item.due, next(self._order), item))

    def _push_next(self, item: _Item, now: float) -> None:
        if item.chain[0].duplicate and not item.duplicate:
            # The same report again (same doneDate), as a provider retrying would send it.
            self._push(_Item(item.target, item.chain, now, report=item.report, duplicate=True))
        elif len(item.chain) > 1:
            rest = item.chain[1:]
            self._push(_Item(item.target, rest, now + rest[0].delay))

    def _wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()


def _describe(exc: BaseException) -> str:
    """``"ConnectError: <reason>"``, the reason taken from the cause when the error has none
    (httpx on trio wraps TLS failures in an empty ``ConnectError``)."""
    reason: BaseException | None = exc
    while reason is not None and not str(reason):
        reason = reason.__cause__ or reason.__context__
    name = type(exc).__name__
    return name if reason is None else f"{name}: {reason}"


# -- the courier: posts reports, in one event loop -------------------------------------------


class Courier:
    """Takes reports from an :class:`Outbox` and posts them, in the current event loop.

    Each report's own script (the one in force when its message was accepted) sets its
    attempts, backoff and timeout.

    Args:
        outbox: where the reports wait.
        now: the fake's clock (``doneDate`` and the log's timestamps).
        concurrency: posts in flight at once.
        everything: take reports before they are due (a flush ignores delays and backoff).
        strict: raise :class:`DeliveryCallbackError` as soon as a callback has lost a report
            (claimed from the outbox, so each loss is raised by one courier, once).
    """

    def __init__(
        self,
        outbox: Outbox,
        now: Callable[[], datetime],
        *,
        concurrency: int,
        everything: bool = False,
        strict: bool = False,
    ) -> None:
        self._outbox = outbox
        self._strict = strict
        self._concurrency = concurrency
        self._now = now
        self._everything = everything
        self._clients: dict[Target, httpx.AsyncClient] = {}
        self._holding: set[_Item] = set()  # taken from the outbox, not yet finished
        self._event = anyio.Event()

    async def run(self, *, until_idle: bool) -> None:
        """Post reports until cancelled, or (``until_idle``) until none is queued or in flight
        anywhere (couriers on other threads included)."""
        wake = loop_waker(self._poke)
        self._outbox.add_waker(wake)
        try:
            async with task_group() as tasks:
                while True:
                    self._event = anyio.Event()
                    free = self._concurrency - len(self._holding)
                    items, next_due = self._outbox.take(free, everything=self._everything)
                    for item in items:
                        self._holding.add(item)
                        tasks.start_soon(self._deliver, item)
                    lost = self._outbox.claim_lost() if self._strict else ()
                    if lost:
                        raise DeliveryCallbackError.from_attempts(lost) from lost[0].exception
                    if until_idle and self._outbox.idle():
                        return
                    wait = None if next_due is None else max(0.0, next_due - time.monotonic())
                    with anyio.move_on_after(wait):
                        await self._event.wait()
        finally:
            self._outbox.remove_waker(wake)
            # A task cancelled before it ran (asyncio) never saw its report: hand it back.
            for item in self._holding:
                self._outbox.release(item, None)
            self._holding.clear()
            with anyio.CancelScope(shield=True):
                for client in self._clients.values():
                    await client.aclose()

    def _poke(self) -> None:
        self._event.set()

    async def _deliver(self, item: _Item) -> None:
        try:
            attempt = await self._attempt(item)
        except BaseException:
            self._holding.discard(item)
            self._outbox.release(item, self._cut_short(item))
            raise
        self._holding.discard(item)
        self._outbox.finish(item, attempt)
        self._event.set()

    def _cut_short(self, item: _Item) -> DeliveryAttempt | None:
        if item.report is None:
            return None
        return DeliveryAttempt(
            report=MappingProxyType(item.report),
            target=item.target.endpoint,
            attempt=item.attempt,
            ok=False,
            http_status=None,
            error="cancelled: the courier stopped during the post",
            will_retry=True,
            duplicate=item.duplicate,
            sent_at=item.sent_at or self._now(),
        )

    async def _attempt(self, item: _Item) -> DeliveryAttempt:
        script = item.chain[0].script
        sent_at = item.sent_at = self._now()
        if item.report is None:
            item.report = item.chain[0].report(sent_at)
        item.attempt += 1
        endpoint = item.target.endpoint
        status: int | None = None
        error: str | None = None
        caught: BaseException | None = None
        try:
            with anyio.fail_after(script.timeout):
                if isinstance(endpoint, str):
                    response = await self._client(item.target).post(
                        endpoint,
                        content=json_bytes(item.report),
                        headers={"content-type": "application/json", **item.target.headers},
                    )
                    status = response.status_code
                    if not 200 <= status <= 299:
                        error = f"HTTP {status}"
                else:
                    given = dict(item.report)
                    if item.target.raw:
                        await call_maybe_async(cast("RawDeliveryCallback", endpoint), given)
                    else:
                        report = parse_delivery_report(given)
                        await call_maybe_async(cast("DeliveryCallback", endpoint), report)
        except TimeoutError as exc:
            error = f"timed out after {script.timeout:g} s"
            caught = exc
        except Exception as exc:  # a failing webhook is the point: log it, maybe retry
            error = _describe(exc)
            caught = exc
        ok = error is None
        attempt = DeliveryAttempt(
            report=MappingProxyType(item.report),
            target=endpoint,
            attempt=item.attempt,
            ok=ok,
            http_status=status,
            error=error,
            will_retry=not ok and item.attempt < script.attempts,
            duplicate=item.duplicate,
            sent_at=sent_at,
            exception=caught if item.target.is_callback else None,
        )
        if attempt.exception is not None:
            _log_callback_error(attempt, script.attempts)
        return attempt

    def _client(self, target: Target) -> httpx.AsyncClient:
        client = self._clients.get(target)
        if client is None:
            # trust_env off: a developer's proxy variables must not capture loopback webhooks.
            # No httpx timeout: the script's ``timeout`` bounds every attempt.
            client = httpx.AsyncClient(verify=target.verify, trust_env=False, timeout=None)
            self._clients[target] = client
        return client


def _log_callback_error(attempt: DeliveryAttempt, attempts: int) -> None:
    """A callback is the test's own code: its failure is logged with its traceback, never only
    stored. URL targets are not logged here: their URL may hold a receiver's secret token, and
    a webhook answering 5XX is what a test usually scripts on purpose."""
    report = attempt.report
    log.error(
        "agile_async.testing FakeAgileServer: the delivery callback %s failed for message %r "
        "(part %s/%s, attempt %d of %d): %s; %s",
        _name(attempt.target),
        attempt.message_id,
        report["concatProgressive"],
        report["concatTotal"],
        attempt.attempt,
        attempts,
        attempt.error,
        "will retry" if attempt.will_retry else "the report is lost",
        exc_info=attempt.exception,
    )
