"""``count_parts``: the fast answer must be ``count_segments``' answer, for every input.

The property tests draw texts of every kind the counter treats differently (1-septet runs,
escapes, Latin-1 and non-Latin-1 GSM characters, € and Greek capitals, UCS-2 in and beyond
the BMP, lone surrogates, grapheme clusters, lone combining marks, texts long enough for
hundreds of parts) with every option, and compare the two public functions: same parts and
encoding, or the same error.
"""

from __future__ import annotations

import pickle
import platform

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agile_async import ValidationError, _counting
from agile_async._graphemes import clusters
from agile_async.segments import (
    MAX_PARTS,
    PartCount,
    PriceList,
    count_parts,
    count_segments,
    estimate_cost,
    part_capacity,
    split_segments,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"
# Characters next to the GSM alphabet that are not in it, and what smart encoding replaces.
NEAR_GSM = "°çÈÀáí`\t\x1b\x00\x7f\u00a0’“”–—…«»ｆ\u200b\u2009\u0302"
CLUSTERS = [
    "😀", "𠀀", "❤️", "e\u0301", "1️⃣", "🇮🇹", "🇫🇷", "👍🏽", "🏳️‍🌈", "👨‍👩‍👧‍👦", "🧑‍🤝‍🧑", "🫶🏽",
    "क्ष", "각", "\u1100\u1161\u11a8", "\r\n", "\u0600a", "\u200d", "\U0001f3fb",
]  # fmt: skip
LONE_MARKS = ["\u0301", "\u0308", "\u20e3", "\ufe0f", "\u093f", "\u0e31", "\u200d"]

atoms = st.one_of(
    st.sampled_from(GSM_BASIC),
    st.sampled_from(GSM_EXTENSION),
    st.sampled_from(NEAR_GSM),
    st.sampled_from(CLUSTERS),
    st.sampled_from(LONE_MARKS),
    st.characters(codec=None, categories=None),  # anything, lone surrogates included
)
short_texts = st.lists(atoms, max_size=80).map("".join)
# Mostly GSM with a few others sprinkled in: the texts whose part boundaries matter.
mostly_gsm = st.lists(
    st.one_of(st.just("a"), st.sampled_from(GSM_BASIC + GSM_EXTENSION), atoms), max_size=700
).map("".join)
# Repeated chunks: hundreds of parts, and more than MAX_PARTS.
long_texts = st.builds(lambda chunk, n: chunk * n, short_texts, st.integers(1, 600))
texts = st.one_of(short_texts, mostly_gsm, long_texts)

udhs = st.one_of(
    st.none(),
    st.sampled_from(["", "070645670000", "0605040001000200", "0003", "zz", "123"]),
    st.integers(0, 140).map(lambda n: "ab" * n),
    st.binary(max_size=140),
)


def outcome(function: object, text: str, **options: object) -> tuple[object, ...]:
    """What a counting function answered: ``(parts, encoding)`` or the error raised."""
    try:
        if function is count_parts:
            parts = count_parts(text, **options)  # type: ignore[arg-type]
            return ("ok", parts.parts, parts.encoding)
        count = count_segments(text, **options)  # type: ignore[arg-type]
        return ("ok", count.segments, count.encoding)
    except ValidationError as exc:
        return ("error", tuple((p.field, p.message) for p in exc.problems))


@settings(max_examples=600, deadline=None)
@given(text=texts, unicode=st.booleans(), smart_encoding=st.booleans(), udh=udhs)
def test_count_parts_agrees_with_count_segments(
    text: str, unicode: bool, smart_encoding: bool, udh: str | bytes | None
) -> None:
    options = {"unicode": unicode, "smart_encoding": smart_encoding, "udh": udh}
    assert outcome(count_parts, text, **options) == outcome(count_segments, text, **options)


@settings(max_examples=300, deadline=None)
@given(
    before=st.integers(0, 400),
    middle=st.sampled_from(list(GSM_EXTENSION) + CLUSTERS + LONE_MARKS + ["°", "’", "\x1b"]),
    after=st.integers(0, 400),
    filler=st.sampled_from(["a", "è", "Δ", "€", "ж", "😀"]),
)
def test_agreement_around_part_boundaries(
    before: int, middle: str, after: int, filler: str
) -> None:
    """One odd atom anywhere in a run: every position of it against every part boundary."""
    text = filler * before + middle + filler * after
    assert outcome(count_parts, text) == outcome(count_segments, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (1, "GSM-7")),
        ("a" * 160, (1, "GSM-7")),
        ("a" * 161, (2, "GSM-7")),
        ("a" * 152 + "€" + "a" * 152, (3, "GSM-7")),
        ("€" * 153, (3, "GSM-7")),
        ("a" * 151 + "€" + "a" * 153, (2, "GSM-7")),
        ("a" * 152 + "\r\n" + "a" * 152, (2, "GSM-7")),
        ("Δ" * 161, (2, "GSM-7")),
        ("a" * 66 + "😀" + "a" * 66, (3, "UCS-2")),
        ("😀" * 67, (3, "UCS-2")),
        ("a" * 65 + "🇮🇹" + "a" * 65, (3, "UCS-2")),
        ("😀" * 35, (1, "UCS-2")),  # 70 units: the short-text shortcut's edge
        ("😀" * 36, (2, "UCS-2")),
        ("°" * 70, (1, "UCS-2")),
        ("°" * 71, (2, "UCS-2")),
        ("\x1b", (1, "UCS-2")),
        ("Attention: Tomorrow temperatures reaching up to 38°C", (1, "UCS-2")),
    ],
)
def test_segments_md_tables(text: str, expected: tuple[int, str]) -> None:
    assert count_parts(text) == expected
    count = count_segments(text)
    assert (count.segments, count.encoding) == expected


