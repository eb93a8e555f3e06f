"""Resolving unknown messages from the command line, end to end.

A campaign runs as ``agile-sms`` against the fake provider over real TLS (as it would run
against the real one); the provider takes one request but its answer is lost, so ten
messages are unknown. The provider's delivery reports reach "our webhook" (here: a list);
five of those messages' reports are saved and recorded with ``campaign reports``: they are
accepted, "confirmed by delivery report" in status and export. ``resume --resend-unknown
--silent-for 1h`` then sends nothing (the others went out a moment ago); ``--silent-for 0s``
sends exactly the five never reported, once more.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agile_async._cli._app import cli
from agile_async._cli._duration import parse_duration
from agile_async.testing import FakeAgileServer, Fault
from tests._waiting import wait_until

pytest.importorskip("uvicorn")  # the fake is served over TLS (the server extra)
SECRET = "unknown-test-key"
pytestmark = [pytest.mark.tls, pytest.mark.fake(api_key=SECRET)]
ROWS = 30


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def states(journal: Path) -> dict[str, int]:
    with closing(sqlite3.connect(journal)) as conn, conn:
        return dict(conn.execute("SELECT state, count(*) FROM row_states GROUP BY state"))


def ids_in(journal: Path, state: str) -> set[str]:
    with closing(sqlite3.connect(journal)) as conn, conn:
        found = conn.execute("SELECT message_id FROM row_states WHERE state = ?", (state,))
        return {i for (i,) in found}


@pytest.fixture
def webhook(account: FakeAgileServer) -> list[Any]:
    """The provider's reports as posted to "our webhook" (here: a list)."""
    bodies: list[Any] = []
    account.deliver_to(bodies.append, raw=True)
    return bodies


def wait_for_reports(bodies: list[Any], count: int) -> None:
    """The reports are posted from the TLS server's thread."""
    wait_until(lambda: len(bodies) >= count, what=f"{count} reports")


def test_unknown_messages_are_confirmed_by_reports_and_silent_ones_resent(
    account: FakeAgileServer, webhook: list[Any], tmp_path: Path
) -> None:
    fake, bodies = account, webhook
    source = tmp_path / "r.csv"
    lines = ["destination,name"] + [f"+39347{i:07d},Ada{i}" for i in range(ROWS)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    journal = tmp_path / "r.csv.journal"
    fake.inject(Fault.drop(after_processing=True), path="/sms/send")  # the first request

    run = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                 "--yes", "--json", "--batch-size", "10", "--max-in-flight", "1")  # fmt: skip
    assert run.exit_code == 1, run.output  # finished, with unknown messages
    assert states(journal) == {"accepted": 20, "unknown": 10}
    assert len(fake.accepted) == ROWS  # the provider did take the lost request

    # Our webhook saved the reports; five of the unknown messages' reports are recorded.
    wait_for_reports(bodies, ROWS)
    unknown = ids_in(journal, "unknown")
    reported = set(sorted(unknown)[:5])
    saved = tmp_path / "reports.jsonl"
    saved.write_text(
        "".join(json.dumps(b) + "\n" for b in bodies if b["messageId"] in reported) + "not json\n",
        encoding="utf-8",
    )
    recorded = invoke("campaign", "reports", "--journal", str(journal), str(saved), "--json")
    assert recorded.exit_code == 1  # one line was not a report
    summary = json.loads(recorded.stdout)
    assert (summary["matched"], summary["confirmed"], summary["refused"]) == (5, 5, 1)
    assert "reports.jsonl:6" in summary["problems"][0]
    again = invoke("campaign", "reports", "--journal", str(journal), "-",
                   input=saved.read_text(encoding="utf-8").replace("not json\n", ""))  # fmt: skip
    assert again.exit_code == 0  # recording the same reports twice is harmless
    assert "0 unknown messages are now accepted" in " ".join(again.stdout.split())
    assert states(journal) == {"accepted": 25, "unknown": 5}

    status = invoke("campaign", "status", "--journal", str(journal), "--json")
    counts = json.loads(status.stdout)["counts"]
    assert (counts["accepted"], counts["unknown"], counts["confirmed_by_report"]) == (25, 5, 5)
    human = invoke("campaign", "status", "--journal", str(journal))
    assert "confirmed by delivery report" in human.stdout
    assert "--silent-for" in human.stdout  # how to resolve the rest
    export = invoke("campaign", "export", "--journal", str(journal))
    notes = {
        line["id"]: line["note"] for line in csv.DictReader(io.StringIO(export.stdout))
        if line["note"]
    }  # fmt: skip
    assert notes == dict.fromkeys(reported, "confirmed by delivery report")

    # They went out a moment ago: a report may still come, so an hour's silence is not met.
    held = invoke("campaign", "resume", "--journal", str(journal), "--resend-unknown",
                  "--silent-for", "1h", "--yes")  # fmt: skip
    assert held.exit_code == 1, held.output
    assert "5 unknown messages went out too recently" in " ".join(held.stdout.split())
    scripted = invoke("campaign", "resume", "--journal", str(journal), "--resend-unknown",
                      "--silent-for", "2h", "--yes", "--json")  # fmt: skip
    assert json.loads(scripted.stdout)["recovery"] == {
        "became_unknown": 0, "requeued": 0, "confirmed": 0, "still_unknown": 5,
    }  # fmt: skip
    assert len(fake.accepted) == ROWS

    resent = invoke("campaign", "resume", "--journal", str(journal), "--resend-unknown",
                    "--silent-for", "0s", "--yes")  # fmt: skip
    assert resent.exit_code == 0, resent.output
    assert states(journal) == {"accepted": ROWS}
    twice = {
        i for i, n in collections.Counter(m.message_id for m in fake.accepted).items() if n > 1
    }
    assert twice == unknown - reported


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resend-unknown", "--silent-for", "5x"], "'5x' is not a duration"),
        (["--resend-unknown", "--silent-for", "h"], "use forms like 30s, 10m, 2h, 1d"),
        (["--resend-unknown", "--silent-for", "-1h"], "is not a duration"),
        (["--resend-unknown", "--silent-for", "9" * 30 + "d"], "too long"),
        (["--silent-for", "1h"], "--silent-for limits --resend-unknown"),
    ],
)
def test_bad_silent_for_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("campaign", "resume", "--journal", str(tmp_path / "j"), *args, "--yes")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("90", 90),
     ("0s", 0), ("0", 0), ("1.5h", 5400), (" 2H ", 7200)],
)  # fmt: skip
def test_durations_in_the_forms_people_type(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
