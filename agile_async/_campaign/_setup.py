"""Everything checked before a campaign is recorded, and how a journal is found.

A campaign refused here leaves nothing behind: the sender, options, template and input file
are all checked before the journal is created.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import attrs

from .._exceptions import CampaignError, ConfigurationError, Problem, ValidationError
from .._models import SendOptions
from .._pricing import PriceList
from .._setting_validators import check_flag, invalid
from .._validation import check_sender, options_problems
from ._input import (
    BodyTemplate,
    RecordReader,
    derived_id,
    detect_format,
    file_digest,
    input_encoding,
)
from ._journal import CampaignDefinition, InputFormat, Journal
from ._sqlite import SQLiteJournal

__all__ = [
    "Source",
    "another_campaign",
    "check_definition",
    "digest_if_present",
    "inspect_source",
    "journal_name",
    "new_definition",
    "open_journal",
    "price_list",
    "same_campaign",
]


def check_definition(
    sender: str,
    options: SendOptions,
    *,
    body: object = "",
    source: object = "",
    defaults: object = None,
) -> None:
    """Refuse a sender or options the provider would refuse, and arguments of the wrong
    type, naming every problem (before anything is read or created)."""
    problems = options_problems(options)
    if isinstance(options, SendOptions) and options.global_id is not None:
        problems.append(Problem("options.global_id", "must be None: every request gets its own"))
    sender_problem = check_sender(sender)
    if sender_problem is not None:
        problems.append(Problem("sender", sender_problem))
    if not isinstance(body, str):
        problems.append(Problem("body", f"must be a string, not {type(body).__name__}"))
    if not isinstance(source, (str, os.PathLike)):
        problems.append(Problem("source", f"must be a path, not {type(source).__name__}"))
    if defaults is not None:
        try:  # the journal records them as JSON
            json.dumps(dict(defaults))  # type: ignore[call-overload]
        except (TypeError, ValueError) as error:
            problems.append(Problem("defaults", f"must be a mapping of JSON values ({error})"))
    if problems:
        raise ValidationError(problems=problems)


@attrs.frozen
class Source:
    """The recipients file as a campaign records it: where, what, and how it is read."""

    path: Path
    format: InputFormat
    sha256: str
    size: int
    encoding: str
    delimiter: str | None


def inspect_source(
    source: str | os.PathLike[str],
    format: InputFormat | None,
    template: BodyTemplate,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> Source:
    """The recipients file's absolute path, format, SHA-256, size, encoding and (CSV)
    delimiter, given or sniffed (blocking: run it in a thread), after checking that it can
    be read and, for CSV (whose header names the columns), that it has every column the
    template uses. JSON lines are checked row by row."""
    path = Path(source).resolve()
    if not path.is_file():
        raise CampaignError(f"no recipients file at {path}")
    encoding = input_encoding(encoding)
    kind = format if format is not None else detect_format(path, encoding)
    if kind not in ("csv", "jsonl"):
        raise CampaignError(f"format must be 'csv' or 'jsonl', not {kind!r}")
    reader = RecordReader(path, kind, encoding=encoding, delimiter=delimiter)
    try:
        missing = [name for name in template.fields if name not in reader.columns]
        if kind == "csv" and missing:
            raise CampaignError(
                f"the body uses {', '.join('{' + m + '}' for m in missing)} but {path.name} "
                f"has no such column (line 1, the header: {', '.join(reader.columns)})"
            )
    finally:
        reader.close()
    digest, size = file_digest(path)
    return Source(path, kind, digest, size, reader.encoding, reader.delimiter)


def new_definition(
    *,
    source: Source,
    body: str,
    sender: str,
    options: SendOptions,
    defaults: Mapping[str, object] | None,
) -> CampaignDefinition:
    """A new campaign with a fresh random id (which generated message ids start with)."""
    campaign_id = secrets.token_hex(6)
    if len(derived_id(campaign_id, 1)) > options.max_id_len:
        raise CampaignError(
            f"options.max_id_len={options.max_id_len} is too short for generated ids "
            f"such as {derived_id(campaign_id, 1_000_000)!r}"
        )
    return CampaignDefinition(
        campaign_id=campaign_id,
        source=str(source.path),
        source_format=source.format,
        source_sha256=source.sha256,
        source_size=source.size,
        body=body,
        sender=sender,
        options=options,
        created_at=datetime.now(timezone.utc),
        defaults=dict(defaults or {}),
        source_encoding=source.encoding,
        source_delimiter=source.delimiter,
    )


def digest_if_present(path: Path) -> str | None:
    """The file's SHA-256, or ``None`` when it is gone (blocking)."""
    return file_digest(path)[0] if path.is_file() else None