def test_a_part_count_is_a_named_tuple() -> None:
    counted = count_parts("a" * 200)
    parts, encoding = counted
    assert (parts, encoding) == (counted.parts, counted.encoding) == (2, "GSM-7")
    assert counted == PartCount(2, "GSM-7")
    assert repr(counted) == "PartCount(parts=2, encoding='GSM-7')"
    assert pickle.loads(pickle.dumps(counted)) == counted
    assert type(counted) is PartCount


def test_options_mirror_count_segments() -> None:
    assert count_parts("“Hi” — 38C", smart_encoding=True) == (1, "GSM-7")
    assert count_parts("“Hi” — 38C") == (1, "UCS-2")
    assert count_parts("a" * 153, udh="070645670000") == (1, "GSM-7")
    assert count_parts("a" * 154, udh="070645670000") == (2, "GSM-7")
    assert count_parts("a" * 153, udh=bytes(6)) == (1, "GSM-7")
    # A UDH that leaves a part 66 units: 34 emoji (68 units) no longer fit in one.
    assert count_parts("😀" * 33, udh="0605040001000200") == (1, "UCS-2")
    assert count_parts("😀" * 34, udh="0605040001000200") == (2, "UCS-2")
    assert count_parts("a" * 153 * MAX_PARTS + "a") == (MAX_PARTS + 1, "GSM-7")


