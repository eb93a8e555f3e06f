"""The provider's documented limits, in one place.

Both the client's local validation and the fake provider read these, so the SDK and the
imitation it is tested against can never drift apart on what "too long" means.
"""

from __future__ import annotations

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

#: ``globalId``: the seed documents code 10 "wrong global ID length" but not the bound. We use
#: the same bound as message ids (1..64 characters).
MIN_GLOBAL_ID_LEN = 1
MAX_GLOBAL_ID_LEN = 64

#: The wire format of ``scheduling`` and ``doneDate``: ``yyyy-MM-dd HH:mm:ss.SSSZ``.
PROVIDER_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f%z"
