"""Local checks that run before any request, and the ids every destination gets.

The provider rejects a whole request when one message in it is bad, and only tells which
*field* was wrong, not which message. So the SDK checks everything it can first and reports
*every* problem at once, each with its path (``messages[2].destinations[0]``), in one
:class:`~agile_async.ValidationError`. Then every destination gets an id, so delivery
reports can always be matched to what was sent.

The batcher checks millions of messages, one at a time: the common case (a valid number, a
sender seen before, a plain text body) takes a few fast paths and allocates nothing.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import TypeGuard, TypeVar, cast

import attrs

from . import _limits
from ._counting import body_problems
from ._exceptions import Problem, ValidationError
from ._models import Message, SendOptions
from ._serde import format_provider_datetime
from ._text import text_problem

T = TypeVar("T")

__all__ = [
    "IdGenerator",
    "as_items",
    "as_messages",
    "check_destination",
    "check_message",
    "check_sender",
    "is_collection",
    "message_problems",
    "options_problems",
    "plainly_valid",
    "plainly_valid_row",
    "prepare_request",
    "validate_request",
]

#: The destination rule lives in :mod:`._limits`, where the fake provider reads it too.
_plain_destination = _limits.plain_destination
#: The same rule as one compiled match, for the hot paths (a str already known).
_PLAIN_DESTINATION = _limits.PLAIN_DESTINATION_MATCH


_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 .\-_&'!?,:;()+@#/]+")
#: Longer bodies are checked against the provider's part limit (shorter ones cannot reach it).
_LONG_BODY = 1000


def check_destination(value: object) -> str | None:
    """What is wrong with one destination number, or ``None`` when it is fine."""
    if _plain_destination(value):
        return None
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    fault = _limits.destination_fault(value)
    digits = len(value) - value.startswith("+")
    low, high = _limits.MIN_DESTINATION_DIGITS, _limits.MAX_DESTINATION_DIGITS
    if fault == "not_digits":
        return f"{value!r} must be digits in international format, optionally after '+'"
    if fault == "leading_zero":
        return f"{value!r} must start with the country code (no leading 0 or 00)"
    if fault == "too_short":
        return f"{value!r} is too short ({digits} digits, at least {low})"
    return f"{value!r} is too long ({digits} digits, at most {high})"


@lru_cache(maxsize=1024)
def _sender_problem(value: str) -> str | None:
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


def check_sender(value: object) -> str | None:
    """What is wrong with a sender, or ``None`` when it is fine."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    return _sender_problem(value)


def _check_aware(value: object) -> str | None:
    if not isinstance(value, datetime):
        return f"must be a datetime, not {type(value).__name__}"
    if value.tzinfo is None or value.utcoffset() is None:
        return "must be timezone-aware (a naive datetime's moment is ambiguous)"
    try:
        format_provider_datetime(value)
    except OverflowError:  # an offset in seconds, at the edge of the calendar
        return f"{value.isoformat()} cannot be written in the provider's format"
    return None


def options_problems(options: object) -> list[Problem]:
    """Every problem of the request-level options."""
    if not isinstance(options, SendOptions):
        return [Problem("options", f"must be SendOptions, not {type(options).__name__}")]
    problems: list[Problem] = []
    gid = options.global_id
    if gid is not None:
        if not isinstance(gid, str):
            problems.append(
                Problem("options.global_id", f"must be a string, not {type(gid).__name__}")
            )
        elif not _limits.MIN_GLOBAL_ID_LEN <= len(gid) <= _limits.MAX_GLOBAL_ID_LEN:
            problems.append(
                Problem(
                    "options.global_id",
                    f"must be {_limits.MIN_GLOBAL_ID_LEN} to {_limits.MAX_GLOBAL_ID_LEN} "
                    f"characters long (got {len(gid)})",
                )
            )
    max_id_len = options.max_id_len
    if (
        isinstance(max_id_len, bool)
        or not isinstance(max_id_len, int)
        or not 1 <= max_id_len <= _limits.LARGEST_MAX_ID_LEN
    ):
        problems.append(
            Problem(
                "options.max_id_len",
                f"must be an integer from 1 to {_limits.LARGEST_MAX_ID_LEN} (got {max_id_len!r})",
            )
        )
    for name in ("enable_concatenated", "enable_unicode", "enable_delivery", "simulation"):
        value = getattr(options, name)
        if not isinstance(value, bool):
            problems.append(Problem(f"options.{name}", f"must be True or False (got {value!r})"))
    return problems


