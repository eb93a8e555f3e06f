"""The delivery-report webhook: a plain ASGI 3 application, on asyncio and trio.

No web framework: the receiver is an ASGI app, so a user mounts it in FastAPI, Starlette or
Quart, or serves it alone with uvicorn, and the core package depends on nothing new. It only
uses anyio, so it runs under any ASGI server on asyncio and on trio (hypercorn).

The provider signs nothing and documents no source addresses, so the receiver offers its own
protection and checks in this order, cheapest and least revealing first:

====  =========================================================================
403   ``allow_from`` is set and the client address is not in it
404   ``path_token`` is set and the last path segment is not the token (so the
      endpoint cannot be discovered; compared in constant time)
405   not POST (with ``Allow: POST``)
401   ``basic_auth`` is set and the credentials differ (constant time; with
      ``WWW-Authenticate``)
400   an unreadable ``Content-Length`` (or copies that disagree), a body that is
      not JSON, or any bad report (every problem listed, at most 10, in a short
      JSON body)
413   the body is over ``max_body_bytes`` (refused from ``Content-Length`` before
      reading; otherwise reading stops at the cap)
415   only with ``require_json=True``: a media type other than JSON
      (``application/json`` or ``application/*+json``: :mod:`._asgi`'s one rule)
200   accepted: ``{"accepted": N, "duplicates": M}``
500   ``on_report`` raised (logged); the provider should retry
503   ``on_report`` overran ``callback_timeout``; the provider should retry
====  =========================================================================

``on_report`` runs *before* the response, so a failure (the user's database is down)
becomes a 5XX and the provider's retry brings the report back, instead of a 200 for a
report that was lost. The price is that the provider waits for the callback: keep it quick
(hand the report to a queue or a tracker). Retries and duplicates are why the receiver
remembers the reports it handed over (see :class:`_Dedupe`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from datetime import timezone
from typing import Any, Final, NamedTuple

import anyio
import anyio.to_thread

from ._asgi import (
    BodyTooLarge,
    ClientDisconnected,
    InvalidContentLength,
    Receive,
    Response,
    Scope,
    Send,
    basic_credentials,
    check_declared_length,
    dispatch,
    header,
    is_json_media_type,
    json_response,
    read_body,
    same_secret,
    send_response,
)
from ._concurrency import call_maybe_async
from ._exceptions import InvalidDeliveryReportError
from ._models import DeliveryReport
from ._setting_validators import (
    check_callable,
    check_flag,
    check_integer,
    check_number,
    invalid,
)
from ._telemetry import current as current_telemetry
from ._token_mask import TokenMask
from ._webhook_parsing import DEFAULT_MAX_REPORTS, parse_delivery_reports

__all__ = [
    "DEFAULT_DEDUPE_WINDOW",
    "DEFAULT_MAX_BODY_BYTES",
    "MIN_PATH_TOKEN_LENGTH",
    "DeliveryReportReceiver",
    "ReceiverStatistics",
    "ReportCallback",
]

log = logging.getLogger("agile_async")

#: What ``on_report`` may be: a coroutine function, or a plain function (run on the event
#: loop, so it must be quick, like ``tracker.feed``). Whatever it returns is awaited if it is
#: awaitable and otherwise ignored.
ReportCallback = Callable[[DeliveryReport], object]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: An ``allow_from`` entry: an address or a network, as text or an ``ipaddress`` object.
AllowFrom = str | IPAddress | IPNetwork

#: One report is about 300 bytes; 1 MiB holds thousands, far more than the provider's one
#: report per SMS part needs, and little enough that a hostile body costs nothing.
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024

#: How many recent reports are remembered to recognise the provider's retries: about 10 MB
#: at 100 bytes each (a 16-byte digest per report, whatever its id's length).
DEFAULT_DEDUPE_WINDOW: Final = 100_000

#: A path token shorter than this is refused: it must not be guessable. Make one with
#: ``secrets.token_urlsafe(32)``.
MIN_PATH_TOKEN_LENGTH: Final = 16

#: Bodies over this are parsed on a worker thread: a full 1 MiB body of reports takes tens
#: of milliseconds to check, which would stall every other request on the event loop.
_PARSE_ON_THREAD_BYTES = 64 * 1024
#: How many problems a 400 body lists (the rest are counted), so it stays short.
_LISTED_IN_RESPONSE = 10
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~-]+")
_ONE_ENTRY = (
    str,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)
_REALM = 'Basic realm="agile-async delivery reports", charset="UTF-8"'


class ReceiverStatistics(NamedTuple):
    """Counts since the receiver was made.

    Attributes:
        requests: HTTP requests received (any method, any outcome).
        delivered: reports handed to ``on_report`` that it took without raising.
        duplicates: reports recognised as repeats and not handed over again.
        rejected: requests refused with a 4XX (403, 404, 405, 401, 400, 413, 415).
        failed: requests answered 5XX: ``on_report`` raised or overran its time (or the
            receiver itself failed, which is logged as a bug).
    """

    requests: int
    delivered: int
    duplicates: int
    rejected: int
    failed: int


class DeliveryReportReceiver:
    """An ASGI application that receives the provider's delivery reports.

    Point the provider's webhook at it (``https://example.com/agile/reports/<path_token>``);
    each valid report is handed to ``await on_report(report)`` before the provider gets its
    200. Mount it in a framework (``app.mount("/agile/reports", receiver)``) or serve it
    alone (``uvicorn.run(receiver, host=..., port=...)``).

    **Parameters:**

    * **on_report** - called with each :class:`~agile_async.DeliveryReport`, in body order;
      a coroutine function, or a quick plain function. If it raises, the request gets 500
      and the provider's retry brings the report back.
    * **path_token** - a secret the last path segment must equal (else 404). At least
      :data:`MIN_PATH_TOKEN_LENGTH` URL-safe characters: ``secrets.token_urlsafe(32)``.
    * **basic_auth** - ``(user, password)`` the request must carry as Basic auth (else 401).
    * **allow_from** - addresses and networks (``"203.0.113.7"``, ``"198.51.100.0/24"``,
      ``ipaddress`` objects) the client must come from (else 403). The address is the ASGI
      scope's ``client``: behind a reverse proxy, configure the server to set it from the
      proxy's header (uvicorn ``--proxy-headers --forwarded-allow-ips=<proxy>``), or every
      request will seem to come from the proxy.
    * **max_body_bytes** - the largest body read (else 413).
    * **max_reports** - the most reports one body may carry (else 400).
    * **dedupe** - how many recent reports to remember, so a report the provider sends
      again is acknowledged without calling ``on_report`` twice; ``0`` or ``None`` turns
      this off. Per receiver, so per process: with several server workers, a repeat that
      lands on another worker is delivered again.
    * **callback_timeout** - seconds ``on_report`` may take per report before it is
      cancelled and the request gets 503; ``None`` (the default) for no limit.
    * **require_json** - answer 415 unless the media type is JSON: ``application/json`` or
      ``application/<name>+json``, any case, any parameters. Off by default: the
      provider does not document its ``Content-Type``, a 415 would lose real reports, and
      a body that is not JSON gets 400 anyway.

    Secrets (the path token, the password) appear in no log, repr or response of the
    receiver's. The server's own access log writes request paths, token included: add
    :attr:`log_filter` to it, or turn it off (uvicorn ``access_log=False``).
    """

    def __init__(
        self,
        on_report: ReportCallback,
        *,
        path_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        allow_from: AllowFrom | Iterable[AllowFrom] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_reports: int = DEFAULT_MAX_REPORTS,
        dedupe: int | None = DEFAULT_DEDUPE_WINDOW,
        callback_timeout: float | None = None,
        require_json: bool = False,
    ) -> None:
        check_callable("on_report", on_report, optional=False)
        self._on_report = on_report
        self._token = _check_token(path_token)
        self._auth = _check_basic_auth(basic_auth)
        self._networks = _check_allow_from(allow_from)
        self._max_body_bytes = check_integer("max_body_bytes", max_body_bytes, minimum=1)
        self._max_reports = check_integer("max_reports", max_reports, minimum=1)
        window = 0 if dedupe is None else dedupe
        check_integer("dedupe", window, minimum=0, none="no deduplication, as 0")
        self._dedupe = _Dedupe(window) if window else None
        if callback_timeout is not None:
            check_number(
                "callback_timeout", callback_timeout, minimum=0, exclusive=True, unit=" seconds"
            )
        self._callback_timeout = callback_timeout
        self._require_json = check_flag("require_json", require_json)
        self._counts = dict.fromkeys(ReceiverStatistics._fields, 0)
        #: Reports counted by status in OpenTelemetry metrics, when configured (chosen once).
        self._telemetry = current_telemetry()
        self._log_filter = TokenMask(path_token)

    def __repr__(self) -> str:
        name = getattr(self._on_report, "__qualname__", type(self._on_report).__name__)
        networks = [str(network) for network in self._networks or ()]
        return (
            f"DeliveryReportReceiver(on_report={name}, "
            f"path_token={'***' if self._token else None}, "
            f"basic_auth={'***' if self._auth else None}, "
            f"allow_from={networks if self._networks is not None else None}, "
            f"max_body_bytes={self._max_body_bytes}, "
            f"dedupe={self._dedupe.window if self._dedupe else 0})"
        )

    def statistics(self) -> ReceiverStatistics:
        """A snapshot of the counts."""
        return ReceiverStatistics(**self._counts)

    @property
    def log_filter(self) -> logging.Filter:
        """A :class:`logging.Filter` that masks this receiver's path token as ``***`` in every
        record it sees, for a server that logs request paths::

            logging.getLogger("uvicorn.access").addFilter(receiver.log_filter)

        turns ``"POST /agile/reports/<token> HTTP/1.1" 200`` into
        ``"POST /agile/reports/*** HTTP/1.1" 200``. Records are masked, never dropped, so
        requests with a wrong token still show their path. Always the same object (adding it
        twice is harmless); a receiver without a path token gets a filter that changes
        nothing.
        """
        return self._log_filter

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point: HTTP requests, and lifespan so it can run alone."""
        await dispatch(scope, receive, send, self._http)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._counts["requests"] += 1
        try:
            response = await self._handle(scope, receive)
        except ClientDisconnected:
            return  # nobody to answer; nothing was handed over, so the provider will retry
        except Exception:
            # A bug of ours must not take the server down, nor leave the provider hanging.
            log.exception("delivery report receiver: unexpected error")
            self._counts["failed"] += 1
            response = _reply(500, {"error": "internal error"})
        if 400 <= response.status < 500:
            self._counts["rejected"] += 1
        await send_response(send, *response, head=scope.get("method") == "HEAD")

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        refusal = (
            self._check_source(scope)
            or self._check_token(scope)
            or _check_method(scope)
            or self._check_auth(scope)
            or self._check_headers(scope)
        )
        if refusal is not None:
            return refusal
        try:
            body = await read_body(receive, limit=self._max_body_bytes)
        except BodyTooLarge:
            return self._too_large()
        parse = functools.partial(parse_delivery_reports, body, max_reports=self._max_reports)
        try:
            if len(body) > _PARSE_ON_THREAD_BYTES:
                reports = await anyio.to_thread.run_sync(parse)
            else:
                reports = parse()
        except InvalidDeliveryReportError as err:
            log.warning(
                "delivery report receiver: refused a body from %s: %d problem(s), first: %s",
                _client_host(scope),
                len(err.problems),
                err.problems[0],
            )
            return _reply(
                400,
                {
                    "error": "invalid delivery report",
                    "problems": [str(problem) for problem in err.problems[:_LISTED_IN_RESPONSE]],
                },
            )
        return await self._deliver_all(reports)

    # -- checks, each a refusal or None --------------------------------------------------

    def _check_source(self, scope: Scope) -> Response | None:
        if self._networks is None or _allowed(scope.get("client"), self._networks):
            return None
        log.debug("delivery report receiver: 403 for %s", _client_host(scope))
        return _reply(403, {"error": "forbidden"})

    def _check_token(self, scope: Scope) -> Response | None:
        if self._token is None:
            return None
        path = str(scope.get("path", ""))
        segment = path[:-1] if path.endswith("/") else path
        segment = segment.rpartition("/")[2]
        if same_secret(segment.encode("utf-8", "surrogatepass"), self._token):
            return None
        log.debug("delivery report receiver: 404 for %s", _client_host(scope))
        return _reply(404, {"error": "not found"})

    def _check_auth(self, scope: Scope) -> Response | None:
        if self._auth is None:
            return None
        given = basic_credentials(header(scope, b"authorization"))
        user, password = given if given is not None else (b"", b"")
        # Both compared every time: which one was wrong must not show in the timing.
        user_ok = same_secret(user, self._auth[0])
        password_ok = same_secret(password, self._auth[1])
        if given is not None and user_ok & password_ok:
            return None
        log.debug("delivery report receiver: 401 for %s", _client_host(scope))
        return _reply(401, {"error": "unauthorized"}, [("www-authenticate", _REALM)])

    def _check_headers(self, scope: Scope) -> Response | None:
        try:
            check_declared_length(scope, limit=self._max_body_bytes)
        except InvalidContentLength:
            return _reply(400, {"error": "invalid Content-Length"})
        except BodyTooLarge:
            return self._too_large()
        if self._require_json and not is_json_media_type(header(scope, b"content-type")):
            return _reply(415, {"error": "Content-Type must be application/json"})
        return None

    def _too_large(self) -> Response:
        return _reply(413, {"error": "body too large", "max_bytes": self._max_body_bytes})

    # -- handing reports over ------------------------------------------------------------

    async def _deliver_all(self, reports: list[DeliveryReport]) -> Response:
        delivered = duplicates = 0
        for report in reports:
            try:
                fresh = await self._deliver(report)
            except _CallbackTimeout:
                self._counts["failed"] += 1
                log.error(
                    "delivery report receiver: on_report took over %ss for message %r "
                    "(part %d/%d); answering 503 so the provider retries",
                    self._callback_timeout,
                    report.message_id,
                    report.concat_progressive,
                    report.concat_total,
                )
                return _reply(503, {"error": "report processing timed out"})
            except Exception:
                self._counts["failed"] += 1
                log.exception(
                    "delivery report receiver: on_report failed for message %r (part %d/%d, "
                    "%s); answering 500 so the provider retries",
                    report.message_id,
                    report.concat_progressive,
                    report.concat_total,
                    report.status.name,
                )
                return _reply(500, {"error": "report processing failed"})
            if fresh:
                delivered += 1
                self._counts["delivered"] += 1
            else:
                duplicates += 1
                self._counts["duplicates"] += 1
            self._telemetry.report(report.status.name, duplicate=not fresh)
        return _reply(200, {"accepted": delivered, "duplicates": duplicates})

    async def _deliver(self, report: DeliveryReport) -> bool:
        """Hand one report over unless it is a repeat; ``False`` for a repeat."""
        if self._dedupe is None:
            await self._call(report)
            return True
        key = _dedupe_key(report)
        if not await self._dedupe.claim(key):
            return False
        delivered = False
        try:
            await self._call(report)
            delivered = True
        finally:
            self._dedupe.release(key, delivered=delivered)
        return True

    async def _call(self, report: DeliveryReport) -> None:
        with anyio.move_on_after(self._callback_timeout) as deadline:
            await call_maybe_async(self._on_report, report)
        if deadline.cancelled_caught:
            raise _CallbackTimeout


