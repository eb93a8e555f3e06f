"""The blocking ``Batcher``: the async batcher, run on its client's event loop.

Used as a ``with`` block, like the async one as ``async with``: entering starts it on the
loop (in one task, as its task group requires), leaving sends what is queued and waits for
it. Each method forwards to the async :class:`agile_async.Batcher` with the same signature;
``submit`` returns a blocking :class:`~agile_async.sync.Ticket`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Literal, overload

from anyio.abc import TaskStatus

from ._sync_ticket import Ticket

if TYPE_CHECKING:
    from ._batching import Batcher as AsyncBatcher
    from ._batching import BatcherState, BatcherStatistics, MessageRow
    from ._config import BatchSettings
    from ._models import Message, SendOptions
    from ._sync_loop import LoopThread
    from ._tickets import Receipt
    from ._tickets import Ticket as AsyncTicket

__all__ = ["Batcher"]


class Batcher:
    """Coalesces sends from many threads into few requests; see
    :meth:`agile_async.sync.AgileClient.batcher`.

    ```python
    with client.batcher(max_latency=0.05) as batcher:
        receipt = batcher.send(message)            # once its request is accepted
        ticket = batcher.submit(other)             # once queued
    receipt = ticket.result()
    ```

    Leaving the ``with`` block sends everything queued and waits for it. Share one open
    batcher between threads as freely as the client.
    """

    def __init__(self, batcher: AsyncBatcher, loop: LoopThread, client: object = None) -> None:
        self._batcher = batcher
        self._loop = loop
        #: The blocking client that made it, kept alive while this batcher is: dropped, its
        #: finalizer would close the client under the batcher (``AgileClient().batcher()``).
        self._client = client
        #: The :class:`~agile_async.BatchSettings` it groups by.
        self.settings: BatchSettings = batcher.settings
        self._running: AbstractContextManager[AsyncBatcher] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Batcher:
        self._loop.hold()  # the loop runs until this block ends, even if the client closes
        try:
            running = self._loop.wrap(self._batcher)
            running.__enter__()
        except BaseException:
            self._loop.release()
            raise
        self._running = running
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        running, self._running = self._running, None
        if running is None:
            return None
        try:
            return running.__exit__(exc_type, exc_val, exc_tb)
        finally:
            self._loop.release()

    def close(self, *, cancel: bool = False) -> None:
        """Stop taking work; send what is queued (or, with ``cancel``, fail it) and wait."""
        self._loop.call(functools.partial(self._batcher.aclose, cancel=cancel))

    # -- sending ---------------------------------------------------------------------------

    def submit(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Queue a message and return its :class:`~agile_async.sync.Ticket`; waits while the
        queue is full. Raises as :meth:`agile_async.Batcher.submit` does."""
        settled, ticket = self._loop.start(_follow, self._batcher, message, options, True)
        return Ticket(ticket, settled)

    def submit_nowait(self, message: Message, *, options: SendOptions | None = None) -> Ticket:
        """Like :meth:`submit`, but raise :class:`~agile_async.QueueFullError` instead of
        waiting."""
        settled, ticket = self._loop.start(_follow, self._batcher, message, options, False)
        return Ticket(ticket, settled)

    @overload
    def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: Literal[True] = ...,
    ) -> list[Ticket]: ...

    @overload
    def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: Literal[False],
    ) -> int: ...

    @overload
    def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = ...,
        sender: str | None = ...,
        handles: bool,
    ) -> list[Ticket] | int: ...

    def submit_many(
        self,
        messages: Iterable[Message | MessageRow | tuple[str, ...]],
        *,
        options: SendOptions | None = None,
        sender: str | None = None,
        handles: bool = True,
    ) -> list[Ticket] | int:
        """Queue many messages in one pass, as :meth:`agile_async.Batcher.submit_many` does;
        the blocking tickets (settled in the order the messages were queued), or with
        ``handles=False`` how many were queued."""
        if not handles:
            return self._loop.call(  # type: ignore[return-value]
                functools.partial(
                    self._batcher.submit_many,
                    messages,
                    options=options,
                    sender=sender,
                    handles=False,
                )
            )
        _, (tickets, futures) = self._loop.start(
            _follow_many, self._batcher, messages, options, sender
        )
        return [Ticket(t, f) for t, f in zip(tickets, futures, strict=True)]

    def send(self, message: Message, *, options: SendOptions | None = None) -> Receipt:
        """Queue a message and wait until its request is accepted."""
        return self._loop.call(functools.partial(self._batcher.send, message, options=options))

    def flush(self) -> None:
        """Send everything queued now, without waiting for ``max_latency``, and wait for it."""
        self._loop.call(self._batcher.flush)

    # -- state -----------------------------------------------------------------------------

    def statistics(self) -> BatcherStatistics:
        """A snapshot of the counts (messages are destinations)."""
        return self._loop.read(self._batcher.statistics)

    @property
    def state(self) -> BatcherState:
        """Where the batcher is in its life."""
        return self._batcher.state

    @property
    def credit(self) -> Decimal | None:
        """The latest credit (EUR) the provider reported to this batcher."""
        return self._batcher.credit

    @property
    def error(self) -> BaseException | None:
        """The sticky error that stopped the batcher, if any."""
        return self._batcher.error

    def __repr__(self) -> str:
        return f"<agile_async.sync.{self._loop.read(self._batcher.__repr__)[1:]}"


async def _follow(
    batcher: AsyncBatcher,
    message: Message,
    options: SendOptions | None,
    wait_for_room: bool,
    *,
    task_status: TaskStatus[AsyncTicket],
) -> Receipt:
    """Queue ``message``, hand its ticket to the submitting thread at once, then stay on the
    loop until its outcome, which completes the blocking ticket's future."""
    if wait_for_room:
        ticket = await batcher.submit(message, options=options)
    else:
        ticket = batcher.submit_nowait(message, options=options)
    task_status.started(ticket)
    return await ticket.result()


async def _follow_many(
    batcher: AsyncBatcher,
    messages: Iterable[Message | MessageRow | tuple[str, ...]],
    options: SendOptions | None,
    sender: str | None,
    *,
    task_status: TaskStatus[tuple[list[AsyncTicket], list[Future[Receipt]]]],
) -> None:
    """Queue ``messages``, hand their tickets and futures to the submitting thread at once,
    then complete each future as its ticket settles (one task for the lot)."""
    tickets = await batcher.submit_many(messages, options=options, sender=sender)
    futures: list[Future[Receipt]] = [Future() for _ in tickets]
    task_status.started((tickets, futures))
    for ticket, future in zip(tickets, futures, strict=True):
        await ticket.wait()
        error = ticket.exception()
        if error is not None:
            future.set_exception(error)
        else:
            receipt = ticket.receipt()
            assert receipt is not None
            future.set_result(receipt)
