"""``agile-sms`` through click's runner: sandbox runs, ``--json`` outputs, exit codes, secrets."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agile_async._cli import _common
from agile_async._cli._app import cli
from agile_async.testing import FakeAgileServer

pytest.importorskip("uvicorn")  # the sandbox is served over TLS (the server extra)

SECRET = "s3cret-key-never-shown"
#: The account of the tests that use ``account``: the key the CLI must never print.
pytestmark = pytest.mark.fake(api_key=SECRET, credit=Decimal("12.5"))


def destination(i: int) -> str:
    return f"+39347{i:07d}"


def write_csv(path: Path, count: int, extra: str = "") -> Path:
    lines = ["destination,name"] + [f"{destination(i)},Ada{i}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def json_of(result: Result) -> Any:
    return json.loads(result.stdout)


def states(journal: Path) -> dict[str, int]:
    with closing(sqlite3.connect(journal)) as conn, conn:
        return dict(conn.execute("SELECT state, count(*) FROM row_states GROUP BY state"))


@pytest.fixture
def recipients(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "r.csv", 40)


def test_segments_text_and_json() -> None:
    """Encoding, parts, the characters forcing UCS-2, and the cost."""
    result = invoke("segments", "Domani 38°C")
    assert result.exit_code == 0
    assert "UCS-2" in result.stdout
    assert "U+00B0" in result.stdout
    result = invoke("segments", "x" * 161, "--price", "0.045", "--json")
    assert json_of(result) == {
        "encoding": "GSM-7",
        "segments": 2,
        "units": 161,
        "per_part": 153,
        "remaining": 145,
        "non_gsm_characters": [],
        "cost": "0.090",
        "replacements": [],
        "text": "x" * 161,
        "sendable": True,
        "problems": [],
    }


def test_credit_and_send_in_the_sandbox() -> None:
    """No account needed: the built-in fake provider over TLS."""
    credit = invoke("credit", "--sandbox", "--json")
    assert credit.exit_code == 0
    assert json_of(credit) == {"credit": "500.0", "currency": "EUR"}
    sent = invoke(
        "send", "--sandbox", "--json", "--to", "+393471234567", "--sender", "Shop", "--body", "Hi"
    )
    assert sent.exit_code == 0
    answer = json_of(sent)
    assert (answer["processed_messages"], answer["processed_sms_parts"]) == (1, 1)
    assert len(answer["ids"]) == 1


def test_campaign_run_status_and_export(recipients: Path, tmp_path: Path) -> None:
    """A whole campaign as a script runs it: JSON out, then status and export."""
    journal = tmp_path / "r.csv.journal"
    run = invoke("campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi {name}",
                 "--sandbox", "--yes", "--json", "--price", "0.05")  # fmt: skip
    assert run.exit_code == 0, run.output
    document = json_of(run)
    assert document["journal"] == str(journal)
    assert document["report"]["to_send"] == 40
    assert document["report"]["cost"] == "2.00"
    assert document["result"]["complete"] is True
    assert document["result"]["campaign"]["accepted"] == 40
    assert document["result"]["campaign"]["deliveries"] == {"delivered": 40}

    status = invoke("campaign", "status", "--journal", str(journal), "--json")
    assert status.exit_code == 0
    counts = json_of(status)["counts"]
    assert (counts["accepted"], counts["pending"], counts["total"]) == (40, 0, 40)

    export = invoke("campaign", "export", "--journal", str(journal))
    assert export.exit_code == 0
    lines = export.stdout.splitlines()
    assert len(lines) == 41
    assert lines[1].split(",")[2:4] == [destination(1), "accepted"]
    out = tmp_path / "out.csv"
    assert invoke("campaign", "export", "--journal", str(journal), "-o", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8").splitlines() == lines

    human = invoke("campaign", "status", "--journal", str(journal))
    assert "accepted" in human.stdout
    assert "delivered" in human.stdout


def test_dry_run_sends_nothing(recipients: Path, tmp_path: Path) -> None:
    """--dry-run reports and stops; the campaign is recorded, every row pending."""
    result = invoke("campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi {name}",
                    "--sandbox", "--dry-run", "--json")  # fmt: skip
    assert result.exit_code == 0
    report = json_of(result)
    assert (report["to_send"], report["parts"], report["credit"]) == (40, 40, "500.0")
    assert report["encodings"] == {"GSM-7": 40, "UCS-2": 0}
    assert states(tmp_path / "r.csv.journal") == {"pending": 40}


def test_confirmation_then_resume(recipients: Path, tmp_path: Path) -> None:
    """Declining sends nothing (exit 0); resume picks the campaign up later."""
    args = ["campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi {name}"]
    declined = invoke(*args, "--sandbox", input="n\n")
    assert declined.exit_code == 0
    assert "Nothing sent" in declined.stdout
    assert "Send 40 messages?" in declined.stderr
    journal = tmp_path / "r.csv.journal"
    assert states(journal) == {"pending": 40}
    resumed = invoke("campaign", "resume", "--journal", str(journal), "--sandbox", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert states(journal) == {"accepted": 40}
    again = invoke("campaign", "resume", "--journal", str(journal), "--sandbox", "--yes")
    assert again.exit_code == 0
    assert "Nothing left to send" in again.stdout


def test_failed_rows_exit_1(tmp_path: Path) -> None:
    """A campaign that finished with failed rows exits 1 and says how to see them."""
    source = write_csv(tmp_path / "r.csv", 5, extra="+39abc,Bad\n")
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                    "--sandbox", "--yes")  # fmt: skip
    assert result.exit_code == 1
    assert "campaign export" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body", "Hi {surname}", "--yes"], "no such column"),
        (["--body", "Hi {name.__class__}", "--yes"], "attribute or index access"),
        (["--body", "Hi", "--sender", "Far too long a sender", "--yes"], "sender"),
        (["--body", "Hi", "--json"], "--json cannot ask for confirmation"),
        (["--body", "Hi", "--rate", "0", "--yes"], "rate must be > 0"),
    ],
)
def test_usage_errors_exit_2(recipients: Path, args: list[str], message: str) -> None:
    """Bad input is refused before anything is sent, with the reason."""
    options = args if "--sender" in args else ["--sender", "Shop", *args]
    result = invoke("campaign", "run", str(recipients), *options, "--sandbox")
    assert result.exit_code == 2
    assert message in result.output


def test_a_sandbox_campaign_never_resumes_against_an_account(
    recipients: Path, tmp_path: Path, account: FakeAgileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fictional recipients must not reach a real provider by mistake."""
    args = ["campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi {name}"]
    assert invoke(*args, "--sandbox", "--max-messages", "10", "--yes").exit_code == 0
    monkeypatch.setenv("AGILE_API_KEY", SECRET)
    result = invoke("campaign", "resume", "--journal", str(tmp_path / "r.csv.journal"), "--yes")
    assert result.exit_code == 2
    assert "created in the sandbox" in result.stderr
    assert not account.accepted


