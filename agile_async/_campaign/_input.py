"""Reading recipients: streaming CSV/JSONL, body templates, and the checks made at load time.

Nothing here holds more than one record at a time: a 1,000,000-row file streams through in
constant memory. The bytes are hashed as they are read, so the loader can prove at the end
that it read the very file whose SHA-256 the journal recorded.

Every record becomes a :class:`~._journal.LoadedRow`: ready to send, or refused with the
reason (a bad destination, a template variable missing or null, a body that cannot be
sent), and every reason names the record's line in the file. A bad row never stops a
campaign; it is reported. That holds for rows that are not text at all: the file is decoded
(UTF-8, or the campaign's ``encoding``) with an error handler that turns every byte that
does not decode into a lone surrogate (``U+DC00`` + the byte, as ``surrogateescape`` does),
so undecodable bytes, like a JSON ``"\\ud800"`` escape, reach :func:`_record` as lone
surrogates, and there every value of a record is checked once
(:func:`~agile_async._text.text_problem`, NUL characters) before anything of it is rendered,
counted or written to the journal.

A CSV file's delimiter is the campaign's, or sniffed from its start (:func:`sniff_delimiter`:
comma, semicolon or tab, as spreadsheets write them).
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import math
import re
import string
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO

import attrs

from .._counting import MAX_PARTS, body_problems, count_parts
from .._exceptions import CampaignError, TemplateError, ValidationError
from .._models import SendOptions
from .._text import printable, text_problem
from .._validation import check_destination
from ._journal import Failure, InputFormat, LoadedRow

__all__ = [
    "BodyTemplate",
    "InputRecord",
    "RecordReader",
    "RowBuilder",
    "derived_id",
    "detect_format",
    "file_digest",
    "input_delimiter",
    "input_encoding",
    "sniff_delimiter",
]

#: Characters people put in phone numbers for readability; removed before checking.
_SEPARATORS = str.maketrans("", "", " -.()\t")
_READ_BLOCK = 1 << 20


class BodyTemplate:
    """A body with ``{name}`` fields filled from each row, ``str.format`` style.

    ```python
    template = BodyTemplate("Hi {first_name}, your code is {code}. {{STOP}} to opt out")
    template.render({"first_name": "Ada", "code": "1234"})
    ```

    Only *named* fields are allowed, and a name is looked up as a whole: no attribute
    access (``{x.__class__}``), no indexing (``{x[0]}``), no positional fields, no nested
    fields in a format spec. So a template can read the row's values and nothing else.
    Values are text, numbers or booleans (written as JSON writes them: ``true``, ``1.5``);
    a value that is missing, null (``None``) or anything else (a list, an object) fails the
    row with the reason, instead of sending ``None`` or an empty string in a paid SMS. A
    format spec applies to the text (``{name:.10}`` truncates). Literal braces are doubled:
    ``{{`` and ``}}``.
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

    def render(self, variables: Mapping[str, object]) -> str:
        """The body for one row.

        Raises:
            TemplateError: a field has no value in ``variables``, its value is null or not
                text, a number or a boolean, or its format spec does not apply to a string.
        """
        values: dict[str, str] = {}
        for name in self.fields:
            try:
                value = variables[name]
            except KeyError:
                raise TemplateError(f"the row has no value for {{{name}}}") from None
            if type(value) is not str:  # the common case costs one check
                value = _template_text(name, value)
            values[name] = value
        try:
            return self.template.format_map(values)
        except ValueError as error:
            raise TemplateError(f"the template cannot format this row: {error}") from None

    def __repr__(self) -> str:
        return f"BodyTemplate({self.template!r})"


