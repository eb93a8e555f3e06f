"""The SDK's own count of SMS parts for a message, kept beside the provider's figure.

A campaign sends the same text (or a few templates) to many people, so counts are cached by
text and settings: the batcher pays for segment counting once per distinct body. Only the
number of parts is needed here, so a miss costs :func:`~agile_async.segments.count_parts`,
not a whole :class:`~agile_async.segments.SegmentCount` (personalised campaigns miss often).
"""

from __future__ import annotations

from functools import lru_cache

from ._counting import count_hex_segments, count_parts
from ._models import Message, SendOptions

__all__ = ["estimate_parts", "parts_of"]


@lru_cache(maxsize=4096)
def parts_of(body: str, hex_body: bool, udh_data: str | None, unicode: bool) -> int:
    """SMS parts for one destination of a body (validated beforehand)."""
    if hex_body:
        return count_hex_segments(body, udh=udh_data).segments
    return count_parts(body, unicode=unicode, udh=udh_data).parts


def estimate_parts(message: Message, options: SendOptions) -> int:
    """SMS parts for one destination of ``message`` under ``options``."""
    return parts_of(message.body, message.hex_body, message.udh_data, options.enable_unicode)
