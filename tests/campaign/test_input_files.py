"""Recipients files as operators have them (issue 12, points 1, 5 and 7).

Through ``agile-sms campaign run|resume|enqueue|export`` as a user runs them (click's runner,
the sandbox over TLS, a real redis-server) and through :class:`agile_async.campaigns.Campaign`
against the fake provider:

- a null template value, or a list or an object, fails its row with a reason, like a missing
  key: it is never sent as ``None`` or as empty text;
- a file in cp1252, latin-1 or UTF-16 is read with ``--encoding`` / ``encoding=``; a byte
  that does not decode fails its row only, naming the file line;
- a semicolon- or tab-separated CSV is sniffed, or given with ``--delimiter``; both are
  recorded, so a resume reads the file the same way;
- every reason for a refused row starts with the file line it is on (a header, a quoted
  field spanning lines and blank lines counted);
- the export keeps the input's own id for every row, failed ones included.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from agile_async import RetryPolicy, ValidationError
from agile_async._cli._app import cli
from agile_async.campaigns import (
    BodyTemplate,
    Campaign,
    JournalError,
    JournalRow,
    RowState,
    TemplateError,
)
from agile_async.testing import FakeAgileServer

pytest_plugins = ("tests._redis_server",)

#: The CLI tests send to the sandbox, which is served over TLS (the server extra).
sandbox = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="the sandbox needs uvicorn"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run(source: Path, *extra: str, body: str = "Hi {name}") -> tuple[Result, dict[str, Any]]:
    """``campaign run FILE --sandbox --yes --json``, and its JSON document."""
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", body,
                    "--sandbox", "--yes", "--json", *extra)  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(result.stdout)


def exported(journal: Path) -> dict[int, dict[str, str]]:
    """The journal's rows by record number, through ``campaign export``."""
    result = invoke("campaign", "export", "--journal", str(journal))
    assert result.exit_code == 0, result.output
    return {int(row["seq"]): row for row in csv.DictReader(io.StringIO(result.stdout))}


