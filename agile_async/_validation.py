"""Local checks that run before any request, and the preparation of what is sent.

The provider rejects a whole request when one message in it is bad, and only tells which
*field* was wrong, not which message. So the SDK checks everything it can first and reports
*every* problem at once, each with its path (``messages[2].destinations[0]``), in one
:class:`~agile_async.ValidationError`. Then :func:`prepare_request` gives every destination
an id, so delivery reports can always be matched to what was sent.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from . import _limits
from ._exceptions import Problem, ValidationError
from ._models import Message, SendOptions

__all__ = ["IdGenerator", "check_destination", "prepare_request", "validate_request"]

_DESTINATION = re.compile(r"\+?[0-9]+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 .\-_&'!?,:;()+@#/]+")


def check_destination(value: object) -> str | None:
    """What is wrong with one destination number, or ``None`` when it is fine."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not _DESTINATION.fullmatch(value):
        return f"{value!r} must be digits in international format, optionally after '+'"
    digits = len(value) - value.startswith("+")
    if value.lstrip("+").startswith("0"):
        return f"{value!r} must start with the country code (no leading 0 or 00)"
    low, high = _limits.MIN_DESTINATION_DIGITS, _limits.MAX_DESTINATION_DIGITS
    if digits < low:
        return f"{value!r} is too short ({digits} digits, at least {low})"
    if digits > high:
        return f"{value!r} is too long ({digits} digits, at most {high})"
    return None


