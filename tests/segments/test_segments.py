"""Segment counting and splitting: every boundary SEGMENTS.md names, as table tests.

Expected values come from SEGMENTS.md, and where it defers to Twilio's Message Segment
Calculator 1.3.0, from that calculator's output for the same text (noted per table).
"""

from __future__ import annotations

import copy
import inspect
import pickle

import attrs
import pytest

import agile_async
from agile_async import segments
from agile_async.segments import (
    MAX_PARTS,
    SegmentCount,
    body_problems,
    count_hex_segments,
    count_segments,
    part_capacity,
    split_segments,
)

SEED_BODY = (
    "ATTENZIONE: Domani temperature fino a 38°C. Rimani idratato e stai al riparo dalle 12:00 "
    "alle 17:00."
)


def units_of(part: str, encoding: str) -> int:
    """A part's size, computed here rather than by the code under test."""
    if encoding == "GSM-7":
        return len(part) + sum(part.count(char) for char in "\f^{}\\[~]|€")
    return len(part.encode("utf-16-le")) // 2


# --- §1-§3: choosing the encoding ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        pytest.param("", "GSM-7", id="empty"),
        pytest.param("Hello, world!", "GSM-7", id="ascii"),
        pytest.param("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "GSM-7", id="basic-0x00-0x1F"),
        pytest.param("¤§¡¿ÄÖÑÜäöñüà", "GSM-7", id="basic-non-ascii"),
        pytest.param("è é ù ì ò à É", "GSM-7", id="italian-gsm"),
        pytest.param("È", "UCS-2", id="capital-E-grave"),
        pytest.param("À", "UCS-2", id="capital-A-grave"),
        pytest.param("Ù", "UCS-2", id="capital-U-grave"),
        pytest.param("Ì", "UCS-2", id="capital-I-grave"),
        pytest.param("Ò", "UCS-2", id="capital-O-grave"),
        pytest.param("Á", "UCS-2", id="capital-A-acute"),
        pytest.param("ç", "UCS-2", id="small-c-cedilla"),
        pytest.param("Ç", "GSM-7", id="capital-C-cedilla"),
        pytest.param("á", "UCS-2", id="a-acute"),
        pytest.param("38°C", "UCS-2", id="degree"),
        pytest.param("`", "UCS-2", id="backtick"),
        pytest.param("\t", "UCS-2", id="tab"),
        pytest.param("\u00a0", "UCS-2", id="nbsp"),
        pytest.param("“quoted”", "UCS-2", id="curly-quotes"),
        pytest.param("l’ordine", "UCS-2", id="curly-apostrophe"),
        pytest.param("Α", "UCS-2", id="greek-capital-alpha"),
        pytest.param("\x1b", "UCS-2", id="escape-U+001B"),
        pytest.param("😀", "UCS-2", id="emoji"),
        pytest.param("\f^{}\\[~]|€", "GSM-7", id="extension-table"),
    ],
)
def test_encoding(text: str, encoding: str) -> None:
    """One character outside GSM 03.38 makes the whole text UCS-2."""
    assert count_segments(text).encoding == encoding


def test_the_basic_table_has_127_characters_and_the_extension_table_10() -> None:
    basic = "".join(chr(cp) for cp in range(0x10000) if count_segments(chr(cp)).units == 1)
    gsm = [chr(cp) for cp in range(0x10000) if count_segments(chr(cp)).encoding == "GSM-7"]
    assert len(gsm) == 137
    assert len([c for c in gsm if c not in basic]) == 10


@pytest.mark.parametrize(
    ("char", "septets"),
    [(c, 2) for c in "\f^{}\\[~]|€"] + [(c, 1) for c in "@$_¤ A\n\r"],
)
def test_extension_characters_cost_two_septets(char: str, septets: int) -> None:
    count = count_segments(char)
    assert (count.encoding, count.units) == ("GSM-7", septets)


def test_extension_characters_cost_one_unit_in_ucs2() -> None:
    assert count_segments("€{°").units == 3