class _Dedupe:
    """The recently delivered reports, and those being delivered right now.

    A report is remembered only once ``on_report`` took it: if the callback fails, the
    provider's retry is delivered, not dropped. A repeat that arrives while the first copy
    is still in ``on_report`` waits for it, then is dropped if it went through or delivered
    if it failed. Recent means least recently seen: a plain dict in seen order, the oldest
    evicted past ``window``.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._done: dict[bytes, None] = {}
        self._pending: dict[bytes, anyio.Event] = {}

    async def claim(self, key: bytes) -> bool:
        """``True`` when the caller should deliver (and later :meth:`release`)."""
        while True:
            if key in self._done:
                del self._done[key]
                self._done[key] = None  # seen again: now the most recent
                return False
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = anyio.Event()
                return True
            await pending.wait()

    def release(self, key: bytes, *, delivered: bool) -> None:
        if delivered:
            self._done[key] = None
            if len(self._done) > self.window:
                del self._done[next(iter(self._done))]
        self._pending.pop(key).set()


def _dedupe_key(report: DeliveryReport) -> bytes:
    """What makes a report the same report: message, part, status and when.

    Hashed to 16 bytes, so memory per remembered report does not depend on the id's length.
    The id's length goes first, so no id can run into the next field. ``doneDate`` counts as
    an instant: the same moment written with another offset is the same report.
    """
    instant = report.done_date.astimezone(timezone.utc).isoformat()
    text = (
        f"{len(report.message_id)}:{report.message_id}|{report.concat_progressive}"
        f"|{int(report.status)}|{instant}"
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# -- HTTP details --------------------------------------------------------------------------


class _CallbackTimeout(Exception):
    """``on_report`` overran ``callback_timeout``."""


def _reply(
    status: int, payload: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """A small JSON response, never cached; a 405 says which method is allowed."""
    extra = [("cache-control", "no-store"), *headers]
    if status == 405:
        extra.append(("allow", "POST"))
    return json_response(status, payload, extra)


def _check_method(scope: Scope) -> Response | None:
    if scope.get("method") == "POST":
        return None
    return _reply(405, {"error": "method not allowed"})


def _allowed(client: object, networks: list[IPNetwork]) -> bool:
    if not isinstance(client, (tuple, list)) or not client:
        return False  # a Unix socket or a server that does not say: not provably allowed
    try:
        address: IPAddress = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)  # an IPv4 client on a dual-stack socket
    return any(candidate in network for candidate in candidates for network in networks)


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if isinstance(client, (tuple, list)) and client else "unknown"


# -- construction checks ---------------------------------------------------------------------


def _check_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    if not isinstance(token, str) or not _TOKEN_CHARACTERS.fullmatch(token):
        raise invalid(  # never the value: it is a secret
            "path_token",
            "must be URL-safe characters (A-Z a-z 0-9 . _ ~ -); "
            "make one with secrets.token_urlsafe(32)",
        )
    if len(token) < MIN_PATH_TOKEN_LENGTH:
        raise invalid(
            "path_token",
            f"must be at least {MIN_PATH_TOKEN_LENGTH} characters, so it cannot be guessed; "
            "make one with secrets.token_urlsafe(32)",
        )
    return token.encode()


def _check_basic_auth(basic_auth: tuple[str, str] | None) -> tuple[bytes, bytes] | None:
    if basic_auth is None:
        return None
    if (
        not isinstance(basic_auth, (tuple, list))
        or len(basic_auth) != 2
        or not all(isinstance(part, str) and part for part in basic_auth)
    ):
        raise invalid("basic_auth", "must be a (user, password) pair of non-empty strings")
    user, password = basic_auth
    if ":" in user:
        raise invalid("basic_auth", "must have a user without ':'")
    return user.encode(), password.encode()


def _check_allow_from(allow_from: AllowFrom | Iterable[AllowFrom] | None) -> list[IPNetwork] | None:
    if allow_from is None:
        return None
    entries = [allow_from] if isinstance(allow_from, _ONE_ENTRY) else allow_from
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            if not isinstance(entry, _ONE_ENTRY):
                raise TypeError  # ipaddress would take 42 as 0.0.0.42: surely a mistake
            networks.append(ipaddress.ip_network(entry, strict=False))
        except (TypeError, ValueError):
            raise invalid("allow_from", "must list IP addresses or networks", entry) from None
    if not networks:
        raise invalid(
            "allow_from",
            "is empty, so nothing could reach the receiver; use None to allow any source",
        )
    return networks