def _check_sender(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    numeric = value.removeprefix("+")
    if numeric.isdigit() and numeric.isascii():
        if len(numeric) > _limits.MAX_NUMERIC_SENDER:
            return (
                f"{value!r} is too long: a numeric sender has at most "
                f"{_limits.MAX_NUMERIC_SENDER} digits"
            )
        return None
    if len(value) > _limits.MAX_ALPHANUMERIC_SENDER:
        return (
            f"{value!r} is too long: an alphanumeric sender has at most "
            f"{_limits.MAX_ALPHANUMERIC_SENDER} characters"
        )
    if not _ALPHANUMERIC_SENDER.fullmatch(value):
        return f"{value!r} must use letters, digits, spaces and common punctuation only"
    return None


def _check_hex(value: object, what: str) -> str | None:
    if not isinstance(value, str):
        return f"must be a string of {what}, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) % 2:
        return f"must be {what} with an even number of digits (got {len(value)})"
    if not _HEX.fullmatch(value):
        return f"must be {what}: only 0-9 and A-F"
    return None


def _check_aware(value: object) -> str | None:
    if not isinstance(value, datetime):
        return f"must be a datetime, not {type(value).__name__}"
    if value.tzinfo is None or value.utcoffset() is None:
        return "must be timezone-aware (a naive datetime's moment is ambiguous)"
    return None


class _Collector:
    """Accumulates problems so every one of them can be reported together."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, field: str, problem: str | None) -> None:
        if problem is not None:
            self.problems.append(Problem(field, problem))


def _check_options(options: SendOptions, out: _Collector) -> None:
    gid = options.global_id
    if gid is not None:
        if not isinstance(gid, str):
            out.add("options.global_id", f"must be a string, not {type(gid).__name__}")
        elif not _limits.MIN_GLOBAL_ID_LEN <= len(gid) <= _limits.MAX_GLOBAL_ID_LEN:
            out.add(
                "options.global_id",
                f"must be {_limits.MIN_GLOBAL_ID_LEN} to {_limits.MAX_GLOBAL_ID_LEN} "
                f"characters long (got {len(gid)})",
            )
    max_id_len = options.max_id_len
    if isinstance(max_id_len, bool) or not isinstance(max_id_len, int) or max_id_len < 1:
        out.add("options.max_id_len", f"must be a positive integer (got {max_id_len!r})")
    for name in ("enable_concatenated", "enable_unicode", "enable_delivery", "simulation"):
        value = getattr(options, name)
        if not isinstance(value, bool):
            out.add(f"options.{name}", f"must be True or False (got {value!r})")


def _check_message(
    index: int, message: object, options: SendOptions, seen_ids: dict[str, str], out: _Collector
) -> None:
    at = f"messages[{index}]"
    if not isinstance(message, Message):
        out.add(at, f"must be a Message, not {type(message).__name__}")
        return
    if not message.destinations:
        out.add(f"{at}.destinations", "must list at least one destination")
    for i, destination in enumerate(message.destinations):
        out.add(f"{at}.destinations[{i}]", check_destination(destination))
    out.add(f"{at}.sender", _check_sender(message.sender))
    if not isinstance(message.body, str):
        out.add(f"{at}.body", f"must be a string, not {type(message.body).__name__}")
    elif message.hex_body:
        out.add(f"{at}.body", _check_hex(message.body, "hex-encoded bytes (hex_body=True)"))
    elif not message.body:
        out.add(f"{at}.body", "must not be empty")
    if message.udh_data is not None:
        out.add(f"{at}.udh_data", _check_hex(message.udh_data, "a hex-encoded UDH"))
    if message.scheduling is not None:
        out.add(f"{at}.scheduling", _check_aware(message.scheduling))
    if message.ids is not None:
        _check_ids(at, message, options, seen_ids, out)


def _check_ids(
    at: str, message: Message, options: SendOptions, seen_ids: dict[str, str], out: _Collector
) -> None:
    ids = message.ids or ()
    if len(ids) != len(message.destinations):
        out.add(
            f"{at}.ids",
            f"must give one id per destination ({len(ids)} ids for "
            f"{len(message.destinations)} destinations)",
        )
    for i, id_ in enumerate(ids):
        field = f"{at}.ids[{i}]"
        if not isinstance(id_, str) or not id_:
            out.add(field, "must be a non-empty string")
            continue
        if isinstance(options.max_id_len, int) and len(id_) > options.max_id_len:
            out.add(field, f"{id_!r} is longer than max_id_len ({len(id_)} > {options.max_id_len})")
        if id_ in seen_ids:
            out.add(field, f"{id_!r} is already used by {seen_ids[id_]}")
        else:
            seen_ids[id_] = field


def validate_request(messages: Sequence[object], options: SendOptions) -> None:
    """Raise :class:`ValidationError` listing every problem in the request, if any."""
    out = _Collector()
    if not isinstance(options, SendOptions):
        raise ValidationError.single(
            "options", f"must be SendOptions, not {type(options).__name__}"
        )
    _check_options(options, out)
    if not messages:
        out.add("messages", "must contain at least one message")
    seen_ids: dict[str, str] = {}
    for index, message in enumerate(messages):
        _check_message(index, message, options, seen_ids, out)
    if out.problems:
        raise ValidationError(problems=out.problems)


class IdGenerator:
    """Unique, short message ids: a random per-generator prefix and a counter.

    ``3f9c1a7be2d0-1a`` style ids are cheaper than a UUID each (the batcher makes millions)
    and shorter on the wire, while a 48-bit random prefix keeps them unique across processes
    and restarts. When ``max_id_len`` is too short for that, ids are fully random instead.
    """

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    def new_id(self, max_id_len: int = _limits.DEFAULT_MAX_ID_LEN) -> str:
        """A new id at most ``max_id_len`` characters long."""
        candidate = f"{self._prefix}-{next(self._counter):x}"
        if len(candidate) <= max_id_len:
            return candidate
        return secrets.token_hex((max_id_len + 1) // 2)[:max_id_len]

    def new_global_id(self) -> str:
        """A new request id (a UUID-sized random hex string)."""
        return secrets.token_hex(16)


def _with_generated_ids(
    message: Message, max_id_len: int, taken: set[str], ids: IdGenerator
) -> Message:
    new_ids: list[str] = []
    for _ in message.destinations:
        id_ = ids.new_id(max_id_len)
        while id_ in taken:  # only possible for tiny max_id_len
            id_ = ids.new_id(max_id_len)
        taken.add(id_)
        new_ids.append(id_)
    return attrs.evolve(message, ids=tuple(new_ids))


def prepare_request(
    messages: Iterable[Message], options: SendOptions, ids: IdGenerator
) -> tuple[tuple[Message, ...], SendOptions]:
    """Give every destination an id and the request a ``global_id``; validate first."""
    messages = tuple(messages)
    validate_request(messages, options)
    if options.global_id is None:
        options = attrs.evolve(options, global_id=ids.new_global_id())
    if all(message.ids is not None for message in messages):
        return messages, options
    taken = {id_ for message in messages for id_ in message.ids or ()}
    prepared = tuple(
        message
        if message.ids is not None
        else _with_generated_ids(message, options.max_id_len, taken, ids)
        for message in messages
    )
    return prepared, options
