"""The frozen models a caller builds and receives.

Attributes are snake_case; the one converter in :mod:`agile_async._serde` writes the
provider's camelCase wire names.

A model refuses at construction only what it cannot hold: a value of the wrong *type*, or a
string that cannot be encoded (:mod:`agile_async._text`). So every model that exists can be
serialised, and a wrong type fails where the caller made it, as a
:class:`~agile_async.ValidationError` naming the field (``message.destinations[1]``), not as
a ``TypeError`` from deep inside a send. Whether the *values* are acceptable to the provider
is :mod:`agile_async._validation`'s job, which reports every problem of a request at once,
each with its path in the request.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

import attrs

from ._exceptions import Problem, ValidationError
from ._limits import DEFAULT_MAX_ID_LEN
from ._text import text_problem

__all__ = ["DeliveryReport", "DeliveryStatus", "Message", "SendOptions", "SendResult"]


def _strings(value: str | Iterable[str]) -> tuple[str, ...]:
    """One value may be given as a plain string; many as any iterable (a list, a tuple, a
    generator). Anything else is kept as it is, for the constructor's checks to refuse with
    the field's name: bytes, a mapping or a number is never guessed at."""
    if isinstance(value, str):
        return (value,)
    if type(value) is tuple:
        return value
    if type(value) is list:
        return tuple(value)
    if isinstance(value, (bytes, bytearray, memoryview, Mapping)) or not isinstance(
        value, Iterable
    ):
        return cast("tuple[str, ...]", value)
    return tuple(value)


