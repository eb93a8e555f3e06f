"""The SDK's one converter between models and the provider's JSON.

Built by :func:`make_converter` (cattrs' advice: "prefer creating your own if customizations
are required") so no global cattrs state is touched. It writes camelCase wire names, money as
:class:`~decimal.Decimal` (never float), and datetimes in the provider's
``yyyy-MM-dd HH:mm:ss.SSSZ`` format. JSON goes through orjson when the ``fast`` extra is
installed, the standard library otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._limits import PROVIDER_DATETIME_FORMAT
from ._models import Message

__all__ = [
    "CreditResponse",
    "SendResponse",
    "converter",
    "dumps",
    "format_provider_datetime",
    "loads",
    "make_converter",
    "message_to_wire",
    "parse_provider_datetime",
    "to_camel",
]

T = TypeVar("T")

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the no-extras CI job
    orjson = None  # type: ignore[assignment]


def dumps(obj: Any) -> bytes:
    """Serialize to compact UTF-8 JSON bytes."""
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; numbers with a fraction may come back as float or Decimal."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data, parse_float=Decimal)


def to_camel(name: str) -> str:
    """``processed_sms_parts`` -> ``processedSmsParts``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def format_provider_datetime(value: datetime) -> str:
    """An aware datetime in the provider's format: ``2025-12-08 06:00:00.002+0200``.

    The format has four year digits and an offset in whole minutes (``±HHMM``): a year
    before 1000 is zero-padded (``strftime`` would not), and an offset with seconds (the
    local mean time of a historical zone, ``-00:16:08``) is written as the same moment in UTC.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("the provider needs a timezone-aware datetime")
    if offset % timedelta(minutes=1):
        value = value.astimezone(timezone.utc)
    millis = value.microsecond // 1000
    return f"{value.year:04d}-{value:%m-%d %H:%M:%S}.{millis:03d}{value:%z}"


def parse_provider_datetime(value: str) -> datetime:
    """Parse ``yyyy-MM-dd HH:mm:ss.SSSZ`` into an aware datetime."""
    return datetime.strptime(value, PROVIDER_DATETIME_FORMAT)


def message_to_wire(message: Message, ids: Sequence[str] | None = None) -> dict[str, Any]:
    """One message object of ``/sms/send``, with ``ids`` (or the message's own).

    Written by hand rather than generated: the batcher writes millions of these, and this
    is the one function that does it (the converter's hook for :class:`Message` calls it).
    Fields the provider defaults (``hexBody`` false, no UDH, no scheduling) are left out.
    """
    wire: dict[str, Any] = {
        "destinations": list(message.destinations),
        "sender": message.sender,
        "body": message.body,
    }
    ids = message.ids if ids is None else ids
    if ids is not None:
        wire["ids"] = list(ids)
    if message.hex_body:
        wire["hexBody"] = True
    if message.udh_data is not None:
        wire["udhData"] = message.udh_data
    if message.scheduling is not None:
        wire["scheduling"] = format_provider_datetime(message.scheduling)
    return wire


def _structure_decimal(value: object, _: type) -> Decimal:
    """Money from JSON: exact for strings and ints; floats via their shortest repr."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, str)):
        try:
            return Decimal(value)
        except InvalidOperation as err:
            raise ValueError(f"{value!r} is not a number") from err
    if isinstance(value, float):
        return Decimal(repr(value))
    raise TypeError(f"{type(value).__name__} is not an amount")


def _structure_int(value: object, _: type) -> int:
    """Counts must really be integers; ``True`` or ``"3"`` are not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


@attrs.frozen
class SendResponse:
    """The 2XX body of ``/sms/send``."""

    global_id: str
    processed_messages: int
    processed_sms_parts: int
    credit: Decimal


@attrs.frozen
class CreditResponse:
    """The body of ``/sms/credit``."""

    credit: Decimal


def _camel_overrides(cls: type, *, omit_if_default: bool) -> dict[str, Any]:
    return {
        a.name: override(rename=to_camel(a.name), omit_if_default=omit_if_default)
        for a in attrs.fields(cls)
    }


def configure_converter(conv: cattrs.Converter) -> None:
    """Register every hook the SDK needs on ``conv``."""
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(str, _structure_str)
    conv.register_unstructure_hook(datetime, format_provider_datetime)
    conv.register_structure_hook(datetime, lambda v, _: parse_provider_datetime(v))

    def unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
        # Request options are always written out, so a request says exactly what it asks.
        return make_dict_unstructure_fn(cls, conv, **_camel_overrides(cls, omit_if_default=False))

    def structure_factory(cls: type) -> Callable[[Any, type], Any]:
        return make_dict_structure_fn(cls, conv, **_camel_overrides(cls, omit_if_default=False))

    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    conv.register_unstructure_hook(Message, message_to_wire)
    conv.register_structure_hook_factory(attrs.has, structure_factory)


def make_converter() -> cattrs.Converter:
    """A new converter configured for the provider's wire format."""
    conv = cattrs.Converter()
    configure_converter(conv)
    return conv


#: The converter the SDK uses. Private modules share it; nothing else should mutate it.
converter = make_converter()


def structure(data: Any, cls: type[T]) -> T:
    """Structure ``data`` into ``cls``, with cattrs' errors left to the caller to translate."""
    return converter.structure(data, cls)