def _body_needs_segments(message: Message, options: SendOptions) -> bool:
    """Whether the body must be counted to be judged (most plain texts need not be)."""
    return (
        message.hex_body
        or message.udh_data is not None
        or not options.enable_unicode
        or not options.enable_concatenated
        or len(message.body) > _LONG_BODY
    )


def message_problems(message: object, at: str, options: SendOptions) -> list[Problem]:
    """Every problem of one message (ids are checked here, their uniqueness by the caller)."""
    if not isinstance(message, Message):
        return [Problem(at, f"must be a Message, not {type(message).__name__}")]
    problems: list[Problem] = []
    destinations = message.destinations
    if not destinations:
        problems.append(Problem(f"{at}.destinations", "must list at least one destination"))
    for i, destination in enumerate(destinations):
        problem = check_destination(destination)
        if problem is not None:
            problems.append(Problem(f"{at}.destinations[{i}]", problem))
    sender = check_sender(message.sender)
    if sender is not None:
        problems.append(Problem(f"{at}.sender", sender))
    body = message.body
    if not isinstance(body, str):
        problems.append(Problem(f"{at}.body", f"must be a string, not {type(body).__name__}"))
    else:
        if not body:
            problems.append(Problem(f"{at}.body", "must not be empty"))
        if _body_needs_segments(message, options):
            problems.extend(
                body_problems(
                    body,
                    hex_body=message.hex_body,
                    udh=message.udh_data,
                    unicode=options.enable_unicode,
                    concatenated=options.enable_concatenated,
                    path=at,
                )
            )
    if message.udh_data == "":
        problems.append(Problem(f"{at}.udh_data", "must not be empty (use None for no UDH)"))
    if message.scheduling is not None:
        problem = _check_aware(message.scheduling)
        if problem is not None:
            problems.append(Problem(f"{at}.scheduling", problem))
    if message.ids is not None:
        problems.extend(_id_problems(at, message, options.max_id_len))
    return problems


def _id_problems(at: str, message: Message, max_id_len: int) -> list[Problem]:
    ids = message.ids or ()
    problems: list[Problem] = []
    if len(ids) != len(message.destinations):
        problems.append(
            Problem(
                f"{at}.ids",
                f"must give one id per destination ({len(ids)} ids for "
                f"{len(message.destinations)} destinations)",
            )
        )
    for i, id_ in enumerate(ids):
        field = f"{at}.ids[{i}]"
        if not isinstance(id_, str) or not id_:
            problems.append(Problem(field, "must be a non-empty string"))
        elif isinstance(max_id_len, int) and len(id_) > max_id_len:
            problems.append(
                Problem(field, f"{id_!r} is longer than max_id_len ({len(id_)} > {max_id_len})")
            )
    return problems


#: Senders already found valid (bounded): most callers use one or two.
_GOOD_SENDERS: set[str] = set()


def plainly_valid(message: object, options: SendOptions) -> bool:
    """The common case, checked without building anything: a plain text to plain numbers
    from a known sender, with no ids or well-formed ones. Anything else takes the full
    checks (which also explain what is wrong).

    It runs for every message the Batcher takes, so it is one function with no calls of
    its own but the destination match: a :class:`Message` already holds only strings of
    encodable text (its construction checks types), so those are not looked at again.
    """
    if type(message) is not Message:
        return False
    body = message.body
    if not (
        0 < len(body) <= _LONG_BODY
        and message.sender in _GOOD_SENDERS
        and options.enable_unicode
        and options.enable_concatenated
        and message.udh_data is None
        and message.scheduling is None
        and not message.hex_body
    ):
        return False
    destinations = message.destinations
    ids = message.ids
    if ids is not None and not (
        len(ids) == len(destinations) and all(0 < len(i) <= options.max_id_len for i in ids)
    ):
        return False
    if len(destinations) == 1:
        return _PLAIN_DESTINATION(destinations[0]) is not None
    return len(destinations) > 1 and all(_PLAIN_DESTINATION(d) is not None for d in destinations)


