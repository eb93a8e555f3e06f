"""Property tests: the counter and splitter against a deliberately simple oracle.

The oracle is SEGMENTS.md written naively: its own GSM 03.38 table (typed in here, not
imported), UTF-16 lengths from the codec, and §6's pseudo-code as a plain loop. It needs no
grapheme library because the texts are generated *as a list of atoms*: each token below is a
whole grapheme cluster under Twilio's rules and under today's Unicode alike, and no two tokens
can join, so the oracle knows the atoms by construction. (CR and LF are separate tokens: Twilio
splits CR LF.) Every token is at most 11 UTF-16 units, where Twilio's fill and §6's agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agile_async
from agile_async.segments import count_hex_segments, count_segments, split_segments

# GSM 03.38 (3GPP TS 23.038 §6.2.1), in septet order; 0x1B (escape) left out.
ORACLE_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ORACLE_EXTENSION = "\f^{}\\[~]|€"

GSM_TOKENS = list(ORACLE_BASIC + ORACLE_EXTENSION)
UCS2_TOKENS = [
    "°", "ç", "È", "’", "\t", "\x1b", "ж", "Ω", "中", "한", "€",
    "😀", "𠀀", "❤️", "e\u0301", "1️⃣", "🇮🇹", "🇫🇷", "👍🏽", "🏳️‍🌈", "👨‍👩‍👧‍👦",
]  # fmt: skip

assert len(ORACLE_BASIC) == 127


@dataclass
class Oracle:
    encoding: str
    units: int
    parts: list[list[str]]


def oracle(tokens: list[str], udh_octets: int = 0) -> Oracle:
    text = "".join(tokens)
    if all(char in ORACLE_BASIC or char in ORACLE_EXTENSION for char in text):
        encoding = "GSM-7"
        atoms = list(text)
        costs = [2 if char in ORACLE_EXTENSION else 1 for char in atoms]
        single = 160 - -(-udh_octets * 8 // 7)
        multi = 160 - -(-(udh_octets + 5 if udh_octets else 6) * 8 // 7)
    else:
        encoding = "UCS-2"
        atoms = tokens
        costs = [len(atom.encode("utf-16-le")) // 2 for atom in atoms]
        single = (140 - udh_octets) // 2
        multi = (140 - (udh_octets + 5 if udh_octets else 6)) // 2
    if sum(costs) <= single:
        return Oracle(encoding, sum(costs), [atoms])
    parts: list[list[str]] = [[]]
    used = 0
    for atom, cost in zip(atoms, costs, strict=True):
        if used and used + cost > multi:
            parts.append([])
            used = 0
        parts[-1].append(atom)
        used += cost
    return Oracle(encoding, sum(costs), parts)


gsm_texts = st.lists(
    st.one_of(st.just("a"), st.sampled_from(GSM_TOKENS), st.sampled_from(ORACLE_EXTENSION)),
    max_size=480,
)
mixed_texts = st.lists(
    st.one_of(st.just("a"), st.sampled_from(GSM_TOKENS), st.sampled_from(UCS2_TOKENS)),
    max_size=260,
)
any_texts = st.one_of(gsm_texts, mixed_texts)


@settings(max_examples=400)
@given(any_texts)
def test_count_agrees_with_the_oracle(tokens: list[str]) -> None:
    text = "".join(tokens)
    expected = oracle(tokens)
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (
        expected.encoding,
        expected.units,
        len(expected.parts),
    )


@settings(max_examples=300)
@given(any_texts)
def test_split_agrees_with_the_oracle(tokens: list[str]) -> None:
    text = "".join(tokens)
    expected = ["".join(part) for part in oracle(tokens).parts]
    assert split_segments(text) == expected


@settings(max_examples=200)
@given(any_texts, st.sampled_from([1, 6, 7, 12, 40]))
def test_caller_udh_agrees_with_the_oracle(tokens: list[str], udh_octets: int) -> None:
    text = "".join(tokens)
    expected = oracle(tokens, udh_octets)
    count = count_segments(text, udh="00" * udh_octets)
    assert (count.encoding, count.segments) == (expected.encoding, len(expected.parts))
    assert len(split_segments(text, udh=bytes(udh_octets))) == len(expected.parts)


@settings(max_examples=200)
@given(any_texts)
def test_unicode_false_raises_exactly_for_non_gsm_text(tokens: list[str]) -> None:
    text = "".join(tokens)
    if oracle(tokens).encoding == "GSM-7":
        assert count_segments(text, unicode=False).encoding == "GSM-7"
        return
    with pytest.raises(agile_async.ValidationError) as caught:
        count_segments(text, unicode=False)
    assert caught.value.problems[0].field == "body"


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_any_text_splits_into_parts_that_rejoin(text: str) -> None:
    """Whatever the text (lone surrogates, controls, any script): the invariants hold."""
    count = count_segments(text)
    parts = split_segments(text)
    assert "".join(parts) == text
    assert len(parts) == count.segments
    assert count.units == (
        len(text) + sum(text.count(c) for c in ORACLE_EXTENSION)
        if count.encoding == "GSM-7"
        else len(text.encode("utf-16-le", "surrogatepass")) // 2
    )


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from("«»“”‘’–—…•\u00a0\t½€°çabc {}"), max_size=300))
def test_smart_encoding_is_reported_and_idempotent(text: str) -> None:
    smart = count_segments(text, smart_encoding=True)
    assert all(original not in smart.text for original, _ in smart.replacements)
    assert all(original in text for original, _ in smart.replacements)
    plain = count_segments(smart.text)
    assert (plain.encoding, plain.units, plain.segments) == (
        smart.encoding,
        smart.units,
        smart.segments,
    )
    assert count_segments(smart.text, smart_encoding=True).replacements == ()


@settings(max_examples=100)
@given(st.binary(max_size=1200))
def test_hex_bodies(octets: bytes) -> None:
    count = count_hex_segments(octets.hex())
    n = len(octets)
    assert count.units == n
    assert count.segments == (1 if n <= 140 else -(-n // 134))