def test_errors_mirror_count_segments() -> None:
    with pytest.raises(ValidationError) as caught:
        count_parts("38°C", unicode=False)
    assert caught.value.problems[0].field == "body"
    assert "'°' (U+00B0)" in caught.value.problems[0].message
    with pytest.raises(ValidationError) as caught:
        count_parts("hi", udh="zz")
    assert caught.value.problems[0].field == "udh_data"
    with pytest.raises(TypeError):
        count_parts(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        count_parts("x", udh=7)  # type: ignore[arg-type]


def test_the_estimator_counts_as_count_parts() -> None:
    """The estimator takes the fast path without keep_messages: same totals either way."""
    prices = PriceList({"39": "0.045"})
    messages = [("a" * 152 + "€" + "a" * 152, ["391", "392"]), ("😀" * 67, "393"), ("", "394")]
    fast = estimate_cost(prices, messages)
    kept = estimate_cost(prices, messages, keep_messages=True)
    assert fast.parts == kept.parts == 3 * 2 + 3 + 1
    assert fast.total == kept.total
    assert [m.count.segments for m in kept.per_message] == [3, 3, 1]


NEAR_ONE_PART = ["a", "€", "Δ", "°", "ж", "😀", "👍🏽", "e\u0301", "\ud800"]


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(
        st.lists(st.sampled_from(NEAR_ONE_PART), min_size=20, max_size=90).map("".join),
        # Mostly astral: 35 code points may be 70 units or more.
        st.builds(
            lambda n, extra: "😀" * n + "".join(extra),
            st.integers(25, 40),
            st.lists(st.sampled_from(NEAR_ONE_PART), max_size=6),
        ),
    ),
    udh=st.sampled_from([None, "0003", "070645670000", "0605040001000200", "00" * 20]),
)
def test_agreement_around_one_part(text: str, udh: str | None) -> None:
    """Texts near one part's capacity, where count_parts skips work count_segments does."""
    assert outcome(count_parts, text, udh=udh) == outcome(count_segments, text, udh=udh)