def plainly_valid_row(
    destination: object, body: object, sender: object, id_: object, options: SendOptions
) -> bool:
    """:func:`plainly_valid` for a light row of ``submit_many()`` (one text to one number):
    the same rule, with the types and the encodability a :class:`Message` checks when it is
    made. A row that is not plainly valid is made into a :class:`Message` and takes the full
    checks."""
    return (
        type(body) is str
        and 0 < len(body) <= _LONG_BODY
        and type(sender) is str
        and sender in _GOOD_SENDERS
        and options.enable_unicode
        and options.enable_concatenated
        and type(destination) is str
        and _PLAIN_DESTINATION(destination) is not None
        and (body.isascii() or text_problem(body) is None)
        and (
            id_ is None
            or (type(id_) is str and 0 < len(id_) <= options.max_id_len and id_.isascii())
        )
    )


_STR_ONLY = {str}


def plainly_valid_rows(
    destinations: Sequence[object],
    bodies: Sequence[object],
    sender: object,
    ids: Sequence[object] | None,
    options: SendOptions,
) -> bool:
    """:func:`plainly_valid_row` for many rows of one sender (at least one row), column
    by column: each check is one pass in C, no call per row. The bulk path of
    ``submit_many()`` asks it before queueing rows with no object per row; when it says
    no, the rows take the row-by-row path (which names the row that is wrong)."""
    return (
        type(sender) is str
        and sender in _GOOD_SENDERS
        and options.enable_unicode
        and options.enable_concatenated
        and set(map(type, destinations)) == _STR_ONLY
        and all(map(_PLAIN_DESTINATION, destinations))  # type: ignore[arg-type]
        and set(map(type, bodies)) == _STR_ONLY
        and min(map(len, bodies)) > 0  # type: ignore[arg-type]
        and max(map(len, bodies)) <= _LONG_BODY  # type: ignore[arg-type]
        and (
            all(map(str.isascii, bodies))  # type: ignore[arg-type]
            or all(text_problem(body) is None for body in bodies)  # type: ignore[arg-type]
        )
        and (
            ids is None
            or (
                set(map(type, ids)) == _STR_ONLY
                and min(map(len, ids)) > 0  # type: ignore[arg-type]
                and max(map(len, ids)) <= options.max_id_len  # type: ignore[arg-type]
                and all(map(str.isascii, ids))  # type: ignore[arg-type]
            )
        )
    )


def check_message(message: object, options: SendOptions, at: str = "message") -> None:
    """Raise :class:`ValidationError` if one message (with valid options) has problems."""
    if plainly_valid(message, options):
        return
    problems = _judged(message, at, options)
    if problems:
        raise ValidationError(problems=problems)


def _judged(message: object, at: str, options: SendOptions) -> list[Problem]:
    """:func:`message_problems`; a message found valid teaches :func:`plainly_valid` its
    sender (senders are judged the same whatever the options)."""
    problems = message_problems(message, at, options)
    if not problems and isinstance(message, Message) and len(_GOOD_SENDERS) < 1024:
        _GOOD_SENDERS.add(message.sender)
    return problems


def as_messages(messages: object) -> tuple[Message, ...]:
    """What ``client.send()`` was given, as a tuple: one message, or any iterable of them.

    Anything else (``None``, a string, a mapping) is refused here, naming ``messages``;
    what the tuple holds is judged by :func:`validate_request` (so its type is a promise
    that :func:`prepare_request` keeps, not one made here).
    """
    if isinstance(messages, Message):
        return (messages,)
    if not is_collection(messages):
        raise ValidationError.single(
            "messages",
            f"must be a Message or an iterable of Messages, not {type(messages).__name__}",
        )
    return cast("tuple[Message, ...]", tuple(messages))


def as_items(messages: Iterable[T]) -> list[T]:
    """What ``submit_many()`` was given, as a list: any iterable of messages or rows.

    Anything else (``None``, a string, a mapping, a single message) is refused here,
    naming ``messages``; each item is judged by the Batcher.
    """
    if type(messages) is list:
        return messages
    if isinstance(messages, Message) or not is_collection(messages):
        raise ValidationError.single(
            "messages",
            f"must be an iterable of Messages or rows, not {type(messages).__name__}",
        )
    return list(messages)


