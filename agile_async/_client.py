"""``AgileClient``: the pooled, typed async client for the provider's REST API.

One client holds one pool of HTTP connections (an :class:`httpx.AsyncClient`) and is meant
to be shared by a whole application: create it at start-up, ``await client.aclose()`` (or
leave its ``async with`` block) at shutdown.

A send flows one way: ``send()`` -> local validation and ids -> JSON -> retries -> httpx;
results and typed errors flow back the same path.
"""

from __future__ import annotations

import base64
import copy
import enum
import functools
import logging
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import attrs
import httpx

from ._batching import Batcher, RequestOutcome
from ._call_options import check_options, check_retry, check_timeout
from ._channel import SendChannel
from ._config import (
    BASE_URLS,
    DEFAULT_LIMITS,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Account,
    BatchSettings,
    RetryPolicy,
    batch_settings,
)
from ._exceptions import (
    APIError,
    ClientClosedError,
    ConfigurationError,
    OutcomeUnknownError,
    Problem,
)
from ._exchange import Exchange, ExchangeAborted
from ._models import Message, SendOptions, SendResult
from ._parts import estimate_parts
from ._pricing import CostEstimate, PriceList, estimate_cost
from ._ratelimit import RateLimiter
from ._raw_response import RawResponse, ResponseRecorder
from ._redact import redact_url, redact_urls
from ._responses import parse_body, raise_for_response, translate_transport_error
from ._retry import call_with_retries
from ._serde import CreditResponse, SendResponse, converter, dumps
from ._setting_validators import check_flag, invalid
from ._telemetry import current as current_telemetry
from ._text import text_problem
from ._validation import IdGenerator, as_messages, prepare_request
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._telemetry import Attempt
    from ._tickets import Ticket

__all__ = [
    "AgileClient",
    "AgileClientWithRawResponse",
    "ClientState",
    "CreditCheck",
    "account_identity",
]

T = TypeVar("T")

log = logging.getLogger("agile_async")

USER_AGENT = f"agile-async/{__version__}"

#: How long ``aclose()`` waits for the requests it stopped to let go of their sockets.
_CLOSE_GRACE = 5.0


@attrs.frozen
class CreditCheck:
    """A cost estimate beside the account's credit: can the account pay for it?"""

    estimate: CostEstimate
    credit: Decimal

    @property
    def sufficient(self) -> bool:
        """Whether the credit covers the estimated cost."""
        return self.credit >= self.estimate.total

    @property
    def shortfall(self) -> Decimal:
        """How much credit is missing (zero when sufficient), in EUR."""
        return self.estimate.shortfall(self.credit)