def _template_text(name: str, value: object) -> str:
    """The one rule for a template value that is not a ``str``: a boolean or a finite
    number is written as JSON writes it; null and anything else fail the row."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    if value is None:
        raise TemplateError(f"the row's value for {{{name}}} is null: give it a value")
    kind = "a number that is not finite" if isinstance(value, float) else type(value).__name__
    raise TemplateError(
        f"the row's value for {{{name}}} is {kind}, not text, a number or a boolean"
    )


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

#: The error handler input is decoded with: every byte that does not decode becomes the
#: lone surrogate ``U+DC00 + byte`` (``surrogateescape`` does so for bytes from 0x80 only,
#: and raises for the others, which UTF-16 or a multi-byte encoding can leave unpaired).
#: A lone surrogate is not text, so :func:`_record` refuses the row it is in.
_UNDECODABLE = "agile_async.undecodable"


def _escape_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):  # pragma: no cover - decoding only
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(_UNDECODABLE, _escape_undecodable)

#: The delimiters sniffed: comma, semicolon (what Excel writes where the decimal separator
#: is a comma: Italy, much of Europe), tab.
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}
#: How much of the start of a CSV file the delimiter is sniffed from.
_SNIFF_BYTES = 1 << 16
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def input_encoding(encoding: object) -> str:
    """The canonical name of a text encoding Python knows (``utf-8``, ``cp1252``,
    ``iso8859-1`` for ``latin-1``...).

    Raises:
        ValidationError: ``encoding`` is not the name of a text encoding.
    """
    if not isinstance(encoding, str):
        raise ValidationError.single("encoding", f"must be a string, not {type(encoding).__name__}")
    try:
        name = codecs.lookup(encoding).name
        "".encode(name)  # LookupError for codecs that are not text encodings (rot13, hex)
    except LookupError:
        raise ValidationError.single(
            "encoding",
            f"{printable(encoding)!r} is not a text encoding Python knows "
            "(utf-8, cp1252, latin-1, utf-16...)",
        ) from None
    return name


def input_delimiter(delimiter: object) -> str | None:
    """A CSV delimiter: one character, or ``tab``, ``comma``, ``semicolon``; ``None`` to
    sniff it.

    Raises:
        ValidationError: not one character, or one that cannot separate fields.
    """
    if delimiter is None:
        return None
    if not isinstance(delimiter, str):
        raise ValidationError.single(
            "delimiter", f"must be a string, not {type(delimiter).__name__}"
        )
    value = _DELIMITER_NAMES.get(delimiter.lower(), delimiter)
    if len(value) != 1 or value in '"\r\n' or value.isalnum():
        raise ValidationError.single(
            "delimiter",
            f"must be one character such as ',', ';' or 'tab' (not a letter, a digit, a "
            f"quote or a line break), not {printable(delimiter)!r}",
        )
    return value


#: Byte order marks of encodings whose every line would fail if read as another one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def _check_byte_order_mark(path: Path, encoding: str) -> None:
    """Refuse a UTF-16 or UTF-32 file read as something else: not a bad row, but every row
    (what Excel's "Unicode Text" is), so the file is refused at once with the fix."""
    if encoding.startswith(("utf-16", "utf-32")):
        return
    with open(path, "rb") as handle:
        head = handle.read(4)
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise CampaignError(
                f"{path}, line 1: the file starts with a {name.upper()} byte order mark, so it "
                f"is {name.upper()} text, not {encoding}: give its encoding (--encoding {name})"
            )


def _reading(encoding: str) -> str:
    """The codec a file is read with: a UTF-8 file may start with a byte order mark."""
    return "utf-8-sig" if encoding == "utf-8" else encoding


def sniff_delimiter(path: Path, encoding: str = "utf-8") -> str:
    """The delimiter of a CSV file (blocking): comma, semicolon or tab.

    The header decides when it has a ``destination`` column with exactly one of them;
    otherwise :class:`csv.Sniffer`, restricted to those that fit, reads the first lines;
    a file it cannot tell (one column) is comma-separated.
    """
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    lines = _LINE_BREAK.split(head.decode(_reading(encoding), _UNDECODABLE))
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines.pop()  # cut short
    header = next((line for line in lines if line.strip()), "")
    fits = [
        delimiter
        for delimiter in DELIMITERS
        if "destination"
        in (name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter)))
    ]
    if len(fits) == 1:
        return fits[0]
    try:
        sample = "\n".join(lines[:200])
        return csv.Sniffer().sniff(sample, delimiters="".join(fits or DELIMITERS)).delimiter
    except csv.Error:
        return fits[0] if fits else ","


@attrs.frozen
class InputRecord:
    """One record of the input: its number, its values, or why it could not be read.

    ``line`` is the file line the record starts on (from 1; a CSV record may span lines).
    ``variables`` are text for CSV, JSON values for JSON lines (the template decides what
    it accepts).
    """

    seq: int
    destination: str
    message_id: str | None
    variables: Mapping[str, object]
    problem: str | None = None
    line: int = 0


