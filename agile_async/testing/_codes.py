"""The provider's error codes and the texts its documentation gives them, in one table.

The fake answers every documented error with these words, wherever the error comes from: a
refused request (:mod:`._send`), authentication, credit and the IP allow-list
(:mod:`._server`), or a scripted :class:`~agile_async.testing.Fault` without its own text.

The English and Italian pages differ in a few words (9 "Service timeout" / "Server error
(service timeout)", 26 "Sender alias not allowed" / "Alias (Sender) non autorizzato", 100
"Source IP not allowed" / "Source IP is not allowed"); SPEC.md reads the codes from the
English table, the fuller one, so the fake uses its wording. Code 15 is not on either page:
its text is the one SPEC.md quotes from the provider's other pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["SERVICE_UNAVAILABLE", "text_for"]

#: Code to the documentation's description.
_TEXTS: Mapping[int, str] = MappingProxyType(
    {
        1: "Wrong credentials",
        2: "Insufficient credit",
        3: "Destination not allowed",
        4: "Unknown error",
        5: "Destination number too short",
        6: "Destination number too long",
        7: "Invalid destination number",
        8: "Server error",
        9: "Service timeout",
        10: "Wrong global ID length",
        15: "destinations and ids arrays have different lengths",
        26: "Sender alias not allowed",
        100: "Source IP not allowed",
    }
)

#: The 5XX ``message`` of the documentation's only server-error example (code 9).
SERVICE_UNAVAILABLE = "Number check service unavailable"


def text_for(code: int | None) -> str:
    """The documented description of ``code``; ``"Error N"`` for a code it does not list."""
    if code is None:
        return "Unknown error"
    return _TEXTS.get(code, f"Error {code}")
