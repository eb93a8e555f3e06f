"""The wire format: camelCase names, exact money, the provider's datetime format, both JSON
back ends (orjson from the ``fast`` extra, and the standard library without it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import cattrs
import pytest

from agile_async import Message, SendOptions
from agile_async import _serde as serde


@pytest.fixture(params=["orjson", "stdlib"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(serde, "orjson", None)
    return str(request.param)


def test_round_trip_and_exact_money(json_backend: str) -> None:
    raw = serde.dumps({"credit": "x", "text": "è€😀"})
    assert serde.loads(raw) == {"credit": "x", "text": "è€😀"}
    body = b'{"globalId":"g","processedMessages":2,"processedSmsParts":4,"credit":10.324}'
    parsed = serde.structure(serde.loads(body), serde.SendResponse)
    assert parsed.credit == Decimal("10.324")
    assert serde.structure({"credit": 0.1}, serde.CreditResponse).credit == Decimal("0.1")


def test_options_are_written_in_full_with_camel_case() -> None:
    assert serde.converter.unstructure(SendOptions(global_id="g", simulation=True)) == {
        "globalId": "g",
        "maxIdLen": 64,
        "enableConcatenated": True,
        "enableUnicode": True,
        "enableDelivery": True,
        "simulation": True,
    }


def test_messages_leave_out_what_the_provider_defaults() -> None:
    plain = Message(destinations="+393471234567", sender="A", body="x")
    assert serde.converter.unstructure(plain) == {
        "destinations": ["+393471234567"],
        "sender": "A",
        "body": "x",
    }
    full = Message(
        destinations=["+393471234567"],
        sender="A",
        body="0041",
        ids=["i"],
        hex_body=True,
        udh_data="050003CC0201",
        scheduling=datetime(2026, 4, 9, 19, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    assert serde.message_to_wire(full, ["other"]) == {
        "destinations": ["+393471234567"],
        "sender": "A",
        "body": "0041",
        "ids": ["other"],
        "hexBody": True,
        "udhData": "050003CC0201",
        "scheduling": "2026-04-09 19:30:00.000+0200",
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            datetime(2025, 12, 8, 6, 0, 0, 2999, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-08 06:00:00.002+0200",
        ),
        (datetime(2026, 1, 1, tzinfo=timezone.utc), "2026-01-01 00:00:00.000+0000"),
        (
            datetime(
                2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=5, minutes=30))
            ),
            "2026-01-01 23:59:59.999-0530",
        ),
    ],
)
def test_provider_datetime_format(moment: datetime, text: str) -> None:
    assert serde.format_provider_datetime(moment) == text
    parsed = serde.parse_provider_datetime(text)
    assert parsed.utcoffset() == moment.utcoffset()
    assert abs(parsed - moment) < timedelta(milliseconds=1)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        serde.format_provider_datetime(datetime(2026, 1, 1))


@pytest.mark.parametrize("value", [True, None, [1], "ten"])
def test_money_must_be_a_number(value: object) -> None:
    with pytest.raises(cattrs.BaseValidationError):
        serde.structure({"credit": value}, serde.CreditResponse)