def detect_format(path: Path, encoding: str = "utf-8") -> InputFormat:
    """``jsonl`` for ``.jsonl``/``.ndjson``/``.json`` files, ``csv`` for ``.csv``/``.txt``;
    otherwise sniff the first non-blank character (``{`` means JSON lines)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    with open(path, "rb") as handle:
        head = handle.read(4096).decode(_reading(encoding), _UNDECODABLE)
    return "jsonl" if head.lstrip("\ufeff \t\r\n").startswith("{") else "csv"


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
    message ids; every column is a template variable; fields are separated by
    ``delimiter``, or by what :func:`sniff_delimiter` finds (see :attr:`delimiter`). JSONL
    has one object per line with the same keys. Blank lines are skipped; records are
    numbered from 1, and each knows the file line it starts on.

    Raises:
        CampaignError: the file cannot be a campaign (no header, no ``destination`` column,
            duplicate columns, a header that is not text in ``encoding``), naming the line.
            A bad record is not an error: it is yielded with its ``problem``.
        ValidationError: ``encoding`` or ``delimiter`` is not one.
    """

    def __init__(
        self,
        path: Path,
        format: InputFormat,
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
    ) -> None:
        self.path = path
        self.format = format
        self.encoding = input_encoding(encoding)
        given = input_delimiter(delimiter)  # checked for JSON lines too, where it is unused
        _check_byte_order_mark(path, self.encoding)
        self.delimiter: str | None = None
        if format == "csv":
            self.delimiter = given or sniff_delimiter(path, self.encoding)
        self._check = functools.partial(_undecodable, encoding=self.encoding)
        self._hashing = _HashingReader(open(path, "rb"))  # noqa: SIM115 - closed in close()
        # Undecodable bytes become lone surrogates, refused row by row in _record().
        self._text: IO[str] = io.TextIOWrapper(
            io.BufferedReader(self._hashing, _READ_BLOCK),
            encoding=_reading(self.encoding),
            errors=_UNDECODABLE,
            newline="",
        )
        self.columns: tuple[str, ...] = ()
        self._exhausted = False
        try:
            if format == "csv":
                self._reader = csv.reader(self._text, delimiter=self.delimiter or ",")
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
        where = f"{self.path}, line 1"
        try:
            header = next(self._reader)
        except StopIteration:
            raise CampaignError(f"{self.path} is empty: a CSV header is needed") from None
        except csv.Error as error:
            raise CampaignError(f"{where} (the header) is not readable as CSV: {error}") from None
        columns = tuple(name.strip() for name in header)
        for number, name in enumerate(columns, 1):
            problem = self._check(name) or _nul(name)
            if problem is not None:
                raise CampaignError(
                    f"{where}: the header's column {number} ({printable(name)!r}) {problem}"
                )
        lowered = [name.lower() for name in columns]
        if "destination" not in lowered:
            raise CampaignError(
                f"{where}: the header has no 'destination' column (columns, separated by "
                f"{_delimiter_name(self.delimiter)}: {', '.join(columns)})"
            )
        duplicates = sorted({name for name in lowered if lowered.count(name) > 1})
        if duplicates:
            raise CampaignError(f"{where}: the header repeats the columns {', '.join(duplicates)}")
        self._destination = lowered.index("destination")
        self._id = lowered.index("id") if "id" in lowered else None
        return columns

    def _csv(self) -> Iterator[InputRecord]:
        reader = self._reader
        columns = self.columns
        width = len(columns)
        destination, id_column = self._destination, self._id
        check = self._check
        seq = 0
        after = reader.line_num + 1  # where the next record starts
        while True:
            try:
                for values in reader:
                    line, after = after, reader.line_num + 1
                    if not values:  # a blank line
                        continue
                    seq += 1
                    count = len(values)
                    message_id = (
                        values[id_column].strip(_ID_PADDING)
                        if id_column is not None and id_column < count
                        else ""
                    )
                    if count != width:
                        yield _record(
                            seq,
                            line,
                            values[destination] if destination < count else "",
                            message_id or None,
                            {},
                            f"the row has {count} fields, the header has {width} (separated "
                            f"by {_delimiter_name(self.delimiter)})",
                        )
                        continue
                    variables = dict(zip(columns, values, strict=True))
                    if _plain("".join(values)):
                        yield InputRecord(
                            seq, values[destination], message_id or None, variables, line=line
                        )
                    else:
                        yield _record(
                            seq,
                            line,
                            values[destination],
                            message_id or None,
                            variables,
                            check=check,
                        )
                return
            except csv.Error as error:  # a field over the csv module's limit, say: the
                seq += 1  # reader goes on with the next line
                problem = f"the row is not readable as CSV: {error}"
                yield _record(seq, after, "", None, {}, problem)
                after = reader.line_num + 1

    # -- JSON lines ----------------------------------------------------------------------

    def _jsonl(self) -> Iterator[InputRecord]:
        seq = 0
        for line, text in enumerate(self._text, 1):
            if not text.strip(_JSON_WHITESPACE):  # blank; "\x1c" or a no-break space is not
                continue
            seq += 1
            undecodable = _first_undecodable(text)
            if undecodable is not None:
                index, byte = undecodable
                reason = "the line " + _not_decodable(byte, self.encoding, f"at column {index + 1}")
                yield _record(seq, line, "", None, {}, reason)
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                reason = f"the line is not JSON: {error.msg} (column {error.colno})"
                yield _record(seq, line, "", None, {}, reason)
                continue
            except ValueError as error:  # an integer of 5,000 digits, say
                yield _record(seq, line, "", None, {}, f"the line is not JSON: {error}")
                continue
            except RecursionError:  # too deep a nesting is no JSON row
                yield _record(seq, line, "", None, {}, "the line is not JSON: nested too deeply")
                continue
            if not isinstance(value, dict):
                yield _record(seq, line, "", None, {}, "the line is not a JSON object")
                continue
            destination, problem = _json_key(value, "destination")
            message_id, id_problem = _json_key(value, "id")
            message_id = message_id.strip(_ID_PADDING)
            problem = problem or id_problem
            if problem is None and "\\u" not in text:
                # Valid text without \u escapes cannot decode to a surrogate or a NUL.
                yield InputRecord(seq, destination, message_id or None, value, line=line)
                continue
            # The line decoded, so a surrogate here came from a "\ud800" escape.
            yield _record(
                seq, line, destination, message_id or None, value, problem, check=text_problem
            )


