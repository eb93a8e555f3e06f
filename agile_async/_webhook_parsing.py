"""Strict parsing of the delivery reports the provider posts to a webhook.

The provider signs nothing, so a report is untrusted input from the internet until proven
otherwise: every field is checked for its type, its range and its length, and *every*
problem is reported at once, each naming its field with the report's index when the body is
a list (``[2].statusCode: must be 1 to 6, not 9``), in one
:class:`InvalidDeliveryReportError` (a :class:`~agile_async.ValidationError`).

The fields are checked by hand rather than by structuring the whole :class:`DeliveryReport`
with the SDK's cattrs converter: the wire names do not all follow the camelCase rule
(``statusCode`` is ``status``), most checks are about ranges and lengths rather than types,
and one pass that writes wire-named problems is simpler than translating cattrs' exception
groups back into wire names. The converter's own hooks still do the type conversions they
exist for (integers that really are integers, money as :class:`~decimal.Decimal`), so the
SDK has one idea of what an amount or a count is.

Limits against hostile input (each bounds the work and memory one body can cause):

- at most :data:`DEFAULT_MAX_REPORTS` reports per body (``max_reports=``);
- strings: ``messageId`` at most 256 characters, ``description`` 1,024, the operators 64,
  ``doneDate`` 64, ``price`` (as text) 64, ``destination`` 32 before its digits are checked;
- at most :data:`MAX_LISTED_PROBLEMS` problems are listed in one error (the rest are counted);
- values quoted in problems are cut to 40 characters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from ._counting import MAX_PARTS
from ._exceptions import InvalidDeliveryReportError, Problem
from ._models import DeliveryReport, DeliveryStatus
from ._serde import converter, loads, parse_provider_datetime
from ._validation import check_destination

__all__ = [
    "DEFAULT_MAX_REPORTS",
    "MAX_LISTED_PROBLEMS",
    "parse_delivery_report",
    "parse_delivery_reports",
]

#: How many reports one body may carry. The provider posts one report per SMS part; this
#: bound only stops a hostile body from making the parser build an unbounded list.
DEFAULT_MAX_REPORTS: Final = 10_000

#: How many problems one error lists; past that they are only counted, so a hostile body
#: cannot turn into a megabyte of error text.
MAX_LISTED_PROBLEMS: Final = 100

_MAX_MESSAGE_ID = 256
_MAX_DESCRIPTION = 1024
_MAX_OPERATOR = 64
_MAX_DATE = 64
_MAX_PRICE_TEXT = 64
_MAX_DESTINATION_TEXT = 32
_MAX_SHOWN = 40


def parse_delivery_reports(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any] | list[Any] | tuple[Any, ...],
    *,
    max_reports: int = DEFAULT_MAX_REPORTS,
) -> list[DeliveryReport]:
    """Parse a webhook body into delivery reports, checking every field.

    **Parameters:**

    * **body** - the raw body (``bytes`` or ``str`` holding JSON), or already-decoded JSON: a
      mapping (one report) or a list of mappings.
    * **max_reports** - the most reports one body may carry.

    **Returns:** the reports, in the order of the body (one for a single mapping; none for
    an empty list).

    **Raises:** :class:`InvalidDeliveryReportError` naming every problem: ``body`` for a
    body that is not JSON or not an object/array, ``statusCode`` for a single report,
    ``[2].statusCode`` for the third report of a list.

    Normalisation: ``destination`` becomes ``+digits`` (the provider sends both forms);
    ``doneDate`` becomes an aware :class:`~datetime.datetime`; ``price`` a
    :class:`~decimal.Decimal` (a JSON float through its shortest repr, so ``0.005`` is
    exactly ``Decimal("0.005")``); an absent or ``null`` optional field, or an empty
    operator, is ``None``; absent ``concatTotal``/``concatProgressive`` are 1 (a single-part
    message). Unknown fields are ignored, so a provider that adds fields breaks nothing.
    """
    data = _decode(body)
    if isinstance(data, Mapping):
        items: list[tuple[str, object]] = [("", data)]
    elif isinstance(data, (list, tuple)):
        if len(data) > max_reports:
            raise InvalidDeliveryReportError.single(
                "body", f"at most {max_reports} reports per body, got {len(data)}"
            )
        items = [(f"[{index}]", item) for index, item in enumerate(data)]
    else:
        raise InvalidDeliveryReportError.single(
            "body", f"must be a JSON object or an array of objects, not {_kind(data)}"
        )
    problems = _Problems()
    reports = []
    for at, item in items:
        report = _report_from(item, at, problems)
        if report is not None:
            reports.append(report)
    problems.raise_if_any()
    return reports


def parse_delivery_report(data: Mapping[str, Any]) -> DeliveryReport:
    """Parse one already-decoded report (a mapping of wire names), checking every field.

    **Raises:** :class:`InvalidDeliveryReportError` naming every bad field (``statusCode``).
    """
    problems = _Problems()
    report = _report_from(data, "", problems)
    problems.raise_if_any()
    assert report is not None  # no problems means a report was built
    return report


# -- decoding --------------------------------------------------------------------------------


def _decode(body: object) -> object:
    """Raw JSON text to Python data; decoded data passes through."""
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, (bytes, str)):
        return body
    try:
        return loads(body)
    except RecursionError:
        raise InvalidDeliveryReportError.single("body", "JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        reason = _cut(str(err).splitlines()[0] if str(err) else type(err).__name__, 80)
        raise InvalidDeliveryReportError.single("body", f"not valid JSON ({reason})") from None


# -- one report ------------------------------------------------------------------------------


class _Problems:
    """Collects problems up to :data:`MAX_LISTED_PROBLEMS`, counting the rest."""

    def __init__(self) -> None:
        self.listed: list[Problem] = []
        self.unlisted = 0

    def add(self, field: str, message: str) -> None:
        if len(self.listed) < MAX_LISTED_PROBLEMS:
            self.listed.append(Problem(field, message))
        else:
            self.unlisted += 1

    def raise_if_any(self) -> None:
        if not self.listed:
            return
        problems = list(self.listed)
        if self.unlisted:
            problems.append(Problem("body", f"{self.unlisted} more problems not listed"))
        raise InvalidDeliveryReportError(problems=problems)


def _report_from(item: object, at: str, problems: _Problems) -> DeliveryReport | None:
    """One report from one mapping, or ``None`` after adding its problems."""
    if not isinstance(item, Mapping):
        problems.add(at or "body", f"must be an object, not {_kind(item)}")
        return None
    before = len(problems.listed) + problems.unlisted
    reader = _Reader(item, at, problems)
    message_id = reader.required("messageId", _message_id)
    destination = reader.required("destination", _destination)
    status = reader.required("statusCode", _status)
    description = reader.required("description", _text(_MAX_DESCRIPTION, allow_empty=True))
    done_date = reader.required("doneDate", _done_date)
    concat_total = reader.optional("concatTotal", _part_number)
    concat_progressive = reader.optional("concatProgressive", _part_number)
    lcr_operator = reader.optional("lcrOperator", _operator)
    real_operator = reader.optional("realOperator", _operator)
    price = reader.optional("price", _price)
    total = 1 if concat_total is None else concat_total
    progressive = 1 if concat_progressive is None else concat_progressive
    if concat_progressive is not None and concat_total is not None and progressive > total:
        problems.add(
            reader.path("concatProgressive"),
            f"must not exceed concatTotal ({progressive} > {total})",
        )
    if len(problems.listed) + problems.unlisted > before:
        return None
    return DeliveryReport(
        message_id=message_id,
        destination=destination,
        status=status,
        description=description,
        done_date=done_date,
        concat_total=total,
        concat_progressive=progressive,
        lcr_operator=lcr_operator or None,
        real_operator=real_operator or None,
        price=price,
    )


class _Reader:
    """Reads fields of one report, turning each failed check into a problem at its path."""

    def __init__(self, item: Mapping[Any, Any], at: str, problems: _Problems) -> None:
        self._item = item
        self._at = at
        self._problems = problems

    def path(self, name: str) -> str:
        return f"{self._at}.{name}" if self._at else name

    def required(self, name: str, check: Callable[[object], Any]) -> Any:
        value = self._item.get(name)
        if value is None:
            what = "is required" if name not in self._item else "is required (got null)"
            self._problems.add(self.path(name), what)
            return None
        return self._check(name, value, check)

    def optional(self, name: str, check: Callable[[object], Any]) -> Any:
        value = self._item.get(name)
        return None if value is None else self._check(name, value, check)

    def _check(self, name: str, value: object, check: Callable[[object], Any]) -> Any:
        try:
            return check(value)
        except _Bad as bad:
            self._problems.add(self.path(name), str(bad))
            return None


class _Bad(Exception):
    """One field's problem, raised by a check and caught by :class:`_Reader`."""


