"""The GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1): what fits in a 7-bit SMS.

Only the default alphabet and its extension table are modelled: no national-language shift
tables (Twilio's calculator and smsutil use none, and each costs a 3-octet IE per part).
``ESC`` (0x1B) is the escape, not a character: a literal U+001B in a text makes it UCS-2,
as in Twilio's calculator.
"""

from __future__ import annotations

import re
import sys

__all__ = [
    "BASIC",
    "BASIC_RUN_RE",
    "BASIC_TABLE",
    "EXTENSION",
    "EXTENSION_TABLE",
    "GSM_CHARACTERS",
    "GSM_RUN_RE",
    "NON_GSM_RE",
]

#: The basic table by septet value; ``None`` marks 0x1B, the escape to the extension table.
BASIC_TABLE: tuple[str | None, ...] = (
    *"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ",
    None,
    *"ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?",
    *"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§",
    *"¿abcdefghijklmnopqrstuvwxyzäöñüà",
)

#: The extension table: character -> the septet that follows ESC. Each costs 2 septets.
EXTENSION_TABLE: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

#: The 127 characters that cost one septet.
BASIC: frozenset[str] = frozenset(c for c in BASIC_TABLE if c is not None)
#: The 10 characters that cost two septets (ESC + code).
EXTENSION: frozenset[str] = frozenset(EXTENSION_TABLE)
#: Every character a GSM-7 message may contain.
GSM_CHARACTERS: frozenset[str] = BASIC | EXTENSION


def _class(chars: frozenset[str]) -> str:
    return "".join(re.escape(c) for c in sorted(chars))


#: Matches a run of basic-table characters. ``BASIC_RUN_RE.match(text, pos).end()`` finds the
#: next character that is not 1 septet: an anchored positive class scans about twice as fast
#: as searching for a negated one, and it yields each escape's position on the way.
BASIC_RUN_RE: re.Pattern[str] = re.compile(f"[{_class(BASIC)}]*")
#: Matches a run of GSM-7 characters. ``GSM_RUN_RE.fullmatch(text, 0, n)`` is None when one
#: of the first ``n`` characters cannot be sent in GSM-7: the usual answer for a UCS-2 text,
#: given without building a match object. Possessive where the engine has it (3.11+), so a
#: failed run is not backtracked a character at a time; the answer is the same either way.
GSM_RUN_RE: re.Pattern[str] = re.compile(
    f"[{_class(GSM_CHARACTERS)}]*" + ("+" if sys.version_info >= (3, 11) else "")
)
#: Matches any character that cannot be sent in GSM-7 at all.
NON_GSM_RE: re.Pattern[str] = re.compile(f"[^{_class(GSM_CHARACTERS)}]")