#: What is trimmed around an input id: the spaces and tabs people type around a value.
#: ``str.strip()`` also took control characters and Unicode spaces, so an id of only
#: ``"\x1c"`` or a no-break space silently became a generated one, and ``"a1\u00a0"``
#: became ``"a1"``. An id is kept as written; :class:`RowBuilder` refuses one that holds
#: whitespace, naming it.
_ID_PADDING = " \t"

#: What JSON calls whitespace (RFC 8259): a line of nothing else is blank. ``str.strip()``
#: would also take a line of a control character or a no-break space for a blank one, and
#: skip it silently instead of failing it as "not JSON".
_JSON_WHITESPACE = " \t\r\n"


def _json_key(value: dict[str, object], key: str) -> tuple[str, str | None]:
    """A JSON record's destination or id as text: null or absent is ``""`` (no id: one is
    generated; no destination: refused as empty); a whole number is written out."""
    item = value.get(key)
    if item is None:
        return "", None
    if isinstance(item, str):
        return item, None
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item), None
    return "", f"{key!r} must be text or a whole number, not {type(item).__name__}"


def _delimiter_name(delimiter: str | None) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(delimiter or ",", repr(delimiter))


def _first_undecodable(text: str) -> tuple[int, int] | None:
    """Where the first byte that did not decode is in ``text`` (an index, from 0), and the
    byte. Decoding turns byte ``0xNN`` into ``U+DCNN``; ASCII text has none."""
    if text.isascii() or text_problem(text) is None:
        return None
    for index, char in enumerate(text):
        if "\udc00" <= char <= "\udcff":
            return index, ord(char) - 0xDC00
    return None  # pragma: no cover - decoding makes no other surrogate


def _not_decodable(byte: int, encoding: str, where: str) -> str:
    """Why text holding an undecodable byte is refused, and what to do about it."""
    if encoding == "utf-8":
        return (
            f"is not UTF-8 text (byte 0x{byte:02X} {where}): save the file as UTF-8, or "
            "give its encoding (--encoding cp1252, say)"
        )
    return f"is not {encoding} text (byte 0x{byte:02X} {where}): is the file in another encoding?"