# --- §4: units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("❤️", 2),
        ("e\u0301", 2),
        ("1️⃣", 3),
        ("🇮🇹", 4),
        ("👍🏽", 4),
        ("🏳️‍🌈", 6),
        ("👨‍👩‍👧‍👦", 11),
        ("𠀀", 2),
        ("😀", 2),
        ("中文", 2),
    ],
)
def test_ucs2_units_are_utf16_code_units(text: str, units: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == ("UCS-2", units, 1)


def test_empty_text() -> None:
    count = count_segments("")
    assert count == SegmentCount("GSM-7", 1, 0, 160, 160, "")


# --- §5 and §6: capacities and splitting --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        pytest.param("a" * 160, "GSM-7", 1, 160, id="160-gsm"),
        pytest.param("a" * 161, "GSM-7", 2, 161, id="161-gsm"),
        pytest.param("a" * 306, "GSM-7", 2, 306, id="306-gsm"),
        pytest.param("a" * 307, "GSM-7", 3, 307, id="307-gsm"),
        pytest.param("a" * 159 + "€", "GSM-7", 2, 161, id="euro-at-septet-160"),
        pytest.param("a" * 158 + "€", "GSM-7", 1, 160, id="euro-ends-at-160"),
        pytest.param("a" * 152 + "€" + "a" * 10, "GSM-7", 2, 164, id="euro-at-septet-153"),
        pytest.param("a" * 151 + "€" + "a" * 10, "GSM-7", 2, 163, id="euro-at-septet-152"),
        pytest.param("ж" * 70, "UCS-2", 1, 70, id="70-ucs2"),
        pytest.param("ж" * 71, "UCS-2", 2, 71, id="71-ucs2"),
        pytest.param("ж" * 134, "UCS-2", 2, 134, id="134-ucs2"),
        pytest.param("ж" * 135, "UCS-2", 3, 135, id="135-ucs2"),
        pytest.param("a" * 68 + "😀", "UCS-2", 1, 70, id="emoji-ends-at-70"),
        pytest.param("a" * 69 + "😀", "UCS-2", 2, 71, id="emoji-over-70"),
        pytest.param("a" * 66 + "😀" + "a" * 3, "UCS-2", 2, 71, id="emoji-at-unit-67"),
        pytest.param("a" * 159 + "°", "UCS-2", 3, 160, id="one-degree-in-160"),
        pytest.param("°" + "a" * 159, "UCS-2", 3, 160, id="degree-first"),
    ],
)
def test_capacity_boundaries(text: str, encoding: str, segments: int, units: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments, count.units) == (encoding, segments, units)


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        pytest.param("a" * 152 + "€" + "a" * 152, 306, 3, id="euro-straddles-153"),
        pytest.param("€" * 153, 306, 3, id="153-euros"),
        pytest.param("a" * 151 + "€" + "a" * 153, 306, 2, id="euro-fits-153"),
        pytest.param("a" * 152 + "\r\n" + "a" * 152, 306, 2, id="crlf-splits"),
        pytest.param("a" * 66 + "😀" + "a" * 66, 134, 3, id="emoji-straddles-67"),
        pytest.param("😀" * 67, 134, 3, id="67-emoji"),
        pytest.param("a" * 65 + "🇮🇹" + "a" * 65, 134, 3, id="flag-straddles-67"),
        pytest.param("Attention: Tomorrow temperatures reaching up to 38°C", 52, 1, id="en"),
        pytest.param(SEED_BODY, 100, 2, id="seed-body"),
    ],
)
def test_segments_md_section_6_table(text: str, units: int, segments: int) -> None:
    """Every row of SEGMENTS.md §6: segments != ceil(units / capacity) in general."""
    count = count_segments(text)
    assert (count.units, count.segments) == (units, segments)


def test_section_6_parts() -> None:
    assert [len(part) for part in split_segments("€" * 153)] == [76, 76, 1]
    assert [len(part) for part in split_segments("😀" * 67)] == [33, 33, 1]
    flag = split_segments("a" * 65 + "🇮🇹" + "a" * 65)
    assert flag == ["a" * 65, "🇮🇹" + "a" * 63, "aa"]
    assert split_segments("a" * 152 + "\r\n" + "a" * 152) == ["a" * 152 + "\r", "\n" + "a" * 152]


