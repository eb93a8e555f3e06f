"""Price lists and cost estimates: longest prefix, Decimal exactness, lazy streams."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Iterator, Sequence
from decimal import Decimal

import attrs
import pytest

import agile_async
from agile_async.segments import (
    CostEstimate,
    EstimateInput,
    PriceList,
    estimate_cost,
    estimate_message,
    iter_estimates,
)

PRICES = PriceList({"39": "0.045", "+393": Decimal("0.040"), "44": 1}, default="0.09")


@attrs.frozen
class FakeMessage:
    """Shaped like the SDK's Message: the attributes the estimators read."""

    body: str
    destinations: tuple[str, ...]
    hex_body: bool = False
    udh_data: str | None = None


# --- PriceList ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "price"),
    [
        ("+393401234567", Decimal("0.040")),  # "393" beats "39"
        ("393401234567", Decimal("0.040")),  # "+" optional
        ("+390612345678", Decimal("0.045")),
        ("+447700900123", Decimal("1")),
        ("+4915112345678", Decimal("0.09")),  # the default
    ],
)
def test_longest_prefix_wins(destination: str, price: Decimal) -> None:
    assert PRICES.price_for(destination) == price


def test_prices_are_normalised_to_decimal_and_digits() -> None:
    assert dict(PRICES.prices) == {
        "39": Decimal("0.045"),
        "393": Decimal("0.040"),
        "44": Decimal("1"),
    }
    assert PRICES.default == Decimal("0.09")
    assert "'393': Decimal('0.040')" in repr(PRICES)


def test_no_default_names_the_destination() -> None:
    prices = PriceList({"39": "0.045"})
    with pytest.raises(agile_async.ValidationError) as caught:
        prices.price_for("+4912345678")
    (problem,) = caught.value.problems
    assert problem.field == "destination"
    assert "+4912345678" in problem.message


@pytest.mark.parametrize("destination", ["", "+", "+39 340", "abc", "++39", "٣٩"])
def test_destinations_must_be_numbers(destination: str) -> None:
    with pytest.raises(agile_async.ValidationError, match="not an international number"):
        PRICES.price_for(destination)


