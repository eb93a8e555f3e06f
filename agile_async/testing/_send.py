"""Reading a ``POST /sms/send`` body the way the provider does: validate all, then plan.

Pure: no state, no I/O. The server passes in the account's policy (allowed senders, forbidden
prefixes, scripted rejections) and gets back either a :class:`Rejection` for the whole request
(the provider refuses a request when any message in it is bad) or a :class:`SendPlan` to charge
and record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from .._exceptions import ValidationError
from .._limits import (
    DEFAULT_MAX_ID_LEN,
    MAX_ALPHANUMERIC_SENDER,
    MAX_GLOBAL_ID_LEN,
    MAX_NUMERIC_SENDER,
    MIN_GLOBAL_ID_LEN,
    PROVIDER_DATETIME_FORMAT,
    DestinationFault,
    destination_fault,
)
from ..segments import MAX_PARTS, count_hex_segments, count_parts, count_segments
from ._codes import text_for

__all__ = [
    "DestinationRule",
    "PlannedDestination",
    "PlannedMessage",
    "Rejection",
    "SendPlan",
    "SendPolicy",
    "digits_of",
    "plan_send",
]

#: ``yyyy-MM-dd HH:mm:ss.SSSZ``, checked literally before parsing, so a client that writes
#: ISO 8601 (``T``, ``+02:00``) or microseconds is caught here rather than by the provider.
_SCHEDULING_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")

#: The provider's code for each way a destination breaks the shared rule (:mod:`.._limits`).
_DESTINATION_CODES: Mapping[DestinationFault, int] = {
    "not_digits": 7,
    "leading_zero": 7,
    "too_short": 5,
    "too_long": 6,
}


def digits_of(destination: str) -> str:
    """A destination without its optional leading ``+``: how prefixes and rules compare."""
    return destination[1:] if destination.startswith("+") else destination


@attrs.frozen
class DestinationRule:
    """A scripted refusal: reject any request with a destination that ``matches``."""

    matches: Callable[[str], bool]
    code: int
    status: int
    data: str | None


@attrs.frozen
class SendPolicy:
    """The account settings a send request is checked against."""

    allowed_senders: frozenset[str] | None = None
    forbidden_prefixes: tuple[str, ...] = ()
    rules: tuple[DestinationRule, ...] = ()


@attrs.frozen
class Rejection:
    """The whole request is refused: a 4XX ``{"status": "fail", "data": ..., "code": ...}``."""

    status: int
    code: int
    data: Mapping[str, str] | str


@attrs.frozen
class PlannedDestination:
    """One destination of a valid message, with the caller's id if it gave one."""

    destination: str
    message_id: str | None


@attrs.frozen
class PlannedMessage:
    """A valid message object, with what one SMS of it costs in parts."""

    index: int
    sender: str
    body: str
    hex_body: bool
    udh_data: str | None
    scheduling: datetime | None
    parts: int
    destinations: tuple[PlannedDestination, ...]


@attrs.frozen
class SendPlan:
    """A valid request: what to charge and record."""

    global_id: str | None
    max_id_len: int
    enable_delivery: bool
    simulation: bool
    messages: tuple[PlannedMessage, ...]


@attrs.frozen
class _Problem:
    code: int
    status: int
    field: str
    text: str


class _Checker:
    """Collects every problem of a request, in document order."""

    def __init__(self, policy: SendPolicy) -> None:
        self.policy = policy
        self.problems: list[_Problem] = []

    def add(self, code: int, field: str, text: str | None = None, status: int = 400) -> None:
        self.problems.append(_Problem(code, status, field, text or text_for(code)))

    def flag(self, body: Mapping[str, Any], name: str, default: bool) -> bool:
        value = body.get(name, default)
        if not isinstance(value, bool):
            self.add(4, name, "Must be a boolean")
            return default
        return value

    def optional_hex(self, message: Mapping[str, Any], name: str, field: str) -> str | None:
        value = message.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            self.add(4, field, "Must be an even number of hex digits")
            return None
        return value


