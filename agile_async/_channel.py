"""The narrow interface between a client and its batchers.

A batcher needs three things of its client: its id generator, a check that it is still open,
and the lowest layer of sending (a serialized ``/sms/send`` body, posted with the client's
retry policy). The client hands exactly those over, so the batcher never reaches into the
client's private attributes and the client keeps no sending method public for its sake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import attrs

from ._serde import SendResponse
from ._validation import IdGenerator

__all__ = ["PostSend", "SendChannel"]


class PostSend(Protocol):
    """POST a serialized ``/sms/send`` body, with retries; the provider's totals."""

    def __call__(
        self,
        body: bytes,
        ids: Sequence[str],
        *,
        global_id: str | None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> Awaitable[SendResponse]: ...


@attrs.frozen
class SendChannel:
    """What a batcher may use of its client."""

    ids: IdGenerator
    ensure_open: Callable[[], None]
    post_send: PostSend