def test_no_credentials_without_a_terminal_exit_2() -> None:
    """Scripts get a clear error instead of a prompt."""
    result = invoke("credit")
    assert result.exit_code == 2
    assert "AGILE_API_KEY" in result.stderr


def test_credentials_from_the_environment_are_never_printed(
    account: FakeAgileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key reaches the provider and nowhere else."""
    monkeypatch.setenv("AGILE_API_KEY", SECRET)
    result = invoke("credit", "--json")
    assert result.exit_code == 0, result.output
    assert json_of(result)["credit"] == "12.5"
    assert SECRET not in result.output


def test_the_prompted_key_is_hidden(
    account: FakeAgileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a terminal without credentials, the key is asked for and never echoed."""
    monkeypatch.delenv("AGILE_API_KEY")
    monkeypatch.setattr(_common, "interactive", lambda: True)
    result = invoke("credit", input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert "12.5 EUR" in result.stdout
    assert "API key" in result.stderr
    assert SECRET not in result.output


def test_wrong_credentials_exit_3_without_echoing_them(
    account: FakeAgileServer, monkeypatch: pytest.MonkeyPatch, recipients: Path
) -> None:
    """An account error: exit 3, the provider's reason, never the secret."""
    monkeypatch.setenv("AGILE_API_KEY", "wrong-" + SECRET)
    credit = invoke("credit")
    assert credit.exit_code == 3
    assert "AuthenticationError" in credit.stderr
    run = invoke("campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi",
                 "--yes", "--json")  # fmt: skip
    assert run.exit_code == 3
    assert SECRET not in credit.output + run.output


def test_insufficient_credit_stops_with_exit_3(
    recipients: Path, tmp_path: Path, account: FakeAgileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credit runs out mid-campaign: exit 3; the unsent rows stay pending for a resume."""
    monkeypatch.setenv("AGILE_API_KEY", SECRET)
    account.credit = Decimal("1")  # 20 parts at 0.05
    result = invoke("campaign", "run", str(recipients), "--sender", "Shop", "--body", "Hi {name}",
                    "--yes", "--json", "--batch-size", "10", "--max-in-flight", "1")  # fmt: skip
    assert result.exit_code == 3
    document = json_of(result)
    assert "InsufficientCreditError" in document["result"]["stopped_by"]
    assert states(tmp_path / "r.csv.journal") == {"accepted": 20, "pending": 20}


def test_trio_backend(recipients: Path) -> None:
    """The whole CLI runs on trio too."""
    result = invoke("--backend", "trio", "campaign", "run", str(recipients), "--sender", "Shop",
                    "--body", "Hi {name}", "--sandbox", "--yes", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json_of(result)["result"]["campaign"]["accepted"] == 40


def test_sandbox_prints_where_it_serves() -> None:
    """For programs in other languages: URL, CA and test key."""
    result = invoke("sandbox", "--duration", "0.2")
    assert result.exit_code == 0
    assert "https://127.0.0.1:" in result.stdout
    assert "SSL_CERT_FILE=" in result.stdout
    assert "test-api-key" in result.stdout


def test_demo_runs_a_whole_campaign(tmp_path: Path) -> None:
    """The README's main job: no account, no input, a complete campaign."""
    result = invoke("demo", "--recipients", "120", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.stdout
    assert "Sending" in result.stdout
    assert "Delivery reports so far" in result.stdout
    assert states(tmp_path / "recipients.journal") == {"accepted": 119, "failed": 1}


def test_an_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    """File system problems are reported in one line, exit 2, no traceback."""
    source = write_csv(tmp_path / "r.csv", 3)
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--journal", str(tmp_path / "no" / "such" / "dir" / "j"), "--sandbox",
                    "--dry-run")  # fmt: skip
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    missing = invoke("campaign", "status", "--journal", str(tmp_path / "nothing-here"))
    assert missing.exit_code == 2
    assert "no journal" in missing.stderr