def plan_send(body: Any, policy: SendPolicy) -> Rejection | SendPlan:
    """Validate a parsed ``/sms/send`` body; plan it, or reject the whole request.

    Every problem is collected; the response names them all in ``data`` (field path to text)
    and carries the code of the first, in document order.

    Args:
        body: the parsed JSON body.
        policy: the account's settings.
    """
    if not isinstance(body, Mapping):
        return Rejection(400, 4, "The request body must be a JSON object")
    check = _Checker(policy)

    global_id = body.get("globalId")
    if global_id is not None and not isinstance(global_id, str):
        check.add(4, "globalId", "Must be a string")
        global_id = None
    elif global_id is not None and not MIN_GLOBAL_ID_LEN <= len(global_id) <= MAX_GLOBAL_ID_LEN:
        check.add(10, "globalId", "Wrong global ID length")

    max_id_len = body.get("maxIdLen", DEFAULT_MAX_ID_LEN)
    if isinstance(max_id_len, bool) or not isinstance(max_id_len, int) or max_id_len < 1:
        check.add(4, "maxIdLen", "Must be a positive integer")
        max_id_len = DEFAULT_MAX_ID_LEN

    concatenated = check.flag(body, "enableConcatenated", True)
    unicode = check.flag(body, "enableUnicode", True)
    enable_delivery = check.flag(body, "enableDelivery", True)
    simulation = check.flag(body, "simulation", False)

    raw_messages = body.get("messages")
    messages: list[PlannedMessage] = []
    if not isinstance(raw_messages, list) or not raw_messages:
        check.add(4, "messages", "Missing or empty messages array")
    else:
        for index, raw in enumerate(raw_messages):
            planned = _plan_message(check, index, raw, max_id_len, concatenated, unicode)
            if planned is not None:
                messages.append(planned)

    if check.problems:
        first = check.problems[0]
        return Rejection(first.status, first.code, {p.field: p.text for p in check.problems})
    return SendPlan(
        global_id=global_id,
        max_id_len=max_id_len,
        enable_delivery=enable_delivery,
        simulation=simulation,
        messages=tuple(messages),
    )


def _plan_message(
    check: _Checker, index: int, raw: Any, max_id_len: int, concatenated: bool, unicode: bool
) -> PlannedMessage | None:
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        check.add(4, where, "Must be an object")
        return None
    before = len(check.problems)

    count, destinations = _check_destinations(check, where, raw.get("destinations"))
    ids = _check_ids(check, where, raw.get("ids"), count, max_id_len)
    sender = _check_sender(check, where, raw.get("sender"))

    hex_body = raw.get("hexBody", False)
    if not isinstance(hex_body, bool):
        check.add(4, f"{where}.hexBody", "Must be a boolean")
        hex_body = False
    body = raw.get("body")
    if not isinstance(body, str) or not body:
        check.add(4, f"{where}.body", "Missing message body(ies)")
        body = None
    elif hex_body and not _HEX.fullmatch(body):
        check.add(
            4, f"{where}.body", "hexBody is true but body is not an even number of hex digits"
        )
        body = None
    udh_data = check.optional_hex(raw, "udhData", f"{where}.udhData")
    scheduling = _check_scheduling(check, where, raw.get("scheduling"))

    parts = None
    if body is not None and len(check.problems) == before:  # count only what is well-formed
        parts = _count_parts(
            check,
            f"{where}.body",
            body,
            hex_body=hex_body,
            udh_data=udh_data,
            unicode=unicode,
            concatenated=concatenated,
        )

    if len(check.problems) > before or body is None or sender is None or parts is None:
        return None
    return PlannedMessage(
        index=index,
        sender=sender,
        body=body,
        hex_body=hex_body,
        udh_data=udh_data,
        scheduling=scheduling,
        parts=parts,
        destinations=tuple(
            PlannedDestination(destination, ids[position] if ids else None)
            for position, destination in enumerate(destinations)
        ),
    )