@pytest.mark.parametrize(
    ("text", "remaining", "per_part"),
    [
        ("", 160, 160),
        ("a" * 160, 0, 160),
        ("a" * 161, 145, 153),
        ("a" * 152 + "€" + "a" * 152, 153 - 1, 153),
        ("°", 69, 70),
        ("😀" * 67, 67 - 2, 67),
    ],
)
def test_remaining_and_per_part(text: str, remaining: int, per_part: int) -> None:
    count = count_segments(text)
    assert (count.remaining, count.per_part) == (remaining, per_part)


# --- Twilio-specific clusters (expected values: Message Segment Calculator 1.3.0) ------------


@pytest.mark.parametrize(
    ("text", "part_units"),
    [
        # Unicode 10 rules: a ZWJ joins only Glue_After_Zwj / E_Base_GAZ, so newer sequences
        # are several atoms (🧑 + ZWJ, 🤝 + ZWJ, 🧑), older ones one (👨‍👩‍👧‍👦, 🏳️‍🌈).
        pytest.param("a" * 64 + "🧑‍🤝‍🧑" + "a" * 10, [67, 15], id="people-holding-hands"),
        pytest.param("a" * 64 + "👨‍👩‍👧‍👦" + "a" * 10, [64, 21], id="family"),
        pytest.param("a" * 62 + "🏳️‍🌈" + "a" * 10, [62, 16], id="rainbow-flag"),
        pytest.param("a" * 64 + "❤️‍🔥" + "a" * 10, [67, 12], id="heart-on-fire"),
        # A modifier joins only a Unicode 10 E_Base: 👍 yes, 🫶 (Unicode 14) no.
        pytest.param("a" * 64 + "👍🏽" + "a" * 10, [64, 14], id="thumbs-up-tone"),
        pytest.param("a" * 64 + "🫶🏽" + "a" * 10, [66, 12], id="heart-hands-tone"),
        # No Indic conjuncts (GB9c came in Unicode 15.1): क् + ष.
        pytest.param("क" * 66 + "्ष" + "a" * 10, [67, 11], id="devanagari-conjunct"),
        # grapheme-splitter's look-ahead: a flag takes one combining mark, not two.
        pytest.param("a" * 62 + "🇮🇹\u0301\u0301" + "a" * 10, [67, 11], id="flag-two-marks"),
        pytest.param("a" * 65 + "1️⃣" + "a" * 10, [65, 13], id="keycap"),
        pytest.param("°" + "a" * 65 + "\r\n" + "a" * 10, [67, 11], id="crlf-in-ucs2"),
        # Clusters longer than half a part: Twilio's fill, reproduced (SEGMENTS.md §6 would
        # give [35, 35, 35] and [81]).
        pytest.param(("a" + "\u0301" * 34) * 3, [35, 70], id="three-long-clusters"),
        pytest.param("a" + "\u0301" * 80, [0, 81], id="cluster-longer-than-a-part"),
    ],
)
def test_twilio_clusters(text: str, part_units: list[int]) -> None:
    count = count_segments(text)
    parts = split_segments(text)
    assert [units_of(part, "UCS-2") for part in parts] == part_units
    assert count.segments == len(part_units)
    assert "".join(parts) == text


# --- §7: caller UDH -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "udh_octets", "single", "multi"),
    [
        ("GSM-7", 0, 160, 153),
        ("UCS-2", 0, 70, 67),
        ("8-bit", 0, 140, 134),
        ("GSM-7", 6, 153, 147),
        ("UCS-2", 6, 67, 64),
        ("8-bit", 6, 134, 129),
        ("GSM-7", 7, 152, 146),
        ("UCS-2", 7, 66, 64),
        ("8-bit", 7, 133, 128),
    ],
)
def test_part_capacity(
    encoding: segments.Encoding, udh_octets: int, single: int, multi: int
) -> None:
    assert part_capacity(encoding, udh_octets=udh_octets) == single
    assert part_capacity(encoding, udh_octets=udh_octets, multipart=True) == multi


def test_concatenation_header_sizes_of_section_5() -> None:
    """8-bit reference (6 octets): 153/67/134; 16-bit (7 octets): 152/66/133."""
    assert [part_capacity(e, udh_octets=6) for e in ("GSM-7", "UCS-2", "8-bit")] == [153, 67, 134]
    assert [part_capacity(e, udh_octets=7) for e in ("GSM-7", "UCS-2", "8-bit")] == [152, 66, 133]


