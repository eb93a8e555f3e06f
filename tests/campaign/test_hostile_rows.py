"""Hostile recipients files through ``agile-sms campaign run``: bad rows never stop a campaign.

Every row that is not usable text (invalid UTF-8, a ``"\\ud800"`` escape, NUL), not a JSON
object, of the wrong JSON type, or too big a number becomes a *failed* row with its reason;
every good row is sent; the ``--json`` document and the journal hold every row.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from agile_async import ValidationError
from agile_async._cli._app import cli
from agile_async.campaigns import BodyTemplate, Campaign, RowState, TemplateError
from agile_async.testing import FakeAgileServer

pytest.importorskip("uvicorn")  # the sandbox is served over TLS (the server extra)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run(source: Path, body: str = "Hi {name}") -> tuple[Result, dict[str, Any]]:
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", body,
                    "--sandbox", "--yes", "--json")  # fmt: skip
    return result, json.loads(result.stdout)


def exported(source: Path) -> dict[int, dict[str, str]]:
    """The journal's rows by input row number, through ``campaign export``."""
    result = invoke("campaign", "export", "--journal", f"{source}.journal")
    assert result.exit_code == 0, result.output
    return {int(row["seq"]): row for row in csv.DictReader(io.StringIO(result.stdout))}


def jsonl(*lines: str | bytes) -> bytes:
    return b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)


#: (line, the failure's "kind: reason" (or its end), or None for a row that is sent)
JSONL_ROWS: list[tuple[bytes, str | None]] = [
    (b'{"destination": "+393471000001", "name": "Ada"}', None),
    (
        b'{"destination": "+393471000002", "name": "Bo\\ud800"}',
        "InputError: 'name' holds a lone surrogate",
    ),
    (
        b'{"destination": "+393471000003", "name": "Cy\xff"}',
        "InputError: the line is not UTF-8 text (byte 0xFF at column 45)",
    ),
    (
        b'{"destination": "+393471000004", "name": "\\udcff", "id": "x"}',
        "InputError: 'name' holds a lone surrogate",
    ),
    (
        b'{"destination": "+39347\\ud83d1000005", "name": "Di"}',
        "InputError: 'destination' holds a lone",
    ),
    (
        b'{"destination": "+393471000006", "id": "i-\\udc80"}',
        "InputError: 'id' holds a lone surrogate",
    ),
    (
        b'{"\\ud800": "key", "destination": "+393471000007"}',
        "InputError: a column name holds a lone",
    ),
    (b'{"destination": "+393471000008", "name": "a\\u0000b"}', "InputError: 'name' holds a NUL"),
    (
        b'{"destination": ["+393471000009"], "name": "Ed"}',
        "InputError: 'destination' must be text or a whole number, not list",
    ),
    (
        b'{"destination": "+393471000010", "name": {"first": "Flo"}}',
        "TemplateError: the row's value for {name} is dict, not text, a number or a boolean",
    ),
    (
        b'{"destination": 1e400, "name": "Gil"}',
        "InputError: 'destination' must be text or a whole number, not float",
    ),
    (b'{"destination": 393471000012, "name": "Hal"}', None),  # numbers become text
    (b'{"destination": ' + b"9" * 5000 + b"}", "InputError: the line is not JSON"),
    (b"[" * 100_000, "InputError: the line is not JSON"),
    (b'["+393471000015", "Ivy"]', "InputError: the line is not a JSON object"),
    (b'"+393471000016"', "InputError: the line is not a JSON object"),
    (b"null", "InputError: the line is not a JSON object"),
    (b'{"destination": "+393471000018", "name": "raw\x00NUL"}', "InputError: the line is not JSON"),
    (
        b'{"destination": "+393471000019", "name": "\xed\xa0\x80"}',
        "InputError: the line is not UTF-8 text (byte 0xED at column 43)",
    ),
    (b'{"destination": "+393471000020", "name": "Jo", "vip": true, "n": 1.5}', None),
]


def assert_reason(row: dict[str, str], reason: str, *, line: int) -> None:
    """The exported row failed for ``reason`` ("kind: text"), naming its file line."""
    kind, _, text = reason.partition(": ")
    assert row["error"] == kind, row
    assert row["error_message"].startswith(f"line {line}: "), row
    assert text in row["error_message"], row


def test_a_jsonl_campaign_with_hostile_rows_sends_the_good_ones(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    source.write_bytes(jsonl(*(line for line, _ in JSONL_ROWS)))
    result, document = run(source)
    assert result.exit_code == 1, result.output  # finished, with failed rows
    good = sum(reason is None for _, reason in JSONL_ROWS)
    counts = document["result"]["campaign"]
    assert (counts["total"], counts["accepted"]) == (len(JSONL_ROWS), good)
    assert counts["failed"] == len(JSONL_ROWS) - good
    rows = exported(source)
    for seq, (_, reason) in enumerate(JSONL_ROWS, start=1):
        row = rows[seq]
        if reason is None:
            assert row["state"] == "accepted", row
        else:
            assert row["state"] == "failed", row
            assert_reason(row, reason, line=seq)
    # What identifies a refused row is kept, printable: the report can show it.
    assert rows[5]["destination"] == "+39347\\ud83d1000005"
    assert rows[6]["id"] == "i-\\udc80"


def test_a_csv_campaign_with_hostile_rows_sends_the_good_ones(tmp_path: Path) -> None:
    lines = [
        b"destination,name,id",
        b"+393471000001,Ada,",
        b"+393471000002,Bo\xe8,",  # Latin-1, not UTF-8
        b"+393471000003,C\x00y,",
        b"\xff\xfe+393471000004,Di,",
        b"+393471000005,Ed,id-\xc3",
        b"+393471000006",
        b"+393471000007," + b"x" * 200_000 + b",",  # over the csv module's field limit
        b'+393471000008,"Flo, ""the"" florist",f-8',
        b"+393471000009,Gil,",
    ]
    source = tmp_path / "r.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    reasons = {
        2: "InputError: 'name' is not UTF-8 text (byte 0xE8 at character 2): save the file",
        3: (
            "InputError: 'name' holds a NUL character"
            if sys.version_info >= (3, 11)  # Python 3.10's csv module refuses the line itself
            else "InputError: the row is not readable as CSV: line contains NUL"
        ),
        4: "InputError: 'destination' is not UTF-8 text (byte 0xFF at character 0)",
        5: "InputError: 'id' is not UTF-8 text (byte 0xC3 at character 3)",
        6: "InputError: the row has 1 fields, the header has 3 (separated by commas)",
        7: "InputError: the row is not readable as CSV: field larger than field limit",
    }
    result, document = run(source)
    assert result.exit_code == 1, result.output
    counts = document["result"]["campaign"]
    assert (counts["total"], counts["accepted"], counts["failed"]) == (9, 3, 6)
    rows = exported(source)
    for seq, row in rows.items():
        if seq in reasons:
            assert row["state"] == "failed", row
            assert_reason(row, reasons[seq], line=seq + 1)  # the header is line 1
        else:
            assert row["state"] == "accepted", row
    assert rows[4]["destination"] == "\\udcff\\udcfe+393471000004"


