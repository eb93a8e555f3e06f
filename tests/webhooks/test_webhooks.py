"""parse_delivery_reports: the seed's payloads, every field's problems, normalisation, limits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import agile_async
import agile_async._serde
from agile_async import DeliveryReport, DeliveryStatus, ValidationError
from agile_async.webhooks import (
    DEFAULT_MAX_REPORTS,
    MAX_LISTED_PROBLEMS,
    InvalidDeliveryReportError,
    parse_delivery_report,
    parse_delivery_reports,
)

# The seeds' examples, verbatim: English ("Delivery Notifications") and Italian
# ("Delivery Report (Webhook)"); the Italian one has no "+" and is part 1 of 2.
SEED_EN = b"""{
"messageId": "msg-001-20260408",
"destination": "+393471234567",
"statusCode": 3,
"description": "Delivered",
"doneDate": "2026-04-08 14:35:22.045+0200",
"concatTotal": 1,
"concatProgressive": 1,
"lcrOperator": "22210",
"realOperator": "22201",
"price": 0.005
}"""
SEED_IT = b"""{
"messageId": "157d541b-e0cd-4340-ac77-bc5d530dd90e",
"destination": "41793026727",
"statusCode": 3,
"description": "Delivered",
"doneDate": "2022-05-09 09:00:05.002+0200",
"concatTotal": 2,
"concatProgressive": 1,
"lcrOperator": "22210",
"realOperator": "22201",
"price": 0.003
}"""
PLUS_TWO = timezone(timedelta(hours=2))


def report(**fields: Any) -> dict[str, Any]:
    """A valid report as the provider sends it; keywords replace fields (``None`` drops one)."""
    base: dict[str, Any] = json.loads(SEED_EN)
    for name, value in fields.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


@pytest.fixture(params=["orjson", "stdlib"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run JSON-text tests with orjson (floats) and the standard library (Decimals)."""
    if request.param == "stdlib":
        monkeypatch.setattr(agile_async._serde, "orjson", None)
    return str(request.param)


def problems_of(body: Any) -> dict[str, str]:
    with pytest.raises(InvalidDeliveryReportError) as caught:
        parse_delivery_reports(body)
    return {problem.field: problem.message for problem in caught.value.problems}


# -- the seed's payloads ---------------------------------------------------------------------


def test_the_english_seed_example(json_backend: str) -> None:
    assert parse_delivery_reports(SEED_EN) == [
        DeliveryReport(
            message_id="msg-001-20260408",
            destination="+393471234567",
            status=DeliveryStatus.DELIVERED,
            description="Delivered",
            done_date=datetime(2026, 4, 8, 14, 35, 22, 45000, tzinfo=PLUS_TWO),
            concat_total=1,
            concat_progressive=1,
            lcr_operator="22210",
            real_operator="22201",
            price=Decimal("0.005"),
        )
    ]


def test_the_italian_seed_example_gets_its_plus(json_backend: str) -> None:
    (parsed,) = parse_delivery_reports(SEED_IT)
    assert parsed.destination == "+41793026727"
    assert (parsed.concat_total, parsed.concat_progressive) == (2, 1)
    assert parsed.done_date == datetime(2022, 5, 9, 9, 0, 5, 2000, tzinfo=PLUS_TWO)
    assert parsed.price == Decimal("0.003")
    assert str(parsed.price) == "0.003"


def test_a_list_keeps_its_order(json_backend: str) -> None:
    body = b"[" + SEED_EN + b"," + SEED_IT + b"]"
    ids = [r.message_id for r in parse_delivery_reports(body)]
    assert ids == ["msg-001-20260408", "157d541b-e0cd-4340-ac77-bc5d530dd90e"]


@pytest.mark.parametrize(
    "body",
    [SEED_EN, SEED_EN.decode(), bytearray(SEED_EN), memoryview(SEED_EN), report(), (report(),)],
    ids=["bytes", "str", "bytearray", "memoryview", "mapping", "tuple"],
)
def test_every_body_form_gives_the_same_report(body: Any) -> None:
    assert parse_delivery_reports(body) == parse_delivery_reports(SEED_EN)


def test_an_empty_list_is_no_reports() -> None:
    assert parse_delivery_reports(b"[]") == []


def test_the_single_variant() -> None:
    assert [parse_delivery_report(report())] == parse_delivery_reports(SEED_EN)
    with pytest.raises(InvalidDeliveryReportError, match="statusCode: must be 1 to 6"):
        parse_delivery_report(report(statusCode=9))
    with pytest.raises(InvalidDeliveryReportError, match="body: must be an object"):
        parse_delivery_report([])  # type: ignore[arg-type]


def test_the_error_is_a_validation_error() -> None:
    assert issubclass(InvalidDeliveryReportError, ValidationError)
    assert issubclass(InvalidDeliveryReportError, ValueError)
    assert issubclass(InvalidDeliveryReportError, agile_async.AgileError)
    with pytest.raises(InvalidDeliveryReportError) as caught:
        parse_delivery_reports(report(statusCode=0))
    assert "1 problem in the delivery report(s)" in str(caught.value)