def _optional_strings(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else _strings(value)


def _text(at: str, value: object, problems: list[Problem], *, kind: str = "a string") -> None:
    """The one check of a string field: its type, then its encodability."""
    if not isinstance(value, str):
        problems.append(Problem(at, f"must be {kind}, not {type(value).__name__}"))
        return
    problem = text_problem(value)
    if problem is not None:
        problems.append(Problem(at, problem))


def _texts(at: str, value: object, problems: list[Problem]) -> None:
    if not isinstance(value, tuple):
        problems.append(
            Problem(at, f"must be a string or a list of strings, not {type(value).__name__}")
        )
        return
    for i, item in enumerate(value):
        _text(f"{at}[{i}]", item, problems)


def _flag(at: str, value: object, problems: list[Problem]) -> None:
    if not isinstance(value, bool):
        problems.append(Problem(at, f"must be True or False, not {value!r}"))


def _plain_texts(values: object) -> bool:
    """The common case of a destinations or ids tuple: ASCII strings (nothing to explain)."""
    if type(values) is not tuple:
        return False
    if len(values) == 1:
        return type(values[0]) is str and values[0].isascii()
    return all(type(value) is str and value.isascii() for value in values)


@attrs.frozen(kw_only=True, weakref_slot=False, init=False)  # a queue holds many: no weakref
class Message:
    """One SMS text sent to one or more destinations.

    Args:
        destinations: phone numbers in international format (``+393471234567``); one number
            may be given as a plain string.
        sender: the sender shown on the phone: up to 11 letters and digits, or up to 16 digits.
        body: the text, or hex-encoded bytes when ``hex_body`` is true.
        ids: one id per destination, used to match delivery reports. When omitted, the SDK
            generates unique ids and returns them in the result.
        hex_body: ``body`` is hex-encoded binary data.
        udh_data: a User Data Header, hex-encoded (for raw octets, pass ``data.hex()``).
        scheduling: when to deliver; must be timezone-aware.

    Raises:
        ValidationError: a field has the wrong type, or a string is not encodable text (a
            lone surrogate); every such field is named (``message.destinations[1]``). The
            provider's rules (number format, lengths) are checked when the message is sent.
    """

    destinations: tuple[str, ...]
    sender: str
    body: str
    ids: tuple[str, ...] | None = None
    hex_body: bool = False
    udh_data: str | None = None
    scheduling: datetime | None = None

    def __new__(
        cls,
        *,
        destinations: str | Iterable[str],
        sender: str,
        body: str,
        ids: Iterable[str] | None = None,
        hex_body: bool = False,
        udh_data: str | None = None,
        scheduling: datetime | None = None,
    ) -> Message:
        # Written by hand, not generated: a campaign makes millions of these. A frozen
        # class's slots can only be written around its __setattr__ (a call each); a plain
        # twin with the same slots takes ordinary attribute stores and then becomes a
        # Message by __class__ assignment. Made in __new__, with no __init__, so a call
        # binds its keywords once.
        draft = _new_draft(_MessageDraft)
        draft.destinations = (
            (destinations,) if type(destinations) is str else _strings(destinations)
        )
        draft.sender = sender
        draft.body = body
        draft.ids = None if ids is None else _strings(ids)
        draft.hex_body = hex_body
        draft.udh_data = udh_data
        draft.scheduling = scheduling
        if cls is Message:
            draft.__class__ = Message  # type: ignore[assignment]
            message: Message = draft  # type: ignore[assignment]
        else:  # a subclass may add slots: made the ordinary way
            message = _copy_into(cls, draft)
        # The common case in a few identity checks; anything else is explained field by field.
        if not (
            type(sender) is str
            and type(body) is str
            and hex_body.__class__ is bool
            and udh_data is None
            and scheduling is None
            and _plain_texts(message.destinations)
            and (ids is None or _plain_texts(message.ids))
            and sender.isascii()
            and (body.isascii() or text_problem(body) is None)
        ):
            message._explain()
        return message

    if TYPE_CHECKING:  # the signature type checkers (and attrs.evolve's) see

        def __init__(
            self,
            *,
            destinations: str | Iterable[str],
            sender: str,
            body: str,
            ids: Iterable[str] | None = None,
            hex_body: bool = False,
            udh_data: str | None = None,
            scheduling: datetime | None = None,
        ) -> None: ...

    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, object]]:
        """Pickles and copies are made again through ``__new__`` (and checked again)."""
        return (), {field: getattr(self, field) for field in _FIELDS}

    def _explain(self) -> None:
        """Raise a :class:`ValidationError` naming every field that cannot be held."""
        sender, body = self.sender, self.body
        problems: list[Problem] = []
        _texts("message.destinations", self.destinations, problems)
        _text("message.sender", sender, problems)
        _text("message.body", body, problems)
        if self.ids is not None:
            _texts("message.ids", self.ids, problems)
        _flag("message.hex_body", self.hex_body, problems)
        if self.udh_data is not None:
            _text("message.udh_data", self.udh_data, problems, kind="a hex string or None")
        if self.scheduling is not None and not isinstance(self.scheduling, datetime):
            problems.append(
                Problem(
                    "message.scheduling",
                    f"must be a datetime or None, not {type(self.scheduling).__name__}",
                )
            )
        if problems:
            raise ValidationError(problems=problems)

    def with_ids(self, ids: Iterable[str]) -> Message:
        """A copy of this message carrying ``ids``, one per destination (made directly:
        ``attrs.evolve`` costs three times as much, and every sent message takes this)."""
        return Message(
            destinations=self.destinations,
            sender=self.sender,
            body=self.body,
            ids=tuple(ids),
            hex_body=self.hex_body,
            udh_data=self.udh_data,
            scheduling=self.scheduling,
        )


#: Message's fields, in the order of its slots.
_FIELDS: tuple[str, ...] = vars(Message)["__slots__"]


class _MessageDraft:
    """A :class:`Message` while ``__new__`` fills it in: the same slots, no frozen
    ``__setattr__`` (see :meth:`Message.__new__`)."""

    __slots__ = _FIELDS

    destinations: tuple[str, ...]
    sender: str
    body: str
    ids: tuple[str, ...] | None
    hex_body: bool
    udh_data: str | None
    scheduling: datetime | None


_new_draft = object.__new__


def _copy_into(cls: type[Message], draft: _MessageDraft) -> Message:
    """An instance of a subclass of :class:`Message` holding ``draft``'s fields."""
    message = _new_draft(cls)
    for field in _FIELDS:
        object.__setattr__(message, field, getattr(draft, field))
    return message