def status(journal: Path) -> dict[str, Any]:
    result = invoke("campaign", "status", "--journal", str(journal), "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def journal_of(source: Path) -> Path:
    return source.with_name(source.name + ".journal")


def destination(i: int) -> str:
    return f"+39347{i:07d}"


async def all_rows(campaign: Campaign) -> dict[int, JournalRow]:
    return {row.seq: row async for chunk in campaign.rows() for row in chunk}


async def run_api(source: Path, body: str, **create: Any) -> tuple[FakeAgileServer, Campaign]:
    """Create and run a campaign against the fake; returns the fake and the closed campaign."""
    fake = FakeAgileServer()
    async with (
        await Campaign.create(
            source.with_name("api.journal"), source, body=body, sender="Shop", **create
        ) as campaign,
        fake.client(retry=RetryPolicy(attempts=1)) as client,
    ):
        await campaign.run(client)
        return fake, campaign


def sent_bodies(fake: FakeAgileServer) -> dict[str, str]:
    return {message.destination: message.body for message in fake.accepted}


# -- point 1: a null value is never sent ---------------------------------------------------

NULLS: list[dict[str, Any]] = [
    {"destination": destination(1), "name": "Ada", "code": "1234"},
    {"destination": destination(2), "name": "Bo", "code": None},
    {"destination": destination(3), "name": "Cy", "code": ["1"]},
    {"destination": destination(4), "name": "Di", "code": 42, "note": None},
    {"destination": destination(5), "name": True, "code": 1.5},
    {"destination": destination(6), "name": "Ed"},
    {"destination": destination(7), "name": "Flo", "code": {"n": 1}},
]
NULL_BODY = "Hi {name}, code {code}"
#: record -> the failure's kind and the end of its message (after "line N: ")
NULL_REASONS = {
    2: ("TemplateError", "the row's value for {code} is null: give it a value"),
    3: ("TemplateError", "the row's value for {code} is list, not text, a number or a boolean"),
    6: ("TemplateError", "the row has no value for {code}"),
    7: ("TemplateError", "the row's value for {code} is dict, not text, a number or a boolean"),
}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.mark.anyio
async def test_a_null_value_fails_its_row_instead_of_sending_empty_text(tmp_path: Path) -> None:
    """``"code": null`` was sent as ``Hi C, code ``: now the row fails, like a missing key;
    a null the template does not use is harmless; numbers and booleans are written out."""
    source = write_jsonl(tmp_path / "r.jsonl", NULLS)
    fake, campaign = await run_api(source, NULL_BODY)
    assert sent_bodies(fake) == {
        destination(1): "Hi Ada, code 1234",
        destination(4): "Hi Di, code 42",
        destination(5): "Hi true, code 1.5",
    }
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    for seq, (kind, reason) in NULL_REASONS.items():
        failure = rows[seq].failure
        assert rows[seq].state is RowState.FAILED
        assert failure is not None
        assert (failure.kind, failure.message) == (kind, f"line {seq}: {reason}")
    assert campaign.definition.source_format == "jsonl"


@sandbox
def test_cli_a_null_value_fails_its_row(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "r.jsonl", NULLS)
    result, document = run(source, body=NULL_BODY)
    assert result.exit_code == 1  # finished, with failed rows
    counts = document["result"]["campaign"]
    assert (counts["accepted"], counts["failed"]) == (3, 4)
    rows = exported(journal_of(source))
    for seq, (kind, reason) in NULL_REASONS.items():
        assert (rows[seq]["error"], rows[seq]["error_message"]) == (kind, f"line {seq}: {reason}")


def test_the_template_rule_for_values() -> None:
    """One rule, in ``BodyTemplate.render``, whatever the values come from."""
    template = BodyTemplate("Hi {x}")
    assert template.render({"x": True}) == "Hi true"
    assert template.render({"x": False}) == "Hi false"
    assert template.render({"x": 7}) == "Hi 7"
    assert template.render({"x": Decimal("1.50")}) == "Hi 1.50"
    assert template.render({"x": ""}) == "Hi "  # empty text is a value
    assert template.render({"x": "ok", "unused": None}) == "Hi ok"
    with pytest.raises(TemplateError, match=r"\{x\} is null"):
        template.render({"x": None})
    with pytest.raises(TemplateError, match=r"\{x\} is list"):
        template.render({"x": ["a"]})
    with pytest.raises(TemplateError, match="not finite"):
        template.render({"x": float("nan")})
    with pytest.raises(TemplateError, match=r"no value for \{x\}"):
        template.render({})


# -- point 5: encodings ----------------------------------------------------------------------

CP1252_ROWS = [("Zoë", "5€"), ("Ada", "3"), ("Bjørn", "«7»")]


def write_cp1252(path: Path, *, delimiter: str = ";", bad_line: bytes | None = None) -> Path:
    """What Excel saves as "CSV" on an Italian Windows: cp1252, semicolons, CRLF."""
    lines = [f"Destination{delimiter}Name{delimiter}Price".encode("cp1252")]
    for i, (name, price) in enumerate(CP1252_ROWS, 1):
        lines.append(delimiter.join((destination(i), name, price)).encode("cp1252"))
    if bad_line is not None:
        lines.append(bad_line)
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return path


@pytest.mark.anyio
async def test_a_cp1252_semicolon_file_reads_with_its_encoding(tmp_path: Path) -> None:
    """The text arrives as written (``€``, ``ë``, ``ø``); the semicolons are sniffed; both
    are recorded in the campaign's definition."""
    source = write_cp1252(tmp_path / "r.csv")
    fake, campaign = await run_api(source, "Hi {Name}: {Price}", encoding="cp1252")
    assert sent_bodies(fake) == {
        destination(1): "Hi Zoë: 5€",
        destination(2): "Hi Ada: 3",
        destination(3): "Hi Bjørn: «7»",
    }
    d = campaign.definition
    assert (d.source_encoding, d.source_delimiter) == ("cp1252", ";")


@pytest.mark.anyio
async def test_latin1_is_accepted_under_its_common_names(tmp_path: Path) -> None:
    source = tmp_path / "r.csv"
    source.write_bytes(f"destination,name\n{destination(1)},Zoë\n".encode("latin-1"))
    fake, campaign = await run_api(source, "Hi {name}", encoding="latin-1")
    assert sent_bodies(fake) == {destination(1): "Hi Zoë"}
    assert campaign.definition.source_encoding == "iso8859-1"


@pytest.mark.anyio
async def test_excel_unicode_text_utf16_with_tabs(tmp_path: Path) -> None:
    """Excel's "Unicode Text": UTF-16 with a byte order mark, tab-separated."""
    source = tmp_path / "r.txt"
    text = f"destination\tname\r\n{destination(1)}\tZoë 😀\r\n{destination(2)}\tAda\r\n"
    source.write_bytes(text.encode("utf-16"))
    fake, campaign = await run_api(source, "Hi {name}", encoding="utf-16")
    assert sent_bodies(fake) == {destination(1): "Hi Zoë 😀", destination(2): "Hi Ada"}
    assert campaign.definition.source_delimiter == "\t"


@sandbox
def test_cli_a_utf16_file_read_as_utf8_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Every row of it would fail: the file is refused at once, naming ``--encoding``."""
    source = tmp_path / "r.txt"
    source.write_bytes(f"destination\tname\r\n{destination(1)}\tAda\r\n".encode("utf-16"))
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--sandbox", "--yes")  # fmt: skip
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "starts with a UTF-16 byte order mark" in output
    assert "(--encoding utf-16)" in output
    assert not journal_of(source).exists()
    result, document = run(source, "--encoding", "utf-16", body="Hi {name}")
    assert result.exit_code == 0, result.output
    assert document["result"]["campaign"]["accepted"] == 1


def hundred_rows_with_one_latin1_byte(path: Path) -> Path:
    """A 100-row UTF-8 file whose line 92 was typed in another program (cp1252 ``ë``)."""
    lines = [b"destination,name"]
    for i in range(1, 101):
        lines.append(f"{destination(i)},Ada{i}".encode() if i != 91 else b"+393470000091,Zo\xeb")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@sandbox
def test_one_byte_that_is_not_utf8_fails_its_row_naming_the_line(tmp_path: Path) -> None:
    """It used to refuse the whole file at "position 3265"; now the other 99 rows go out."""
    source = hundred_rows_with_one_latin1_byte(tmp_path / "r.csv")
    result, document = run(source)
    assert result.exit_code == 1
    counts = document["result"]["campaign"]
    assert (counts["accepted"], counts["failed"]) == (99, 1)
    row = exported(journal_of(source))[91]
    assert row["state"] == "failed"
    assert row["error"] == "InputError"
    assert row["error_message"] == (
        "line 92: 'name' is not UTF-8 text (byte 0xEB at character 2): save the file as "
        "UTF-8, or give its encoding (--encoding cp1252, say)"
    )


@pytest.mark.anyio
async def test_a_byte_that_does_not_decode_in_the_given_encoding(tmp_path: Path) -> None:
    """cp1252 leaves five bytes undefined (0x81...): that row fails, the rest are read."""
    source = write_cp1252(tmp_path / "r.csv", bad_line=b"+393470000004;Gh\x81;1")
    fake, _campaign = await run_api(source, "Hi {Name}", encoding="cp1252")
    assert len(fake.accepted) == 3
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        failure = (await all_rows(opened))[4].failure
    assert failure is not None
    assert failure.message == (
        "line 5: 'Name' is not cp1252 text (byte 0x81 at character 2): is the file in "
        "another encoding?"
    )


@sandbox
def test_cli_encoding_option(tmp_path: Path) -> None:
    """``--encoding cp1252``: every row goes out; ``status`` shows how the file is read."""
    source = write_cp1252(tmp_path / "r.csv")
    result, document = run(source, "--encoding", "cp1252", body="Hi {Name}: {Price}")
    assert result.exit_code == 0, result.output
    assert document["result"]["campaign"]["accepted"] == 3
    about = status(journal_of(source))
    assert (about["source_encoding"], about["source_delimiter"]) == ("cp1252", ";")
    text = invoke("campaign", "status", "--journal", str(journal_of(source))).output
    assert "csv, cp1252, delimiter ';'" in text


@sandbox
@pytest.mark.parametrize("encoding", ["klingon", "rot13", "hex"])
def test_cli_an_encoding_that_is_none_is_a_usage_error(tmp_path: Path, encoding: str) -> None:
    source = write_cp1252(tmp_path / "r.csv")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--sandbox", "--yes", "--encoding", encoding)  # fmt: skip
    assert result.exit_code == 2
    assert f"'{encoding}' is not a text encoding Python knows" in result.output
    assert not journal_of(source).exists()


# -- point 5: delimiters ---------------------------------------------------------------------


@sandbox
@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_cli_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    """Excel's CSV in Italy (semicolons), a TSV, a plain CSV: no option needed."""
    source = tmp_path / "r.csv"
    rows = [f"Destination{delimiter}Name"] + [
        f"{destination(i)}{delimiter}Rossi, Mario" if delimiter != "," else f"{destination(i)},Ada"
        for i in range(1, 4)
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result, document = run(source, body="Hi {Name}")
    assert result.exit_code == 0, result.output
    assert document["result"]["campaign"]["accepted"] == 3
    assert status(journal_of(source))["source_delimiter"] == delimiter


@sandbox
@pytest.mark.parametrize(("given", "used"), [(";", ";"), ("semicolon", ";"), ("|", "|")])
def test_cli_the_delimiter_option(tmp_path: Path, given: str, used: str) -> None:
    source = tmp_path / "r.csv"
    source.write_text(
        f"destination{used}name\n{destination(1)}{used}Ada\n{destination(2)}{used}Bo\n",
        encoding="utf-8",
    )
    result, document = run(source, "--delimiter", given)
    assert result.exit_code == 0, result.output
    assert document["result"]["campaign"]["accepted"] == 2
    assert status(journal_of(source))["source_delimiter"] == used


@sandbox
def test_cli_a_wrong_delimiter_names_the_header_line(tmp_path: Path) -> None:
    source = tmp_path / "r.csv"
    source.write_text(f"Destination;Name\n{destination(1)};Ada\n", encoding="utf-8")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--sandbox", "--yes", "--delimiter", ",")  # fmt: skip
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "r.csv, line 1: the header has no 'destination' column" in output
    assert "separated by commas: Destination;Name" in output
    for bad in ("ab", "x", '"', ""):
        result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                        "--sandbox", "--yes", "--delimiter", bad)  # fmt: skip
        assert result.exit_code == 2, bad
        assert "delimiter" in result.output
    assert not journal_of(source).exists()


@pytest.mark.anyio
async def test_api_refuses_a_delimiter_or_encoding_that_is_none(tmp_path: Path) -> None:
    source = write_cp1252(tmp_path / "r.csv")
    for bad in ({"delimiter": "ab"}, {"encoding": "nope"}, {"encoding": 1252}):
        with pytest.raises(ValidationError):
            await Campaign.create(tmp_path / "j", source, body="Hi", sender="Shop", **bad)
    assert not (tmp_path / "j").exists()


# -- point 5: every reason names the file line ------------------------------------------------


@pytest.mark.anyio
async def test_reasons_name_the_file_line_csv(tmp_path: Path) -> None:
    """A header, a quoted field over two lines, a blank line: the record numbers and the
    file lines differ, and the reasons give the lines."""
    source = tmp_path / "r.csv"
    source.write_text(
        "destination,name\n"  # line 1
        f'{destination(1)},"Ada\nLovelace"\n'  # lines 2-3: record 1
        "\n"  # line 4
        "not-a-number,Bo\n"  # line 5: record 2
        f"{destination(3)}\n",  # line 6: record 3
        encoding="utf-8",
    )
    fake, _campaign = await run_api(source, "Hi {name}")
    assert sent_bodies(fake) == {destination(1): "Hi Ada\nLovelace"}
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    messages = {seq: row.failure.message for seq, row in rows.items() if row.failure}
    assert messages[2].startswith("line 5: ")
    assert messages[3] == "line 6: the row has 1 fields, the header has 2 (separated by commas)"


@pytest.mark.anyio
async def test_reasons_name_the_file_line_jsonl(tmp_path: Path) -> None:
    """JSON lines: the file line (blank lines count), and the column of a JSON error."""
    source = tmp_path / "r.jsonl"
    source.write_bytes(
        b"\n".join(
            [
                json.dumps({"destination": destination(1), "name": "Ada"}).encode(),
                b"",
                b"",
                b'{"destination": "+393470000002", "name": }',
                json.dumps({"destination": "nope", "name": "Cy"}).encode(),
                b'{"destination": "+393470000004", "name": "Di\xff"}',
            ]
        )
        + b"\n"
    )
    fake, _campaign = await run_api(source, "Hi {name}")
    assert len(fake.accepted) == 1
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    messages = {seq: row.failure.message for seq, row in rows.items() if row.failure}
    assert messages[2] == "line 4: the line is not JSON: Expecting value (column 42)"
    assert messages[3].startswith("line 5: ")
    assert messages[4].startswith("line 6: the line is not UTF-8 text (byte 0xFF at column 45)")


@pytest.mark.anyio
async def test_a_jsonl_line_of_a_control_character_fails_it_is_not_blank(tmp_path: Path) -> None:
    """Only JSON's whitespace makes a blank line: a line of U+001C, a no-break space or a
    line separator was skipped without a word, as if it were not in the file."""
    source = tmp_path / "r.jsonl"
    source.write_bytes(
        b"\n".join(
            [
                json.dumps({"destination": destination(1), "name": "Ada"}).encode(),
                b" \t",  # blank
                b"\x1c",
                "\u00a0".encode(),
                "\u2028".encode(),
            ]
        )
        + b"\n"
    )
    fake, _campaign = await run_api(source, "Hi {name}")
    assert len(fake.accepted) == 1
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    assert sorted(rows) == [1, 2, 3, 4]
    for seq, line in ((2, 3), (3, 4), (4, 5)):
        failure = rows[seq].failure
        assert failure is not None
        assert failure.message.startswith(f"line {line}: the line is not JSON"), failure


@sandbox
def test_cli_dry_run_shows_the_lines(tmp_path: Path) -> None:
    source = hundred_rows_with_one_latin1_byte(tmp_path / "r.csv")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                    "--sandbox", "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "line 92: 'name' is not UTF-8 text" in output


# -- the setting is remembered: resume and enqueue ----------------------------------------------


async def create_unloaded(journal: Path, source: Path, **create: Any) -> None:
    """A campaign recorded, its rows not yet loaded: as a run killed early leaves it."""
    created = await Campaign.create(journal, source, body="Hi {Name}", sender="Shop", **create)
    await created.aclose()


@sandbox
def test_cli_resume_reads_the_file_as_the_campaign_recorded(tmp_path: Path) -> None:
    """Created with cp1252 and (sniffed) semicolons, nothing loaded yet: ``campaign
    resume`` reads the file the same way, with no option to repeat (read with UTF-8 and
    commas, the file would have no destination column at all)."""
    source = write_cp1252(tmp_path / "r.csv")
    journal = journal_of(source)
    anyio.run(functools.partial(create_unloaded, journal, source, encoding="cp1252"))
    result = invoke("campaign", "resume", "--journal", str(journal), "--sandbox", "--yes",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["campaign"]["accepted"] == 3


@pytest.mark.anyio
async def test_open_reads_the_file_as_the_campaign_recorded(tmp_path: Path) -> None:
    source = write_cp1252(tmp_path / "r.csv")
    journal = tmp_path / "j"
    await create_unloaded(journal, source, encoding="cp1252", delimiter=";")
    fake = FakeAgileServer()
    async with (
        await Campaign.open(journal) as opened,
        fake.client(retry=RetryPolicy(attempts=1)) as client,
    ):
        await opened.run(client)
    assert sent_bodies(fake) == {
        destination(1): "Hi Zoë",
        destination(2): "Hi Ada",
        destination(3): "Hi Bjørn",
    }


@pytest.mark.anyio
async def test_the_same_file_read_another_way_is_another_campaign(tmp_path: Path) -> None:
    """``exist_ok`` reopens only the very campaign: another encoding is not it."""
    source = write_cp1252(tmp_path / "r.csv")
    journal = tmp_path / "j"
    first = await Campaign.create(journal, source, body="Hi", sender="Shop", encoding="cp1252")
    await first.aclose()
    same = await Campaign.create(
        journal, source, body="Hi", sender="Shop", encoding="cp1252", exist_ok=True
    )
    await same.aclose()
    with pytest.raises(JournalError) as refused:
        await Campaign.create(
            journal, source, body="Hi", sender="Ship", encoding="latin-1", exist_ok=True
        )
    message = str(refused.value)
    assert "with another encoding ('cp1252' in the journal, 'iso8859-1' now); another " in message
    assert "sender ('Shop' in the journal, 'Ship' now): resume it" in message
    assert "body" not in message


@sandbox
def test_cli_a_second_run_read_another_way_names_the_difference(tmp_path: Path) -> None:
    source = write_cp1252(tmp_path / "r.csv")
    result, _ = run(source, "--encoding", "cp1252", "--dry-run", body="Hi {Name}")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {Name}",
                    "--sandbox", "--yes", "--encoding", "latin-1", "--delimiter", ";")  # fmt: skip
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "another encoding ('cp1252' in the journal, 'iso8859-1' now)" in output


def test_cli_enqueue_takes_the_same_options(tmp_path: Path, redis_url: str) -> None:
    """``campaign enqueue`` reads FILE like ``run``: ``--encoding``, ``--delimiter`` (and
    the sniffing); Redis records them; a byte that does not decode fails its row, named."""
    pytest.importorskip("coredis")
    source = write_cp1252(tmp_path / "r.csv", bad_line=b"+393470000004;Gh\x81;1")
    name = f"t-{uuid.uuid4().hex[:12]}"
    result = invoke("campaign", "enqueue", "--redis", redis_url, str(source), "--name", name,
                    "--sender", "Shop", "--body", "Hi {Name}", "--encoding", "cp1252",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"campaign": name, "rows": 4, "done": True}
    result = invoke("campaign", "status", "--redis", redis_url, name, "--json")
    assert result.exit_code == 0, result.output
    about = json.loads(result.stdout)
    assert (about["source_encoding"], about["source_delimiter"]) == ("cp1252", ";")
    assert (about["counts"]["pending"], about["counts"]["failed"]) == (3, 1)
    result = invoke("campaign", "export", "--redis", redis_url, name, "--state", "failed")
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["error_message"].startswith("line 5: 'Name' is not cp1252 text (byte 0x81")


# -- point 7: the export keeps the input's ids ------------------------------------------------

LONG_ID = "x" * 100
ID_ROWS = [
    b"id,destination,name",
    b"a-1,+393470000001,Ada",  # sent
    b"a-2,not-a-number,Bo",  # a bad destination
    b"a-3,+393470000003",  # a short row
    b"a-4,+393470000004,Zo\xeb",  # not UTF-8
    b"a-1,+393470000005,Ed",  # a duplicate id
    b"" + LONG_ID.encode() + b",+393470000006,Flo",  # an id too long
    b"a 7,+393470000007,Gil",  # an id with a space
    b",+393470000008,Hal",  # no id: one is generated
]
INPUT_IDS = {1: "a-1", 2: "a-2", 3: "a-3", 4: "a-4", 5: "a-1", 6: LONG_ID, 7: "a 7"}


@sandbox
def test_cli_export_keeps_the_input_ids_of_failed_rows(tmp_path: Path) -> None:
    source = tmp_path / "r.csv"
    source.write_bytes(b"\n".join(ID_ROWS) + b"\n")
    _result, document = run(source)
    assert document["result"]["campaign"]["accepted"] == 2
    rows = exported(journal_of(source))
    assert {seq: rows[seq]["id"] for seq in INPUT_IDS} == INPUT_IDS
    assert rows[8]["id"].endswith("-8")  # generated: the campaign's id and the record
    assert [rows[seq]["state"] for seq in range(1, 9)] == ["accepted"] + ["failed"] * 6 + [
        "accepted"
    ]
    assert rows[5]["error_message"] == (
        "line 6: id 'a-1' is already used by an earlier row (record 1)"
    )


@pytest.mark.anyio
async def test_api_rows_keep_the_input_ids_of_failed_rows(tmp_path: Path) -> None:
    source = tmp_path / "r.csv"
    source.write_bytes(b"\n".join(ID_ROWS) + b"\n")
    fake, campaign = await run_api(source, "Hi {name}")
    assert {message.message_id for message in fake.accepted} == {"a-1", campaign_id_of(campaign)}
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
        out = io.StringIO()
        await opened.export(out)
    assert {seq: rows[seq].message_id for seq in INPUT_IDS} == INPUT_IDS
    exported_ids = {int(r["seq"]): r["id"] for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert {seq: exported_ids[seq] for seq in INPUT_IDS} == INPUT_IDS


def campaign_id_of(campaign: Campaign) -> str:
    return f"{campaign.definition.campaign_id}-8"


@pytest.mark.anyio
async def test_jsonl_failed_rows_keep_their_ids(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"id": "j-1", "destination": destination(1), "name": None},
            {"id": "j-2", "destination": "nope", "name": "Bo"},
            {"id": 3, "destination": destination(3), "name": ["Cy"]},
            {"id": None, "destination": destination(4), "name": "Di"},
        ],
    )
    _fake, campaign = await run_api(source, "Hi {name}")
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    assert [rows[seq].state for seq in (1, 2, 3, 4)] == [RowState.FAILED] * 3 + [RowState.ACCEPTED]
    assert [rows[seq].message_id for seq in (1, 2, 3)] == ["j-1", "j-2", "3"]
    assert rows[4].message_id == f"{campaign.definition.campaign_id}-4"  # null: generated