@pytest.mark.parametrize(
    ("udh", "text", "segments", "per_part"),
    [
        pytest.param("070645670000", "a" * 153, 1, 153, id="seed-udh-gsm-fits"),
        pytest.param("070645670000", "a" * 154, 2, 147, id="seed-udh-gsm-over"),
        pytest.param("070645670000", "ж" * 67, 1, 67, id="seed-udh-ucs2-fits"),
        pytest.param("070645670000", "ж" * 68, 2, 64, id="seed-udh-ucs2-over"),
        pytest.param("06050400010002", "a" * 152, 1, 152, id="port-addressing-gsm"),
        pytest.param("06050400010002", "ж" * 66, 1, 66, id="port-addressing-ucs2"),
        pytest.param("06050400010002", "a" * 292, 2, 146, id="u7-concatenated-gsm"),
        pytest.param("06050400010002", "ж" * 129, 3, 64, id="u7-concatenated-ucs2"),
        pytest.param(bytes.fromhex("070645670000"), "a" * 154, 2, 147, id="raw-octets"),
        pytest.param("", "a" * 161, 2, 153, id="empty-udh"),
    ],
)
def test_caller_udh(udh: str | bytes, text: str, segments: int, per_part: int) -> None:
    count = count_segments(text, udh=udh)
    assert (count.segments, count.per_part) == (segments, per_part)


@pytest.mark.parametrize("udh", ["07064567000", "zz", "07 06", "0x0706", "é0"])
def test_invalid_udh_is_a_validation_error_naming_the_field(udh: str) -> None:
    with pytest.raises(agile_async.ValidationError) as caught:
        count_segments("hi", udh=udh)
    assert [problem.field for problem in caught.value.problems] == ["udh_data"]


def test_a_udh_that_leaves_no_room_is_refused() -> None:
    with pytest.raises(agile_async.ValidationError, match="no room"):
        count_segments("hi", udh="00" * 134)


# --- hex bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("octets", "segments", "per_part", "remaining"),
    [(0, 1, 140, 140), (140, 1, 140, 0), (141, 2, 134, 127), (268, 2, 134, 0), (269, 3, 134, 133)],
)
def test_hex_bodies_are_counted_as_bytes(
    octets: int, segments: int, per_part: int, remaining: int
) -> None:
    count = count_hex_segments("Ab" * octets)
    assert count.encoding == "8-bit"
    assert (count.units, count.segments, count.per_part, count.remaining) == (
        octets,
        segments,
        per_part,
        remaining,
    )


def test_hex_body_with_udh() -> None:
    assert count_hex_segments("00" * 134, udh="070645670000").segments == 1
    assert count_hex_segments("00" * 135, udh="070645670000").per_part == 129


@pytest.mark.parametrize("body", ["abc", "zz", "0g", " 00"])
def test_invalid_hex_body(body: str) -> None:
    with pytest.raises(agile_async.ValidationError) as caught:
        count_hex_segments(body)
    assert caught.value.problems[0].field == "body"


# --- unicode=False, non-GSM characters -------------------------------------------------------


def test_non_gsm_characters_in_order_of_first_appearance() -> None:
    count = count_segments("Ciao ç°ç 😀 È€")
    assert count.non_gsm_characters == ("ç", "°", "😀", "È")
    assert count_segments("e\u0301").non_gsm_characters == ("\u0301",)
    assert count_segments("plain").non_gsm_characters == ()


def test_unicode_false_names_the_characters() -> None:
    with pytest.raises(agile_async.ValidationError) as caught:
        count_segments("Domani 38°C, è “caldo”", unicode=False)
    (problem,) = caught.value.problems
    assert problem.field == "body"
    assert "'°' (U+00B0)" in problem.message
    assert "'“' (U+201C)" in problem.message
    assert "smart_encoding=True would replace" in problem.message


def test_unicode_false_with_gsm_text_counts_normally() -> None:
    assert count_segments("Domani 38 gradi {ok}", unicode=False).encoding == "GSM-7"


def test_unicode_false_with_smart_encoding() -> None:
    count = count_segments("“Ciao” – a presto…", unicode=False, smart_encoding=True)
    assert count.encoding == "GSM-7"
    assert count.text == '"Ciao" - a presto...'
    with pytest.raises(agile_async.ValidationError, match="U\\+00B0") as caught:
        count_segments("“38°C”", unicode=False, smart_encoding=True)
    assert "would replace" not in str(caught.value)