@attrs.frozen(kw_only=True, cache_hash=True)
class SendOptions:
    """Request-level settings of ``/sms/send``; the defaults are the provider's.

    Args:
        global_id: an id for the whole request, echoed in the response. When omitted, the SDK
            generates one so every request can be found in logs.
        max_id_len: the longest message id the request uses (characters).
        enable_concatenated: long texts may be split into several SMS parts. When false, a
            text longer than one part is a validation error.
        enable_unicode: texts outside the GSM 03.38 alphabet are sent as UCS-2.
        enable_delivery: the provider posts delivery reports to the account's webhook.
        simulation: the provider validates and answers without sending anything.

    Raises:
        ValidationError: a field has the wrong type (``max_id_len="64"``,
            ``enable_unicode=1``) or ``global_id`` is not encodable text. Values
            (``max_id_len`` from 1 to 2**31-1, ``global_id``'s length) are checked on use.
    """

    global_id: str | None = None
    max_id_len: int = DEFAULT_MAX_ID_LEN
    enable_concatenated: bool = True
    enable_unicode: bool = True
    enable_delivery: bool = True
    simulation: bool = False

    def __attrs_post_init__(self) -> None:
        problems: list[Problem] = []
        if self.global_id is not None:
            _text("options.global_id", self.global_id, problems, kind="a string or None")
        if isinstance(self.max_id_len, bool) or not isinstance(self.max_id_len, int):
            problems.append(
                Problem(
                    "options.max_id_len",
                    f"must be an integer, not {type(self.max_id_len).__name__}",
                )
            )
        _flag("options.enable_concatenated", self.enable_concatenated, problems)
        _flag("options.enable_unicode", self.enable_unicode, problems)
        _flag("options.enable_delivery", self.enable_delivery, problems)
        _flag("options.simulation", self.simulation, problems)
        if problems:
            raise ValidationError(problems=problems)


@attrs.frozen(kw_only=True)
class SendResult:
    """What the provider said about an accepted request, and what was sent.

    The provider only returns totals: there is no per-message result. ``messages`` are the
    messages as sent, each carrying its ids (the SDK's generated ones included), so delivery
    reports can be matched to them.

    Attributes:
        global_id: the request's id, as echoed by the provider.
        processed_messages: the provider's count of processed messages.
        processed_sms_parts: the provider's count of SMS parts it will send (what is billed).
        credit: the account's remaining credit in EUR, after this request.
        messages: the messages as sent, with their ids.
        estimated_sms_parts: the SDK's own count of SMS parts, to compare with the provider's.
    """

    global_id: str
    processed_messages: int
    processed_sms_parts: int
    credit: Decimal
    messages: tuple[Message, ...] = ()
    estimated_sms_parts: int | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        """Every message id of the request, in order (one per destination)."""
        return tuple(id_ for message in self.messages for id_ in message.ids or ())


class DeliveryStatus(enum.IntEnum):
    """The provider's delivery status codes, as reported to the webhook."""

    ACCEPTED = 1
    REJECTED = 2
    DELIVERED = 3
    EXPIRED = 4
    DELETED = 5
    UNDELIVERABLE = 6

    @property
    def is_final(self) -> bool:
        """Whether the status will not change any more (everything but ``ACCEPTED``)."""
        return self is not DeliveryStatus.ACCEPTED


@attrs.frozen(kw_only=True)
class DeliveryReport:
    """One delivery report, as the provider posts it to the webhook: one per SMS part.

    Attributes:
        message_id: the message's id (``messageId``): the SDK's generated id or yours.
        destination: the phone number, normalised to international format with ``+``.
        status: what happened (``statusCode``).
        description: the provider's text for the status.
        done_date: when the status was determined (``doneDate``), timezone-aware.
        concat_total: how many parts the message has (``concatTotal``).
        concat_progressive: which part this report is about, from 1 (``concatProgressive``).
        lcr_operator: the operator the provider's routing chose, when given.
        real_operator: the number's actual operator, when given.
        price: what this part cost, when given.
    """

    message_id: str
    destination: str
    status: DeliveryStatus
    description: str
    done_date: datetime
    concat_total: int = 1
    concat_progressive: int = 1
    lcr_operator: str | None = None
    real_operator: str | None = None
    price: Decimal | None = None