class ClientState(enum.Enum):
    """Where a client is in its life: usable until closed, never reopened."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class _Session:
    """What a client shares with its :meth:`~AgileClient.with_options` views: its life (a
    view is open exactly while its client is) and the account's last known credit (one
    account, whichever view heard it last).

    A view is a shallow copy of its client, so objects (the pool, the id generator, the set
    of exchanges) are shared as they are; a value the client *reassigns* after ``__init__``
    must live here instead, or each view would keep its own stale copy.
    """

    __slots__ = ("last_credit", "state")

    def __init__(self) -> None:
        self.state = ClientState.UNOPENED
        self.last_credit: Decimal | None = None


class _Credentials:
    """The auth headers, kept out of every ``repr``, log line and error message."""

    __slots__ = ("_headers", "identity", "mode")

    def __init__(self, *, api_key: str | None, username: str | None, password: str | None):
        _check_secret_text(api_key=api_key, username=username, password=password)
        if api_key is not None:
            self.mode = "api_key"
            self._headers = {"X-Api-Key": api_key}
            #: What names the account (Redis keys hash it): the key, or the user name,
            #: never the password (so changing it keeps the account's keys).
            self.identity = api_key
        else:
            assert username is not None
            assert password is not None
            self.mode = "basic"
            self._headers = {"Authorization": _basic(username, password)}
            self.identity = username

    def with_url_userinfo(self, userinfo: tuple[str, str] | None) -> _Credentials:
        """Also send the base URL's userinfo as Basic auth (httpx's meaning of it: a gateway
        in front of the provider, say), now that it is no longer in the URL."""
        if userinfo is not None and "Authorization" not in self._headers:
            self._headers["Authorization"] = _basic(*userinfo)
        return self

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"<credentials {self.mode}: ***>"


def _check_secret_text(**values: str | None) -> None:
    """Refuse credentials no request could carry, naming the field (never the value).

    An API key travels as a header value: printable ASCII. Basic credentials are UTF-8
    inside base64: any text that encodes (no lone surrogate), no control characters, and
    no ``:`` in the user name (Basic splits there).
    """
    for field, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid(field, f"must be a string, not {type(value).__name__}")
        if field == "api_key":
            if not (value.isascii() and value.isprintable()):
                raise invalid(
                    "api_key",
                    "must be printable ASCII (it is sent as a header): check for "
                    "stray characters, such as a newline pasted with it",
                )
            continue
        if not value.isprintable() or text_problem(value) is not None:
            raise invalid(field, "has a control character or a lone surrogate: it cannot be sent")
        if field == "username" and ":" in value:
            raise invalid("username", "must not contain ':' (Basic auth splits there)")


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _resolve_credentials(
    api_key: str | None,
    username: str | None,
    password: str | None,
    environ: Mapping[str, str],
    url_userinfo: tuple[str, str] | None = None,
) -> _Credentials:
    """Explicit arguments win over the environment; an API key wins over a password; a
    username and password in the base URL are the Basic credentials when nothing else is."""
    if api_key is not None and (username is not None or password is not None):
        raise ConfigurationError("give either api_key or username and password, not both")
    if api_key is None and username is None and password is None:
        api_key = environ.get("AGILE_API_KEY") or None
        if api_key is None:
            username = environ.get("AGILE_USERNAME") or None
            password = environ.get("AGILE_PASSWORD") or None
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise invalid("api_key", "must be a non-empty string")
        credentials = _Credentials(api_key=api_key, username=None, password=None)
        return credentials.with_url_userinfo(url_userinfo)
    if username is None and password is None:
        if url_userinfo is not None:
            return _Credentials(api_key=None, username=url_userinfo[0], password=url_userinfo[1])
        raise ConfigurationError(
            "no credentials: pass api_key= (or username= and password=), or set "
            "AGILE_API_KEY (or AGILE_USERNAME and AGILE_PASSWORD)"
        )
    if not username or not password:
        missing = "password" if username else "username"
        raise ConfigurationError(
            f"Basic auth needs both username and password; {missing} is missing",
            problems=[Problem(missing, "is missing: Basic auth needs username and password")],
        )
    if url_userinfo is not None:
        raise ConfigurationError(
            "the base URL carries a username and password, and Basic credentials are given "
            "too: give them once (username=/password= or AGILE_USERNAME/AGILE_PASSWORD)"
        )
    return _Credentials(api_key=None, username=username, password=password)


def _resolve_base_url(
    account: Account, base_url: str | httpx.URL | None, environ: Mapping[str, str]
) -> tuple[httpx.URL, tuple[str, str] | None]:
    """The base URL without its userinfo, and the userinfo (a credential) apart.

    No message here shows the userinfo, and none is raised while an httpx error is being
    handled (whose message might).
    """
    if account not in BASE_URLS:
        raise ConfigurationError(
            f"account must be 'legacy' or 'new', not {account!r}",
            problems=[Problem("account", "must be 'legacy' or 'new'")],
        )
    raw = base_url if base_url is not None else environ.get("AGILE_BASE_URL") or BASE_URLS[account]
    shown = redact_url(str(raw))
    url: httpx.URL | None
    problem = ""
    try:
        url = httpx.URL(str(raw))
    except httpx.InvalidURL as err:
        url, problem = None, redact_urls(str(err))
    if url is None:
        raise ConfigurationError(
            f"base_url {shown!r} is not a valid URL: {problem}",
            problems=[Problem("base_url", "must be a valid URL")],
        )
    if url.scheme != "https":
        raise ConfigurationError(
            f"base_url must use https:// (the provider accepts only TLS since 2026-01-15), "
            f"got {url.scheme or 'no scheme'!r} in {redact_url(url.copy_with(query=None))!r}",
            problems=[Problem("base_url", "must use https://")],
        )
    if not url.host:
        raise ConfigurationError(
            f"base_url {shown!r} has no host", problems=[Problem("base_url", "must have a host")]
        )
    userinfo = (url.username, url.password) if url.username or url.password else None
    url = url.copy_with(username=None, password=None)
    if not url.path.endswith("/"):
        url = url.copy_with(path=url.path + "/")
    return url, userinfo


class AgileClient:
    """An async client for the AgileTelecom SMS REST API, on asyncio or trio.

    ```python
    async with AgileClient(api_key="...") as client:
        result = await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
        print(result.ids, result.credit)
    ```

    Args:
        api_key: the account's API key (recommended). Falls back to ``AGILE_API_KEY``.
        username: for Basic auth, with ``password``. Falls back to ``AGILE_USERNAME``.
        password: for Basic auth. Falls back to ``AGILE_PASSWORD``.
        account: ``"legacy"`` or ``"new"``: picks the documented base URL.
        base_url: overrides the account's base URL (``AGILE_BASE_URL``); must be https.
        http_client: a caller's :class:`httpx.AsyncClient` (custom CA, proxies, transports);
            the caller keeps ownership and closes it. Cancelled sends leave its pool usable
            too (the SDK never cancels a request where httpcore would strand a connection);
            ``aclose()`` leaves its requests under way to stop at such a point by themselves.
        transport: an httpx transport for the client the SDK creates and owns (tests use
            :meth:`FakeAgileServer.transport() <agile_async.testing.FakeAgileServer.transport>`).
        timeout: httpx timeouts for the owned client (default: connect 5 s, others 30 s).
        limits: connection pool limits for the owned client.
        http2: use HTTP/2 (needs the ``http2`` extra).
        retry: the :class:`RetryPolicy` for every request.
        options: the :class:`SendOptions` used when a send passes none.

    ``timeout`` and ``retry`` may also be given per call (``send(..., timeout=5)``) or per
    view (:meth:`with_options`); :attr:`with_raw_response` answers with the HTTP status,
    headers and timing beside each result.

    Raises:
        ConfigurationError: a setting is not valid (named, as in ``timeout must be > 0 s,
            got 0``), or no credentials were found; nothing is sent.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        account: Account = "legacy",
        base_url: str | httpx.URL | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        http2: bool = False,
        retry: RetryPolicy | None = None,
        options: SendOptions | None = None,
    ) -> None:
        # Every setting is checked here, as with_options() and the per-call arguments check
        # theirs, so a wrong one fails where it was given, naming it, not at the first send.
        timeout = check_timeout("timeout", timeout)
        retry = check_retry("retry", retry)
        options = check_options("options", options)
        if not isinstance(limits, httpx.Limits):
            raise invalid("limits", "must be an httpx.Limits", limits)
        check_flag("http2", http2)
        environ = os.environ
        url, userinfo = _resolve_base_url(account, base_url, environ)
        self._credentials = _resolve_credentials(api_key, username, password, environ, userinfo)
        #: Where requests go (any userinfo given in it was moved into the credentials).
        self.base_url: httpx.URL = url
        self._send_url = self.base_url.join("sms/send")
        self._credit_url = self.base_url.join("sms/credit")
        if http_client is not None and transport is not None:
            raise ConfigurationError("give either http_client or transport, not both")
        if http_client is not None:
            self._http = http_client
            self._owns_http = False
        else:
            self._http = httpx.AsyncClient(
                transport=transport, timeout=timeout, limits=limits, http2=http2
            )
            self._owns_http = True
        self.retry: RetryPolicy = retry if retry is not None else DEFAULT_RETRY
        self.options: SendOptions = options if options is not None else SendOptions()
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **self._credentials.headers(),
        }
        if self._owns_http:  # the pool sends them: httpx merges no headers per request
            self._http.headers.update(headers)
            headers = {}
        #: The headers each request adds to the pool's (all of them for a caller's pool).
        self._headers = headers
        #: The same, for a request with a JSON body.
        self._json_headers = {**headers, "Content-Type": "application/json"}
        self._ids = IdGenerator()
        self._session = _Session()
        #: This view's timeouts for each request; ``None``: the pool's own.
        self._timeout: httpx.Timeout | None = None
        #: Whether this object is a ``with_options`` view (it owns no pool and no life).
        self._is_view = False
        self._exchanges: set[Exchange] = set()
        #: Logs, and spans and metrics when OpenTelemetry is configured: chosen once, here.
        self._telemetry = current_telemetry()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """``UNOPENED`` (usable), ``OPENED`` (inside ``async with``) or ``CLOSED``."""
        return self._session.state

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has run; a closed client refuses all work."""
        return self._session.state is ClientState.CLOSED

    async def __aenter__(self) -> AgileClient:
        if self._session.state is ClientState.CLOSED:
            raise ClientClosedError("cannot reopen an AgileClient once it has been closed")
        if self._is_view:  # its client's ``async with`` (or aclose) governs the pool
            return self
        if self._session.state is ClientState.OPENED:
            raise RuntimeError("this AgileClient is already open in another 'async with'")
        self._session.state = ClientState.OPENED
        if self._owns_http:
            await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (if the SDK owns it). Safe to call twice.

        Requests still under way are stopped: those of the SDK's own pool at once (the pool
        goes with them), those on a caller's ``http_client`` where stopping cannot damage
        that pool (see :mod:`agile_async._exchange`).

        On a :meth:`with_options` view it does nothing: the view shares its client's pool,
        which stays open for the client and its other views; close the client.
        """
        if self._is_view or self._session.state is ClientState.CLOSED:
            return
        self._session.state = ClientState.CLOSED
        exchanges = list(self._exchanges)
        for exchange in exchanges:
            exchange.abandon(force=self._owns_http)
        if self._owns_http:
            with anyio.move_on_after(_CLOSE_GRACE, shield=True):  # they stop at once
                for exchange in exchanges:
                    await exchange.finished()
            await self._http.aclose()

    def _ensure_open(self) -> None:
        if self._session.state is ClientState.CLOSED:
            raise ClientClosedError(
                "this AgileClient has been closed; create a new one to send again"
            )

    def __repr__(self) -> str:
        return (
            f"<AgileClient base_url={redact_url(self.base_url)!r} auth={self._credentials.mode!r} "
            f"state={self._session.state.value!r}{' view' if self._is_view else ''}>"
        )

    def with_options(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        options: SendOptions | None = None,
    ) -> AgileClient:
        """This client with other settings: a light view that shares its connection pool.

        ```python
        patient = client.with_options(timeout=60, retry=RetryPolicy(attempts=5))
        await patient.send(message)  # same pool, same credentials, its own timeout and retries
        ```

        The view shares everything but the settings given: the pool, the credentials, the
        id generator, :attr:`last_known_credit` and the client's life (it is open exactly
        while the client is; closing the client stops the view's requests too, and the
        view's own ``aclose()`` or ``async with`` closes nothing). Make views freely, for
        one call or for a part of an application; they cost one small object.

        Args:
            timeout: the httpx timeouts of each request (an :class:`httpx.Timeout`, or
                seconds for all four); ``None`` keeps the client's. ``httpx.Timeout(None)``
                waits without limit.
            retry: the :class:`RetryPolicy`; ``None`` keeps the client's.
            options: the :class:`SendOptions` for sends that pass none; ``None`` keeps the
                client's.

        Raises:
            ConfigurationError: a setting is not valid (it names the argument).
        """
        new_timeout = check_timeout("timeout", timeout)
        new_retry = check_retry("retry", retry)
        new_options = check_options("options", options)
        view = copy.copy(self)  # shallow: the pool, session, ids and credentials are shared
        view._is_view = True
        if new_timeout is not None:
            view._timeout = new_timeout
        if new_retry is not None:
            view.retry = new_retry
        if new_options is not None:
            view.options = new_options
        return view

    @property
    def with_raw_response(self) -> AgileClientWithRawResponse:
        """The same calls, answering a :class:`RawResponse` (HTTP status, response headers,
        elapsed time, ``globalId``) around their result.

        ```python
        raw = await client.with_raw_response.send(message)
        print(raw.status_code, raw.elapsed, raw.global_id)
        result = raw.parse()
        ```

        The plain methods record nothing, so only the calls made here pay for it. When such
        a call fails with an :class:`APIError`, the error's ``raw_response`` holds the
        failed attempt's response.
        """
        return AgileClientWithRawResponse(self)

    def _for_call(
        self, timeout: httpx.Timeout | float | None, retry: RetryPolicy | None
    ) -> AgileClient:
        """The client to make one call with: this one, or a view with the call's settings."""
        if timeout is None and retry is None:
            return self
        return self.with_options(timeout=timeout, retry=retry)

    # -- API -------------------------------------------------------------------------------

    @property
    def last_known_credit(self) -> Decimal | None:
        """The credit (EUR) from the latest response that reported it, if any."""
        return self._session.last_credit

    async def send(
        self,
        messages: Message | Iterable[Message],
        *,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 - httpx's, per phase
        retry: RetryPolicy | None = None,
    ) -> SendResult:
        """Send one message or several in one ``/sms/send`` request.

        Every problem in the request is reported at once, before anything is sent, as a
        :class:`~agile_async.ValidationError`. Destinations without ids get generated ones,
        returned in :attr:`SendResult.messages`.

        ``timeout`` and ``retry`` apply to this call only (as :meth:`with_options` does);
        ``None`` keeps the client's.

        Raises:
            ValidationError: the request is invalid; nothing was sent.
            ConfigurationError: ``timeout`` or ``retry`` is not valid; nothing was sent.
            APIError: the provider refused the request (a subclass per provider code).
            TransportError: the request could not be delivered, retries included.
            OutcomeUnknownError: the request went out but no answer came back.
            ClientClosedError: the client has been closed.
        """
        return await self._for_call(timeout, retry)._send(messages, options, record=None)

    async def _send(
        self,
        messages: Message | Iterable[Message],
        options: SendOptions | None,
        *,
        record: ResponseRecorder | None,
    ) -> SendResult:
        self._ensure_open()
        batch = as_messages(messages)
        prepared, request_options = prepare_request(
            batch, options if options is not None else self.options, self._ids
        )
        ids = [id_ for message in prepared for id_ in message.ids or ()]
        payload = converter.unstructure(request_options)
        payload["messages"] = [converter.unstructure(message) for message in prepared]
        if record is not None:
            record.global_id = request_options.global_id
        response = await self._post_send(
            dumps(payload), ids, global_id=request_options.global_id, record=record
        )
        return SendResult(
            global_id=response.global_id,
            processed_messages=response.processed_messages,
            processed_sms_parts=response.processed_sms_parts,
            credit=response.credit,
            messages=prepared,
            estimated_sms_parts=sum(
                estimate_parts(message, request_options) * len(message.destinations)
                for message in prepared
            ),
        )

    async def _post_send(
        self,
        body: bytes,
        ids: Sequence[str],
        *,
        global_id: str | None,
        on_retry: Callable[[BaseException], None] | None = None,
        record: Callable[[httpx.Response], None] | None = None,
    ) -> SendResponse:
        """POST an already serialized ``/sms/send`` body, with retries; the provider's totals.

        The lowest layer of sending, shared by :meth:`send` and the batcher (which writes
        its own bodies, and reaches this through its :class:`~agile_async._channel.SendChannel`):
        ``ids`` name the messages in ``body`` for errors.
        """
        self._ensure_open()
        response = await self._request(
            "POST",
            self._send_url,
            content=body,
            ids=ids,
            idempotent=False,
            model=SendResponse,
            describe=f"POST sms/send globalId={global_id} ({len(ids)} messages)",
            on_retry=on_retry,
            record=record,
        )
        self._session.last_credit = response.credit
        return response

    def batcher(
        self,
        settings: BatchSettings | None = None,
        *,
        limiter: RateLimiter | None = None,
        on_result: Callable[[RequestOutcome], object] | None = None,
        before_send: Callable[[Sequence[Ticket], str], Awaitable[None]] | None = None,
        **overrides: Any,
    ) -> Batcher:
        """A :class:`~agile_async.Batcher` that coalesces sends into few requests.

        ```python
        async with client.batcher(max_latency=0.02, rate_limit=RateLimit(rate=50)) as b:
            receipt = await b.send(message)
        ```

        Args:
            settings: a :class:`~agile_async.BatchSettings`; keyword ``overrides`` (any of its
                fields) are applied on top. Default options are the client's.
            limiter: a custom :class:`~agile_async.RateLimiter` (a shared one across
                processes, say) instead of the in-process token bucket.
            on_result: called with a :class:`~agile_async.RequestOutcome` as each request's
                messages reach their outcome (progress bars, journals), in order; it may be
                a coroutine function (awaited by a task of the batcher's own).
            before_send: awaited with a request's tickets and ``globalId`` just before the
                request goes out (a journal marks them in flight). If it raises, those
                messages fail with that error and are not sent.
        """
        base = batch_settings(
            settings if settings is not None else BatchSettings(options=self.options), overrides
        )
        channel = SendChannel(
            ids=self._ids, ensure_open=self._ensure_open, post_send=self._post_send
        )
        return Batcher(channel, base, limiter=limiter, on_result=on_result, before_send=before_send)

    async def check_credit(
        self,
        messages: Message | Iterable[Message],
        *,
        prices: PriceList,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 - httpx's, per phase
        retry: RetryPolicy | None = None,
    ) -> CreditCheck:
        """Estimate what sending ``messages`` would cost and compare it with the credit.

        The estimate counts SMS parts locally (:mod:`agile_async.segments`) and prices them
        with ``prices``; ``messages`` may be a list or any iterable (a campaign streamed
        from a file), consumed once, off the event loop.

        ```python
        check = await client.check_credit(messages, prices=PriceList({"39": "0.045"}))
        if not check.sufficient:
            raise SystemExit(f"top up {check.shortfall} EUR first")
        ```

        ``timeout`` and ``retry`` apply to its credit request only (as :meth:`credit`).
        """
        client = self._for_call(timeout, retry)  # bad settings are refused before the work
        self._ensure_open()
        batch = (messages,) if isinstance(messages, Message) else messages
        unicode = (options if options is not None else self.options).enable_unicode
        estimate = await anyio.to_thread.run_sync(
            functools.partial(estimate_cost, prices, batch, unicode=unicode)
        )
        return CreditCheck(estimate=estimate, credit=await client.credit())

    async def credit(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 - httpx's, per phase
        retry: RetryPolicy | None = None,
    ) -> Decimal:
        """The account's remaining credit, in EUR.

        ``timeout`` and ``retry`` apply to this call only (as :meth:`with_options` does);
        ``None`` keeps the client's.
        """
        return await self._for_call(timeout, retry)._credit(record=None)

    async def _credit(self, *, record: ResponseRecorder | None) -> Decimal:
        self._ensure_open()
        response = await self._request(
            "GET",
            self._credit_url,
            content=None,
            ids=(),
            idempotent=True,
            model=CreditResponse,
            describe="GET sms/credit",
            record=record,
        )
        self._session.last_credit = response.credit
        return response.credit

    # -- transport -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: httpx.URL,
        *,
        content: bytes | None,
        ids: Sequence[str],
        idempotent: bool,
        model: type[T],
        describe: str,
        on_retry: Callable[[BaseException], None] | None = None,
        record: Callable[[httpx.Response], None] | None = None,
    ) -> T:
        headers: dict[str, Any] = self._headers if content is None else self._json_headers

        tries = 0

        async def attempt() -> T:
            nonlocal tries
            self._ensure_open()
            tries += 1
            with self._telemetry.attempt(
                method, url, describe=describe, messages=len(ids), attempt=tries
            ) as observed:
                return await attempt_once(observed)

        async def attempt_once(observed: Attempt) -> T:
            exchange = Exchange(describe, ids, on_done=self._exchanges.discard)
            self._exchanges.add(exchange)
            error: Exception
            try:
                response = await exchange.run(
                    lambda extensions: self._http_request(
                        method, url, content, headers, extensions, record=record
                    )
                )
            except httpx.RequestError as err:
                error = translate_transport_error(err, ids, idempotent=idempotent)
            except ExchangeAborted as err:
                error = _closed_mid_request(err, ids, idempotent=idempotent)
            else:
                raise_for_response(response, ids)
                result = parse_body(response, model, () if idempotent else ids)
                observed.answered(response.status_code, getattr(result, "credit", None))
                return result
            raise error  # outside the handler: nothing of httpx's is chained to our error

        return await call_with_retries(attempt, self.retry, describe=describe, on_retry=on_retry)

    async def _http_request(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        headers: dict[str, Any],
        extensions: dict[str, Any],
        *,
        record: Callable[[httpx.Response], None] | None,
    ) -> httpx.Response:
        """One HTTP request with this view's timeout (see :meth:`with_options`); ``record``
        (raw responses only) is shown its response, before any error is made of it."""
        response = await self._http.request(
            method,
            url,
            content=content,
            headers=headers,
            extensions=extensions,
            timeout=httpx.USE_CLIENT_DEFAULT if self._timeout is None else self._timeout,
        )
        if record is not None:
            record(response)
        return response