# -- normalisation and optional fields ------------------------------------------------------


@pytest.mark.parametrize("given", ["+393471234567", "393471234567"])
def test_destinations_with_or_without_plus(given: str) -> None:
    (parsed,) = parse_delivery_reports(report(destination=given))
    assert parsed.destination == "+393471234567"


@pytest.mark.parametrize("name", ["lcrOperator", "realOperator", "price"])
@pytest.mark.parametrize("how", ["absent", "null"])
def test_optional_fields_may_be_absent_or_null(name: str, how: str) -> None:
    body = report(**{name: None})
    if how == "null":
        body[name] = None
    (parsed,) = parse_delivery_reports(body)
    attribute = {"lcrOperator": "lcr_operator", "realOperator": "real_operator"}.get(name, name)
    assert getattr(parsed, attribute) is None


def test_an_empty_operator_is_none() -> None:
    (parsed,) = parse_delivery_reports(report(lcrOperator="", realOperator=""))
    assert parsed.lcr_operator is None
    assert parsed.real_operator is None


def test_absent_concat_fields_mean_a_single_part() -> None:
    (parsed,) = parse_delivery_reports(report(concatTotal=None, concatProgressive=None))
    assert (parsed.concat_total, parsed.concat_progressive) == (1, 1)


def test_unknown_fields_are_ignored() -> None:
    body = report(networkCode="x", extra={"nested": [1, 2]}, statusCode=6)
    (parsed,) = parse_delivery_reports(body)
    assert parsed.status is DeliveryStatus.UNDELIVERABLE


def test_an_empty_description_is_allowed() -> None:
    (parsed,) = parse_delivery_reports(report(description=""))
    assert parsed.description == ""


@pytest.mark.parametrize("code", list(DeliveryStatus))
def test_every_status_code(code: DeliveryStatus) -> None:
    (parsed,) = parse_delivery_reports(report(statusCode=int(code)))
    assert parsed.status is code


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2026-04-08 14:35:22.045+0200", timedelta(hours=2)),
        ("2026-04-08 14:35:22.045+0000", timedelta(0)),
        ("2026-04-08 14:35:22.045-0530", -timedelta(hours=5, minutes=30)),
    ],
)
def test_done_date_is_aware(text: str, offset: timedelta) -> None:
    (parsed,) = parse_delivery_reports(report(doneDate=text))
    assert parsed.done_date.utcoffset() == offset
    assert parsed.done_date.microsecond == 45000


# -- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"0.005", "0.005"),
        (b"0.1", "0.1"),
        (b"0.0035", "0.0035"),
        (b"1.10", "1.10"),  # stdlib keeps the trailing zero; orjson's float repr drops it
        (b"0", "0"),
        (b"2", "2"),
        (b'"0.005"', "0.005"),
    ],
)
def test_price_is_an_exact_decimal(json_backend: str, wire: bytes, expected: str) -> None:
    body = SEED_EN.replace(b'"price": 0.005', b'"price": ' + wire)
    (parsed,) = parse_delivery_reports(body)
    assert isinstance(parsed.price, Decimal)
    assert parsed.price == Decimal(expected)
    if wire != b"1.10":
        assert str(parsed.price) == expected


def test_a_float_price_goes_through_its_repr() -> None:
    (parsed,) = parse_delivery_reports(report(price=0.1 + 0.2))
    assert parsed.price == Decimal(repr(0.1 + 0.2))
    (parsed,) = parse_delivery_reports(report(price=Decimal("0.0049")))
    assert parsed.price == Decimal("0.0049")


# -- every field's problems ---------------------------------------------------------------