# --- §8: smart encoding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "replaced"),
    [
        ("“ ” „ ‟ « » ＂", '" " " " " " "'),
        ("‘ ’ ‛ ´ ` ʼ", "' ' ' ' ' '"),
        ("‚", ","),
        ("– — ‐ ― •", "- - - - -"),
        ("…", "..."),
        ("‼", "!!"),
        ("½ ¼ ¾", "1/2 1/4 3/4"),
        ("÷", "/"),
        ("‹›", "<>"),
        ("a\u00a0b", "a  b"),
        ("a\u2000b\u2002c\u200ad\u202fe\u205ff\u3000g", "a  b  c  d  e  f  g"),
        ("a\u2001b\u2028c\u2029d", "a b c d"),
        ("a\tb", "a       b"),
        ("a\u200bb\u200cc\u2060d\ufeffe\x00f", "abcdef"),
        (
            "！＂＃＄％＆＇（）＊＋，－．／０９：；＜＝＞？＠ＡＺ［＼］＾＿",
            "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_",
        ),
        ("｛｜｝～", "{|}~"),
        ("ᴀʙᴄ", "ABC"),
        ("a\u0302\u0303\u0332", "a^~_"),
    ],
)
def test_smart_encoding_replacements(text: str, replaced: str) -> None:
    count = count_segments(text, smart_encoding=True)
    assert count.text == replaced


@pytest.mark.parametrize("text", ["°", "ç", "á í ó ú", "È", "₹", "😀", "中", "ａｚ", "｀"])
def test_smart_encoding_leaves_these_alone(text: str) -> None:
    count = count_segments(text, smart_encoding=True)
    assert (count.text, count.encoding, count.replacements) == (text, "UCS-2", ())


def test_smart_encoding_reports_every_replacement_once_in_order() -> None:
    count = count_segments("«Sì» – l’ho detto… «no»", smart_encoding=True)
    assert count.replacements == (("«", '"'), ("»", '"'), ("–", "-"), ("’", "'"), ("…", "..."))
    assert count.encoding == "GSM-7"


def test_smart_encoding_changes_the_count() -> None:
    """Twilio calculator 1.3.0: 45 UCS-2 units, 1 part; smart: 58 septets, GSM-7, 1 part."""
    text = "Prezzo:\u00a0100\u00a0€ – «offerta» … fino a ½ prezzo\t!"
    assert (count_segments(text).encoding, count_segments(text).units) == ("UCS-2", 45)
    smart = count_segments(text, smart_encoding=True)
    assert (smart.encoding, smart.units, smart.segments) == ("GSM-7", 58, 1)


def test_smart_encoding_table_has_271_entries() -> None:
    from agile_async._smart_encoding import SMART_TABLE

    assert len(SMART_TABLE) == 271


def test_without_smart_encoding_nothing_is_replaced() -> None:
    count = count_segments("“hi”")
    assert (count.text, count.replacements) == ("“hi”", ())


# --- the splitter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "a" * 500,
        "{" * 200,
        "a" * 152 + "€" * 10 + "b" * 300,
        "ж" * 300,
        "😀a" * 120,
        "👨‍👩‍👧‍👦" * 30,
        "🇮🇹🇫🇷" * 40,
        "e\u0301" * 100,
        SEED_BODY * 5,
        "line\r\n" * 60,
    ],
)
def test_split_parts_rejoin_fit_and_match_the_count(text: str) -> None:
    count = count_segments(text)
    parts = split_segments(text)
    assert "".join(parts) == text
    assert len(parts) == count.segments
    capacity = count.per_part
    assert all(units_of(part, count.encoding) <= capacity for part in parts)
    if len(parts) > 1:
        assert count.remaining == capacity - units_of(parts[-1], count.encoding)


def test_split_never_cuts_an_escape_pair_or_a_surrogate_pair() -> None:
    assert split_segments("a" * 152 + "€" + "a" * 10)[:2] == ["a" * 152, "€" + "a" * 10]
    assert split_segments("a" * 151 + "€" + "a" * 10)[0] == "a" * 151 + "€"
    parts = split_segments("a" * 66 + "😀" + "a" * 10)
    assert parts[0] == "a" * 66
    assert parts[1].startswith("😀")