def _closed_mid_request(
    aborted: ExchangeAborted, ids: Sequence[str], *, idempotent: bool
) -> ClientClosedError | OutcomeUnknownError:
    """The error for a request the client's own ``aclose()`` stopped."""
    if aborted.may_have_reached_provider and not idempotent:
        return OutcomeUnknownError(
            "the client was closed after the request went out, before its answer; the "
            f"provider may have accepted {len(ids)} message(s)",
            ids=ids,
        )
    return ClientClosedError("the client was closed before this request was answered")


class AgileClientWithRawResponse:
    """``client.with_raw_response``: the client's calls, each answering a
    :class:`~agile_async.RawResponse` around the result the plain method returns.

    The same arguments, validation, retries and errors as the plain methods; an
    :class:`~agile_async.APIError` raised here carries the failed attempt's response in
    ``raw_response``.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AgileClient) -> None:
        self._client = client

    async def send(
        self,
        messages: Message | Iterable[Message],
        *,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 - httpx's, per phase
        retry: RetryPolicy | None = None,
    ) -> RawResponse[SendResult]:
        """:meth:`AgileClient.send`, answering a ``RawResponse[SendResult]``."""
        client = self._client._for_call(timeout, retry)
        record = ResponseRecorder()
        try:
            result = await client._send(messages, options, record=record)
        except APIError as error:
            record.attach(error)
            raise
        return record.raw(result)

    async def credit(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109 - httpx's, per phase
        retry: RetryPolicy | None = None,
    ) -> RawResponse[Decimal]:
        """:meth:`AgileClient.credit`, answering a ``RawResponse[Decimal]``."""
        client = self._client._for_call(timeout, retry)
        record = ResponseRecorder()
        try:
            credit = await client._credit(record=record)
        except APIError as error:
            record.attach(error)
            raise
        return record.raw(credit)

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._client!r}>"


def account_identity(client: AgileClient) -> str:
    """What names a client's account: its API key, or its Basic-auth user name (never the
    password). For keys derived from it (the Redis limiter's, hashed), never for display."""
    return client._credentials.identity
