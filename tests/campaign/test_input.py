"""Reading recipients: safe body templates, streaming CSV/JSONL, and the checks at load time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agile_async import SendOptions
from agile_async._campaign._input import (
    InputRecord,
    RecordReader,
    RowBuilder,
    detect_format,
    file_digest,
)
from agile_async.campaigns import BodyTemplate, CampaignError, TemplateError


class TestBodyTemplate:
    def test_fills_named_fields(self) -> None:
        """Named fields, format specs on strings, doubled braces as literals."""
        template = BodyTemplate("Hi {name:.3}, code {code}: {{STOP}}")
        assert template.fields == ("name", "code")
        assert template.render({"name": "Alessandra", "code": "42"}) == "Hi Ale, code 42: {STOP}"

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("{name.__class__}", "attribute or index access"),
            ("{name[0]}", "attribute or index access"),
            ("{}", "named fields"),
            ("{0}", "named fields"),
            ("{name", "malformed"),
            ("{name:{width}}", "may not contain fields"),
            ("{name:d}", "cannot format text"),
        ],
    )
    def test_refuses_anything_but_plain_names(self, text: str, problem: str) -> None:
        """A template reads the row's values and nothing else."""
        with pytest.raises(TemplateError, match=problem):
            BodyTemplate(text)

    def test_a_missing_value_names_the_field(self) -> None:
        """A row without the variable fails with the field's name."""
        with pytest.raises(TemplateError, match=r"no value for \{code\}"):
            BodyTemplate("{code}").render({"name": "x"})


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def records(path: Path) -> list[InputRecord]:
    reader = RecordReader(path, detect_format(path))
    try:
        return list(reader)
    finally:
        reader.close()


class TestReading:
    def test_csv_columns_ids_and_variables(self, tmp_path: Path) -> None:
        """BOM stripped, header matched in any case, id column optional per row."""
        path = write(
            tmp_path / "r.csv",
            "\ufeffDestination, Name ,id\n+393471111111,Ada,a1\n\n+393472222222,Bo,\n",
        )
        found = records(path)
        assert [(r.seq, r.destination, r.message_id) for r in found] == [
            (1, "+393471111111", "a1"),
            (2, "+393472222222", None),
        ]
        assert found[0].variables == {"Destination": "+393471111111", "Name": "Ada", "id": "a1"}

    def test_a_short_row_is_a_problem_not_a_crash(self, tmp_path: Path) -> None:
        """Shifted columns would send the wrong text: the row is refused, the rest read."""
        path = write(tmp_path / "r.csv", "destination,name\n+393471111111\n+393472222222,Bo\n")
        first, second = records(path)
        assert first.problem == "the row has 1 fields, the header has 2 (separated by commas)"
        assert second.problem is None

    @pytest.mark.parametrize(
        ("header", "problem"),
        [("name,phone\n", "no 'destination' column"), ("destination,Destination\n", "repeats")],
    )
    def test_bad_headers_are_refused(self, tmp_path: Path, header: str, problem: str) -> None:
        """A file that cannot be a campaign is refused before anything is recorded."""
        with pytest.raises(CampaignError, match=problem):
            records(write(tmp_path / "r.csv", header))

    def test_jsonl_scalars_and_problems(self, tmp_path: Path) -> None:
        """Values stay JSON values (the template decides what it accepts: see
        test_campaign_input_files); a numeric destination is written out; bad lines are
        problems naming their column; blank lines are skipped but counted as lines."""
        lines = [
            json.dumps({"destination": 393471111111, "vip": True, "n": 2.5, "x": None}),
            "",
            "{not json",
            json.dumps(["a list"]),
            json.dumps({"destination": "+393472222222", "tags": ["a"]}),
            json.dumps({"destination": ["+393472222222"]}),
        ]
        found = records(write(tmp_path / "r.jsonl", "\n".join(lines) + "\n"))
        assert [r.seq for r in found] == [1, 2, 3, 4, 5]
        assert [r.line for r in found] == [1, 3, 4, 5, 6]
        assert found[0].destination == "393471111111"
        assert found[0].variables == {
            "destination": 393471111111,
            "vip": True,
            "n": 2.5,
            "x": None,
        }
        assert found[0].problem is None
        assert found[1].problem is not None
        assert found[1].problem.startswith("the line is not JSON: Expecting property name")
        assert found[1].problem.endswith("(column 2)")
        assert found[2].problem == "the line is not a JSON object"
        assert found[3].problem is None  # a list fails the row only where it is used
        assert found[4].problem == "'destination' must be text or a whole number, not list"

    def test_format_is_sniffed_without_a_known_suffix(self, tmp_path: Path) -> None:
        """``{`` first means JSON lines."""
        assert detect_format(write(tmp_path / "a.data", '  {"destination": "1"}\n')) == "jsonl"
        assert detect_format(write(tmp_path / "b.data", "destination\n1\n")) == "csv"
        assert detect_format(write(tmp_path / "c.ndjson", "")) == "jsonl"

    def test_the_bytes_read_are_hashed(self, tmp_path: Path) -> None:
        """The reader proves it read the very file whose digest was recorded."""
        path = write(tmp_path / "r.csv", "destination\n" + "+393471111111\n" * 1000)
        reader = RecordReader(path, "csv")
        assert reader.sha256 is None
        assert len(list(reader)) == 1000
        reader.close()
        assert reader.sha256 == file_digest(path)[0]


