"""Reading recipients: streaming CSV/JSONL, body templates, and the checks made at load time.

Nothing here holds more than one record at a time: a 1,000,000-row file streams through in
constant memory. The bytes are hashed as they are read, so the loader can prove at the end
that it read the very file whose SHA-256 the journal recorded.

Every record becomes a :class:`~._journal.LoadedRow`: ready to send, or refused with the
reason (a bad destination, a template variable missing, a body that cannot be sent). A bad
row never stops a campaign; it is reported. That holds for rows that are not text at all:
the file is decoded with ``surrogateescape``, so invalid UTF-8 bytes, like a JSON
``"\ud800"`` escape, reach :func:`_record` as lone surrogates, and there every value of a
record is checked once (:func:`~agile_async._text.text_problem`, NUL characters) before
anything of it is rendered, counted or written to the journal.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import string
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import attrs

from .._exceptions import ValidationError
from .._models import SendOptions
from .._text import printable, text_problem
from .._validation import check_destination
from ..segments import MAX_PARTS, body_problems, count_segments
from ._journal import CampaignError, Failure, InputFormat, LoadedRow

__all__ = [
    "BodyTemplate",
    "InputRecord",
    "RecordReader",
    "RowBuilder",
    "TemplateError",
    "derived_id",
    "detect_format",
    "file_digest",
]

#: Characters people put in phone numbers for readability; removed before checking.
_SEPARATORS = str.maketrans("", "", " -.()\t")
_READ_BLOCK = 1 << 20


class TemplateError(CampaignError, ValueError):
    """The body template is malformed, or a row lacks a variable it uses."""


class BodyTemplate:
    """A body with ``{name}`` fields filled from each row, ``str.format`` style.

    ```python
    template = BodyTemplate("Hi {first_name}, your code is {code}. {{STOP}} to opt out")
    template.render({"first_name": "Ada", "code": "1234"})
    ```

    Only *named* fields are allowed, and a name is looked up as a whole: no attribute
    access (``{x.__class__}``), no indexing (``{x[0]}``), no positional fields, no nested
    fields in a format spec. So a template can read the row's values and nothing else.
    Values are strings; a format spec applies to strings (``{name:.10}`` truncates).
    Literal braces are doubled: ``{{`` and ``}}``.
    """

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise ValidationError.single(
                "template", f"must be a string, not {type(template).__name__}"
            )
        problem = text_problem(template)
        if problem is not None:
            raise TemplateError(f"the body template {problem}")
        self.template = template
        self.fields: tuple[str, ...] = _fields(template)

    def render(self, variables: Mapping[str, str]) -> str:
        """The body for one row.

        Raises:
            TemplateError: a field has no value in ``variables``, or its format spec does
                not apply to a string.
        """
        try:
            return self.template.format_map(variables)
        except KeyError as error:
            raise TemplateError(f"the row has no value for {{{error.args[0]}}}") from None
        except ValueError as error:
            raise TemplateError(f"the template cannot format this row: {error}") from None

    def __repr__(self) -> str:
        return f"BodyTemplate({self.template!r})"


def _fields(template: str) -> tuple[str, ...]:
    """The template's field names, once each, after refusing anything but plain names."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(f"the body template is malformed: {error}") from None
    names: dict[str, None] = {}
    for _, name, spec, _conversion in parsed:
        if name is None:
            continue
        if not name or name.isdigit():
            raise TemplateError(
                "the body template may only use named fields such as {first_name}, "
                f"not {{{name}}}: give the column's name"
            )
        if any(char in name for char in ".[]"):
            raise TemplateError(
                f"the body template field {{{name}}} uses attribute or index access, which "
                "templates do not allow: name a column"
            )
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError(f"the format spec of {{{name}}} may not contain fields")
        names[name] = None
    fields = tuple(names)
    try:  # a spec that cannot format a string fails now, not on every row
        template.format_map(dict.fromkeys(fields, ""))
    except ValueError as error:
        raise TemplateError(f"the body template cannot format text values: {error}") from None
    return fields


# -- reading records --------------------------------------------------------------------


@attrs.frozen
class InputRecord:
    """One record of the input: its number, its values, or why it could not be read."""

    seq: int
    destination: str
    message_id: str | None
    variables: Mapping[str, str]
    problem: str | None = None