def test_split_with_smart_encoding_returns_the_replaced_text() -> None:
    parts = split_segments("…" * 100, smart_encoding=True)
    assert "".join(parts) == "..." * 100
    assert [len(part) for part in parts] == [153, 147]


def test_split_with_udh() -> None:
    parts = split_segments("a" * 300, udh="06050400010002")
    assert [len(part) for part in parts] == [146, 146, 8]


# --- concatenation and body_problems ------------------------------------------------------------


def test_fits() -> None:
    assert count_segments("a" * 161).fits
    assert not count_segments("a" * 161, concatenated=False).fits
    assert count_segments("a" * 160, concatenated=False).fits
    assert not count_segments("a" * 153 * MAX_PARTS + "a").fits
    assert count_segments("a" * 153 * MAX_PARTS).fits


def test_concatenated_does_not_change_the_count() -> None:
    on = count_segments("a" * 400)
    off = count_segments("a" * 400, concatenated=False)
    assert (off.segments, off.units, off.concatenated) == (on.segments, on.units, False)


def test_body_problems() -> None:
    assert body_problems("hello") == []
    (problem,) = body_problems("a" * 161, concatenated=False, path="messages[2]")
    assert problem.field == "messages[2].body"
    assert "concatenation is disabled" in problem.message
    assert "161 septets" in problem.message
    problems = body_problems("38°", unicode=False, udh="zz", path="messages[0]")
    assert [p.field for p in problems] == ["messages[0].udh_data", "messages[0].body"]
    assert [p.field for p in body_problems("xyz", hex_body=True)] == ["body"]
    assert body_problems("00" * 141, hex_body=True) == []
    assert "at most 255" in body_problems("a" * 153 * 256)[0].message


# --- SegmentCount, the public surface ----------------------------------------------------------


def test_segment_count_is_a_frozen_attrs_class() -> None:
    count = count_segments("hello")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        count.segments = 2  # type: ignore[misc]
    assert attrs.evolve(count, segments=2).segments == 2
    assert pickle.loads(pickle.dumps(count)) == count
    assert copy.copy(count) == count
    assert hash(count) == hash(SegmentCount("GSM-7", 1, 5, 160, 155, "hello"))


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("hello", {}),
        ("a" * 152 + "€" + "a" * 152, {}),
        ("Domani 38°C 😀" * 9, {"udh": "070645670000", "concatenated": False}),
        ("“Hi” — 38C", {"smart_encoding": True}),
    ],
)
def test_a_counted_segment_count_is_one_its_constructor_would_build(
    text: str, options: dict[str, object]
) -> None:
    """count_segments builds its answer its own (faster) way: the result must be the same."""
    count = count_segments(text, **options)  # type: ignore[arg-type]
    assert type(count) is SegmentCount
    names = [field.name for field in attrs.fields(SegmentCount)]
    built = SegmentCount(*(getattr(count, name) for name in names))
    assert count == built
    assert hash(count) == hash(built)
    assert repr(count) == repr(built)
    assert vars(count) == vars(built)
    assert pickle.loads(pickle.dumps(count)) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        count.units = 0  # type: ignore[misc]


def test_segment_count_init_matches_its_fields() -> None:
    """SegmentCount writes its fields itself (speed); its signature must follow the fields."""
    names = [field.name for field in attrs.fields(SegmentCount)]
    assert list(inspect.signature(SegmentCount.__init__).parameters)[1:] == names
    count = SegmentCount("UCS-2", 2, 3, 4, 5, "t", (("a", "b"),), 6, False)
    assert [getattr(count, name) for name in names] == [
        "UCS-2",
        2,
        3,
        4,
        5,
        "t",
        (("a", "b"),),
        6,
        False,
    ]
    defaults = {
        f.name: f.default for f in attrs.fields(SegmentCount) if f.default is not attrs.NOTHING
    }
    signature = inspect.signature(SegmentCount.__init__).parameters
    assert {name: signature[name].default for name in defaults} == defaults


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        count_segments(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        count_segments("x", udh=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown encoding"):
        part_capacity("UTF-8")  # type: ignore[arg-type]