# -- the checks, one per kind of field ---------------------------------------------------------


def _string(value: object, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, not {_kind(value)}")
    if not value and not allow_empty:
        raise _Bad("must not be empty")
    if len(value) > max_len:
        raise _Bad(f"must be at most {max_len} characters, got {len(value)}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            # A lone surrogate (JSON allows "\ud800") would break whatever stores it later.
            raise _Bad("must be valid Unicode text (has a lone surrogate)") from None
    return value


def _text(max_len: int, *, allow_empty: bool = False) -> Callable[[object], str]:
    return lambda value: _string(value, max_len, allow_empty=allow_empty)


def _message_id(value: object) -> str:
    return _string(value, _MAX_MESSAGE_ID)


def _operator(value: object) -> str:
    return _string(value, _MAX_OPERATOR, allow_empty=True)


def _destination(value: object) -> str:
    text = _string(value, _MAX_DESTINATION_TEXT)
    problem = check_destination(text)
    if problem is not None:
        raise _Bad(problem)
    return text if text.startswith("+") else f"+{text}"


def _integer(value: object) -> int:
    try:
        return converter.structure(value, int)
    except (TypeError, ValueError):
        raise _Bad(f"must be an integer, not {_show(value)}") from None


def _status(value: object) -> DeliveryStatus:
    code = _integer(value)
    try:
        return DeliveryStatus(code)
    except ValueError:
        low, high = min(DeliveryStatus), max(DeliveryStatus)
        raise _Bad(f"must be {low.value} to {high.value}, not {_show(code)}") from None


def _part_number(value: object) -> int:
    number = _integer(value)
    if not 1 <= number <= MAX_PARTS:
        raise _Bad(f"must be 1 to {MAX_PARTS}, not {_show(number)}")
    return number


def _done_date(value: object) -> datetime:
    text = _string(value, _MAX_DATE)
    # ASCII only: strptime's \d would accept other scripts' digits.
    if text.isascii():
        try:
            return parse_provider_datetime(text)
        except ValueError:
            pass
    raise _Bad(f"must be a date like '2026-04-08 14:35:22.045+0200', not {_show(text)}")


def _price(value: object) -> Decimal:
    if isinstance(value, str) and len(value) > _MAX_PRICE_TEXT:
        raise _Bad(f"must be a number of at most {_MAX_PRICE_TEXT} characters")
    try:
        amount: Decimal = converter.structure(value, Decimal)
    except (TypeError, ValueError):
        raise _Bad(f"must be a number, not {_show(value)}") from None
    if not amount.is_finite():
        raise _Bad(f"must be a finite number, not {_show(value)}")
    if amount < 0:
        raise _Bad(f"must not be negative, not {_show(value)}")
    # Exponent bound: a "1e999999" price would be finite but no cost anyone is charged, and
    # would make later arithmetic (summing, quantizing) slow or raise.
    if amount and not -30 <= amount.adjusted() <= 15:
        raise _Bad(f"must be a plausible amount, not {_show(value)}")
    return amount


# -- wording ---------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """The JSON name of a value's type, for problems."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _show(value: object) -> str:
    """A short, safe rendering of an untrusted value: its repr, cut to a few characters."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return _kind(value)
    if isinstance(value, int) and abs(value) > 10**_MAX_SHOWN:
        return "a very large number"  # repr() of a huge int is slow, then refused
    return _cut(str(value) if isinstance(value, Decimal) else repr(value), _MAX_SHOWN)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