def detect_format(path: Path) -> InputFormat:
    """``jsonl`` for ``.jsonl``/``.ndjson``/``.json`` files, ``csv`` for ``.csv``/``.txt``;
    otherwise sniff the first non-blank character (``{`` means JSON lines)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def file_digest(path: Path) -> tuple[str, int]:
    """The file's SHA-256 (hex) and size, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class _HashingReader(io.RawIOBase):
    """Hashes the bytes as the text layer above reads them."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)
        if count:
            self.digest.update(memoryview(buffer)[:count])
            self.size += count
        return count or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class RecordReader:
    """Streams the records of a CSV or JSONL file, one at a time, hashing its bytes.

    CSV needs a header with a ``destination`` column (any case); an ``id`` column gives
    message ids; every column is a template variable. JSONL has one object per line with
    the same keys. Blank JSONL lines are skipped; records are numbered from 1.

    Raises:
        CampaignError: the file cannot be a campaign (no header, no ``destination`` column,
            duplicate columns, a header that is not UTF-8 text). A bad record is not an
            error: it is yielded with its ``problem``.
    """

    def __init__(self, path: Path, format: InputFormat) -> None:
        self.path = path
        self.format = format
        self._hashing = _HashingReader(open(path, "rb"))  # noqa: SIM115 - closed in close()
        # Undecodable bytes become lone surrogates, refused row by row in _record().
        self._text: IO[str] = io.TextIOWrapper(
            io.BufferedReader(self._hashing, _READ_BLOCK),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        self.columns: tuple[str, ...] = ()
        self._exhausted = False
        try:
            if format == "csv":
                self._reader = csv.reader(self._text)
                self.columns = self._csv_header()
                self._records = self._csv()
            else:
                self._records = self._jsonl()
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[InputRecord]:
        return self

    def __next__(self) -> InputRecord:
        try:
            return next(self._records)
        except StopIteration:
            self._exhausted = True
            raise

    @property
    def bytes_read(self) -> int:
        """How many bytes of the file have been read so far (ahead of the records)."""
        return self._hashing.size

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of everything read, once the whole file has been read."""
        return self._hashing.digest.hexdigest() if self._exhausted else None

    def close(self) -> None:
        """Close the file."""
        self._text.close()

    # -- CSV -----------------------------------------------------------------------------

    def _csv_header(self) -> tuple[str, ...]:
        try:
            header = next(self._reader)
        except StopIteration:
            raise CampaignError(f"{self.path} is empty: a CSV header is needed") from None
        except csv.Error as error:
            raise CampaignError(f"{self.path} is not readable as CSV: {error}") from None
        columns = tuple(name.strip() for name in header)
        for name in columns:
            problem = _not_utf8(name) or _nul(name)
            if problem is not None:
                raise CampaignError(
                    f"{self.path}: the header's column {printable(name)!r} {problem}"
                )
        lowered = [name.lower() for name in columns]
        if "destination" not in lowered:
            raise CampaignError(
                f"{self.path} has no 'destination' column (columns: {', '.join(columns)})"
            )
        duplicates = sorted({name for name in lowered if lowered.count(name) > 1})
        if duplicates:
            raise CampaignError(f"{self.path} repeats the columns {', '.join(duplicates)}")
        self._destination = lowered.index("destination")
        self._id = lowered.index("id") if "id" in lowered else None
        return columns

    def _csv(self) -> Iterator[InputRecord]:
        columns = self.columns
        width = len(columns)
        destination, id_column = self._destination, self._id
        seq = 0
        while True:
            try:
                for values in self._reader:
                    if not values:  # a blank line
                        continue
                    seq += 1
                    if len(values) != width:
                        yield _record(
                            seq,
                            values[destination] if destination < len(values) else "",
                            None,
                            {},
                            f"the row has {len(values)} fields, the header has {width}",
                        )
                        continue
                    message_id = values[id_column].strip() if id_column is not None else None
                    variables = dict(zip(columns, values, strict=True))
                    if _plain("".join(values)):
                        yield InputRecord(seq, values[destination], message_id or None, variables)
                    else:
                        yield _record(seq, values[destination], message_id or None, variables)
                return
            except csv.Error as error:  # a field over the csv module's limit, say: the
                seq += 1  # reader goes on with the next line
                yield _record(seq, "", None, {}, f"the row is not readable as CSV: {error}")

    # -- JSON lines ----------------------------------------------------------------------

    def _jsonl(self) -> Iterator[InputRecord]:
        seq = 0
        for line in self._text:
            if not line.strip():
                continue
            seq += 1
            undecodable = _not_utf8(line)
            if undecodable is not None:
                yield _record(seq, "", None, {}, f"the line {undecodable}")
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as error:  # too deep a nesting is no JSON row
                yield _record(seq, "", None, {}, f"the line is not JSON: {error}")
                continue
            if not isinstance(value, dict):
                yield _record(seq, "", None, {}, "the line is not a JSON object")
                continue
            variables: dict[str, str] = {}
            problem = None
            for key, item in value.items():
                text = _scalar_text(item)
                if text is None:
                    problem = f"{printable(key)!r} must be a string, number, boolean or null"
                    break
                variables[key] = text
            raw_id = variables.get("id", "").strip()
            if problem is None and "\\u" not in line:
                # Valid UTF-8 without \u escapes cannot decode to a surrogate or a NUL.
                yield InputRecord(seq, variables.get("destination", ""), raw_id or None, variables)
                continue
            # The line is UTF-8, so a surrogate here came from a "\ud800" escape.
            yield _record(
                seq,
                variables.get("destination", ""),
                raw_id or None,
                variables,
                problem,
                check=text_problem,
            )