@pytest.mark.parametrize("price", [0.045, True, None, [1]])
def test_prices_must_not_be_floats(price: object) -> None:
    with pytest.raises(agile_async.ConfigurationError):
        PriceList({"39": price})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "prices",
    [{"39": "-0.01"}, {"39": "NaN"}, {"39": "Infinity"}, {"39": "cheap"}, {"3x": "1"}, {"": "1"}],
)
def test_invalid_price_lists(prices: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        PriceList(prices)


def test_a_prefix_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        PriceList({"39": "0.04", "+39": "0.05"})


def test_price_list_is_frozen_and_hashable() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        PRICES.default = Decimal(0)  # type: ignore[misc]
    assert isinstance(hash(PRICES), int)
    assert PriceList({"39": "0.045"}) == PriceList({"+39": Decimal("0.045")})


# --- one message ------------------------------------------------------------------------------


def test_estimate_one_message_from_a_pair() -> None:
    estimate = estimate_message(PRICES, ("a" * 200, ["+393401234567", "+447700900123"]))
    assert (estimate.count.segments, estimate.destinations, estimate.parts) == (2, 2, 4)
    assert estimate.cost == 2 * (Decimal("0.040") + Decimal("1"))


def test_a_single_destination_may_be_a_string() -> None:
    estimate = estimate_message(PRICES, ("hi", "+393401234567"))
    assert (estimate.destinations, estimate.cost) == (1, Decimal("0.040"))


def test_estimate_a_message_object() -> None:
    message = FakeMessage("°" * 71, ("+390612345678",))
    estimate = estimate_message(PRICES, message)
    assert (estimate.count.encoding, estimate.parts) == ("UCS-2", 2)
    assert estimate.cost == Decimal("0.090")


def test_hex_bodies_and_udh_are_counted() -> None:
    hex_message = FakeMessage("00" * 141, ("+390612345678",), hex_body=True)
    assert estimate_message(PRICES, hex_message).parts == 2
    udh_message = FakeMessage("a" * 155, ("+390612345678",), udh_data="070645670000")
    assert estimate_message(PRICES, udh_message).parts == 2


def test_unicode_and_smart_encoding_options() -> None:
    message = ("“Ciao” – 38 gradi", ["+390612345678"])
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate_message(PRICES, message, unicode=False)
    assert caught.value.problems[0].field == "body"
    smart = estimate_message(PRICES, message, unicode=False, smart_encoding=True)
    assert smart.count.encoding == "GSM-7"


# --- many messages ----------------------------------------------------------------------------


def test_estimate_a_list() -> None:
    messages: list[EstimateInput] = [
        ("Ciao", ["+393401234567"]),
        ("a" * 161, ["+447700900123", "+4915112345678"]),
        FakeMessage("😀", ("+390612345678",)),
    ]
    estimate = estimate_cost(PRICES, messages, keep_messages=True)
    assert estimate == CostEstimate(
        total=Decimal("0.040") + 2 * (Decimal("1") + Decimal("0.09")) + Decimal("0.045"),
        parts=1 + 4 + 1,
        messages=3,
        destinations=4,
        currency="EUR",
        per_message=estimate.per_message,
    )
    assert [e.index for e in estimate.per_message] == [0, 1, 2]
    assert [e.parts for e in estimate.per_message] == [1, 4, 1]
    assert estimate_cost(PRICES, messages).per_message == ()


def test_decimal_totals_are_exact() -> None:
    prices = PriceList({"39": "0.1"})
    estimate = estimate_cost(prices, itertools.repeat(("hi", "+390612345678"), 3))
    assert estimate.total == Decimal("0.3")  # 0.1 + 0.1 + 0.1 != 0.3 in floats
    many = estimate_cost(prices, itertools.repeat(("hi", "+390612345678"), 100_000))
    assert many.total == Decimal("10000.0")


def test_empty_input() -> None:
    assert estimate_cost(PRICES, []) == CostEstimate(Decimal(0), 0, 0, 0)


def test_shortfall_for_the_credit_preflight() -> None:
    estimate = estimate_cost(PRICES, [("a" * 200, ["+447700900123"])])
    assert estimate.total == Decimal("2")
    assert estimate.shortfall(Decimal("10.324")) == Decimal(0)
    assert estimate.shortfall(Decimal("1.5")) == Decimal("0.5")


def test_errors_name_the_message_and_destination() -> None:
    prices = PriceList({"39": "0.045"})
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate_cost(prices, [("ok", ["+390612345678"]), ("ok", ["+390612345678", "+44770"])])
    assert caught.value.problems[0].field == "messages[1].destinations[1]"
    mixed: list[EstimateInput] = [("ok", ["+39061"]), FakeMessage("zz", ("+39061",), hex_body=True)]
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate_cost(prices, mixed)
    assert caught.value.problems[0].field == "messages[1].body"
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate_cost(prices, [FakeMessage("hi", ("+39061",), udh_data="0")])
    assert caught.value.problems[0].field == "messages[0].udh_data"


@pytest.mark.parametrize("keep_messages", [False, True])
def test_totals_and_errors_are_the_same_with_or_without_kept_messages(
    keep_messages: bool,
) -> None:
    """Without keep_messages the estimator counts only parts (count_parts): same answers."""
    prices = PriceList({"39": "0.045"})
    messages: list[EstimateInput] = [
        ("“Hi” — ok", ["+390612345678"]),
        ("a" * 152 + "€" + "a" * 152, ["+390612345678", "+39333"]),
        FakeMessage("00" * 141, ("+39061",), hex_body=True),
    ]
    estimate = estimate_cost(prices, messages, smart_encoding=True, keep_messages=keep_messages)
    assert (estimate.parts, estimate.total, estimate.destinations) == (
        1 + 6 + 2,
        Decimal("0.405"),
        4,
    )
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate_cost(
            prices, [*messages, ("38°", "+39061")], unicode=False, keep_messages=keep_messages
        )
    assert caught.value.problems[0].field == "messages[0].body"  # the curly quotes
    assert "smart_encoding=True would replace" in caught.value.problems[0].message


def _campaign(n: int | None = None) -> Iterator[FakeMessage]:
    numbers = itertools.count(393400000000) if n is None else range(393400000000, 393400000000 + n)
    for number in numbers:
        yield FakeMessage(f"Ciao {number % 1000}, il tuo codice è {number % 997}", (f"+{number}",))


def test_streams_are_consumed_lazily() -> None:
    """An endless generator can be estimated one message at a time."""
    first = list(itertools.islice(iter_estimates(PRICES, _campaign()), 3))
    assert [estimate.index for estimate in first] == [0, 1, 2]


def test_stream_estimate_uses_constant_memory() -> None:
    def peak(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            estimate = estimate_cost(PRICES, _campaign(n))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert estimate.messages == n
        return peak

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.5 + 50_000, (small, large)


def test_an_iterable_of_sequences_of_destinations() -> None:
    destinations: Sequence[str] = ["+393401234567"] * 3
    estimate = estimate_cost(PRICES, [("x", destinations)])
    assert (estimate.destinations, estimate.parts) == (3, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: estimate_cost({"39": "0.05"}, []),  # type: ignore[arg-type]
        lambda: estimate_message(None, ("+393471234567", "hi")),  # type: ignore[arg-type]
        lambda: iter_estimates("0.05", []),  # type: ignore[arg-type]
    ],
    ids=["estimate_cost", "estimate_message", "iter_estimates"],
)
def test_prices_must_be_a_price_list(call: object) -> None:
    with pytest.raises(agile_async.ConfigurationError, match="prices must be a PriceList"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "messages",
    [
        None,
        "+393471234567",
        agile_async.Message(destinations="+393471234567", sender="S", body="one message"),
        3,
    ],
    ids=["None", "str", "Message", "int"],
)
@pytest.mark.parametrize("estimate", [estimate_cost, iter_estimates])
def test_what_is_not_a_collection_of_messages_is_named_at_once(
    estimate: object, messages: object
) -> None:
    """Refused when called (iter_estimates too, not at its first estimate), naming
    ``messages``: a string was taken as messages of one character each, None was a
    TypeError."""
    with pytest.raises(agile_async.ValidationError) as caught:
        estimate(PRICES, messages)  # type: ignore[operator]
    assert [p.field for p in caught.value.problems] == ["messages"]


def test_a_price_list_is_a_mapping() -> None:
    with pytest.raises(agile_async.ConfigurationError, match="prices must be a mapping"):
        PriceList(None)  # type: ignore[arg-type]
