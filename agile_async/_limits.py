"""The provider's documented limits, and the destination rule, in one place.

Both the client's local validation and the fake provider read these, so the SDK and the
imitation it is tested against can never drift apart on what "too long" means.
"""

from __future__ import annotations

import re
from typing import Literal

#: ``maxIdLen`` when the request does not set it (seed: default 64).
DEFAULT_MAX_ID_LEN = 64
#: The largest ``maxIdLen``: the seed types it as an "integer" without a bound; we take the
#: common 32-bit one (a larger number does not fit the provider's integer, nor orjson's 64 bits).
LARGEST_MAX_ID_LEN = 2**31 - 1

#: Alphanumeric senders: at most 11 characters (seed).
MAX_ALPHANUMERIC_SENDER = 11
#: Numeric senders: at most 16 digits (seed).
MAX_NUMERIC_SENDER = 16

#: Destinations in international format: E.164 allows at most 15 digits including the country
#: code; the shortest numbers in use (Niue, Tokelau, Saint Helena) have 7 digits with it.
MIN_DESTINATION_DIGITS = 7
MAX_DESTINATION_DIGITS = 15

#: Why a destination is not a number in international format: not digits (after one optional
#: ``+``), a national or ``00`` prefix instead of the country code (no country code starts
#: with 0), or a length outside the bounds above.
DestinationFault = Literal["not_digits", "leading_zero", "too_short", "too_long"]


def destination_fault(destination: str) -> DestinationFault | None:
    """What is wrong with a destination, in the order the checks apply; ``None`` if nothing.

    The one destination rule: the SDK's validation words each fault for the caller, and the
    fake provider answers each with its code (7, 7, 5, 6), so a number the SDK refuses is one
    the fake refuses too (``00393471234567``, ``03471234567``).
    """
    digits = destination[1:] if destination[:1] == "+" else destination
    if not (digits.isascii() and digits.isdigit()):
        return "not_digits"
    if digits[0] == "0":
        return "leading_zero"
    if len(digits) < MIN_DESTINATION_DIGITS:
        return "too_short"
    if len(digits) > MAX_DESTINATION_DIGITS:
        return "too_long"
    return None


#: :func:`plain_destination`'s rule as one match: an optional ``+``, then ASCII digits, the
#: first not 0, as many as the provider takes.
PLAIN_DESTINATION_MATCH = re.compile(
    rf"\+?[1-9][0-9]{{{MIN_DESTINATION_DIGITS - 1},{MAX_DESTINATION_DIGITS - 1}}}"
).fullmatch


def plain_destination(value: object) -> bool:
    """``destination_fault(value) is None`` for a ``str``, ``False`` for anything else.

    The same rule as one compiled match, for the batcher's hot path (it runs for every
    message a campaign sends): one call into C, no substrings.
    """
    return type(value) is str and PLAIN_DESTINATION_MATCH(value) is not None


#: ``globalId``: the seed documents code 10 "wrong global ID length" but not the bound. We use
#: the same bound as message ids (1..64 characters).
MIN_GLOBAL_ID_LEN = 1
MAX_GLOBAL_ID_LEN = 64

#: The wire format of ``scheduling`` and ``doneDate``: ``yyyy-MM-dd HH:mm:ss.SSSZ``.
PROVIDER_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f%z"
