"""Counting and splitting SMS parts: the implementation behind :mod:`agile_async.segments`.

The hot path is :func:`count_segments` and :func:`count_parts` on ordinary texts, so it
has no per-character Python loop: C passes over the text's bytes (or a short regex search)
decide the encoding and count escapes, the C codec gives UTF-16 units, and parts are plain
arithmetic unless an atom of more than one unit exists. Then only the runs between escapes,
or the code points around each part boundary (:func:`~agile_async._graphemes.fill_parts`),
are looked at, never every atom.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, cast, get_args, overload

import attrs

from ._exceptions import Problem, ValidationError
from ._graphemes import clusters, cuts_are_breaks, fill_parts
from ._gsm import BASIC, BASIC_RUN_RE, EXTENSION, GSM_RUN_RE, NON_GSM_RE
from ._setting_validators import check_flag
from ._smart_encoding import SMART_RE, SMART_TABLE

__all__ = [
    "MAX_PARTS",
    "Encoding",
    "PartCount",
    "SegmentCount",
    "body_problems",
    "check_count_options",
    "count_hex_segments",
    "count_parts",
    "count_segments",
    "part_capacity",
    "split_segments",
]

#: How a text is encoded on the air: 7-bit GSM 03.38, UCS-2 (UTF-16), or raw bytes.
Encoding = Literal["GSM-7", "UCS-2", "8-bit"]

#: Concatenated SMS number their parts in one octet: no message has more than 255 parts.
MAX_PARTS = 255

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@attrs.frozen(init=False, slots=False)
class SegmentCount:
    """What a text costs in SMS parts, and why.

    Attributes:
        encoding: ``"GSM-7"``, ``"UCS-2"`` or ``"8-bit"`` (hex bodies).
        segments: the number of SMS parts (what the provider bills).
        units: the size of the text in the encoding's units: septets for GSM-7 (an extension
            character such as ``€`` counts 2), UTF-16 code units for UCS-2 (an emoji outside
            the BMP counts 2), octets for 8-bit. Never graphemes.
        per_part: how many units one part holds here: the single-part capacity when
            ``segments == 1`` (160/70/140), the concatenated one otherwise (153/67/134),
            less any caller UDH.
        remaining: room left in the last part, in units. Atoms are never split, so earlier
            parts may be short and ``units + remaining`` less than ``segments * per_part``.
        text: the text that was counted: the input after smart-encoding replacements.
        replacements: what ``smart_encoding`` replaced, as ``(original, replacement)``
            pairs in order of first appearance (``dict(count.replacements)`` for a mapping).
        udh_octets: the size of the caller's UDH, repeated in every part.
        concatenated: whether the text may be sent in several parts (the provider's
            ``enableConcatenated``); see :attr:`fits`.
    """

    encoding: Encoding
    segments: int
    units: int
    per_part: int
    remaining: int
    text: str
    replacements: tuple[tuple[str, str], ...] = ()
    udh_octets: int = 0
    concatenated: bool = True

    def __init__(
        self,
        encoding: Encoding,
        segments: int,
        units: int,
        per_part: int,
        remaining: int,
        text: str,
        replacements: tuple[tuple[str, str], ...] = (),
        udh_octets: int = 0,
        concatenated: bool = True,
    ) -> None:
        # Counting a short text is mostly building this object, so it is built the cheapest
        # way a frozen attrs class allows: attrs' own __init__ for a frozen class calls
        # object.__setattr__ per field, and even writing slots through their descriptors
        # costs a call each; stores into the instance dict cost none. Tests pin this
        # signature to the fields.
        fields = self.__dict__
        fields["encoding"] = encoding
        fields["segments"] = segments
        fields["units"] = units
        fields["per_part"] = per_part
        fields["remaining"] = remaining
        fields["text"] = text
        fields["replacements"] = replacements
        fields["udh_octets"] = udh_octets
        fields["concatenated"] = concatenated

    @property
    def non_gsm_characters(self) -> tuple[str, ...]:
        """The characters that forced UCS-2: each once, in order of first appearance.

        Code points, so ``e`` + U+0301 reports only U+0301. Empty for GSM-7 and 8-bit. Worked
        out when asked, not on every count: most callers never look.
        """
        if self.encoding != "UCS-2":
            return ()
        return _non_gsm(self.text)

    @property
    def fits(self) -> bool:
        """Whether the text can be sent as counted.

        False when it needs several parts but concatenation is disabled, or more parts than
        concatenation can number (:data:`MAX_PARTS`). :func:`body_problems` says which.
        """
        return _fits(self.segments, self.concatenated)


class _Draft:
    """A :class:`SegmentCount` while :func:`count_segments` fills it in.

    On a short text building the answer costs more than counting. A frozen class's fields can
    only be written around its ``__setattr__`` (a call each, or a store into the instance
    dict, which first has to be made); this plain class with the same layout takes them as
    ordinary attribute stores, the fastest the interpreter has, and then becomes a
    SegmentCount by ``__class__`` assignment (the instance dict is made once, there). The
    result is an ordinary SegmentCount: the same fields, equality, hash, repr and pickle.
    """

    encoding: Encoding
    segments: int
    units: int
    per_part: int
    remaining: int
    text: str
    replacements: tuple[tuple[str, str], ...]
    udh_octets: int
    concatenated: bool


def check_count_options(
    unicode: object, smart_encoding: object, concatenated: object = True
) -> None:
    """The counting options are True or False: a ``"false"`` from a configuration file is
    refused, naming the option, not read as true. (Callers test ``is True or is False``
    inline first: a call per count would cost a tenth of a short text's count.)"""
    check_flag("unicode", unicode)
    check_flag("smart_encoding", smart_encoding)
    check_flag("concatenated", concatenated)


def _fits(parts: int, concatenated: bool) -> bool:
    """Whether a body of ``parts`` parts can be sent: the rule behind :attr:`SegmentCount.fits`."""
    return parts <= (MAX_PARTS if concatenated else 1)


def part_capacity(encoding: Encoding, *, udh_octets: int = 0, multipart: bool = False) -> int:
    """How many units one part holds (140 octets of user data, less the headers).

    Args:
        encoding: ``"GSM-7"`` (septets), ``"UCS-2"`` (UTF-16 code units) or ``"8-bit"``.
        udh_octets: the caller's UDH, UDHL octet included (0 for none).
        multipart: whether the part is one of several. The concatenation element adds
            5 octets to a caller's UDH, or makes a 6-octet UDH of its own.

    >>> part_capacity("GSM-7"), part_capacity("GSM-7", multipart=True)
    (160, 153)
    >>> part_capacity("UCS-2", udh_octets=7, multipart=True)
    64
    """
    if encoding not in get_args(Encoding):
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {get_args(Encoding)}")
    if udh_octets < 0:
        raise ValueError(f"udh_octets must be >= 0, not {udh_octets}")
    if multipart is not True and multipart is not False:
        check_flag("multipart", multipart)
    octets = udh_octets
    if multipart:
        octets = udh_octets + 5 if udh_octets else 6
    if encoding == "GSM-7":
        return 160 - (octets * 8 + 6) // 7  # 160 - ceil(8u/7): the UDH is padded to septets
    if encoding == "UCS-2":
        return (140 - octets) // 2
    return 140 - octets


def count_segments(
    text: str,
    *,
    unicode: bool = True,
    udh: str | bytes | None = None,
    smart_encoding: bool = False,
    concatenated: bool = True,
) -> SegmentCount:
    """Count the SMS parts of a text.

    Args:
        text: the message body.
        unicode: whether UCS-2 is allowed (the provider's ``enableUnicode``). When False, a
            text with characters outside GSM 03.38 is an error rather than UCS-2.
        udh: the caller's User Data Header (``udhData``): hex text, or the raw octets. It is
            repeated in every part and reduces each part's capacity (SEGMENTS.md §7).
        smart_encoding: replace look-alike characters (curly quotes, dashes, odd spaces,
            ``…``) with GSM ones first, as Twilio's calculator does. What was replaced is
            reported in :attr:`SegmentCount.replacements` and the text actually counted in
            :attr:`SegmentCount.text`; send that text.
        concatenated: whether the text may be sent in several parts (the provider's
            ``enableConcatenated``). The count is the same either way; a text that needs
            several parts without concatenation is reported by :attr:`SegmentCount.fits`.

    Raises:
        ValidationError: ``udh`` is not hex, or leaves no room for text (field
            ``udh_data``); ``unicode`` is False and the text has non-GSM characters (field
            ``body``, naming them).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if not (
        (unicode is True or unicode is False)
        and (smart_encoding is False or smart_encoding is True)
        and (concatenated is True or concatenated is False)
    ):
        check_count_options(unicode, smart_encoding, concatenated)
    udh_octets = 0 if udh is None else _udh_octets(udh)
    replacements: tuple[tuple[str, str], ...] = ()
    if smart_encoding:
        text, replacements = _smart(text)
    return _count(text, unicode, udh_octets, smart_encoding, True, replacements, concatenated)


class PartCount(NamedTuple):
    """How many SMS parts a text costs, and in which encoding: :func:`count_parts`' answer.

    A tuple, so ``parts, encoding = count_parts(text)`` works as well as
    ``count_parts(text).parts``.

    Attributes:
        parts: the number of SMS parts (what the provider bills), as
            :attr:`SegmentCount.segments`.
        encoding: ``"GSM-7"`` or ``"UCS-2"``, as :attr:`SegmentCount.encoding`.
    """

    parts: int
    encoding: Encoding


def count_parts(
    text: str,
    *,
    unicode: bool = True,
    udh: str | bytes | None = None,
    smart_encoding: bool = False,
) -> PartCount:
    """How many SMS parts a text costs, and its encoding: :func:`count_segments`, only faster.

    For code that needs only the number of parts (pricing, rate limits, dry runs): it
    answers what ``count_segments(text, ...)`` would say in ``segments`` and ``encoding``,
    for every text and every option, but builds no :class:`SegmentCount` and skips the work
    only that needs (UTF-16 units of a short UCS-2 text, the list of replacements). The
    options and errors are those of :func:`count_segments`; ``concatenated`` is not one, as
    it does not change the count (compare ``parts`` with 1 or :data:`MAX_PARTS` yourself).

    >>> count_parts("Domani 38°C")
    PartCount(parts=1, encoding='UCS-2')
    >>> parts, encoding = count_parts("a" * 152 + "€" + "a" * 152)
    >>> parts
    3
    """
    if udh is None and smart_encoding is False and unicode is True:  # the usual call, at once
        try:
            return _count(text, True, 0, False, False)
        except TypeError:  # _count takes only a str (see there): say so below
            if isinstance(text, str):
                raise
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    check_count_options(unicode, smart_encoding)
    udh_octets = 0 if udh is None else _udh_octets(udh)
    if smart_encoding and _smart_search(text) is not None:
        text = text.translate(SMART_TABLE)
    return _count(text, unicode, udh_octets, smart_encoding, False)


@overload
def _count(
    text: str,
    unicode: bool,
    udh_octets: int,
    smart_encoding: bool,
    exact: Literal[True],
    replacements: tuple[tuple[str, str], ...],
    concatenated: bool,
) -> SegmentCount: ...
@overload
def _count(
    text: str, unicode: bool, udh_octets: int, smart_encoding: bool, exact: Literal[False]
) -> PartCount: ...
def _count(
    text: str,
    unicode: bool,
    udh_octets: int,
    smart_encoding: bool,
    exact: bool,
    replacements: tuple[tuple[str, str], ...] = (),
    concatenated: bool = True,
) -> SegmentCount | PartCount:
    """The one home of the counting rule: a :class:`SegmentCount` if ``exact``, else a
    :class:`PartCount`.

    Both :func:`count_segments` and :func:`count_parts` end here, so they cannot disagree;
    the result is built here rather than passed back as a tuple, as on a short text that
    hand-over would cost as much as the counting. Without ``exact``, work that only the
    units and the room left need is skipped: a UCS-2 text too short to need two parts
    whatever its code points (at most 2 units each) is not encoded to UTF-16, and a GSM-7
    text with room for every escape pair to move is not filled pair by pair.
    ``smart_encoding`` only shapes the error message: the caller has already replaced.
    """
    length = len(text)
    # GSM-7 or not, and where the escapes are, as ``marks``: a byte per character, 0 for a
    # 1-septet character, 1 for an escaped one, 0x80 for one GSM-7 cannot carry. C builds
    # it by one table pass wherever the text has one byte per character: ASCII at once
    # (str.isascii is free), a Latin-1 text at once too (its storage says so, see
    # _LATIN1_SIZE), a text with a € (as ESC) if that leaves it Latin-1. Then memchr and
    # ASCII checks answer, with no Python loop. A text stored four bytes a character (an
    # emoji) is encoded to UTF-16 at once: the units are needed anyway, and a code point
    # past the BMP is never GSM-7. Any other text's first characters are matched against
    # GSM-7 (a possessive run: no match object when one is not GSM-7): a UCS-2 text usually
    # has one in its first words, and needs nothing more. What bytes cannot hold (Greek
    # capitals, or a non-GSM character beyond the first ones) is searched whole and walked
    # from escape to escape instead (_walked).
    # str.isascii(text) rather than text.isascii(): anything but a str raises TypeError
    # here, which spares count_parts a type check on every call.
    utf16: bytes | None = None  # the text in UTF-16-LE, if it was needed
    if _isascii(text):
        size = 0  # of the text's storage (see _BMP_SIZE); ASCII is in the BMP
        marks = text.encode().translate(_CLASSES)
    elif (size := _sizeof(text)) - length == _LATIN1_SIZE and len(
        marks := text.encode("latin-1", "ignore")
    ) == length:
        marks = marks.translate(_CLASSES)
    elif (
        size > _BMP_SIZE + 2 * length
        and len(utf16 := _utf16(text, "surrogatepass")[0]) > 2 * length
    ):
        marks = b"\x80"  # a code point past the BMP: not GSM-7
    elif "€" in text and "\x1b" not in text:  # an ESC in the text is not GSM-7
        # The one GSM-7 character past Latin-1 that texts carry: with it, bytes hold the
        # text more often than not, so the search would mostly be spent for nothing.
        marks = text.replace("€", "\x1b").encode("latin-1", "ignore")
        marks = marks.translate(_CLASSES_EURO) if len(marks) == length else _walked(text)
    elif _gsm_run(text, 0, _WALK) is None:
        marks = b"\x80"  # not GSM-7
    else:
        marks = text.encode("latin-1", "ignore")
        marks = marks.translate(_CLASSES) if len(marks) == length else _walked(text)

    # Below, the parts alone are answered as soon as they are known.
    encoding: Encoding
    if marks.isascii():
        encoding = "GSM-7"
        runs = None  # of 1-septet characters between escapes: the exact count fills them
        if 1 not in marks:
            units = length
        elif exact:
            runs = marks.split(b"\x01")
            units = length + len(runs) - 1
        else:
            units = length + marks.count(1)
        if udh_octets:
            single, multi = _capacities(encoding, udh_octets)
        else:
            single, multi = 160, 153
        if units <= single:
            if not exact:
                return _GSM_PARTS[1]
            segments, per_part, used = 1, single, units
        elif multi < 2:
            raise _no_room(encoding)
        else:
            per_part = multi
            segments = -(-units // multi)
            if units == length:  # every atom is 1 septet: plain arithmetic
                if not exact:
                    return (
                        _GSM_PARTS[segments]
                        if segments <= MAX_PARTS
                        else _parts(segments, encoding)
                    )
                used = units - (segments - 1) * multi
            elif not exact and units + segments - 1 <= segments * multi and 2 * multi > single + 2:
                # Each cut moves at most one septet (half an escape pair) to the next part,
                # and that still fits: as many parts as the arithmetic says.
                return _GSM_PARTS[segments] if segments <= MAX_PARTS else _parts(segments, encoding)
            else:
                if runs is None:
                    runs = marks.split(b"\x01")
                segments, used = _fill_escapes(text, [*map(len, runs)], single, multi)
    else:
        if not unicode:
            message = _not_gsm_message(_non_gsm(text), smart_encoding)
            raise ValidationError.single("body", message)
        encoding = "UCS-2"
        if udh_octets:
            single, multi = _capacities(encoding, udh_octets)
        else:
            single, multi = 70, 67
        if not exact and length * 2 <= single:  # one part, whatever the code points are
            return _UCS2_PARTS[1]
        if utf16 is not None:
            units = len(utf16) >> 1
        elif size <= _BMP_SIZE + 2 * length:  # nothing past the BMP (see _BMP_SIZE)
            units = length
        else:
            # UTF-16 code units; "surrogatepass" lets a stray surrogate count 1, as in
            # JavaScript.
            utf16 = _utf16(text, "surrogatepass")[0]
            units = len(utf16) >> 1
        if units <= single:  # one part, whatever the atoms are
            if not exact:
                return _UCS2_PARTS[1]
            segments, per_part, used = 1, single, units
        elif multi < 2:
            raise _no_room(encoding)
        elif cuts_are_breaks(text, utf16, multi):
            # No cluster or surrogate pair straddles a cut: plain arithmetic.
            segments = -(-units // multi)
            if not exact:
                return (
                    _UCS2_PARTS[segments] if segments <= MAX_PARTS else _parts(segments, encoding)
                )
            per_part, used = multi, units - (segments - 1) * multi
        else:
            per_part = multi
            if utf16 is None:
                utf16 = _utf16(text, "surrogatepass")[0]
            segments, used = _fill_clusters(text, utf16, single, multi)
    if not exact:
        if segments > MAX_PARTS:
            return _parts(segments, encoding)
        return _GSM_PARTS[segments] if encoding == "GSM-7" else _UCS2_PARTS[segments]
    # The cheapest way to a SegmentCount (see _Draft); its fields in the order of its own.
    count = _Draft()
    count.encoding = encoding
    count.segments = segments
    count.units = units
    count.per_part = per_part
    count.remaining = per_part - used if used < per_part else 0
    count.text = text
    count.replacements = replacements
    count.udh_octets = udh_octets
    count.concatenated = concatenated
    count.__class__ = SegmentCount  # type: ignore[assignment]
    return count  # type: ignore[return-value]


_basic_run = cast("Callable[..., re.Match[str]]", BASIC_RUN_RE.match)
_non_gsm_search = NON_GSM_RE.search
_gsm_run = GSM_RUN_RE.fullmatch
_smart_search = SMART_RE.search
_utf16 = codecs.utf_16_le_encode
_sizeof = str.__sizeof__  # not text.__sizeof__(): a subclass may say anything
_isascii = str.isascii
_new_part_count = tuple.__new__  # PartCount's generated __new__ is a Python call: skip it
#: How far the first check for a non-GSM character goes before bytes passes take over:
#: beyond this, a regex costs more than the passes (tuned by instruction counts on the
#: segment benchmark's corpus; it changes the speed, never the count).
_WALK = 24
#: How CPython stores a text tells, at no cost, what no other O(1) check does: whether every
#: character is at most U+00FF (one byte each), or at most U+FFFF (two). ``str.__sizeof__``
#: is a fixed header plus (length + 1) times that width, plus any cached copy (UTF-8). So a
#: text whose size is _LATIN1_SIZE + its length is one byte a character, and one whose size
#: is at most _BMP_SIZE + twice its length has no code point past the BMP (one UTF-16 unit
#: each). The first only chooses which check runs first (the Latin-1 encoding is still
#: checked); the second spares encoding to UTF-16 to count units. A cached copy or a
#: subclass only makes a text look wider, never narrower: the slower way then answers. If
#: this interpreter does not size strings that way, neither ever holds.
#: (Measured on texts made here: a one-character Latin-1 str may be a shared one that
#: carries its UTF-8, as on 3.12.)
_LATIN1_SIZE = _sizeof(chr(0xE9) * 2) - 2
_BMP_SIZE = _sizeof(chr(0x100) * 2) - 4
if not (
    all(_sizeof(chr(0xE9) * n) == _LATIN1_SIZE + n for n in range(2, 9))
    and all(_sizeof(chr(0x100) * n) == _BMP_SIZE + 2 * n for n in range(1, 9))
    and all(_sizeof(chr(0x10000) * n) > _BMP_SIZE + 2 * n for n in range(1, 9))
):  # pragma: no cover - not CPython
    _LATIN1_SIZE = _BMP_SIZE = -(1 << 62)
#: ``bytes.translate`` table from Latin-1 to septet classes: 0 for a 1-septet character, 1
#: for an escaped one, 0x80 for one GSM-7 cannot carry (ESC among them).
_CLASSES = bytes(
    0 if chr(byte) in BASIC else 1 if chr(byte) in EXTENSION else 0x80 for byte in range(256)
)
#: The same where ESC stands for € (the text had one, and no ESC of its own).
_CLASSES_EURO = _CLASSES[:0x1B] + b"\x01" + _CLASSES[0x1C:]


def _parts(segments: int, encoding: Encoding) -> PartCount:
    return _new_part_count(PartCount, (segments, encoding))


#: The answers of count_parts, built once: a tuple is immutable, so it can be shared.
_GSM_PARTS = [_parts(segments, "GSM-7") for segments in range(MAX_PARTS + 1)]
_UCS2_PARTS = [_parts(segments, "UCS-2") for segments in range(MAX_PARTS + 1)]


def _walked(text: str) -> bytes:
    """``marks`` (see :func:`_count`) of a text bytes cannot hold, from a regex walk.

    Rare: only a GSM-7 text with a Greek capital, or a UCS-2 text whose first non-GSM
    character lies beyond the first check (or that has a € too), comes here. One search
    over the whole text answers the second; only the first is walked.
    """
    if _non_gsm_search(text) is not None:
        return b"\x80"
    escapes, _ = _walk(text, 0)
    marks = bytearray(len(text))
    for i in escapes:
        marks[i] = 1
    return bytes(marks)


def _walk(text: str, end: int) -> tuple[list[int], int]:
    """The escapes' positions from ``end`` on, and where the walk stopped.

    ``end`` is where a walk of 1-septet characters stopped (or 0). Each stop at an escape is
    noted and the walk goes on; it ends at a character GSM-7 cannot carry or at the end.
    """
    length = len(text)
    escapes = []
    end = _basic_run(text, end).end()
    while end < length and text[end] in EXTENSION:
        escapes.append(end)
        end = _basic_run(text, end + 1).end()
    return escapes, end


def _capacities(encoding: Encoding, udh_octets: int) -> tuple[int, int]:
    return (
        part_capacity(encoding, udh_octets=udh_octets),
        part_capacity(encoding, udh_octets=udh_octets, multipart=True),
    )


def count_hex_segments(
    hex_body: str, *, udh: str | bytes | None = None, concatenated: bool = True
) -> SegmentCount:
    """Count the parts of a hex body (the provider's ``hexBody``): bytes, 140 or 134 a part.

    Raises:
        ValidationError: ``hex_body`` is not an even number of hex digits (field ``body``),
            or ``udh`` is invalid (field ``udh_data``).
    """
    if not isinstance(hex_body, str):
        raise TypeError(f"hex_body must be str, not {type(hex_body).__name__}")
    check_flag("concatenated", concatenated)
    if len(hex_body) % 2 or not _HEX_DIGITS.issuperset(hex_body):
        raise ValidationError.single(
            "body", "a hex body must be an even number of hex digits (0-9, A-F)"
        )
    udh_octets = 0 if udh is None else _udh_octets(udh)
    single = part_capacity("8-bit", udh_octets=udh_octets)
    units = len(hex_body) // 2
    if units <= single:
        segments, used, per_part = 1, units, single
    else:
        per_part = part_capacity("8-bit", udh_octets=udh_octets, multipart=True)
        segments = -(-units // per_part)
        used = units - (segments - 1) * per_part
    return SegmentCount(
        "8-bit", segments, units, per_part, per_part - used, hex_body, (), udh_octets,
        concatenated,
    )  # fmt: skip


def split_segments(
    text: str,
    *,
    unicode: bool = True,
    udh: str | bytes | None = None,
    smart_encoding: bool = False,
) -> list[str]:
    """The texts of the parts, in order, as :func:`count_segments` counts them.

    The parts join back into :attr:`SegmentCount.text` (the input, after smart-encoding
    replacements), and no escape pair, surrogate pair or grapheme cluster is cut. Options and
    errors are those of :func:`count_segments`.

    A single grapheme cluster longer than a part (a "Zalgo" stack of combining marks) cannot
    be sent whole; the parts then follow Twilio's calculator, which may leave the first part
    empty or a part over capacity.
    """
    count = count_segments(text, unicode=unicode, udh=udh, smart_encoding=smart_encoding)
    text = count.text
    if count.segments == 1:
        return [text]
    single = part_capacity(count.encoding, udh_octets=count.udh_octets)
    if count.encoding == "GSM-7":
        bounds = list(range(1, len(text) + 1))
        costs = [2 if char in EXTENSION else 1 for char in text]
    else:
        bounds, costs = clusters(text)
    starts, _ = _pack(costs, single, count.per_part)
    offsets = [0, *bounds]
    cuts = [offsets[start] for start in starts] + [len(text)]
    return [text[a:b] for a, b in itertools.pairwise(cuts)]


def body_problems(
    body: str,
    *,
    hex_body: bool = False,
    udh: str | bytes | None = None,
    unicode: bool = True,
    smart_encoding: bool = False,
    concatenated: bool = True,
    path: str = "",
) -> list[Problem]:
    """Everything that stops a body from being sent as one message, without raising.

    For the client's local validation, which collects every problem of a request: an invalid
    UDH, an invalid hex body, non-GSM characters when Unicode is disabled, a body that needs
    several parts when concatenation is disabled, or more than :data:`MAX_PARTS` parts.

    Args:
        path: prefix for the problems' fields, e.g. ``"messages[3]"`` gives
            ``"messages[3].body"`` and ``"messages[3].udh_data"``.
    """
    prefix = f"{path}." if path else ""
    problems: list[Problem] = []
    if udh is not None:
        try:
            _udh_octets(udh)
        except ValidationError as exc:
            problems.extend(_prefixed(exc, prefix))
            udh = None
    try:
        if hex_body:
            count = count_hex_segments(body, udh=udh, concatenated=concatenated)
        else:
            # Most bodies fit: the parts alone say so. Only a problem needs the full count.
            parts = count_parts(body, unicode=unicode, udh=udh, smart_encoding=smart_encoding)
            if _fits(parts.parts, concatenated):
                return problems
            count = count_segments(
                body,
                unicode=unicode,
                udh=udh,
                smart_encoding=smart_encoding,
                concatenated=concatenated,
            )
    except ValidationError as exc:
        return problems + _prefixed(exc, prefix)
    if not count.fits:
        problems.append(Problem(f"{prefix}body", _too_long_message(count)))
    return problems


def _fill_escapes(text: str, runs: list[int], single: int, multi: int) -> tuple[int, int]:
    """Parts and septets in the last part of a GSM-7 text: ``runs`` of 1-septet characters,
    an escape pair after each but the last.

    §6's greedy fill, jumping over the runs arithmetically: O(escapes), not O(length). It
    equals Twilio's fill (:func:`_pack`) unless a part holds only a few septets (a huge
    caller UDH); then that runs instead.
    """
    if 2 * multi - single + 1 < 4:
        starts, used = _pack([2 if char in EXTENSION else 1 for char in text], single, multi)
        return len(starts), used
    segments, used = 1, 0
    last = runs.pop()
    for run in runs:
        used += run + 2
        if used > multi:
            # Fill with the 1-septet run, then place the pair (whole) after it.
            used -= 2
            if used > multi:
                segments += (used - 1) // multi
                used = (used - 1) % multi + 1
            if used + 2 > multi:
                segments += 1
                used = 2
            else:
                used += 2
    used += last
    if used > multi:
        segments += (used - 1) // multi
        used = (used - 1) % multi + 1
    return segments, used


def _fill_clusters(text: str, utf16: bytes, single: int, multi: int) -> tuple[int, int]:
    """Parts and units in the last part of a UCS-2 text whose atoms are not all 1 unit."""
    filled = fill_parts(text, utf16, single, multi)
    if filled is None:  # an atom of dozens of units: count as Twilio does, exactly
        starts, used = _pack(clusters(text)[1], single, multi)
        return len(starts), used
    return filled


def _pack(costs: Sequence[int], single: int, multi: int) -> tuple[list[int], int]:
    """Twilio's calculator's fill: where each part starts (atom index) and the last's units.

    Everything fits in one part: one part. Otherwise the first part is refilled to the
    concatenated capacity, and every part after it is filled greedily; an atom that does not
    fit moves whole to a new part (SEGMENTS.md §6).

    Twilio builds the first part to the single-part capacity, and only when an atom overflows
    it does it trim that part to the concatenated capacity and move the trimmed atoms and the
    overflowing one into the second part *without re-checking its capacity*. For atoms of at
    most a few units that is the same as §6's greedy fill; it differs only for clusters of
    dozens of units, where it can leave the first part empty or the second one over capacity.
    We reproduce it, as the calculator is the reference.
    """
    total = sum(costs)
    if total <= single:
        return [0], total
    used = k = 0
    while used + costs[k] <= single:
        used += costs[k]
        k += 1
    first, j = used, k
    while first > multi:
        j -= 1
        first -= costs[j]
    starts = [0, j]
    used = used - first + costs[k]
    for i in range(k + 1, len(costs)):
        cost = costs[i]
        if used + cost > multi:
            starts.append(i)
            used = cost
        else:
            used += cost
    return starts, used


def _non_gsm(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(NON_GSM_RE.findall(text)))


def _smart(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    found = SMART_RE.findall(text)
    if not found:
        return text, ()
    pairs = tuple((char, SMART_TABLE[ord(char)]) for char in dict.fromkeys(found))
    return text.translate(SMART_TABLE), pairs


def _udh_octets(udh: str | bytes) -> int:
    if isinstance(udh, (bytes, bytearray)):
        octets = len(udh)
    elif isinstance(udh, str):
        if len(udh) % 2 or not _HEX_DIGITS.issuperset(udh):
            raise ValidationError.single(
                "udh_data", f"must be an even number of hex digits (0-9, A-F), not {udh!r}"
            )
        octets = len(udh) // 2
    else:
        raise TypeError(f"udh must be a hex str or bytes, not {type(udh).__name__}")
    if octets >= 134:
        raise ValidationError.single(
            "udh_data", f"a UDH of {octets} octets leaves no room for text in a 140-octet part"
        )
    return octets


def _no_room(encoding: Encoding) -> ValidationError:
    return ValidationError.single(
        "udh_data", f"the UDH leaves no room for {encoding} text in a concatenated part"
    )


def _describe(chars: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(
        f"{char!r} ({' '.join(f'U+{ord(c):04X}' for c in char)})" for char in chars[:limit]
    )
    more = len(chars) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _not_gsm_message(chars: Sequence[str], smart_encoding: bool) -> str:
    message = (
        f"Unicode is disabled but the text has characters outside the GSM 03.38 alphabet: "
        f"{_describe(chars)}"
    )
    replaceable = [char for char in chars if ord(char) in SMART_TABLE]
    if replaceable and not smart_encoding:
        message += f"; smart_encoding=True would replace {_describe(replaceable, 5)}"
    return message


def _too_long_message(count: SegmentCount) -> str:
    noun = {"GSM-7": "septets", "UCS-2": "UTF-16 units", "8-bit": "octets"}[count.encoding]
    if not count.concatenated:
        single = part_capacity(count.encoding, udh_octets=count.udh_octets)
        return (
            f"needs {count.segments} parts ({count.units} {noun}, {count.encoding}) but "
            f"concatenation is disabled and one part holds {single}"
        )
    return f"needs {count.segments} parts; concatenated SMS allow at most {MAX_PARTS}"


def _prefixed(exc: ValidationError, prefix: str) -> list[Problem]:
    return [Problem(f"{prefix}{problem.field}", problem.message) for problem in exc.problems]