def test_a_header_that_is_not_text_refuses_the_file(tmp_path: Path) -> None:
    """The header is not a row: without it nothing can be read, so the campaign is refused
    (a usage error, nothing recorded), naming the column and the byte."""
    source = tmp_path / "r.csv"
    source.write_bytes(b"destination,n\xe4me\n+393471000001,Ada\n")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--sandbox", "--yes")  # fmt: skip
    assert result.exit_code == 2
    assert "r.csv, line 1: the header" in result.output
    assert "not UTF-8 text (byte 0xE4 at character 1)" in result.output
    assert not Path(f"{source}.journal").exists()


def test_a_template_that_is_not_text_is_refused() -> None:
    """``--body`` arrives through ``surrogateescape`` when the terminal sent invalid bytes."""
    with pytest.raises(TemplateError, match="lone surrogate"):
        BodyTemplate("Hi {name} \udcff")


@pytest.mark.anyio
async def test_the_python_api_records_hostile_rows_too(tmp_path: Path) -> None:
    """The same load, through ``Campaign`` and an in-memory fake provider."""
    source = tmp_path / "r.jsonl"
    source.write_bytes(jsonl(*(line for line, _ in JSONL_ROWS)))
    fake = FakeAgileServer()
    async with (
        await Campaign.create(tmp_path / "j", source, body="Hi {name}", sender="Shop") as campaign,
        fake.client() as client,
    ):
        outcome = await campaign.run(client)
    good = sum(reason is None for _, reason in JSONL_ROWS)
    assert (outcome.counts.accepted, outcome.counts.failed) == (good, len(JSONL_ROWS) - good)
    assert len(fake.accepted) == good


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": None}, "body"),
        ({"body": b"Hi"}, "body"),
        ({"sender": None}, "sender"),
        ({"source": None}, "source"),
        ({"options": "simulation"}, "options"),
        ({"defaults": {"rate": object()}}, "defaults"),
        ({"defaults": 5}, "defaults"),
    ],
)
async def test_campaign_create_names_the_argument_of_the_wrong_type(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    """Refused before anything is read or created, like every other bad definition."""
    source = tmp_path / "r.jsonl"
    source.write_bytes(jsonl(b'{"destination": "+393471000001"}'))
    arguments: dict[str, Any] = {"source": source, "body": "Hi", "sender": "Shop", **changes}
    with pytest.raises(ValidationError) as caught:
        await Campaign.create(tmp_path / "j", arguments.pop("source"), **arguments)
    assert [problem.field for problem in caught.value.problems] == [field]
    assert not (tmp_path / "j").exists()


#: Lines as a hostile file has them: any bytes, JSON with escapes, numbers, nesting.
json_text = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
rows = st.fixed_dictionaries(
    {"destination": st.sampled_from(["+393471000001", "393471000002"]) | json_text},
    optional={"name": json_text, "id": json_text},
)
lines = (
    rows.map(lambda row: json.dumps(row).encode())
    | json_text.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=40).filter(lambda line: b"\n" not in line and b"\r" not in line)
)


@settings(max_examples=25, deadline=None)
@given(st.lists(lines, min_size=1, max_size=8), st.sampled_from(["csv", "jsonl"]))
def test_any_file_loads_every_row_as_sendable_or_failed(
    tmp_path_factory: pytest.TempPathFactory, content: list[bytes], format: str
) -> None:
    """Whatever the bytes, loading never raises: every row is recorded, pending or failed
    with a reason (a CSV file gets a header first, so it is a campaign at all)."""
    folder = tmp_path_factory.mktemp("hostile")
    source = folder / f"r.{format}"
    header = [b"destination,name,id"] if format == "csv" else []
    source.write_bytes(b"\n".join([*header, *content]) + b"\n")

    async def load() -> tuple[int, int, int]:
        async with await Campaign.create(
            folder / "j", source, body="Hi", sender="Shop"
        ) as campaign:
            await campaign.load()
            counts = await campaign.counts()
            async for chunk in campaign.rows():
                for row in chunk:
                    assert (row.failure is None) == (row.state is RowState.PENDING), row
                    if row.failure is not None:
                        assert row.failure.message, row
            return counts.total, counts.pending, counts.failed

    total, pending, failed = anyio.run(load)
    assert total == pending + failed
    assert total >= 1 or all(not line.strip() for line in content)