BAD_FIELDS = [
    ("messageId", 5, "must be a string, not a number"),
    ("messageId", "", "must not be empty"),
    ("messageId", "x" * 257, "must be at most 256 characters, got 257"),
    ("messageId", ["a"], "must be a string, not an array"),
    ("destination", 393471234567, "must be a string, not a number"),
    ("destination", "0039347123456", "must start with the country code"),
    ("destination", "+39 347 1234567", "must be digits in international format"),
    ("destination", "+123456", "is too short"),
    ("destination", "+1234567890123456", "is too long"),
    ("destination", "3" * 40, "must be at most 32 characters"),
    ("destination", "", "must not be empty"),
    ("statusCode", 0, "must be 1 to 6, not 0"),
    ("statusCode", 7, "must be 1 to 6, not 7"),
    ("statusCode", -1, "must be 1 to 6, not -1"),
    ("statusCode", "3", "must be an integer, not '3'"),
    ("statusCode", 3.0, "must be an integer, not 3.0"),
    ("statusCode", True, "must be an integer, not a boolean"),
    ("statusCode", 10**100, "must be 1 to 6, not a very large number"),
    ("description", 3, "must be a string, not a number"),
    ("description", "x" * 1025, "must be at most 1024 characters"),
    ("doneDate", "2026-04-08T14:35:22.045+0200", "must be a date like"),
    ("doneDate", "2026-04-08 14:35:22.045", "must be a date like"),
    ("doneDate", "2026-04-08 14:35:22+0200", "must be a date like"),
    ("doneDate", "2026-02-30 14:35:22.045+0200", "must be a date like"),
    ("doneDate", "yesterday", "like '2026-04-08 14:35:22.045+0200', not 'yesterday'"),
    ("doneDate", "٢٠٢٦-04-08 14:35:22.045+0200", "must be a date like"),
    ("doneDate", 1712586922, "must be a string, not a number"),
    ("doneDate", "2" * 65, "must be at most 64 characters"),
    ("concatTotal", 0, "must be 1 to 255, not 0"),
    ("concatTotal", 256, "must be 1 to 255, not 256"),
    ("concatTotal", "2", "must be an integer, not '2'"),
    ("concatTotal", 1.5, "must be an integer, not 1.5"),
    ("concatProgressive", -3, "must be 1 to 255, not -3"),
    ("concatProgressive", False, "must be an integer, not a boolean"),
    ("lcrOperator", 22210, "must be a string, not a number"),
    ("realOperator", "x" * 65, "must be at most 64 characters"),
    ("price", "abc", "must be a number, not 'abc'"),
    ("price", True, "must be a number, not a boolean"),
    ("price", [0.1], "must be a number, not an array"),
    ("price", {"eur": 1}, "must be a number, not an object"),
    ("price", -0.01, "must not be negative"),
    ("price", "NaN", "must be a finite number"),
    ("price", "-Infinity", "must be a finite number"),
    ("price", "1e999", "must be a plausible amount"),
    ("price", "1" * 65, "must be a number of at most 64 characters"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), BAD_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_FIELDS]
)
def test_each_bad_field_is_named(field: str, value: object, message: str) -> None:
    found = problems_of(report(**{field: value}))
    assert list(found) == [field]
    assert message in found[field]


@pytest.mark.parametrize(
    "field", ["messageId", "destination", "statusCode", "description", "doneDate"]
)
def test_required_fields(field: str) -> None:
    assert problems_of(report(**{field: None})) == {field: "is required"}
    body = report()
    body[field] = None
    assert problems_of(body) == {field: "is required (got null)"}


def test_progressive_must_not_exceed_total() -> None:
    found = problems_of(report(concatTotal=2, concatProgressive=3))
    assert found == {"concatProgressive": "must not exceed concatTotal (3 > 2)"}


def test_a_lone_surrogate_is_refused(json_backend: str) -> None:
    body = SEED_EN.replace(b"msg-001-20260408", b"msg-\\ud800")
    with pytest.raises(InvalidDeliveryReportError) as caught:
        parse_delivery_reports(body)
    (problem,) = caught.value.problems
    # orjson refuses it while decoding; the standard library decodes it and the check refuses.
    assert problem.field == ("body" if json_backend == "orjson" else "messageId")


def test_every_problem_of_every_report_in_one_error() -> None:
    body = [
        report(),
        report(statusCode=9, price="free"),
        "not a report",
        report(destination=None, concatTotal=0),
    ]
    assert problems_of(body) == {
        "[1].statusCode": "must be 1 to 6, not 9",
        "[1].price": "must be a number, not 'free'",
        "[2]": "must be an object, not a string",
        "[3].destination": "is required",
        "[3].concatTotal": "must be 1 to 255, not 0",
    }


def test_values_quoted_in_problems_are_cut_short() -> None:
    found = problems_of(report(price="9" * 60 + "x"))
    assert found["price"] == "must be a number, not '" + "9" * 36 + "..."


# -- the body as a whole, and the limits ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"<html>", "not valid JSON"),
        (b"3", "must be a JSON object or an array of objects, not a number"),
        (b'"hello"', "not a string"),
        (b"null", "not null"),
        (b"true", "not a boolean"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
    ],
    ids=["empty", "truncated", "not-utf8", "html", "number", "string", "null", "bool", "deep"],
)
def test_a_body_that_is_not_reports(json_backend: str, body: bytes, message: str) -> None:
    found = problems_of(body)
    assert list(found) == ["body"]
    assert message in found["body"]


def test_at_most_max_reports() -> None:
    body = [report()] * 3
    assert len(parse_delivery_reports(body, max_reports=3)) == 3
    with pytest.raises(InvalidDeliveryReportError, match="at most 2 reports per body, got 3"):
        parse_delivery_reports(body, max_reports=2)
    assert DEFAULT_MAX_REPORTS == 10_000


def test_problems_are_listed_up_to_a_bound() -> None:
    body = [report(statusCode=0, price="x")] * 1000
    with pytest.raises(InvalidDeliveryReportError) as caught:
        parse_delivery_reports(body)
    problems = caught.value.problems
    assert len(problems) == MAX_LISTED_PROBLEMS + 1
    assert problems[-1].field == "body"
    assert problems[-1].message == f"{2000 - MAX_LISTED_PROBLEMS} more problems not listed"
