"""The blocking ``AgileClient``: the async client, run on an event loop of its own.

For code that has no event loop: Flask and Django views, Celery tasks, scripts, notebooks.
One codebase: every method below only forwards to the async :class:`agile_async.AgileClient`
through :class:`~agile_async._sync_loop.LoopThread`, with the same signature (a test pins
each twin against the async original, so they cannot drift). Validation, retries,
cancellation safety and errors are the async client's, unchanged. Properties read one
attribute of the async object (atomic in Python), so they answer after ``close()`` too.
"""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._client import AgileClient as AsyncAgileClient
from ._client import AgileClientWithRawResponse as AsyncAgileClientWithRawResponse
from ._client import ClientState, CreditCheck
from ._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Account, BatchSettings, RetryPolicy
from ._models import Message, SendOptions, SendResult
from ._raw_response import RawResponse
from ._redact import redact_url
from ._sync_batcher import Batcher
from ._sync_loop import LoopThread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._batching import RequestOutcome
    from ._pricing import PriceList
    from ._ratelimit import RateLimiter
    from ._tickets import Ticket

__all__ = ["AgileClient", "AgileClientWithRawResponse"]


class AgileClient:
    """A blocking client for the AgileTelecom SMS REST API, safe to share between threads.

    ```python
    from agile_async.sync import AgileClient

    with AgileClient(api_key="...") as client:
        result = client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
    ```

    The same arguments, methods and errors as :class:`agile_async.AgileClient`, without
    ``await``. It runs that async client on an event loop in a thread of its own (one per
    client), so one client's connection pool serves every thread: create one per process
    and share it. ``close()`` (or leaving ``with``) stops it; closing twice is fine. A
    client never closed is closed when it is garbage collected or when the interpreter
    exits, and never keeps the interpreter alive.

    Callbacks given to :meth:`batcher` (``on_result``, ``before_send``) run on the
    client's event-loop thread: keep them quick, and make no blocking call to the client
    from them.
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
        # Built here, so a configuration error is raised before any thread starts; used
        # only on the loop thread from now on.
        client = AsyncAgileClient(
            api_key=api_key,
            username=username,
            password=password,
            account=account,
            base_url=base_url,
            http_client=http_client,
            transport=transport,
            timeout=timeout,
            limits=limits,
            http2=http2,
            retry=retry,
            options=options,
        )
        self._client = client
        self._loop = LoopThread(name=f"agile_async.sync.AgileClient-{id(self):x}")
        #: Where requests go (read-only, as on the async client).
        self.base_url: httpx.URL = client.base_url
        #: The :class:`~agile_async.RetryPolicy` for every request.
        self.retry: RetryPolicy = client.retry
        #: The :class:`~agile_async.SendOptions` used when a send passes none.
        self.options: SendOptions = client.options
        # Closes the client if it is dropped unclosed, or at interpreter exit at the latest.
        self._finalizer = weakref.finalize(self, _close_unclosed, self._loop, client.aclose)
        #: Whether this object is a ``with_options`` view (it owns no loop and no pool).
        self._is_view = False
        #: A view's client, kept alive by the view: its finalizer would close the loop.
        self._parent: AgileClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """``UNOPENED`` (usable), ``OPENED`` (inside ``with``) or ``CLOSED``."""
        return self._client.state

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has run; a closed client refuses all work."""
        return self._client.is_closed

    def __enter__(self) -> AgileClient:
        self._loop.call(self._client.__aenter__)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._is_view:  # its client's ``with`` (or close) governs the pool and the loop
            return
        self._finalizer.detach()
        self._loop.close(functools.partial(self._client.__aexit__, exc_type, exc, tb))

    def close(self) -> None:
        """Close the connection pool and stop the client's event-loop thread. Safe to call
        twice, and from any thread.

        Requests under way are stopped, as by :meth:`agile_async.AgileClient.aclose`: their
        callers get :class:`~agile_async.ClientClosedError` (or
        :class:`~agile_async.OutcomeUnknownError` for a send that may have gone out). The
        thread ends at once, or, when a batcher is still open, with that batcher's block.

        On a :meth:`with_options` view it does nothing: close the client it came from.
        """
        if self._is_view:
            return
        self._finalizer.detach()
        self._loop.close(self._client.aclose)

    def __repr__(self) -> str:
        return (
            f"<agile_async.sync.AgileClient base_url={redact_url(self.base_url)!r} "
            f"state={self._client.state.value!r}{' view' if self._is_view else ''}>"
        )

    def with_options(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        options: SendOptions | None = None,
    ) -> AgileClient:
        """This client with other settings, sharing its pool and its event-loop thread; see
        :meth:`agile_async.AgileClient.with_options`. Closing the view closes nothing."""
        view = copy.copy(self)  # shallow: the loop and its finalizer stay the client's
        view._client = self._client.with_options(timeout=timeout, retry=retry, options=options)
        view._is_view = True
        view._parent = self
        view.retry = view._client.retry
        view.options = view._client.options
        return view

    @property
    def with_raw_response(self) -> AgileClientWithRawResponse:
        """The same calls, answering a :class:`~agile_async.RawResponse` around their result;
        see :attr:`agile_async.AgileClient.with_raw_response`."""
        return AgileClientWithRawResponse(self)

    # -- API -------------------------------------------------------------------------------

    @property
    def last_known_credit(self) -> Decimal | None:
        """The credit (EUR) from the latest response that reported it, if any."""
        return self._client.last_known_credit

    def send(
        self,
        messages: Message | Iterable[Message],
        *,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SendResult:
        """Send one message or several in one ``/sms/send`` request; see
        :meth:`agile_async.AgileClient.send` (same validation, retries and errors)."""
        return self._loop.call(
            functools.partial(
                self._client.send, messages, options=options, timeout=timeout, retry=retry
            )
        )

    def batcher(
        self,
        settings: BatchSettings | None = None,
        *,
        limiter: RateLimiter | None = None,
        on_result: Callable[[RequestOutcome], object] | None = None,
        before_send: Callable[[Sequence[Ticket], str], Awaitable[None]] | None = None,
        **overrides: Any,
    ) -> Batcher:
        """A blocking :class:`~agile_async.sync.Batcher`, to use as a ``with`` block; see
        :meth:`agile_async.AgileClient.batcher` for the arguments.

        ```python
        with client.batcher(max_latency=0.05) as batcher:
            tickets = [batcher.submit(message) for message in messages]
        receipts = [ticket.result() for ticket in tickets]
        ```

        ``on_result`` and ``before_send`` run on the client's event-loop thread.
        """
        batcher = self._loop.call(
            functools.partial(
                self._client.batcher,
                settings,
                limiter=limiter,
                on_result=on_result,
                before_send=before_send,
                **overrides,
            )
        )
        return Batcher(batcher, self._loop, self)

    def check_credit(
        self,
        messages: Message | Iterable[Message],
        *,
        prices: PriceList,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> CreditCheck:
        """Estimate what sending ``messages`` would cost and compare it with the credit; see
        :meth:`agile_async.AgileClient.check_credit`."""
        return self._loop.call(
            functools.partial(
                self._client.check_credit,
                messages,
                prices=prices,
                options=options,
                timeout=timeout,
                retry=retry,
            )
        )

    def credit(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Decimal:
        """The account's remaining credit, in EUR; see :meth:`agile_async.AgileClient.credit`."""
        return self._loop.call(functools.partial(self._client.credit, timeout=timeout, retry=retry))


class AgileClientWithRawResponse:
    """``client.with_raw_response`` of the blocking client: the same calls, each answering a
    :class:`~agile_async.RawResponse`; see :class:`agile_async.AgileClientWithRawResponse`."""

    __slots__ = ("_client", "_loop", "_raw")

    def __init__(self, client: AgileClient) -> None:
        #: Kept alive while this object is used: the client's finalizer would close the loop.
        self._client = client
        self._raw: AsyncAgileClientWithRawResponse = client._client.with_raw_response
        self._loop = client._loop

    def send(
        self,
        messages: Message | Iterable[Message],
        *,
        options: SendOptions | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> RawResponse[SendResult]:
        """:meth:`AgileClient.send`, answering a ``RawResponse[SendResult]``."""
        return self._loop.call(
            functools.partial(
                self._raw.send, messages, options=options, timeout=timeout, retry=retry
            )
        )

    def credit(
        self,
        *,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> RawResponse[Decimal]:
        """:meth:`AgileClient.credit`, answering a ``RawResponse[Decimal]``."""
        return self._loop.call(functools.partial(self._raw.credit, timeout=timeout, retry=retry))

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._raw!r}>"


def _close_unclosed(loop: LoopThread, aclose: Callable[[], Awaitable[None]]) -> None:
    """The finalizer of a client dropped without ``close()``: close it all the same.

    A garbage collection can run it on any thread, the loop's own included, where it must
    not wait for the loop: there, a short-lived thread of its own does the closing.
    """
    try:
        loop.close(aclose)
    except RuntimeError:  # on the loop's thread
        threading.Thread(target=loop.close, args=(aclose,), daemon=True).start()
