"""What messages will cost: a price list by destination prefix, and estimates.

Bulk senders pay per SMS part and per destination, so an estimate is
``parts of the body x price of each destination``, summed. Money is :class:`~decimal.Decimal`
throughout: a float cannot even hold 0.1, and a campaign multiplies the error by millions.

The estimators take any iterable and consume it lazily, so a campaign read from a file or a
database is priced in O(1) memory (:func:`estimate_cost`, :func:`iter_estimates`). Their
input is anything with ``body``, ``destinations``, ``hex_body`` and ``udh_data`` attributes
(the SDK's ``Message`` has exactly those), or plain ``(body, destinations)`` pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol, TypeAlias

import attrs

from ._counting import (
    SegmentCount,
    check_count_options,
    count_hex_segments,
    count_parts,
    count_segments,
)
from ._exceptions import Problem, ValidationError
from ._setting_validators import check_amount, check_flag, invalid
from ._validation import is_collection

__all__ = [
    "CostEstimate",
    "EstimateInput",
    "MessageEstimate",
    "MessageLike",
    "PriceList",
    "estimate_cost",
    "estimate_message",
    "iter_estimates",
]

#: A price as given: a Decimal, or an int or str that converts exactly. Never a float.
PriceInput: TypeAlias = Decimal | int | str


class MessageLike(Protocol):
    """What the estimators read from a message (the SDK's ``Message`` fits)."""

    @property
    def body(self) -> str: ...

    @property
    def destinations(self) -> Sequence[str]: ...

    @property
    def hex_body(self) -> bool: ...

    @property
    def udh_data(self) -> str | None: ...


#: One message to estimate: a message object, or ``(body, destinations)`` where destinations
#: is a sequence of numbers or a single number.
EstimateInput: TypeAlias = MessageLike | tuple[str, Sequence[str] | str]


def _digits(number: str) -> str | None:
    """``+39 340...`` -> ``39340...``; None if it is not an international number."""
    digits = number[1:] if number.startswith("+") else number
    return digits if digits.isdigit() and digits.isascii() else None


def _prices(prices: Mapping[str, PriceInput]) -> Mapping[str, Decimal]:
    if not isinstance(prices, Mapping):
        raise invalid("prices", "must be a mapping of prefix to price", prices)
    table: dict[str, Decimal] = {}
    for prefix, value in prices.items():
        digits = _digits(prefix) if isinstance(prefix, str) else None
        if digits is None:
            raise invalid("prices", "must have prefixes of digits, '+' optional", prefix)
        if digits in table:
            raise invalid("prices", "must not give a prefix twice (with and without +)", prefix)
        table[digits] = check_amount(f"prices[{prefix!r}]", value)
    return MappingProxyType(table)


def _default(value: PriceInput | None) -> Decimal | None:
    return None if value is None else check_amount("default", value)


@attrs.frozen
class PriceList:
    """Prices per SMS part, by destination prefix; the longest matching prefix wins.

    ```python
    prices = PriceList({"39": "0.045", "+393": "0.040", "44": "0.050"}, default="0.09")
    prices.price_for("+393401234567")   # Decimal('0.040')
    prices.price_for("+4915112345678")  # Decimal('0.09'), the default
    ```

    Attributes:
        prices: prefix (digits; a leading ``+`` is accepted and dropped) -> price of one part.
            Values are Decimal, int or str; a float is refused.
        default: the price for destinations no prefix matches. ``None``: such a destination
            is an error naming it, rather than a silent guess.
        currency: a label for reports (the provider bills in EUR).
    """

    prices: Mapping[str, Decimal] = attrs.field(
        converter=_prices, hash=False, repr=lambda prices: repr(dict(prices))
    )
    default: Decimal | None = attrs.field(default=None, converter=_default)
    currency: str = "EUR"
    _lengths: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        # Only the prefix lengths that exist are tried, longest first: a few dict look-ups.
        lengths = tuple(sorted({len(prefix) for prefix in self.prices}, reverse=True))
        object.__setattr__(self, "_lengths", lengths)

    def price_for(self, destination: str) -> Decimal:
        """The price of one part to ``destination`` (``+`` optional).

        Raises:
            ValidationError: the destination is not digits (``+`` optional), or no prefix
                matches and there is no default (field ``destination``).
        """
        digits = _digits(destination)
        if digits is None:
            raise ValidationError.single(
                "destination", f"{destination!r} is not an international number"
            )
        prices = self.prices
        for length in self._lengths:
            price = prices.get(digits[:length])
            if price is not None:
                return price
        if self.default is None:
            raise ValidationError.single(
                "destination",
                f"no price for {destination!r}: no prefix matches and the price list has no "
                "default",
            )
        return self.default


@attrs.frozen
class MessageEstimate:
    """The estimate for one message.

    Attributes:
        index: the message's position in the input (0 for :func:`estimate_message`).
        count: the body's parts per destination (encoding, units, replacements...).
        destinations: how many destinations the message has.
        parts: SMS parts billed: ``count.segments x destinations``.
        cost: the sum over destinations of ``count.segments x price_for(destination)``.
    """

    index: int
    count: SegmentCount
    destinations: int
    parts: int
    cost: Decimal


@attrs.frozen
class CostEstimate:
    """The estimate for many messages.

    Attributes:
        total: the total cost, exact.
        parts: the SMS parts billed (what the provider reports as ``processedSmsParts``).
        messages: how many messages were estimated.
        destinations: how many (message, destination) pairs, i.e. SMS sent.
        currency: the price list's currency.
        per_message: each message's estimate, only with ``keep_messages=True``.
    """

    total: Decimal
    parts: int
    messages: int
    destinations: int
    currency: str = "EUR"
    per_message: tuple[MessageEstimate, ...] = ()

    def shortfall(self, credit: Decimal) -> Decimal:
        """How much more credit the estimate needs: ``Decimal(0)`` when ``credit`` covers it.

        For a pre-flight check against the account's credit (``await client.credit()``).
        """
        return max(self.total - credit, Decimal(0))


def estimate_message(
    prices: PriceList,
    message: EstimateInput,
    *,
    unicode: bool = True,
    smart_encoding: bool = False,
) -> MessageEstimate:
    """Estimate one message. ``unicode`` and ``smart_encoding`` are as in ``count_segments``.

    Raises:
        ValidationError: the body cannot be counted (non-GSM characters with
            ``unicode=False``, invalid hex or UDH) or a destination has no price; fields are
            named ``body``, ``udh_data``, ``destinations[i]``.
    """
    _check_prices(prices)
    return _estimate(prices, message, 0, "", _counter(unicode, smart_encoding))


def iter_estimates(
    prices: PriceList,
    messages: Iterable[EstimateInput],
    *,
    unicode: bool = True,
    smart_encoding: bool = False,
) -> Iterator[MessageEstimate]:
    """Estimate messages one at a time, lazily: a generator of any length in O(1) memory.

    Errors are those of :func:`estimate_message`, with fields prefixed by the message's
    position (``messages[41].body``); the generator stops at the first.
    """
    _check_prices(prices, messages)  # now, not when the first estimate is asked for
    return _estimates(prices, messages, _counter(unicode, smart_encoding))


def _estimates(
    prices: PriceList, messages: Iterable[EstimateInput], count: _Counter
) -> Iterator[MessageEstimate]:
    for index, message in enumerate(messages):
        yield _estimate(prices, message, index, f"messages[{index}].", count)


def _check_prices(prices: object, messages: object = ()) -> None:
    """Refuse what is not a :class:`PriceList`, and ``messages`` that are not a
    collection of messages (as ``client.send()`` does), naming them."""
    if not isinstance(prices, PriceList):
        raise invalid("prices", "must be a PriceList", prices)
    if not is_collection(messages):
        raise ValidationError.single(
            "messages", f"must be an iterable of messages, not {type(messages).__name__}"
        )


def estimate_cost(
    prices: PriceList,
    messages: Iterable[EstimateInput],
    *,
    unicode: bool = True,
    smart_encoding: bool = False,
    keep_messages: bool = False,
) -> CostEstimate:
    """Estimate a list or a stream of messages: total cost and parts.

    ``messages`` is consumed once, lazily. Memory stays O(1) unless ``keep_messages=True``,
    which also returns each message's :class:`MessageEstimate` in ``per_message``.

    ```python
    estimate = estimate_cost(prices, messages)
    if estimate.shortfall(await client.credit()):
        ...  # not enough credit for the campaign
    ```
    """
    _check_prices(prices, messages)
    if check_flag("keep_messages", keep_messages):
        kept = tuple(
            iter_estimates(prices, messages, unicode=unicode, smart_encoding=smart_encoding)
        )
        return CostEstimate(
            sum((estimate.cost for estimate in kept), Decimal(0)),
            sum(estimate.parts for estimate in kept),
            len(kept),
            sum(estimate.destinations for estimate in kept),
            prices.currency,
            kept,
        )
    # Only totals are kept, so only the number of parts is counted (count_parts), not a
    # SegmentCount per distinct body.
    count = _parts_counter(unicode, smart_encoding)
    total = Decimal(0)
    parts = index = destinations = 0
    for index, message in enumerate(messages, 1):
        prefix = f"messages[{index - 1}]."
        body, numbers, hex_body, udh = _fields(message)
        try:
            per_destination = count(body, hex_body, udh)
        except ValidationError as exc:
            raise _prefixed(exc, prefix) from None
        total += _price_of(prices, numbers, prefix) * per_destination
        parts += per_destination * len(numbers)
        destinations += len(numbers)
    return CostEstimate(total, parts, index, destinations, prices.currency)


_Counter: TypeAlias = Callable[[str, bool, str | None], SegmentCount]


def _counter(unicode: bool, smart_encoding: bool) -> _Counter:
    """A bounded cache of counts: a campaign often repeats one body thousands of times."""
    check_count_options(unicode, smart_encoding)  # now, not at the first count

    @functools.lru_cache(maxsize=256)
    def count(body: str, hex_body: bool, udh: str | None) -> SegmentCount:
        if hex_body:
            return count_hex_segments(body, udh=udh)
        return count_segments(body, unicode=unicode, udh=udh, smart_encoding=smart_encoding)

    return count


def _parts_counter(unicode: bool, smart_encoding: bool) -> Callable[[str, bool, str | None], int]:
    """As :func:`_counter`, for the parts alone."""
    check_count_options(unicode, smart_encoding)

    @functools.lru_cache(maxsize=256)
    def count(body: str, hex_body: bool, udh: str | None) -> int:
        if hex_body:
            return count_hex_segments(body, udh=udh).segments
        return count_parts(body, unicode=unicode, udh=udh, smart_encoding=smart_encoding).parts

    return count


def _fields(message: EstimateInput) -> tuple[str, Sequence[str], bool, str | None]:
    """``(body, destinations, hex_body, udh_data)`` of a message or a pair."""
    if isinstance(message, tuple):
        body, destinations = message
        hex_body, udh = False, None
    else:
        body, destinations = message.body, message.destinations
        hex_body, udh = message.hex_body, message.udh_data
    if isinstance(destinations, str):
        destinations = (destinations,)
    return body, destinations, hex_body, udh


def _price_of(prices: PriceList, destinations: Sequence[str], prefix: str) -> Decimal:
    """The sum of one part's price over the destinations."""
    total = Decimal(0)
    for position, destination in enumerate(destinations):
        try:
            total += prices.price_for(destination)
        except ValidationError as exc:
            raise _prefixed(exc, f"{prefix}destinations[{position}]", replace=True) from None
    return total


def _estimate(
    prices: PriceList, message: EstimateInput, index: int, prefix: str, count: _Counter
) -> MessageEstimate:
    body, destinations, hex_body, udh = _fields(message)
    try:
        counted = count(body, hex_body, udh)
    except ValidationError as exc:
        raise _prefixed(exc, prefix) from None
    total = _price_of(prices, destinations, prefix)
    n = len(destinations)
    return MessageEstimate(index, counted, n, counted.segments * n, total * counted.segments)


def _prefixed(exc: ValidationError, prefix: str, *, replace: bool = False) -> ValidationError:
    problems = [
        Problem(prefix if replace else f"{prefix}{problem.field}", problem.message)
        for problem in exc.problems
    ]
    return ValidationError(problems=problems)