def _check_destinations(check: _Checker, where: str, raw: Any) -> tuple[int, list[str]]:
    """How many destinations the message lists, and the valid ones."""
    if not isinstance(raw, list) or not raw:
        check.add(4, f"{where}.destinations", "Missing or empty destinations array")
        return 0, []
    valid: list[str] = []
    for position, destination in enumerate(raw):
        field = f"{where}.destinations[{position}]"
        if not isinstance(destination, str):
            check.add(7, field)
            continue
        digits = digits_of(destination)
        fault = destination_fault(destination)
        if fault is not None:
            check.add(_DESTINATION_CODES[fault], field)
        elif any(digits.startswith(prefix) for prefix in check.policy.forbidden_prefixes):
            check.add(3, field)
        elif rule := next((r for r in check.policy.rules if r.matches(digits)), None):
            check.add(rule.code, field, rule.data, rule.status)
        else:
            valid.append(destination)
    return len(raw), valid


def _check_ids(
    check: _Checker, where: str, raw: Any, destinations: int, max_id_len: int
) -> Sequence[str]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.add(4, f"{where}.ids", "Must be an array of strings")
        return ()
    if destinations and len(raw) != destinations:
        check.add(15, f"{where}.ids")
        return ()
    for position, message_id in enumerate(raw):
        if not isinstance(message_id, str) or not 1 <= len(message_id) <= max_id_len:
            check.add(4, f"{where}.ids[{position}]", f"Must be 1 to {max_id_len} characters")
    return [str(message_id) for message_id in raw]


def _check_sender(check: _Checker, where: str, raw: Any) -> str | None:
    field = f"{where}.sender"
    if not isinstance(raw, str) or not raw:
        check.add(4, field, "Missing sender")
        return None
    numeric = digits_of(raw)
    if numeric.isascii() and numeric.isdigit():
        fits = len(numeric) <= MAX_NUMERIC_SENDER
    else:
        fits = len(raw) <= MAX_ALPHANUMERIC_SENDER and raw.isascii() and raw.isprintable()
    allowed = check.policy.allowed_senders
    if not fits or (allowed is not None and raw not in allowed):
        check.add(26, field)
        return None
    return raw


def _check_scheduling(check: _Checker, where: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    field = f"{where}.scheduling"
    if isinstance(raw, str) and _SCHEDULING_SHAPE.fullmatch(raw):
        try:
            return datetime.strptime(raw, PROVIDER_DATETIME_FORMAT)
        except ValueError:
            pass
    check.add(4, field, "Wrong date format, expected yyyy-MM-dd HH:mm:ss.SSSZ")
    return None


def _count_parts(
    check: _Checker,
    field: str,
    body: str,
    *,
    hex_body: bool,
    udh_data: str | None,
    unicode: bool,
    concatenated: bool,
) -> int | None:
    """SMS parts for one destination of a message, by the SDK's own segment rules.

    The fake counts as :mod:`agile_async.segments` does, so a test can compare the SDK's
    estimate with the "provider's" figure. Where the provider differs from that module:
    with ``enableUnicode`` false a text is not refused for characters outside GSM 03.38;
    the provider substitutes them, so each counts as one septet. A body that needs several
    parts without ``enableConcatenated`` (or more than 255) is refused with code 4.
    """
    try:
        if hex_body:
            parts = count_hex_segments(body, udh=udh_data).segments
        else:
            parts, encoding = count_parts(body, udh=udh_data)
            if not unicode and encoding == "UCS-2":
                outside = count_segments(body, udh=udh_data).non_gsm_characters
                substituted = body.translate({ord(c): "?" for c in outside})
                parts = count_parts(substituted, unicode=False, udh=udh_data).parts
    except ValidationError as exc:
        check.add(4, field, "; ".join(problem.message for problem in exc.problems))
        return None
    if parts > (MAX_PARTS if concatenated else 1):
        if concatenated:
            reason = f"at most {MAX_PARTS} are allowed"
        else:
            reason = "enableConcatenated is false"
        check.add(4, field, f"Needs {parts} SMS parts but {reason}")
        return None
    return parts
