"""What each provider answer means: codes to classes, foreign bodies, transport failures."""

from __future__ import annotations

import copy
from decimal import Decimal

import httpx
import pytest

import agile_async as aa
from agile_async._responses import parse_body, raise_for_response, translate_transport_error
from agile_async._serde import SendResponse

IDS = ("id-1", "id-2")


def provider_error(status: int, code: int, data: object = "boom") -> httpx.Response:
    kind = "fail" if status < 500 else "error"
    key = "data" if status < 500 else "message"
    return httpx.Response(status, json={"status": kind, key: data, "code": code})


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, 1, aa.AuthenticationError),
        (401, 11, aa.AuthenticationError),
        (402, 2, aa.InsufficientCreditError),
        (400, 3, aa.DestinationNotAllowedError),
        (400, 4, aa.UnknownAPIError),
        (400, 5, aa.InvalidDestinationError),
        (400, 6, aa.InvalidDestinationError),
        (400, 7, aa.InvalidDestinationError),
        (500, 8, aa.ServerError),
        (503, 9, aa.ServiceTimeoutError),
        (400, 10, aa.GlobalIdLengthError),
        (400, 18, aa.SenderNotAllowedError),
        (403, 26, aa.SenderNotAllowedError),
        (403, 100, aa.IPNotAllowedError),
        (400, 15, aa.APIError),
        (400, 999, aa.APIError),
    ],
)
def test_every_code_maps_to_its_class(status: int, code: int, cls: type[aa.APIError]) -> None:
    with pytest.raises(aa.APIError) as caught:
        raise_for_response(provider_error(status, code), IDS)
    error = caught.value
    assert type(error) is cls
    assert error.code == code
    assert error.status_code == status
    assert error.data == "boom"
    assert error.ids == IDS
    assert f"code {code}" in str(error)


def test_a_code_given_as_a_string_is_understood() -> None:
    response = httpx.Response(400, json={"status": "fail", "data": "bad", "code": "7"})
    with pytest.raises(aa.InvalidDestinationError) as caught:
        raise_for_response(response, IDS)
    assert caught.value.code == 7


def test_4xx_field_details_are_kept_as_a_mapping() -> None:
    data = {"body": "Missing message body(ies)", "number": "Wrong destination number(s)"}
    with pytest.raises(aa.InvalidDestinationError) as caught:
        raise_for_response(provider_error(400, 6, data), IDS)
    assert caught.value.data == data
    assert "number: Wrong destination number(s)" in str(caught.value)


def test_scopes_tell_account_errors_from_message_errors() -> None:
    assert aa.AuthenticationError.scope == "account"
    assert aa.InsufficientCreditError.scope == "account"
    assert aa.IPNotAllowedError.scope == "account"
    assert aa.InvalidDestinationError.scope == "message"
    assert aa.SenderNotAllowedError.scope == "message"
    assert aa.DestinationNotAllowedError.scope == "message"
    assert aa.GlobalIdLengthError.scope == "request"


def test_an_html_502_from_a_proxy_is_still_a_typed_error() -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 500 + "</body>"
    response = httpx.Response(502, text=page, headers={"content-type": "text/html"})
    with pytest.raises(aa.APIError) as caught:
        raise_for_response(response, IDS)
    error = caught.value
    assert type(error) is aa.APIError
    assert error.code is None
    assert error.status_code == 502
    assert isinstance(error.data, str)
    assert error.data.startswith("<html> <head><title>502 Bad Gateway</title>")
    assert len(error.data) <= 201
    assert "HTTP 502" in str(error)


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        ({"status": "fail", "data": "slow down", "code": 4}, "2", 2.0),
        (None, "5", 5.0),
        (None, None, None),
    ],
)
def test_429_carries_retry_after(body: object, header: str | None, expected: float | None) -> None:
    headers = {"retry-after": header} if header else {}
    response = (
        httpx.Response(429, json=body, headers=headers)
        if body
        else httpx.Response(429, text="Too Many Requests", headers=headers)
    )
    with pytest.raises(aa.RateLimitError) as caught:
        raise_for_response(response, IDS)
    assert caught.value.retry_after == expected
    assert caught.value.status_code == 429


def test_2xx_returns_without_raising() -> None:
    raise_for_response(httpx.Response(200, json={}), IDS)


def test_parse_a_send_response_with_exact_money() -> None:
    response = httpx.Response(
        200,
        content=b'{"globalId":"g","processedMessages":2,"processedSmsParts":4,"credit":10.324}',
    )
    parsed = parse_body(response, SendResponse, IDS)
    assert parsed == SendResponse("g", 2, 4, Decimal("10.324"))


def test_an_unreadable_2xx_send_body_is_an_unknown_outcome() -> None:
    response = httpx.Response(200, text="<html>captive portal</html>")
    with pytest.raises(aa.OutcomeUnknownError) as caught:
        parse_body(response, SendResponse, IDS)
    assert caught.value.ids == IDS
    assert "captive portal" in str(caught.value)


def test_a_2xx_with_missing_fields_names_them() -> None:
    response = httpx.Response(200, json={"globalId": "g", "credit": 1})
    with pytest.raises(aa.OutcomeUnknownError, match="processed_messages"):
        parse_body(response, SendResponse, IDS)


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (httpx.ConnectError("refused"), aa.TransportError),
        (httpx.ConnectTimeout("slow"), aa.TransportError),
        (httpx.PoolTimeout("busy"), aa.TransportError),
        (httpx.WriteError("broken pipe"), aa.TransportError),
        (httpx.ReadTimeout("no answer"), aa.OutcomeUnknownError),
        (httpx.ReadError("reset"), aa.OutcomeUnknownError),
        (httpx.RemoteProtocolError("peer closed"), aa.OutcomeUnknownError),
    ],
)
def test_transport_failures_before_and_after_sending(
    error: httpx.RequestError, cls: type[aa.AgileError]
) -> None:
    translated = translate_transport_error(error, IDS, idempotent=False)
    assert type(translated) is cls
    assert translated.ids == IDS  # type: ignore[attr-defined]


def test_a_failed_read_is_never_an_unknown_outcome() -> None:
    translated = translate_transport_error(httpx.ReadTimeout("x"), (), idempotent=True)
    assert type(translated) is aa.TransportError


@pytest.mark.parametrize(
    "error",
    [
        aa.InvalidDestinationError("bad", code=7, status_code=400, data={"n": "x"}, ids=IDS),
        aa.RateLimitError("slow", retry_after=3.0, ids=IDS),
        aa.OutcomeUnknownError("?", ids=IDS),
        aa.TransportError("down", ids=IDS),
        aa.ValidationError(problems=[aa.Problem("body", "must not be empty")]),
    ],
)
def test_errors_survive_copy_for_each_waiter(error: aa.AgileError) -> None:
    clone = copy.copy(error)
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert vars(clone) == vars(error)
