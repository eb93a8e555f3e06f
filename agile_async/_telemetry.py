"""What the SDK tells an operator: each event once, as a log record and, with the ``otel``
extra and a configured provider, as OpenTelemetry spans and metrics.

One home for the events, so a log line, a span and a metric never disagree on what
happened. The events are per request (an attempt, a batch request, a retry, a 429 pause, a
request's outcome, a stop), never per submitted message: a Batcher's submit, queue and take
make no call here. What is queued or in flight is read from the batchers' statistics when a
metric reader asks (observable instruments), not counted message by message.

Which implementation a client, batcher or receiver uses is decided once, when it is made
(:func:`current`): :data:`LOGS_ONLY` when OpenTelemetry is not installed or no tracer nor
meter provider has been set (``trace.set_tracer_provider``, ``metrics.set_meter_provider``,
or the ``OTEL_PYTHON_*_PROVIDER`` environment variables); then the OpenTelemetry hooks are
methods that do nothing, and no import is tried per message or per request.

Never recorded, in any attribute, metric or log record: a message body, a sender text, the
credentials, and a destination number in clear (log records show ``+39347****567`` unless a
batcher is made with ``log_destinations=True``).

Span and attribute names follow the OpenTelemetry semantic conventions where they fit. A
batch request is a messaging ``send`` span (kind PRODUCER, ``messaging.system`` =
``agiletelecom``, ``messaging.batch.message_count``); each HTTP attempt under it is an HTTP
client span (``POST sms/send``, ``http.request.resend_count`` for retries). The conventions
link a batch send span to a *creation context* per message, which exists so a consumer can
continue the producer's trace; an SMS has no consumer that could carry one (it goes to a
handset, and the provider's delivery report names only the message id), and capturing a
context per message would put a call on the per-message path. So a batch span has no links:
it is a child of whatever span was current where the batcher was started, and the message
ids relate it to delivery reports.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Iterable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ._exceptions import APIError, ClientClosedError, OutcomeUnknownError
from ._version import __version__

if TYPE_CHECKING:
    import httpx
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import TracerProvider

__all__ = ["LOGS_ONLY", "Telemetry", "current", "mask_number", "mask_numbers"]

log = logging.getLogger("agile_async")

#: ``messaging.system`` of our spans: the provider, as the conventions name Kafka or SQS.
SYSTEM = "agiletelecom"

#: How many message ids (and destinations) a log line's text names before ``(+N more)``;
#: its ``ids`` field has them all (its ``destinations``, the first few: see the batcher).
_NAMED_IN_TEXT = 5

#: A phone number in free text (an error message that quotes one): 8 to 15 digits.
_NUMBER = re.compile(r"\+?\d{8,15}")


def mask_number(number: str) -> str:
    """``+393471234567`` -> ``+39347****567``: the country and network prefix and the last
    three digits stay, enough to tell numbers apart in a log without revealing one."""
    if len(number) <= 9:
        return number[:2] + "****"
    return f"{number[:6]}****{number[-3:]}"


def mask_numbers(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked (see :func:`mask_number`)."""
    return _NUMBER.sub(lambda match: mask_number(match.group()), text)


class Watched(Protocol):
    """What the queued/in-flight instruments read of a batcher, when a reader asks."""

    def statistics(self) -> Any: ...


def _attempt_result(
    error: BaseException | None, status: int | None
) -> tuple[str, int | None, int | None, str | None]:
    """``(outcome, HTTP status, provider code, error type)`` of one attempt."""
    if error is None:
        return "ok", status, None, None
    name = type(error).__name__
    if isinstance(error, APIError):
        return "rejected", error.status_code, error.code, name
    if isinstance(error, OutcomeUnknownError):
        return "unknown", status, None, name
    if not isinstance(error, Exception):
        return "cancelled", status, None, name
    return "failed", status, None, name


def _failure_level(state: str, error: BaseException | None) -> int:
    """WARNING when the provider refused messages or their fate is unknown (or a bug or a
    broken limiter stopped them: :class:`BatcherStoppedError`); INFO when the application
    closed or cancelled the batcher before they went out; DEBUG when withdrawn."""
    if state == "withdrawn":
        return logging.DEBUG
    if type(error) is ClientClosedError:
        return logging.INFO
    return logging.WARNING


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_NAMED_IN_TEXT])
    more = len(items) - _NAMED_IN_TEXT
    return f"{shown} (+{more} more)" if more > 0 else shown