def same_campaign(a: CampaignDefinition, b: CampaignDefinition) -> bool:
    """Whether two definitions are the same campaign: same input bytes read the same way
    (encoding, delimiter), body, sender and options (the id and the time of creation do
    not count)."""
    return _identity(a) == _identity(b)


def _identity(d: CampaignDefinition) -> tuple[object, ...]:
    return (
        d.source_sha256,
        d.source_encoding,
        d.source_delimiter,
        d.body,
        d.sender,
        d.options,
    )


def another_campaign(
    journal: object, existing: CampaignDefinition, wanted: CampaignDefinition | None = None
) -> str:
    """Why a journal cannot take this campaign: which settings differ from the one it holds
    (so that a different ``--encoding`` or a changed file is named, not guessed)."""
    held = (
        f"{journal_name(journal)} already holds campaign {existing.campaign_id} (from "
        f"{existing.source}, created {existing.created_at:%Y-%m-%d %H:%M} UTC)"
    )
    differences = _differences(existing, wanted) if wanted is not None else []
    if differences:
        held += " with another " + "; another ".join(differences)
    return held + ": resume it, or choose another journal"


def _differences(held: CampaignDefinition, wanted: CampaignDefinition) -> list[str]:
    """What differs, the journal's value first (bodies and files are not quoted whole)."""
    found = []
    if held.source_sha256 != wanted.source_sha256:
        found.append(
            f"input file content (sha256 {held.source_sha256[:12]}… in the journal, "
            f"{wanted.source_sha256[:12]}… now)"
        )
    for name, a, b in (
        ("encoding", held.source_encoding, wanted.source_encoding),
        ("delimiter", held.source_delimiter, wanted.source_delimiter),
        ("sender", held.sender, wanted.sender),
    ):
        if a != b:
            found.append(f"{name} ({a!r} in the journal, {b!r} now)")
    if held.body != wanted.body:
        found.append("body")
    if held.options != wanted.options:
        names = [
            field.name
            for field in attrs.fields(type(held.options))
            if getattr(held.options, field.name) != getattr(wanted.options, field.name)
        ]
        found.append(f"options ({', '.join(names)})")
    return found


def journal_name(journal: object) -> str:
    """How to name a journal in messages: its path when it has one."""
    if isinstance(journal, (str, os.PathLike)):
        return str(journal)
    path = getattr(journal, "path", None)
    return str(path) if path is not None else repr(journal)


async def open_journal(
    journal: str | os.PathLike[str] | Journal,
    *,
    create: bool,
    exclusive: bool,
    journal_process: bool = False,
) -> Journal:
    """A path opens (or creates) the SQLite journal, its store in a child process with
    ``journal_process``; a :class:`Journal` is used as is."""
    check_journal(journal, journal_process)
    if isinstance(journal, (str, os.PathLike)):
        return await SQLiteJournal.open(
            journal, create=create, exclusive=exclusive, process=journal_process
        )
    return journal  # check_journal: a Journal


def check_journal(journal: object, journal_process: object) -> None:
    """Refuse a ``journal`` that is neither a path nor a :class:`Journal`, and
    ``journal_process`` with a journal opened already (it is how a path is opened)."""
    check_flag("journal_process", journal_process)
    if isinstance(journal, (str, os.PathLike)):
        return
    if not isinstance(journal, Journal):
        raise invalid("journal", "must be a path or a Journal", journal)
    if journal_process:
        raise invalid(
            "journal_process",
            "applies to a journal's path: open an SQLiteJournal with process=True instead",
            journal_process,
        )


def price_list(prices: PriceList | Decimal | str | int | None) -> PriceList | None:
    """A price list, from one price per part when that is what was given."""
    if prices is None or isinstance(prices, PriceList):
        return prices
    try:
        return PriceList({}, default=prices)
    except ConfigurationError:  # it named the price list's "default": name the argument
        raise invalid("prices", "must be a PriceList, or one price per part", prices) from None