#: (an input id, what the row's id is, whether it is sent)
PADDED_IDS = [
    (" a1\t", "a1", True),  # the spaces and tabs typed around a value are trimmed
    ("\u00a0b2", "\u00a0b2", False),  # a no-break space is kept, and refused by the id rule
    ("c3\u2003", "c3\u2003", False),
    ("\x1c", "\x1c", False),  # was taken for no id at all: a generated one was sent
    ("\u3000", "\u3000", False),
]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["csv", "jsonl"])
async def test_an_id_is_kept_as_written_but_for_spaces_and_tabs_around_it(
    tmp_path: Path, kind: str
) -> None:
    r"""Ids were trimmed with ``str.strip()``: an id of ``"\x1c"`` or of a no-break space
    silently became a generated one, and ``"c3\u2003"`` was sent as ``"c3"``, so reports
    and exports no longer matched the operator's records. Now only spaces and tabs are
    trimmed; any other whitespace fails its row, naming the id."""
    if kind == "csv":
        source = tmp_path / "r.csv"
        lines = ["id,destination,name"]
        lines += [f"{given},{destination(i)},N{i}" for i, (given, _, _) in enumerate(PADDED_IDS, 1)]
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        records = [
            {"id": given, "destination": destination(i), "name": f"N{i}"}
            for i, (given, _, _) in enumerate(PADDED_IDS, 1)
        ]
        source = write_jsonl(tmp_path / "r.jsonl", records)
    header = 1 if kind == "csv" else 0
    fake, _campaign = await run_api(source, "Hi {name}")
    assert [message.message_id for message in fake.accepted] == ["a1"]
    async with await Campaign.open(source.with_name("api.journal"), read_only=True) as opened:
        rows = await all_rows(opened)
    for seq, (_, kept, sent) in enumerate(PADDED_IDS, 1):
        row = rows[seq]
        assert row.message_id == kept
        assert row.state is (RowState.ACCEPTED if sent else RowState.FAILED)
        if not sent:
            assert row.failure is not None
            assert row.failure.message == (
                f"line {seq + header}: id {kept!r} must be at most 64 characters,"
                " with no whitespace"
            )