class TestRowBuilder:
    @pytest.fixture
    def builder(self) -> RowBuilder:
        return RowBuilder(BodyTemplate("Hi {name}"), "c0ffee000001", SendOptions(max_id_len=20))

    def record(self, destination: str, name: str = "Ada", id_: str | None = None) -> InputRecord:
        return InputRecord(7, destination, id_, {"name": name})

    def test_a_good_row(self, builder: RowBuilder) -> None:
        """Separators removed, id derived from the campaign and the row, parts counted."""
        row = builder.build(self.record("+39 347-111 (1111)"))
        assert row.failure is None
        assert (row.destination, row.message_id, row.body) == ("+393471111111", "c0ffee000001-7",
                                                              "Hi Ada")  # fmt: skip
        assert (row.encoding, row.parts) == ("GSM-7", 1)

    def test_encoding_and_parts(self, builder: RowBuilder) -> None:
        """One character outside GSM-7 makes the whole text UCS-2."""
        row = builder.build(self.record("+393471111111", name="Zoë" + "x" * 70))
        assert (row.encoding, row.parts) == ("UCS-2", 2)

    @pytest.mark.parametrize(
        ("record", "kind", "problem"),
        [
            (InputRecord(7, "+39abc", None, {"name": "A"}), "ValidationError", "must be digits"),
            (InputRecord(7, "+3934711111", "x" * 21, {"name": "A"}), "ValidationError",
             "at most 20 characters"),
            (InputRecord(7, "+393471111111", None, {}), "TemplateError", "no value for {name}"),
            (InputRecord(7, "", None, {}, "bad line"), "InputError", "bad line"),
        ],
    )  # fmt: skip
    def test_bad_rows_carry_their_reason(
        self, builder: RowBuilder, record: InputRecord, kind: str, problem: str
    ) -> None:
        """A bad row is recorded failed with why: it never stops the campaign."""
        row = builder.build(record)
        assert row.failure is not None
        assert row.failure.kind == kind
        assert problem in row.failure.message
        assert row.body is None

    def test_unicode_disabled_refuses_non_gsm_bodies(self) -> None:
        """With enableUnicode=false a UCS-2 text cannot be sent: the row fails."""
        builder = RowBuilder(BodyTemplate("{name}"), "c", SendOptions(enable_unicode=False))
        row = builder.build(InputRecord(1, "+393471111111", None, {"name": "38°C"}))
        assert row.failure is not None
        assert "outside the GSM 03.38 alphabet" in row.failure.message