class Attempt:
    """One HTTP attempt (``with``): logs it sent and answered; a span and metrics in
    :class:`_OtelAttempt`."""

    __slots__ = ("attempt", "describe", "host", "messages", "method", "path", "status")

    def __init__(
        self, method: str, url: httpx.URL, describe: str, messages: int, attempt: int
    ) -> None:
        self.method = method
        self.host = url.host
        #: The endpoint, low in cardinality: ``sms/send``, ``sms/credit``.
        self.path = "/".join(url.path.rstrip("/").split("/")[-2:])
        self.describe = describe
        self.messages = messages
        self.attempt = attempt
        self.status: int | None = None

    def __enter__(self) -> Attempt:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: attempt %d",
                self.describe,
                self.attempt,
                extra={
                    "agile_event": "request.sent",
                    "method": self.method,
                    "path": self.path,
                    "messages": self.messages,
                    "attempt": self.attempt,
                },
            )
        return self

    def answered(self, status: int, credit: Decimal | None) -> None:
        """The provider answered ``status`` and the body parsed (``credit`` if it said)."""
        self.status = status

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if log.isEnabledFor(logging.DEBUG):
            outcome, status, code, error = _attempt_result(exc, self.status)
            log.debug(
                "%s: attempt %d: %s (HTTP %s%s)%s",
                self.describe,
                self.attempt,
                outcome,
                status if status is not None else "-",
                f", code {code}" if code is not None else "",
                f": {error}" if error else "",
                extra={
                    "agile_event": "request.answered",
                    "method": self.method,
                    "path": self.path,
                    "messages": self.messages,
                    "attempt": self.attempt,
                    "outcome": outcome,
                    "status": status,
                    "code": code,
                    "error": error,
                },
            )


class Batch:
    """One Batcher request (``with``): its span, in :class:`_OtelBatch`; nothing to log
    (its attempts and its messages' outcome are logged)."""

    __slots__ = ()

    def __enter__(self) -> Batch:
        return self

    def settle(
        self, outcome: str, error: BaseException | None = None, parts: int | None = None
    ) -> None:
        """What became of the request: ``accepted`` (``parts`` billed), ``failed``,
        ``unknown`` or ``bisected``."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NO_BATCH = Batch()


class Telemetry:
    """The events, logged; the OpenTelemetry part does nothing here (:data:`LOGS_ONLY`)."""

    #: Whether spans and metrics are recorded (tests and the benchmark show it).
    enabled = False

    def attempt(
        self, method: str, url: httpx.URL, *, describe: str, messages: int, attempt: int
    ) -> Attempt:
        """One HTTP attempt to ``url``, to use as ``with``; ``attempt`` counts from 1."""
        return Attempt(method, url, describe, messages, attempt)

    def batch(self, global_id: str, messages: int) -> Batch:
        """One Batcher request, to use as ``with`` around its sending."""
        return _NO_BATCH

    def watch(self, batcher: Watched) -> None:
        """Count ``batcher``'s queued and in-flight messages in the gauges while it lives."""

    def outcome(
        self,
        state: str,
        messages: int,
        *,
        ids: Sequence[str] = (),
        error: BaseException | None = None,
        global_id: str | None = None,
        parts: int = 0,
        destinations: Sequence[str] = (),
        show_destinations: bool = False,
    ) -> None:
        """``messages`` of a Batcher reached ``state`` (accepted, failed, unknown, withdrawn)."""
        if state == "accepted":
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%d message(s) accepted in globalId=%s (%d SMS parts)",
                    messages,
                    global_id,
                    parts,
                    extra={
                        "agile_event": "messages.accepted",
                        "outcome": state,
                        "messages": messages,
                        "global_id": global_id,
                        "parts": parts,
                    },
                )
            return
        level = _failure_level(state, error)
        if not log.isEnabledFor(level):
            return
        shown = list(destinations if show_destinations else map(mask_number, destinations))
        reason = f"{type(error).__name__}: {error}" if error is not None else ""
        if not show_destinations:
            reason = mask_numbers(reason)
        log.log(
            level,
            "%d message(s) %s: %s; ids %s%s",
            messages,
            state,
            reason,
            _named(ids),
            f"; to {_named(shown)}" if shown else "",
            extra={
                "agile_event": f"messages.{state}",
                "outcome": state,
                "messages": messages,
                "ids": list(ids),
                "destinations": shown,
                "code": getattr(error, "code", None),
                "status": getattr(error, "status_code", None),
                "error": type(error).__name__ if error is not None else None,
            },
        )

    def pause(self, retry_after: float | None, paused_for: float) -> None:
        """A 429: the batcher's rate limiter pauses for ``paused_for`` seconds."""
        log.info(
            "HTTP 429: the batcher pauses sending for %.3g s and slows down",
            paused_for,
            extra={
                "agile_event": "rate_limit.pause",
                "status": 429,
                "retry_after": retry_after,
                "pause": paused_for,
            },
        )

    def stopped(self, error: BaseException) -> None:
        """A sticky error stopped a batcher: nothing more is sent."""
        log.warning(
            "agile_async batcher stopped: %s",
            mask_numbers(str(error)),
            extra={
                "agile_event": "batcher.stopped",
                "error": type(error).__name__,
                "code": getattr(error, "code", None),
                "status": getattr(error, "status_code", None),
            },
        )

    def report(self, status: str, *, duplicate: bool) -> None:
        """The webhook receiver took a delivery report (``duplicate``: seen before)."""