@pytest.mark.anyio
async def test_a_redis_campaign_from_before_encodings_reads_as_it_did(
    tmp_path: Path, redis: Any, redis_kind: str
) -> None:
    """A Redis campaign recorded by the previous version has no encoding or delimiter in
    its definition: it reads as UTF-8 with commas (as it was read), and a loader started
    again with the same file continues it."""
    from agile_async.scaleout import RedisCampaign

    source = tmp_path / "r.csv"
    source.write_text(f"destination,name\n{destination(1)},Ada\n", encoding="utf-8")
    name = f"t-{uuid.uuid4().hex[:12]}"
    journal = RedisCampaign(redis, name)
    created = await Campaign.create(journal, source, body="Hi {name}", sender="Shop")
    await created.aclose()
    meta = journal.keys[0]
    stored = json.loads(await redis.hget(meta, "def"))
    assert (stored["source_encoding"], stored["source_delimiter"]) == ("utf-8", ",")
    del stored["source_encoding"], stored["source_delimiter"]  # as the previous version wrote it
    old = json.dumps(stored, sort_keys=True)
    if redis_kind == "coredis":
        await redis.hset(meta, {"def": old})
    else:
        await redis.hset(meta, "def", old)
    again = RedisCampaign(redis, name)
    async with await Campaign.create(
        again, source, body="Hi {name}", sender="Shop", exist_ok=True
    ) as opened:
        assert (opened.definition.source_encoding, opened.definition.source_delimiter) == (
            "utf-8",
            ",",
        )
        state = await opened.load()
    assert (state.loaded_through, state.done) == (1, True)