def is_collection(value: object) -> TypeGuard[Iterable[object]]:
    """Whether ``value`` may be a collection of messages: iterable, and not a string, bytes
    or a mapping (iterable too, but never meant as one: refused, not guessed at)."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, Mapping))


#: Request options already found valid (bounded): most callers use one or two.
_GOOD_OPTIONS: set[SendOptions] = set()


def _plainly_valid_request(messages: Sequence[object], options: object) -> bool:
    """The usual ``client.send()``, judged without building anything: options already
    found valid, and plain messages (:func:`plainly_valid`) without ids of their own, so
    none can repeat another's. Anything else takes :func:`validate_request`."""
    return (
        type(options) is SendOptions
        and options in _GOOD_OPTIONS
        and len(messages) > 0
        and all(
            plainly_valid(message, options) and message.ids is None  # type: ignore[attr-defined]
            for message in messages
        )
    )


def validate_request(messages: Sequence[object], options: SendOptions) -> None:
    """Raise :class:`ValidationError` listing every problem in the request, if any."""
    problems = options_problems(options)
    if problems and not isinstance(options, SendOptions):
        raise ValidationError(problems=problems)
    if problems:
        options = SendOptions()  # judge the messages by the provider's defaults
    elif type(options) is SendOptions and len(_GOOD_OPTIONS) < 1024:
        _GOOD_OPTIONS.add(options)
    if not messages:
        problems.append(Problem("messages", "must contain at least one message"))
    seen: dict[str, str] = {}
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        problems.extend(_judged(message, at, options))
        if isinstance(message, Message):
            for i, id_ in enumerate(message.ids or ()):
                if isinstance(id_, str) and id_:
                    field = f"{at}.ids[{i}]"
                    if id_ in seen:
                        problems.append(Problem(field, f"{id_!r} is already used by {seen[id_]}"))
                    else:
                        seen[id_] = field
    if problems:
        raise ValidationError(problems=problems)


class IdGenerator:
    """Unique, short message ids: a random per-generator prefix and a counter.

    ``3f9c1a7be2d0-1a`` style ids are cheaper than a UUID each (the batcher makes millions)
    and shorter on the wire, while a 48-bit random prefix keeps them unique across processes
    and restarts. When ``max_id_len`` is too short for that, ids are fully random instead.
    """

    #: Ids stay this short for the first 16**12 ids of a generator.
    LENGTH = 25

    def __init__(self) -> None:
        prefix = secrets.token_hex(6) + "-"
        #: The next id, formatted in C: the batcher takes one per message (``%`` parses
        #: its template faster than ``str.format``).
        self._counter = map(f"{prefix}%x".__mod__, itertools.count(1))
        self.next_id = self._counter.__next__

    def take(self, count: int) -> list[str]:
        """The next ``count`` ids (each ``LENGTH`` characters at most), made in C."""
        return list(itertools.islice(self._counter, count))

    def new_id(self, max_id_len: int = _limits.DEFAULT_MAX_ID_LEN) -> str:
        """A new id at most ``max_id_len`` characters long."""
        candidate = self.next_id()
        if len(candidate) <= max_id_len:
            return candidate
        return secrets.token_hex((max_id_len + 1) // 2)[:max_id_len]

    def new_ids(self, count: int, max_id_len: int = _limits.DEFAULT_MAX_ID_LEN) -> tuple[str, ...]:
        """``count`` new ids, distinct from each other."""
        if count == 1:
            return (self.new_id(max_id_len),)
        ids: list[str] = []
        taken: set[str] = set()
        while len(ids) < count:
            id_ = self.new_id(max_id_len)
            if id_ not in taken:  # only possible for a tiny max_id_len
                taken.add(id_)
                ids.append(id_)
        return tuple(ids)

    def new_global_id(self) -> str:
        """A new request id (a UUID-sized random hex string)."""
        return secrets.token_hex(16)


def prepare_request(
    messages: Iterable[Message], options: SendOptions, ids: IdGenerator
) -> tuple[tuple[Message, ...], SendOptions]:
    """Validate, then give every destination an id and the request a ``global_id``."""
    messages = tuple(messages)
    if not _plainly_valid_request(messages, options):
        validate_request(messages, options)
    if options.global_id is None:
        options = attrs.evolve(options, global_id=ids.new_global_id())
    if all(message.ids is not None for message in messages):
        return messages, options
    taken = {id_ for message in messages for id_ in message.ids or ()}
    prepared: list[Message] = []
    for message in messages:
        if message.ids is None:
            new = ids.new_ids(len(message.destinations), options.max_id_len)
            while taken.intersection(new):  # only possible for a tiny max_id_len
                new = ids.new_ids(len(message.destinations), options.max_id_len)
            taken.update(new)
            message = message.with_ids(new)
        prepared.append(message)
    return tuple(prepared), options
