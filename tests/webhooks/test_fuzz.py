"""Fuzzing the parser and the receiver: arbitrary bodies never crash, never give a 500.

The parser either returns reports that meet every invariant or raises
InvalidDeliveryReportError naming known fields; the receiver answers a clear 4XX (or 200),
never a 5XX, whatever the body, the headers or the path.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agile_async import DeliveryReport
from agile_async.webhooks import (
    DeliveryReportReceiver,
    InvalidDeliveryReportError,
    parse_delivery_reports,
)

pytestmark = pytest.mark.anyio

FIELDS = (
    "messageId",
    "destination",
    "statusCode",
    "description",
    "doneDate",
    "concatTotal",
    "concatProgressive",
    "lcrOperator",
    "realOperator",
    "price",
)
VALID: dict[str, Any] = {
    "messageId": "msg-001-20260408",
    "destination": "+393471234567",
    "statusCode": 3,
    "description": "Delivered",
    "doneDate": "2026-04-08 14:35:22.045+0200",
    "concatTotal": 1,
    "concatProgressive": 1,
    "lcrOperator": "22210",
    "realOperator": "22201",
    "price": 0.005,
}
TOKEN = "fuzz-token-0123456789abcdef"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["+393471234567", "41793026727", "2026-04-08 14:35:22.045+0200", "0.005"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
#: Reports that are valid except where hypothesis changed, dropped or added fields.
mutated_reports = st.builds(
    lambda changes, dropped: {
        **{k: v for k, v in VALID.items() if k not in dropped},
        **changes,
    },
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=4),
    st.sets(st.sampled_from(FIELDS), max_size=3),
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | mutated_reports.map(lambda v: json.dumps(v).encode())
    | st.lists(mutated_reports, max_size=4).map(lambda v: json.dumps(v).encode())
)


def check_report(report: DeliveryReport) -> None:
    """The invariants every parsed report meets."""
    assert report.destination.startswith("+")
    assert report.destination[1:].isdigit()
    assert report.done_date.utcoffset() is not None
    assert 1 <= report.concat_progressive <= report.concat_total <= 255
    assert report.price is None or (isinstance(report.price, Decimal) and report.price >= 0)
    assert report.message_id


def known_field(field: str) -> bool:
    name = field.rpartition(".")[2] if "." in field else field
    return name in FIELDS or name == "body" or field.startswith("[")


def check_outcome(body: Any) -> None:
    """Parse; either every report meets the invariants or every problem names a known field."""
    try:
        outcome: list[DeliveryReport] | InvalidDeliveryReportError = parse_delivery_reports(body)
    except InvalidDeliveryReportError as err:
        outcome = err
    if isinstance(outcome, InvalidDeliveryReportError):
        assert outcome.problems
        assert all(known_field(problem.field) for problem in outcome.problems)
    else:
        for report in outcome:
            check_report(report)


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_the_parser_never_crashes_on_bytes(body: bytes) -> None:
    check_outcome(body)


@settings(max_examples=200, deadline=None)
@given(json_values | mutated_reports | st.lists(mutated_reports, max_size=3))
def test_the_parser_never_crashes_on_decoded_json(data: Any) -> None:
    check_outcome(data)


async def answer(
    receiver: DeliveryReportReceiver,
    body: bytes,
    *,
    path: str = "/",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.post(path, content=body, headers=headers)


async def ignore(_: DeliveryReport) -> None:
    return None


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, content_type=st.none() | st.text(max_size=30).filter(str.isascii))
async def test_the_receiver_answers_200_or_a_clear_4xx(
    body: bytes, content_type: str | None
) -> None:
    receiver = DeliveryReportReceiver(ignore, max_body_bytes=250)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await answer(receiver, body, headers=headers)
    assert response.status_code in {200, 400, 413}
    payload = response.json()
    if response.status_code == 400:
        assert payload["error"] == "invalid delivery report"
        assert 1 <= len(payload["problems"]) <= 10
    elif response.status_code == 413:
        assert len(body) > 250
    else:
        assert payload["accepted"] + payload["duplicates"] >= 0


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from([f"/{TOKEN}", f"/reports/{TOKEN}/"])
    | st.text(max_size=40).map(lambda p: "/" + p.replace("?", "").replace("#", "")),
    authorization=st.none() | st.text(max_size=40).filter(str.isascii),
)
async def test_the_protected_receiver_refuses_wrong_paths_and_credentials(
    path: str, authorization: str | None
) -> None:
    receiver = DeliveryReportReceiver(ignore, path_token=TOKEN, basic_auth=("u", "p"))
    headers = {} if authorization is None else {"Authorization": authorization}
    try:
        response = await answer(receiver, json.dumps(VALID).encode(), path=path, headers=headers)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
        return  # httpx itself refused to send it; nothing reached the receiver
    if path.rstrip("/").endswith(f"/{TOKEN}"):
        assert response.status_code == 401
    else:
        assert response.status_code == 404


async def test_the_right_path_and_credentials_get_through() -> None:
    receiver = DeliveryReportReceiver(ignore, path_token=TOKEN, basic_auth=("u", "p"))
    headers = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    response = await answer(receiver, json.dumps(VALID).encode(), path=f"/{TOKEN}", headers=headers)
    assert response.status_code == 200


header_names = st.sampled_from(
    [b"content-length", b"content-type", b"authorization", b"host", b"x-forwarded-for"]
) | st.binary(min_size=1, max_size=12)
raw_requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST", "GET", "HEAD", "PUT"]) | st.text(max_size=8),
        "path": st.sampled_from(["/", f"/{TOKEN}", f"/a/{TOKEN}/"]) | st.text(max_size=30),
        "headers": st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=6),
        "client": st.none()
        | st.tuples(
            st.sampled_from(["10.0.0.1", "::ffff:10.0.0.9", "192.0.2.1", "x"]) | st.text(),
            st.integers(0, 65535),
        ),
        "chunks": st.lists(bodies, max_size=3),
    }
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=raw_requests, protected=st.booleans())
async def test_any_raw_asgi_request_gets_one_answer_below_500(
    request: dict[str, Any], protected: bool
) -> None:
    options: dict[str, Any] = (
        {"path_token": TOKEN, "basic_auth": ("u", "p"), "allow_from": "10.0.0.0/8"}
        if protected
        else {}
    )
    receiver = DeliveryReportReceiver(ignore, max_body_bytes=400, **options)
    chunks: list[bytes] = request["chunks"] or [b""]
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request["method"],
        "path": request["path"],
        "raw_path": request["path"].encode("utf-8", "surrogatepass"),
        "query_string": b"",
        "headers": request["headers"],
        "client": request["client"],
    }
    await receiver(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] < 500