def _undecodable(text: str, encoding: str) -> str | None:
    """For text read from the file: why it is not text (where its first byte that did not
    decode is)."""
    found = _first_undecodable(text)
    if found is None:
        return text_problem(text)
    index, byte = found
    return _not_decodable(byte, encoding, f"at character {index}")


def _plain(text: str) -> bool:
    """The common case, checked on a record's text at once: nothing for :func:`_record` to
    explain (no NUL, encodable)."""
    return "\x00" not in text and (text.isascii() or text_problem(text) is None)


def _nul(value: str) -> str | None:
    if "\x00" not in value:
        return None
    return "holds a NUL character (is the file binary, or UTF-16? then --encoding utf-16)"


def _record(
    seq: int,
    line: int,
    destination: str,
    message_id: str | None,
    variables: Mapping[str, object],
    problem: str | None = None,
    *,
    check: Callable[[str], str | None] = text_problem,
) -> InputRecord:
    """The one place a record is made: every name and text value it holds is checked to
    be text first (``check``: encodable; and no NUL). A record with a problem keeps only
    what identifies it (its destination and id, as the input gave them), made printable,
    so the journal can store it and the report and export show it."""
    if problem is None:
        for name, value in variables.items():
            for text in (name, value):
                if not isinstance(text, str):
                    continue
                problem = check(text) or _nul(text)
                if problem is not None:
                    where = "a column name" if text is name else f"{printable(name)!r}"
                    problem = f"{where} {problem}"
                    break
            if problem is not None:
                break
    if problem is None:
        return InputRecord(seq, destination, message_id, variables, line=line)
    return InputRecord(
        seq,
        printable(destination),
        None if message_id is None else printable(message_id),
        {},
        problem,
        line=line,
    )


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
        parts, encoding = count_parts(body, unicode=unicode)
    except ValidationError as error:  # non-GSM characters with Unicode disabled
        return "GSM-7", 0, "; ".join(problem.message for problem in error.problems)
    if parts <= (MAX_PARTS if concatenated else 1):
        return encoding, parts, None
    problems = body_problems(body, unicode=unicode, concatenated=concatenated)
    reason = "; ".join(problem.message for problem in problems) or "the body is too long"
    return encoding, parts, reason


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
        """The row for ``record``, refused with a reason if it cannot be sent.

        A refused row keeps the id the input gave it (even one refused as too long), so
        reports and exports match the operator's own records; its reason starts with the
        file line (``line 92: ...``).
        """
        seq = record.seq
        destination = record.destination.translate(_SEPARATORS)
        message_id = record.message_id or derived_id(self._campaign_id, seq)
        if record.problem is not None:
            return _refused(record, message_id, destination, "InputError", record.problem)
        problem = check_destination(destination)
        if problem is not None:
            return _refused(record, message_id, destination, "ValidationError", problem)
        if len(message_id) > self._max_id_len or _WHITESPACE.search(message_id):
            return _refused(
                record,
                message_id,
                destination,
                "ValidationError",
                f"id {message_id!r} must be at most {self._max_id_len} characters,"
                " with no whitespace",
            )
        try:
            body = self._template.render(record.variables)
        except TemplateError as error:
            return _refused(record, message_id, destination, "TemplateError", str(error))
        if not body:
            return _refused(record, message_id, destination, "TemplateError", "the body is empty")
        encoding, parts, problem = _count(body, self._unicode, self._concatenated)
        if problem is not None:
            return _refused(record, message_id, destination, "ValidationError", problem)
        return LoadedRow(
            seq=seq,
            message_id=message_id,
            destination=destination,
            body=body,
            parts=parts,
            encoding=encoding,
            line=record.line or None,
        )


def _refused(
    record: InputRecord, message_id: str, destination: str, kind: str, message: str
) -> LoadedRow:
    """A row refused at load: the reason names its file line; it keeps its id."""
    if record.line:
        message = f"line {record.line}: {message}"
    return LoadedRow(
        seq=record.seq,
        message_id=message_id,
        destination=destination,
        body=None,
        failure=Failure(kind, message),
        line=record.line or None,
    )