#: The telemetry when OpenTelemetry is absent or not configured: logs only.
LOGS_ONLY = Telemetry()


# -- OpenTelemetry ---------------------------------------------------------------------------


class _OtelAttempt(Attempt):
    __slots__ = ("_otel", "_span", "_started", "_token", "credit")

    def __init__(
        self,
        otel: _OpenTelemetry,
        method: str,
        url: httpx.URL,
        describe: str,
        messages: int,
        attempt: int,
    ) -> None:
        super().__init__(method, url, describe, messages, attempt)
        self._otel = otel
        self.credit: Decimal | None = None

    def __enter__(self) -> Attempt:
        super().__enter__()
        otel = self._otel
        attributes: dict[str, Any] = {
            "http.request.method": self.method,
            "url.template": self.path,
            "server.address": self.host,
            "agile_async.messages": self.messages,
        }
        if self.attempt > 1:
            attributes["http.request.resend_count"] = self.attempt - 1
            otel.retries.add(1)
        self._span = otel.tracer.start_span(
            f"{self.method} {self.path}", kind=otel.CLIENT, attributes=attributes
        )
        self._token = otel.attach(otel.set_span_in_context(self._span))
        otel.requests_in_flight.add(1)
        self._started = time.perf_counter()
        return self

    def answered(self, status: int, credit: Decimal | None) -> None:
        self.status = status
        self.credit = credit

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel = self._otel
        elapsed = time.perf_counter() - self._started
        otel.requests_in_flight.add(-1)
        otel.detach(self._token)
        outcome, status, code, error = _attempt_result(exc, self.status)
        span = self._span
        span.set_attribute("agile_async.outcome", outcome)
        metric: dict[str, Any] = {
            "http.request.method": self.method,
            "url.template": self.path,
            "agile_async.outcome": outcome,
        }
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            metric["http.response.status_code"] = status
        if code is not None:
            span.set_attribute("agiletelecom.error.code", code)
            metric["agiletelecom.error.code"] = code
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(otel.ERROR, error)  # the class name: its text may quote a number
            metric["error.type"] = error
        span.end()
        otel.request_duration.record(elapsed, metric)
        if self.credit is not None:
            otel.credit.set(float(self.credit))
        super().__exit__(exc_type, exc, tb)


