"""The frozen models a caller builds and receives.

Attributes are snake_case; the one converter in :mod:`agile_async._serde` writes the
provider's camelCase wire names. Models only hold data: every rule about what is *valid*
lives in :mod:`agile_async._validation`, which reports all problems at once instead of
stopping at the first, as an attrs validator would.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import attrs

from ._limits import DEFAULT_MAX_ID_LEN

__all__ = ["DeliveryReport", "DeliveryStatus", "Message", "SendOptions", "SendResult"]


def _destinations(value: str | Iterable[str]) -> tuple[str, ...]:
    """One destination may be given as a plain string; many as any iterable."""
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _optional_ids(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen(kw_only=True)
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
        udh_data: a User Data Header, hex-encoded.
        scheduling: when to deliver; must be timezone-aware.
    """

    destinations: tuple[str, ...] = attrs.field(converter=_destinations)
    sender: str
    body: str
    ids: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_ids)
    hex_body: bool = False
    udh_data: str | None = None
    scheduling: datetime | None = None

    def with_ids(self, ids: Iterable[str]) -> Message:
        """A copy of this message carrying ``ids``, one per destination."""
        return attrs.evolve(self, ids=tuple(ids))


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
    """

    global_id: str | None = None
    max_id_len: int = DEFAULT_MAX_ID_LEN
    enable_concatenated: bool = True
    enable_unicode: bool = True
    enable_delivery: bool = True
    simulation: bool = False


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