def _not_utf8(text: str) -> str | None:
    """For text read from the file: where its first undecodable byte is. Decoding with
    ``surrogateescape`` turns byte ``0xNN`` (always >= 0x80) into ``U+DCNN``."""
    problem = text_problem(text)
    if problem is None:
        return None
    index = next((i for i, char in enumerate(text) if "\udc80" <= char <= "\udcff"), None)
    if index is None:  # pragma: no cover - decoding makes no other surrogate
        return problem
    byte = ord(text[index]) - 0xDC00
    return f"is not UTF-8 text (byte 0x{byte:02X} at character {index}): save the file as UTF-8"


def _plain(text: str) -> bool:
    """The common case, checked on a record's text at once: nothing for :func:`_record` to
    explain (no NUL, encodable)."""
    return "\x00" not in text and (text.isascii() or text_problem(text) is None)


def _nul(value: str) -> str | None:
    return "holds a NUL character (is the file binary, or UTF-16?)" if "\x00" in value else None


def _record(
    seq: int,
    destination: str,
    message_id: str | None,
    variables: dict[str, str],
    problem: str | None = None,
    *,
    check: Callable[[str], str | None] = _not_utf8,
) -> InputRecord:
    """The one place a record is made: every name and value it holds is checked to be text
    first (``check``: encodable; and no NUL). A record with a problem keeps only what
    identifies it, made printable, so the journal can store it and the report show it."""
    if problem is None:
        for name, value in variables.items():
            for text in (name, value):
                problem = check(text) or _nul(text)
                if problem is not None:
                    where = "a column name" if text is name else f"{printable(name)!r}"
                    problem = f"{where} {problem}"
                    break
            if problem is not None:
                break
    if problem is None:
        return InputRecord(seq, destination, message_id, variables)
    return InputRecord(
        seq,
        printable(destination),
        None if message_id is None else printable(message_id),
        {},
        problem,
    )


def _scalar_text(value: object) -> str | None:
    """A JSON scalar as template text: strings as they are, ``true``, ``1.5``, ``""``."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


# -- turning records into rows ----------------------------------------------------------


def derived_id(campaign_id: str, seq: int) -> str:
    """The message id of a row that has none: the campaign's id and the row number.

    Deterministic, so a load resumed after a crash gives every row the id it had.
    """
    return f"{campaign_id}-{seq}"


@functools.lru_cache(maxsize=4096)
def _count(body: str, unicode: bool, concatenated: bool) -> tuple[str, int, str | None]:
    """Encoding, parts, and what stops the body from being sent (campaigns repeat bodies)."""
    try:
        count = count_segments(body, unicode=unicode)
    except ValidationError as error:  # non-GSM characters with Unicode disabled
        return "GSM-7", 0, "; ".join(problem.message for problem in error.problems)
    if count.segments <= (MAX_PARTS if concatenated else 1):
        return count.encoding, count.segments, None
    problems = body_problems(body, unicode=unicode, concatenated=concatenated)
    reason = "; ".join(problem.message for problem in problems) or "the body is too long"
    return count.encoding, count.segments, reason


_WHITESPACE = re.compile(r"\s")


class RowBuilder:
    """Turns input records into journal rows: body, id, checks, parts."""

    def __init__(self, template: BodyTemplate, campaign_id: str, options: SendOptions) -> None:
        self._template = template
        self._campaign_id = campaign_id
        self._max_id_len = options.max_id_len
        self._unicode = options.enable_unicode
        self._concatenated = options.enable_concatenated

    def build(self, record: InputRecord) -> LoadedRow:
        """The row for ``record``, refused with a reason if it cannot be sent."""
        seq = record.seq
        destination = record.destination.translate(_SEPARATORS)
        message_id = record.message_id or derived_id(self._campaign_id, seq)
        if record.problem is not None:
            return _refused(seq, message_id, destination, "InputError", record.problem)
        problem = check_destination(destination)
        if problem is not None:
            return _refused(seq, message_id, destination, "ValidationError", problem)
        if len(message_id) > self._max_id_len or _WHITESPACE.search(message_id):
            return _refused(
                seq,
                None,
                destination,
                "ValidationError",
                f"id {message_id!r} must be at most {self._max_id_len} characters, no spaces",
            )
        try:
            body = self._template.render(record.variables)
        except TemplateError as error:
            return _refused(seq, message_id, destination, "TemplateError", str(error))
        if not body:
            return _refused(seq, message_id, destination, "TemplateError", "the body is empty")
        encoding, parts, problem = _count(body, self._unicode, self._concatenated)
        if problem is not None:
            return _refused(seq, message_id, destination, "ValidationError", problem)
        return LoadedRow(
            seq=seq,
            message_id=message_id,
            destination=destination,
            body=body,
            parts=parts,
            encoding=encoding,
        )


def _refused(
    seq: int, message_id: str | None, destination: str, kind: str, message: str
) -> LoadedRow:
    return LoadedRow(
        seq=seq,
        message_id=message_id,
        destination=destination,
        body=None,
        failure=Failure(kind, message),
    )