class _OtelBatch(Batch):
    __slots__ = ("_otel", "_span", "_token")

    def __init__(self, otel: _OpenTelemetry, global_id: str, messages: int):
        self._otel = otel
        self._span = otel.tracer.start_span(
            "send sms",
            kind=otel.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.batch.message_count": messages,
                "agiletelecom.global_id": global_id,
            },
        )

    def __enter__(self) -> Batch:
        otel = self._otel
        self._token = otel.attach(otel.set_span_in_context(self._span))
        return self

    def settle(
        self, outcome: str, error: BaseException | None = None, parts: int | None = None
    ) -> None:
        span = self._span
        span.set_attribute("agile_async.outcome", outcome)
        if parts is not None:
            span.set_attribute("agiletelecom.sms_parts", parts)
        if error is not None:
            name = type(error).__name__
            span.set_attribute("error.type", name)
            code = getattr(error, "code", None)
            if isinstance(code, int):
                span.set_attribute("agiletelecom.error.code", code)
            if outcome != "bisected":
                span.set_status(self._otel.ERROR, name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._otel.detach(self._token)
        if exc is not None:
            self.settle("cancelled" if not isinstance(exc, Exception) else "failed", exc)
        self._span.end()


class _OpenTelemetry(Telemetry):
    """Spans from ``tracer_provider``, metrics from ``meter_provider``."""

    enabled = True

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, StatusCode

        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context: Any = trace.set_span_in_context
        self.CLIENT, self.PRODUCER = SpanKind.CLIENT, SpanKind.PRODUCER
        self.ERROR = StatusCode.ERROR
        self.tracer = tracer_provider.get_tracer("agile_async", __version__)
        meter = meter_provider.get_meter("agile_async", __version__)
        self._batchers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.messages = meter.create_counter(
            "agile_async.messages",
            unit="{message}",
            description="Messages of batchers by outcome: accepted, failed, unknown, withdrawn",
        )
        self.parts = meter.create_counter(
            "agile_async.sms_parts", unit="{part}", description="SMS parts accepted (billed)"
        )
        self.retries = meter.create_counter(
            "agile_async.retries", unit="{retry}", description="HTTP attempts that were retries"
        )
        self.pauses = meter.create_counter(
            "agile_async.rate_limit.pauses",
            unit="{pause}",
            description="Pauses of a batcher's rate limiter after an HTTP 429",
        )
        self.requests_in_flight = meter.create_up_down_counter(
            "agile_async.requests.in_flight",
            unit="{request}",
            description="HTTP requests to the provider under way",
        )
        self.request_duration = meter.create_histogram(
            "agile_async.request.duration",
            unit="s",
            description="Duration of HTTP attempts to the provider",
        )
        self.credit = meter.create_gauge(
            "agile_async.credit", unit="EUR", description="The account's credit, as last reported"
        )
        self.reports = meter.create_counter(
            "agile_async.delivery_reports",
            unit="{report}",
            description="Delivery reports the webhook receiver took, by status",
        )
        meter.create_observable_up_down_counter(
            "agile_async.batcher.queued",
            callbacks=[self._observe("queued")],
            unit="{message}",
            description="Messages waiting in batchers' queues",
        )
        meter.create_observable_up_down_counter(
            "agile_async.batcher.in_flight",
            callbacks=[self._observe("in_flight")],
            unit="{message}",
            description="Messages of batchers in a request under way",
        )

    def _observe(self, field: str) -> Any:
        from opentelemetry.metrics import Observation

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            total = sum(getattr(b.statistics(), field) for b in list(self._batchers))
            return [Observation(total)]

        return callback

    def attempt(
        self, method: str, url: httpx.URL, *, describe: str, messages: int, attempt: int
    ) -> Attempt:
        return _OtelAttempt(self, method, url, describe, messages, attempt)

    def batch(self, global_id: str, messages: int) -> Batch:
        return _OtelBatch(self, global_id, messages)

    def watch(self, batcher: Watched) -> None:
        self._batchers.add(batcher)

    def outcome(
        self,
        state: str,
        messages: int,
        *,
        ids: Sequence[str] = (),
        error: BaseException | None = None,
        global_id: str | None = None,
        parts: int = 0,
        destinations: Sequence[str] = (),
        show_destinations: bool = False,
    ) -> None:
        attributes = {"agile_async.outcome": state}
        if error is not None:
            attributes["error.type"] = type(error).__name__
        self.messages.add(messages, attributes)
        if parts:
            self.parts.add(parts)
        super().outcome(
            state,
            messages,
            ids=ids,
            error=error,
            global_id=global_id,
            parts=parts,
            destinations=destinations,
            show_destinations=show_destinations,
        )

    def pause(self, retry_after: float | None, paused_for: float) -> None:
        self.pauses.add(1)
        super().pause(retry_after, paused_for)

    def report(self, status: str, *, duplicate: bool) -> None:
        self.reports.add(
            1, {"agile_async.report.status": status, "agile_async.report.duplicate": duplicate}
        )


# -- choosing, once per client, batcher or receiver --------------------------------------------

_api: tuple[Any, Any] | bool | None = False  # False: not looked for yet
_latest: tuple[object, object, _OpenTelemetry] | None = None


def _load_api() -> tuple[Any, Any] | None:
    global _api
    if _api is False:
        try:
            from opentelemetry import metrics, trace
        except ImportError:
            _api = None
        else:
            _api = (trace, metrics)
    return _api  # type: ignore[return-value]


def current() -> Telemetry:
    """The telemetry for a client, batcher or receiver made now: OpenTelemetry when it is
    installed and a tracer or meter provider is set, else :data:`LOGS_ONLY`."""
    global _latest
    api = _load_api()
    if api is None:
        return LOGS_ONLY
    trace, metrics = api
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    tracing = not isinstance(tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
    # The meter API's stand-in before a provider is set is private (_ProxyMeterProvider).
    metering = type(meter_provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")
    if not (tracing or metering):
        return LOGS_ONLY
    latest = _latest
    if latest is None or latest[0] is not tracer_provider or latest[1] is not meter_provider:
        # Instruments are made once per pair of providers, not per client.
        made = _OpenTelemetry(tracer_provider, meter_provider)
        latest = _latest = (tracer_provider, meter_provider, made)
    return latest[2]
