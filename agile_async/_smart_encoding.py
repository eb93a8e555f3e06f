"""Twilio "smart encoding": look-alike characters replaced by GSM-7 ones before counting.

This is the replacement table of Twilio's Message Segment Calculator 1.3.0 (271 code
points), the published reference our counts are checked against; Twilio's live service may
use a different one. Replacements are per code point, may be longer (``…`` -> ``...``, TAB
-> 7 spaces) or empty (zero-width and some control characters are dropped), and never
transliterate letters: ``è`` stays, ``È`` and ``ç`` still force UCS-2.

The table is data, written here by the replacement it produces so that a reader can check it
against the calculator's list one group at a time.
"""

from __future__ import annotations

import re

__all__ = ["SMART_RE", "SMART_TABLE"]

# (replacement, code points that become it). Fullwidth ASCII is generated below.
_GROUPS: tuple[tuple[str, str], ...] = (
    ('"', "\u00ab\u00bb\u02ba\u02ee\u201c\u201d\u201e\u201f\u275d\u275e\u301d\u301e"),
    (
        "'",
        "\u0060\u00b4\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb\u0313\u0314"
        "\u2018\u2019\u201b\u275b\u275c\ufe10\ufe11",
    ),
    ("/", "\u00f7\u0337\u0338\u2044\u2215\u29f8"),
    ("1/4", "\u00bc"),
    ("1/2", "\u00bd"),
    ("3/4", "\u00be"),
    ("\\", "\u20e5\u29f5\u29f9\ufe68"),
    ("_", "\u0332\u2017"),
    ("|", "\u20d2\u20d3\u2223\u239c\u239f\u23b8\u23b9\u23d0"),
    ("-", "\u2010\u2013\u2014\u2015\u2022\u2043\u23bc\u23bd\ufe63"),
    ("@", "\ufe6b"),
    ("$", "\ufe69"),
    ("!", "\u01c3\ufe15\ufe57"),
    ("#", "\ufe5f"),
    ("%", "\ufe6a"),
    ("&", "\ufe60"),
    (",", "\u0326\u201a\u3001\ufe50\ufe51\uff64"),
    ("(", "\u2768\u276a\u27ee\u2985\ufe59"),
    (")", "\u2769\u276b\u27ef\u2986\ufe5a"),
    (
        "*",
        "\u204e\u2217\u229b\u2722\u2723\u2724\u2725\u2731\u2732\u2733\u273a\u273b"
        "\u273c\u273d\u2743\u2749\u274a\u274b\u29c6\ufe61",
    ),
    ("+", "\u02d6\ufe62"),
    (".", "\u3002\ufe52\uff61"),
    (":", "\u02d0\u02f8\u2982\ua789\ufe13"),
    (";", "\u204f\ufe14\ufe54"),
    ("<", "\u2039\ufe64"),
    ("=", "\u0347\ua78a\ufe66"),
    (">", "\u203a\ufe65"),
    ("?", "\ufe16\ufe56"),
    ("^", "\u02c6\u0302\u1dcd"),
    ("{", "\u2774\ufe5b"),
    ("}", "\u2775\ufe5c"),
    ("~", "\u02dc\u02f7\u0303\u0330\u0334\u223c"),
    # Small capitals (no Q or X in the calculator's table).
    ("A", "\u1d00"),
    ("B", "\u0299"),
    ("C", "\u1d04"),
    ("D", "\u1d05"),
    ("E", "\u1d07"),
    ("F", "\ua730"),
    ("G", "\u0262"),
    ("H", "\u029c"),
    ("I", "\u026a"),
    ("J", "\u1d0a"),
    ("K", "\u1d0b"),
    ("L", "\u029f"),
    ("M", "\u1d0d"),
    ("N", "\u0274"),
    ("O", "\u1d0f"),
    ("P", "\u1d18"),
    ("R", "\u0280"),
    ("S", "\ua731"),
    ("T", "\u1d1b"),
    ("U", "\u1d1c"),
    ("V", "\u1d20"),
    ("W", "\u1d21"),
    ("Y", "\u028f"),
    ("Z", "\u1d22"),
    # Spaces: most become two spaces, a few one; TAB becomes seven.
    (
        "  ",
        "\u0080\u008d\u0090\u009b\u009f\u00a0\u2000\u2002\u2003\u2004\u2005\u2006"
        "\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
    ),
    (" ", "\u2001\u2028\u2029"),
    (" " * 7, "\t"),
    # Dropped: some C0 controls, zero-width space/non-joiner, word joiner, BOM.
    (
        "",
        "\u0000\u0003\u0004\u0010\u0011\u0012\u0013\u0014\u0017\u0019\u200b\u200c\u2060\ufeff",
    ),
    ("!!", "\u203c"),
    ("...", "\u2026"),
)

# Fullwidth forms U+FF01..U+FF3F and U+FF5B..U+FF5E are ASCII shifted by 0xFEE0
# (fullwidth ``a``-``z`` and the fullwidth backtick are not in the calculator's table).
_FULLWIDTH: dict[int, str] = {
    cp: chr(cp - 0xFEE0) for cp in (*range(0xFF01, 0xFF40), *range(0xFF5B, 0xFF5F))
}

#: ``str.translate`` table: code point -> replacement ("" deletes).
SMART_TABLE: dict[int, str] = {
    **{ord(char): replacement for replacement, chars in _GROUPS for char in chars},
    **_FULLWIDTH,
}

#: Matches any character the table replaces (to report what was replaced, in order).
SMART_RE: re.Pattern[str] = re.compile(
    "[" + "".join(re.escape(chr(cp)) for cp in sorted(SMART_TABLE)) + "]"
)