@pytest.mark.parametrize(
    "cluster",
    [
        *("e\u0301", "\u0e01\u0e31", "\u1100\u1161", "\u0600a", "a\u200d"),
        *("😀", "👍🏽", "🇮🇹", "1️⃣"),
        # Astral code points that join: a prepend (U+110BD) and a spacing mark (U+1D166).
        *("\U000110bda", "a\U0001d166"),
    ],
)
@pytest.mark.parametrize("filler", ["ж", "😀", "a", "°"])
def test_a_cluster_at_every_cut_position_against_the_splitter(cluster: str, filler: str) -> None:
    """A cluster placed across each cut of a UCS-2 text: the count follows the clusters.

    The splitter lists every cluster (no shortcut), so it is the reference here. With 201
    units of 1-unit filler, a cluster across cut 67 or 134 makes four parts, anywhere else
    three; with 2-unit filler the cuts move around the pairs.
    """
    width = len(cluster.encode("utf-16-le")) // 2
    step = len(filler.encode("utf-16-le")) // 2
    for before in range(0, 201 - width, step):
        text = filler * (before // step) + cluster + filler * ((201 - width - before) // step)
        expected = len(split_segments(text))
        assert count_parts(text).parts == count_segments(text).segments == expected, before
        if step == 1:
            across = any(before < cut < before + width for cut in (67, 134))
            assert expected == (4 if across else 3), before


@pytest.mark.parametrize(
    "cluster", ["e\u0301", "\u0e01\u0e31", "\u1100\u1161", "\u0600a", "a\u200d", "\u200d", "\u0301"]
)
@pytest.mark.parametrize("filler", ["ж", "a", "°"])
def test_a_cluster_at_every_position_of_a_text_with_one_cut(cluster: str, filler: str) -> None:
    """A text of 134 units (two full parts) has one cut, at 67, whose two sides are looked
    at directly: a cluster across it makes three parts, anywhere else two; a lone mark or
    joiner just after the cut joins the code point before it."""
    for before in range(135 - len(cluster)):
        text = filler * before + cluster + filler * (134 - len(cluster) - before)
        expected = len(split_segments(text))
        assert count_parts(text).parts == count_segments(text).segments == expected, before
        across = before < 67 < before + len(cluster) or (
            before == 67 and cluster[0] in "\u0301\u200d"
        )
        assert expected == (3 if across else 2), before


def naive_parts(text: str, udh_octets: int) -> tuple[int, str]:
    """SEGMENTS.md §6 as a plain loop over every atom: clusters (the splitter's) and UTF-16
    lengths from the codec, no shortcut. The texts below have no cluster near a part's size,
    where Twilio's fill and §6's agree."""
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        encoding, costs = "GSM-7", [2 if char in GSM_EXTENSION else 1 for char in text]
    else:
        encoding, costs = "UCS-2", clusters(text)[1]
    single = part_capacity(encoding, udh_octets=udh_octets)  # type: ignore[arg-type]
    multi = part_capacity(encoding, udh_octets=udh_octets, multipart=True)  # type: ignore[arg-type]
    if sum(costs) <= single:
        return 1, encoding
    parts, used = 1, 0
    for cost in costs:
        if used and used + cost > multi:
            parts, used = parts + 1, cost
        else:
            used += cost
    return parts, encoding


def test_the_storage_shortcuts_are_on_here() -> None:
    """On CPython the Latin-1 and BMP shortcuts apply, so the tests below exercise them."""
    if platform.python_implementation() == "CPython":
        assert _counting._LATIN1_SIZE > 0
        assert _counting._BMP_SIZE > 0


# Characters of each storage width (Latin-1, the rest of the BMP, astral), GSM-7 or not,
# and joiners to put against the cuts.
LATIN1 = "èéùìòÇØøÅåÆæßÉ¡ÄÖÑÜ§¿äöñüà°çáíóú\xa0«»¤£¥"
WIDE = "жΔΦΓΛΩΠΨΣΘΞ€’“”–…你\u0301\u200d\u1100\u0600\ufe0f\ud800\udc00"
storage_texts = st.one_of(
    st.text(st.sampled_from(GSM_BASIC + GSM_EXTENSION + LATIN1), max_size=700),
    st.text(st.characters(max_codepoint=0xFF), max_size=400),
    st.text(st.sampled_from("ab €" + LATIN1 + WIDE), max_size=400),
    st.text(st.characters(max_codepoint=0xFFFF, codec=None, categories=None), max_size=300),
    st.builds(
        lambda filler, before, middle, after: filler * before + middle + filler * after,
        st.sampled_from(["a", "è", "°", "ж", "€", "Δ", "😀"]),
        st.integers(0, 300),
        st.sampled_from(["", "😀", "\u0301", "\u200d", "\u1100", "\u0600", "\ud800", "Δ", "€"]),
        st.integers(0, 300),
    ),
)


@settings(max_examples=500, deadline=None)
@given(text=storage_texts, udh=st.sampled_from([None, "0003", "0605040001000200"]))
def test_the_storage_shortcuts_count_as_every_atom_does(text: str, udh: str | None) -> None:
    """Latin-1 texts (one byte a character) and BMP texts (no surrogate pairs) are counted
    partly from how CPython stores them: the count is §6's over every atom, wherever a
    joiner, an escape or a wide character falls against the cuts, for both functions."""
    assume(max(clusters(text)[1], default=1) <= 11)  # see naive_parts
    expected = naive_parts(text, len(udh) // 2 if udh else 0)
    assert count_parts(text, udh=udh) == expected
    count = count_segments(text, udh=udh)
    assert (count.segments, count.encoding) == expected


@pytest.mark.parametrize(
    "text",
    ["è" * 200, "ж" * 140, "°" * 71, "ж" * 66 + "\u0301" * 3 + "ж" * 66, "Δ€" * 90, "😀" * 40],
)
def test_a_cached_utf8_copy_only_makes_a_text_look_wider(text: str) -> None:
    """CPython may keep a UTF-8 copy of a str (here: after naming a class with it), which
    grows its size: the shortcuts then do not apply, and the count is the same."""
    fresh = "".join(list(text))
    type(text, (), {})  # caches the UTF-8 copy of ``text``
    assert str.__sizeof__(text) > str.__sizeof__(fresh)
    assert count_parts(text) == count_parts(fresh) == naive_parts(fresh, 0)
    assert count_segments(text) == count_segments(fresh)
