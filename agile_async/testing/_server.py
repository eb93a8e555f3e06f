"""FakeAgileServer: the provider imitation, as a plain ASGI 3 application, and its state.

The request pipeline mirrors the provider as the seed documents it: route (``/services/sms/send``
POST, ``/services/sms/credit`` GET), authenticate (``X-Api-Key`` or Basic), check the source IP,
then validate the whole send request (:mod:`._send`) and charge it, or refuse it whole. A
scripted fault (:mod:`._faults`), when one matches, acts first, as the network or a proxy in
front of the provider would.

State (credit, logs) sits behind one ``threading.Lock``: the server may run on a thread of its
own (:meth:`FakeAgileServer.serve_tls`) while a test reads the logs from another. The lock is
never held across an ``await``, so it cannot stall an event loop, and check-then-charge happens
in one critical section, so concurrent sends can never overdraw the credit.

Delivery reports (:mod:`._delivery`): an accepted send only *queues* its reports, so the
response never waits for a webhook. Couriers post them: one in the caller's event loop for
:meth:`FakeAgileServer.delivering` and :meth:`FakeAgileServer.flush_reports`, and one in the
server thread's loop for :meth:`FakeAgileServer.serve_tls`.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs
import httpx

from .._asgi import (
    BodyTooLarge,
    ClientDisconnected,
    InvalidContentLength,
    Receive,
    Response,
    Scope,
    Send,
    dispatch,
    header,
    is_json_media_type,
    json_response,
    read_request_body,
    send_response,
)
from .._concurrency import task_group
from .._setting_validators import check_amount, check_flag, check_integer, invalid
from ._auth import Identity, authenticate, client_credentials
from ._codes import text_for
from ._delivery import (
    Courier,
    DeliveryAttempt,
    DeliveryCallback,
    DeliveryScript,
    DeliveryStatistics,
    DeliveryTarget,
    Outbox,
    RawDeliveryCallback,
    Step,
    Target,
    plan_reports,
)
from ._faults import PATH_PREFIX, Fault, FaultScript, endpoint_of, interfere
from ._records import AcceptedMessage, AuthMode, RecordedRequest
from ._send import DestinationRule, Rejection, SendPlan, SendPolicy, digits_of, plan_send

if TYPE_CHECKING:
    from .._client import AgileClient
    from ._tls import TLSServer
    from ._transport import FakeTransport

__all__ = ["FakeAgileServer"]

#: The default for the largest request body the fake reads (else 413, code 4). The provider
#: documents no limit; this one is far over any request the SDK makes (500 messages of 255
#: parts each is under 25 MiB) and keeps a fake served on a socket from buffering whatever a
#: client streams.
_DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

#: Which methods each endpoint accepts (the seed: POST with JSON to send, GET for credit).
_ROUTES: dict[str, tuple[str, ...]] = {"/sms/send": ("POST",), "/sms/credit": ("GET",)}


@attrs.define(kw_only=True)
class _Incoming:
    """What the pipeline knows about the request being handled."""

    index: int
    method: str
    path: str
    client_ip: str | None
    content_type: str | None
    user_agent: str | None
    #: Whose credentials it carried (``None``: wrong or missing).
    identity: Identity | None
    payload: Any = None
    parsed: bool = False
    #: Why the body could not be read (a refusal to answer), or ``None``.
    body_refusal: Response | None = None
    #: Delivery reports to queue once the response is out (or lost after processing).
    reports: list[tuple[Step, ...]] = attrs.field(factory=list)
    report_targets: tuple[Target, ...] = ()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _fail(
    status: int,
    code: int,
    data: Mapping[str, str] | str,
    extra: Iterable[tuple[str, str]] = (),
) -> Response:
    """A 4XX as the seed documents it: ``{"status": "fail", "data": ..., "code": N}``."""
    payload = {
        "status": "fail",
        "data": dict(data) if isinstance(data, Mapping) else data,
        "code": code,
    }
    return json_response(status, payload, extra)


class FakeAgileServer:
    """An imitation of the AgileTelecom SMS REST API, for tests: yours and ours.

    Serve it in memory with :meth:`transport` / :meth:`client`, or over a real TLS socket with
    :meth:`serve_tls`. Inspect what happened with :attr:`requests`, :attr:`accepted`,
    :attr:`simulated` and :attr:`credit`; script misbehaviour with :meth:`inject` and
    :meth:`reject_destinations`.

    Besides the account's own credentials, the fake accepts the provider's documented test
    credentials (its Postman collection's ``user`` / ``pass`` and API key ``api-value``, see
    :data:`SIMULATION_API_KEY`) as *simulation-only*, as the provider does: such a request is
    authenticated and checked like any other (a bad one still gets its 4XX), but a send is
    treated as ``simulation: true``: nothing is charged, it is listed in :attr:`simulated`,
    not :attr:`accepted`, and no delivery report follows. Its record has
    ``simulation_credentials=True``. So an app configured with the documentation's example
    values can be tried against any fake, as against the real provider. The account's own
    credentials win if they are the same strings; ``simulation_credentials=False`` refuses the
    test values with code 1 (e.g. to test that your app rejects placeholder credentials).

    Runs on asyncio and trio. Assumptions where the seed is silent are listed in
    the testing guide (docs/guides/testing.md).

    Args:
        api_key: the accepted ``X-Api-Key``; ``None`` turns API-key auth off.
        username: the accepted Basic-auth user; Basic auth is on when both it and
            ``password`` are set.
        password: the accepted Basic-auth password.
        simulation_credentials: accept the documentation's test credentials as
            simulation-only (see above); ``False`` answers them with code 1.
        credit: the account's starting credit, in EUR.
        price_per_part: what one SMS part costs.
        prices: per-destination-prefix prices (digits without ``+``, e.g. ``{"39": ...}``);
            the longest matching prefix wins, others pay ``price_per_part``.
        allowed_senders: the approved sender aliases; ``None`` allows any (else code 26).
        forbidden_prefixes: destinations starting with these (``+`` optional) get code 3.
        allowed_ips: the source-IP allow-list; ``None`` allows any (else code 100).
        clock: returns the current aware datetime; used for every timestamp recorded.
        delivery: the :class:`DeliveryScript` for reports (default: every part delivered).
        delivery_url: a webhook URL to post reports to (like :meth:`deliver_to`).
        delivery_callback: an in-process receiver of reports, given each one as a
            :class:`~agile_async.DeliveryReport` (like :meth:`deliver_to`): ``tracker.feed``,
            ``tracker.on_report`` or your receiver's ``on_report`` plug in as they are.
        raw_delivery_callback: an in-process receiver given each report's JSON ``dict``
            (like ``deliver_to(callback, raw=True)``), for tests of the wire format.
        strict_callbacks: a report that a callback lost (it raised or overran on every
            attempt) makes :meth:`delivering` and :meth:`flush_reports` raise
            :class:`DeliveryCallbackError`; ``False`` only logs and counts it (for tests that
            make a callback fail on purpose). Every failing callback attempt is logged at
            ERROR and kept in :attr:`callback_errors` either way.
        delivery_verify: TLS verification for an ``https`` ``delivery_url``: ``True``, a
            CA bundle path, an ``ssl.SSLContext``, or ``False``.
        max_pending_reports: reports queued at most; more are dropped (and counted).
        delivery_log_size: attempts kept in :attr:`delivery_log` (the oldest go first).
        max_body_bytes: the largest request body read; a larger one gets 413 with code 4,
            refused from its ``Content-Length`` before reading, or as soon as reading passes
            it (default 32 MiB). The provider documents no limit: lower it to test how your
            code takes a 413.
    """

    #: The base URL in memory: any host works with :meth:`transport`; this one cannot resolve.
    base_url = "https://fake.agiletelecom.test/services/"

    def __init__(
        self,
        *,
        api_key: str | None = "test-api-key",
        username: str | None = "test-user",
        password: str | None = "test-password",
        simulation_credentials: bool = True,
        credit: Decimal | int | str = Decimal("100"),
        price_per_part: Decimal | int | str = Decimal("0.05"),
        prices: Mapping[str, Decimal | int | str] | None = None,
        allowed_senders: Collection[str] | None = None,
        forbidden_prefixes: Collection[str] = (),
        allowed_ips: Collection[str] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        delivery: DeliveryScript | None = None,
        delivery_url: str | None = None,
        delivery_callback: DeliveryCallback | None = None,
        raw_delivery_callback: RawDeliveryCallback | None = None,
        strict_callbacks: bool = True,
        delivery_verify: ssl.SSLContext | str | bool = True,
        max_pending_reports: int = 100_000,
        delivery_log_size: int = 100_000,
        max_body_bytes: int = _DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if api_key is None and (username is None or password is None):
            raise invalid("api_key", "must be given, or username and password, or both")
        #: The largest request body read (else 413, code 4).
        self.max_body_bytes = check_integer("max_body_bytes", max_body_bytes, minimum=1)
        self.api_key = api_key
        self.username = username
        self.password = password
        #: Whether the documentation's test credentials are accepted (simulation-only).
        self.simulation_credentials = check_flag("simulation_credentials", simulation_credentials)
        self.price_per_part = check_amount("price_per_part", price_per_part)
        self.prices = {
            digits_of(p): check_amount(f"prices[{p!r}]", v) for p, v in (prices or {}).items()
        }
        self.allowed_senders = None if allowed_senders is None else frozenset(allowed_senders)
        self.forbidden_prefixes = tuple(digits_of(p) for p in forbidden_prefixes)
        self.allowed_ips = None if allowed_ips is None else frozenset(allowed_ips)
        self._clock = clock
        self._lock = threading.Lock()
        self._credit = check_amount("credit", credit)
        self._requests: list[RecordedRequest | None] = []
        self._accepted: list[AcceptedMessage] = []
        self._simulated: list[AcceptedMessage] = []
        self._rules: list[DestinationRule] = []
        self._faults = FaultScript()
        #: How reports are scripted; read when a message is accepted, so it may be replaced.
        self.delivery = delivery if delivery is not None else DeliveryScript()
        self._targets: tuple[Target, ...] = ()
        self._outbox = Outbox(max_pending=max_pending_reports, log_size=delivery_log_size)
        if delivery_url is not None:
            self.deliver_to(delivery_url, verify=delivery_verify)
        #: Whether a report lost to a callback raises (see the class's ``strict_callbacks``).
        self.strict_callbacks = check_flag("strict_callbacks", strict_callbacks)
        if delivery_callback is not None:
            self.deliver_to(delivery_callback)
        if raw_delivery_callback is not None:
            self.deliver_to(raw_delivery_callback, raw=True)

    def __repr__(self) -> str:
        modes = [m for m, on in (("api_key", self.api_key), ("basic", self.password)) if on]
        with self._lock:
            return (
                f"{type(self).__name__}(auth={modes!r}, credit={self._credit!r}, "
                f"requests={len(self._requests)}, accepted={len(self._accepted)})"
            )

    # -- state and logs ------------------------------------------------------------------

    @property
    def credit(self) -> Decimal:
        """The account's remaining credit (settable, e.g. to provoke code 2)."""
        with self._lock:
            return self._credit

    @credit.setter
    def credit(self, value: Decimal | int | str) -> None:
        with self._lock:
            self._credit = check_amount("credit", value)

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request that reached the fake, in arrival order (a snapshot)."""
        with self._lock:
            return tuple(r for r in self._requests if r is not None)

    @property
    def accepted(self) -> tuple[AcceptedMessage, ...]:
        """One entry per destination accepted for sending, in order (a snapshot).

        Simulated sends are not here: see :attr:`simulated`.
        """
        with self._lock:
            return tuple(self._accepted)

    @property
    def simulated(self) -> tuple[AcceptedMessage, ...]:
        """One entry per destination of simulated sends, in order (a snapshot).

        A send is simulated when its body says ``simulation: true`` or when it carried the
        simulation-only test credentials (:attr:`RecordedRequest.simulation_credentials`).
        """
        with self._lock:
            return tuple(self._simulated)

    @property
    def pending_faults(self) -> tuple[Fault, ...]:
        """The scripted faults not yet consumed, in order."""
        return self._faults.pending()

    # -- scripting -----------------------------------------------------------------------

    def inject(self, fault: Fault, *, times: int | None = 1, path: str | None = None) -> None:
        """Script ``fault`` for the next ``times`` matching requests.

        Faults are consumed in the order injected; each request takes at most one, the first
        whose ``path`` matches.

        Args:
            fault: what to do instead of (or before) answering; see :class:`Fault`.
            times: how many requests it applies to; ``None`` for every one until
                :meth:`clear_faults`.
            path: only requests to this endpoint (``"/sms/send"``, ``"sms/credit"``, with or
                without ``/services``); ``None`` for any request.
        """
        self._faults.push(fault, times=times, path=path)

    def clear_faults(self) -> None:
        """Forget every scripted fault not yet consumed."""
        self._faults.clear()

    def reject_destinations(
        self,
        destinations: Iterable[str] | Callable[[str], bool],
        *,
        code: int = 7,
        status: int = 400,
        data: str | None = None,
    ) -> None:
        """Refuse, whole, every request with one of these destinations (until cleared).

        This is how the provider treats a bad number in a batch, so it drives the SDK's
        bisection: the request fails while the bad destination is in it.

        Args:
            destinations: numbers (``+`` optional), or a predicate over a destination's digits
                (without ``+``).
            code: the provider code to answer with (3, 5, 6, 7, 26...).
            status: the HTTP status.
            data: the problem text for that destination; defaults to the code's meaning.
        """
        if callable(destinations):
            matches = destinations
        else:
            refused = frozenset(digits_of(d) for d in destinations)
            matches = refused.__contains__
        with self._lock:
            self._rules.append(DestinationRule(matches, code, status, data))

    def clear_rules(self) -> None:
        """Forget every :meth:`reject_destinations` rule."""
        with self._lock:
            self._rules.clear()

    # -- delivery reports ----------------------------------------------------------------

    @overload
    def deliver_to(
        self,
        target: str | DeliveryCallback,
        *,
        raw: Literal[False] = False,
        verify: ssl.SSLContext | str | bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...

    @overload
    def deliver_to(
        self,
        target: RawDeliveryCallback,
        *,
        raw: Literal[True],
        verify: ssl.SSLContext | str | bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...

    def deliver_to(
        self,
        target: DeliveryTarget,
        *,
        raw: bool = False,
        verify: ssl.SSLContext | str | bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Post delivery reports to ``target`` too, for every message accepted from now on.

        Each report goes to every target; each target retries on its own.

        Args:
            target: a webhook URL (``http://`` or ``https://``; the fake POSTs the report as
                JSON and wants a 2XX back), or a callback given each report as a
                :class:`~agile_async.DeliveryReport` (async or not), as a
                ``DeliveryReportReceiver`` would hand it over. A callback that raises or
                overruns the script's ``timeout`` fails that attempt (retried like a webhook's
                5XX), is logged at ERROR with its traceback and kept in
                :attr:`callback_errors`; a report it lost raises (see ``strict_callbacks``).
                Over :meth:`serve_tls` callbacks run on the server's thread.
            raw: give a callback the report's JSON ``dict`` instead (a fresh copy each time),
                for tests of the wire format.
            verify: TLS verification for an ``https`` URL: ``True`` (the system's CAs), a
                CA bundle path, an ``ssl.SSLContext``, or ``False``.
            headers: extra request headers for a URL, e.g. ``Authorization`` to exercise a
                receiver's Basic auth.
        """
        if isinstance(target, str):
            if raw:
                raise invalid("raw", "must be False for a URL: raw=True is for callbacks")
            url = httpx.URL(target)
            if url.scheme not in ("http", "https") or not url.host:
                raise invalid("target", "must be an http:// or https:// URL, or a callable", target)
        elif not callable(target):
            raise invalid("target", "must be an http:// or https:// URL, or a callable", target)
        entry = Target(target, verify=verify, headers=dict(headers or {}), raw=raw)
        with self._lock:
            self._targets = (*self._targets, entry)

    def clear_delivery_targets(self) -> None:
        """Stop producing reports (those already queued are still posted)."""
        with self._lock:
            self._targets = ()

    @property
    def delivery_targets(self) -> tuple[DeliveryTarget, ...]:
        """The URLs and callbacks reports go to, in the order added."""
        with self._lock:
            return tuple(target.endpoint for target in self._targets)

    @contextlib.asynccontextmanager
    async def delivering(
        self, *, drain: bool = True, strict_callbacks: bool | None = None
    ) -> AsyncIterator[None]:
        """Post reports in the background, in the current event loop, while the block runs.

        Reports wait for their scripted delays and retry backoff, as a real provider's
        would. Use it for end-to-end tests; :meth:`flush_reports` is the deterministic twin.
        Over :meth:`serve_tls` reports already flow without it.

        When a callback loses a report (strict, the default), the block is cancelled and
        :class:`DeliveryCallbackError` leaves it: a ``tracker.wait(id, timeout=600)`` inside
        fails at once, with the callback's exception as the cause.

        Args:
            drain: on a normal exit, post every report still queued (as
                :meth:`flush_reports` does) before returning.
            strict_callbacks: overrides the fake's ``strict_callbacks`` for this block.
        """
        check_flag("drain", drain)
        strict = self._strict(strict_callbacks)
        courier = Courier(
            self._outbox, self._now, concurrency=self.delivery.concurrency, strict=strict
        )
        async with task_group() as tasks:
            tasks.start_soon(partial(courier.run, until_idle=False))
            try:
                yield
                if drain:
                    await self.flush_reports(strict_callbacks=strict)
            finally:
                tasks.cancel_scope.cancel()

    def _strict(self, strict_callbacks: bool | None) -> bool:
        """A call's ``strict_callbacks``: the fake's own unless given (True or False)."""
        if strict_callbacks is None:
            return self.strict_callbacks
        return check_flag("strict_callbacks", strict_callbacks)

    async def flush_reports(
        self, *, honour_delays: bool = False, strict_callbacks: bool | None = None
    ) -> None:
        """Post every queued report now, and wait until none is queued or being posted.

        Follow-ups (the final report after an "Accepted" one, duplicates, retries) are posted
        in the same call, so afterwards :attr:`delivery_log` holds the whole story. Reports
        being posted by a background courier (:meth:`delivering`, :meth:`serve_tls`) are
        waited for. It always ends: each report has bounded attempts, each attempt the
        script's ``timeout``; wrap it in ``anyio.fail_after`` for a tighter limit.

        Raises :class:`DeliveryCallbackError` when a callback lost a report (strict, the
        default), including reports lost earlier by the :meth:`serve_tls` thread's courier,
        which has nobody to raise to: each loss is raised once.

        Args:
            honour_delays: wait for scripted delays and retry backoff instead of skipping
                them.
            strict_callbacks: overrides the fake's ``strict_callbacks`` for this call.
        """
        check_flag("honour_delays", honour_delays)
        strict = self._strict(strict_callbacks)
        courier = Courier(
            self._outbox,
            self._now,
            concurrency=self.delivery.concurrency,
            everything=not honour_delays,
            strict=strict,
        )
        await courier.run(until_idle=True)

    @property
    def delivery_log(self) -> tuple[DeliveryAttempt, ...]:
        """Every attempt to post a report, in completion order (a snapshot, bounded)."""
        return self._outbox.log()

    @property
    def callback_errors(self) -> tuple[DeliveryAttempt, ...]:
        """Every attempt whose callback raised or overran, with its ``exception``, in order
        (a snapshot, bounded like :attr:`delivery_log`). Each was also logged at ERROR."""
        return self._outbox.callback_errors()

    @property
    def delivered_reports(self) -> tuple[Mapping[str, Any], ...]:
        """The reports posted successfully, in order: one per successful post, so a
        duplicate (or a second target) shows a report twice."""
        return tuple(attempt.report for attempt in self._outbox.log() if attempt.ok)

    def delivery_statistics(self) -> DeliveryStatistics:
        """Counters: pending, in flight, delivered, failed attempts, given up, dropped,
        callback errors."""
        return self._outbox.statistics()

    # -- serving -------------------------------------------------------------------------

    def transport(self, *, client_ip: str = "127.0.0.1") -> FakeTransport:
        """An in-memory ``httpx`` transport to this fake (see :class:`FakeTransport`).

        Args:
            client_ip: the source address the fake sees (for ``allowed_ips``).
        """
        from ._transport import FakeTransport

        return FakeTransport(self, client_ip=client_ip)

    def client(self, **kwargs: Any) -> AgileClient:
        """An :class:`~agile_async.AgileClient` wired to this fake in memory.

        Uses the fake's API key (or its Basic credentials when it has no key) and
        :attr:`base_url`. Keyword arguments go to ``AgileClient`` and win: pass credentials to
        try others, or ``retry=`` and ``timeout=`` to tune the client under test.
        """
        from .._client import AgileClient

        options: dict[str, Any] = {"base_url": self.base_url}
        if "http_client" not in kwargs:
            options["transport"] = self.transport()
        if not {"api_key", "username", "password"} & kwargs.keys():
            options.update(client_credentials(self.api_key, self.username, self.password))
        options.update(kwargs)
        return AgileClient(**options)

    def serve_tls(self, *, host: str = "127.0.0.1", port: int = 0) -> TLSServer:
        """This fake over a real TLS socket (uvicorn + trustme: the ``server`` extra).

        Use the result as a context manager, sync (``with``) or async (``async with``); it
        serves on a thread of its own, so the test may run on asyncio or trio.

        Args:
            host: the address to bind; the certificate names it (and ``localhost``).
            port: the port; 0 picks a free one (read it from ``base_url``).
        """
        from ._tls import TLSServer

        return TLSServer(self, host=host, port=port)

    # -- the ASGI application ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point: HTTP requests, and lifespan so any server may run it."""
        await dispatch(scope, receive, send, self._http)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_at = self._now()
        with self._lock:
            index = len(self._requests)
            self._requests.append(None)
        client = scope.get("client")
        auth, identity = self._authenticate(scope)
        request = _Incoming(
            index=index,
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            client_ip=str(client[0]) if client else None,
            content_type=header(scope, b"content-type"),
            user_agent=header(scope, b"user-agent"),
            identity=identity,
        )
        fault: Fault | None = None
        status: int | None = None
        sent = b""
        try:
            try:
                raw = await read_request_body(scope, receive, limit=self.max_body_bytes)
            except ClientDisconnected:
                return
            except InvalidContentLength:
                request.body_refusal = _fail(400, 4, "Invalid Content-Length")
            except BodyTooLarge:
                request.body_refusal = _fail(413, 4, "Request body too large")
            else:
                request.payload, request.parsed = _parse_json(raw)
            fault = self._faults.take(endpoint_of(request.path))
            status, headers, sent = await interfere(fault, partial(self._respond, request))
            await send_response(send, status, headers, sent, head=request.method == "HEAD")
        finally:
            record = RecordedRequest(
                index=index,
                method=request.method,
                path=request.path,
                auth=auth,
                client_ip=request.client_ip,
                content_type=request.content_type,
                user_agent=request.user_agent,
                json=request.payload,
                status=status,
                response_body=sent if status is not None else b"",
                fault=fault,
                received_at=received_at,
                simulation_credentials=identity == "simulation",
            )
            with self._lock:
                self._requests[index] = record
            if request.reports:
                # After the response (or its loss): the provider took the messages either way.
                self._outbox.submit(request.report_targets, request.reports)

    def _respond(self, request: _Incoming) -> Response:
        """Everything after the faults: the body's size, route, auth, IP, then the endpoint."""
        if request.body_refusal is not None:
            return request.body_refusal
        endpoint = endpoint_of(request.path)
        under_prefix = request.path.startswith(PATH_PREFIX + "/")
        allowed = _ROUTES.get(endpoint) if under_prefix else None
        if allowed is None:
            return _fail(404, 4, f"Unknown endpoint {request.path}")
        if request.method not in allowed:
            return _fail(
                405, 4, f"Method {request.method} not allowed", [("allow", ", ".join(allowed))]
            )
        if request.identity is None:
            return _fail(401, 1, text_for(1))
        if self.allowed_ips is not None and request.client_ip not in self.allowed_ips:
            return _fail(403, 100, text_for(100))
        if endpoint == "/sms/credit":
            return json_response(200, {"credit": float(self.credit)})
        if not is_json_media_type(request.content_type):
            return _fail(415, 4, "Only POST with a JSON payload (application/json) is accepted")
        if not request.parsed:
            return _fail(400, 4, "Malformed JSON body")
        outcome = plan_send(request.payload, self._policy())
        if isinstance(outcome, Rejection):
            return _fail(outcome.status, outcome.code, outcome.data)
        if request.identity == "simulation":
            outcome = attrs.evolve(outcome, simulation=True)
        return self._commit(outcome, request)

    def _commit(self, plan: SendPlan, request: _Incoming) -> Response:
        """Charge and record a valid request, all or nothing; plan its delivery reports."""
        index = request.index
        accepted_at = self._now()
        global_id = plan.global_id if plan.global_id is not None else str(uuid.uuid4())
        entries: list[AcceptedMessage] = []
        for message in plan.messages:
            for target in message.destinations:
                unit = self._price(digits_of(target.destination))
                entries.append(
                    AcceptedMessage(
                        message_id=target.message_id or uuid.uuid4().hex[: plan.max_id_len],
                        destination=target.destination,
                        sender=message.sender,
                        body=message.body,
                        hex_body=message.hex_body,
                        udh_data=message.udh_data,
                        scheduling=message.scheduling,
                        parts=message.parts,
                        price=unit * message.parts,
                        global_id=global_id,
                        request_index=index,
                        message_index=message.index,
                        enable_delivery=plan.enable_delivery,
                        simulated=plan.simulation,
                        accepted_at=accepted_at,
                    )
                )
        cost = sum((entry.price for entry in entries), Decimal(0))
        with self._lock:
            if cost > self._credit:
                return _fail(402, 2, text_for(2))
            if plan.simulation:
                self._simulated.extend(entries)
            else:
                self._credit -= cost
                self._accepted.extend(entries)
            remaining = self._credit
            targets = self._targets
        if targets and plan.enable_delivery and not plan.simulation:
            script = self.delivery
            request.report_targets = targets
            request.reports = [chain for entry in entries for chain in plan_reports(script, entry)]
        return json_response(
            200,
            {
                "globalId": global_id,
                "processedMessages": len(plan.messages),
                "processedSmsParts": sum(entry.parts for entry in entries),
                "credit": float(remaining),
            },
        )

    # -- helpers ---------------------------------------------------------------------------

    def _authenticate(self, scope: Scope) -> tuple[AuthMode | None, Identity | None]:
        """Which credentials the request carried, and whose they are (see :mod:`._auth`)."""
        return authenticate(
            header(scope, b"x-api-key"),
            header(scope, b"authorization"),
            api_key=self.api_key,
            username=self.username,
            password=self.password,
            simulation_credentials=self.simulation_credentials,
        )

    def _policy(self) -> SendPolicy:
        with self._lock:
            rules = tuple(self._rules)
        return SendPolicy(self.allowed_senders, self.forbidden_prefixes, rules)

    def _price(self, digits: str) -> Decimal:
        """The price per part for a destination: the longest matching prefix, else the default."""
        best = max((p for p in self.prices if digits.startswith(p)), key=len, default=None)
        return self.prices[best] if best is not None else self.price_per_part

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("FakeAgileServer clock must return an aware datetime")
        return now


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """The decoded body, and whether it was JSON at all."""
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False
