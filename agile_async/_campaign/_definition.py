"""How a campaign definition is written down, for every journal: the one codec.

The SQLite journal keeps it as columns of its ``campaign`` table (the request options and the
run defaults as JSON text); the Redis journal keeps it as one JSON object. Both are the same
record, written and read here, so a field added to :class:`CampaignDefinition` is added once
and reads the same from either store.

What is stored must stay readable: a definition recorded before ``source_encoding`` and
``source_delimiter`` existed was read as UTF-8, and a CSV with commas, so that is what a
missing field means. A record this version cannot read (a hand edit, a newer version's
option) is a :class:`~agile_async.campaigns.JournalError` saying so, not a ``KeyError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from .._exceptions import JournalError
from .._models import SendOptions
from ._journal import CampaignDefinition

__all__ = [
    "COLUMNS",
    "definition_from_columns",
    "definition_from_json",
    "definition_from_record",
    "definition_json",
    "definition_record",
    "definition_to_columns",
]

#: The fields stored as columns, in the SQLite ``campaign`` table's order.
COLUMNS = tuple(field.name for field in attrs.fields(CampaignDefinition))
#: The fields that are themselves mappings: a column holds them as JSON text.
_NESTED = frozenset({"options", "defaults"})


def definition_record(d: CampaignDefinition) -> dict[str, Any]:
    """The definition as plain JSON values; the creation time keeps its UTC offset."""
    return {
        "campaign_id": d.campaign_id,
        "source": d.source,
        "source_format": d.source_format,
        "source_sha256": d.source_sha256,
        "source_size": d.source_size,
        "body": d.body,
        "sender": d.sender,
        "options": attrs.asdict(d.options),
        "created_at": d.created_at.isoformat(),
        "defaults": dict(d.defaults),
        "source_encoding": d.source_encoding,
        "source_delimiter": d.source_delimiter,
    }


def definition_from_record(record: Mapping[str, Any]) -> CampaignDefinition:
    """The definition a record (from any version of either journal) describes.

    Raises:
        JournalError: the record is not a definition this version can read.
    """
    try:
        created_at = datetime.fromisoformat(record["created_at"])
        source_format = record["source_format"]
        return CampaignDefinition(
            campaign_id=record["campaign_id"],
            source=record["source"],
            source_format=source_format,
            source_sha256=record["source_sha256"],
            source_size=record["source_size"],
            body=record["body"],
            sender=record["sender"],
            options=SendOptions(**record["options"]),
            # Times are aware: a naive one can only have been written as UTC.
            created_at=created_at
            if created_at.tzinfo is not None
            else created_at.replace(tzinfo=timezone.utc),
            defaults=dict(record["defaults"]),
            # A campaign recorded before these existed read its file as UTF-8 (CSV: commas).
            source_encoding=record.get("source_encoding") or "utf-8",
            source_delimiter=record.get(
                "source_delimiter", "," if source_format == "csv" else None
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise JournalError(
            f"the stored campaign definition is not readable by this version: {error!r}"
        ) from None


def definition_json(d: CampaignDefinition) -> str:
    """The definition as one JSON object, keys sorted (how the Redis journal stores it)."""
    return json.dumps(definition_record(d), sort_keys=True)


def definition_from_json(text: str | bytes) -> CampaignDefinition:
    """The definition :func:`definition_json` wrote (or an older version did)."""
    try:
        record = json.loads(text)
    except ValueError as error:
        raise JournalError(f"the stored campaign definition is not JSON: {error}") from None
    if not isinstance(record, dict):
        raise JournalError("the stored campaign definition is not a JSON object")
    return definition_from_record(record)


def definition_to_columns(d: CampaignDefinition) -> tuple[object, ...]:
    """The values of :data:`COLUMNS`, in order; the nested ones as JSON text, keys sorted."""
    record = definition_record(d)
    return tuple(
        json.dumps(record[name], sort_keys=True) if name in _NESTED else record[name]
        for name in COLUMNS
    )


def definition_from_columns(values: Mapping[str, Any]) -> CampaignDefinition:
    """The definition from the columns :func:`definition_to_columns` wrote, by name."""
    try:
        record = {
            name: json.loads(value) if name in _NESTED else value for name, value in values.items()
        }
    except (TypeError, ValueError) as error:
        raise JournalError(f"the stored campaign definition is not readable: {error}") from None
    return definition_from_record(record)
