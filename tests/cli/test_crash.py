"""kill -9 in the middle of a campaign, then resume: every recipient accepted exactly once.
And Ctrl-C: a clean stop, exit 130, nothing in flight or unknown left behind.

The provider (the fake, over real TLS) runs in this process so it outlives the campaign's;
the campaign runs as ``agile-sms`` in a subprocess pointed at it through the environment,
exactly as it would be at the real provider. The kill is deterministic: the test waits until
some messages are accepted, makes the provider hold the next request for a second (it still
takes it), and sends SIGKILL while that request is in flight.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from agile_async._cli._app import cli
from agile_async.testing import FakeAgileServer, Fault
from tests._waiting import wait_until

pytest.importorskip("uvicorn")  # the fake is served over TLS (the server extra)
pytestmark = [
    pytest.mark.tls,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

ROWS = 300
BATCH = 20


def journal_rows(journal: Path) -> dict[str, list[tuple[str, str]]]:
    """message ids and destinations by state, read as any sqlite3 client would (the view
    ``row_states``: a request in flight is recorded once, its rows stay written pending)."""
    found: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    with closing(sqlite3.connect(journal)) as conn, conn:
        for state, message_id, number in conn.execute(
            "SELECT state, message_id, destination FROM row_states"
        ):
            found[state].append((message_id, number))
    return found


def write_recipients(path: Path) -> Path:
    lines = ["destination,name"] + [f"+39347{i:07d},Ada{i}" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sigkill_then_resume_sends_everyone_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_recipients(tmp_path / "recipients.csv")
    journal = tmp_path / "campaign.journal"
    fake = FakeAgileServer()
    with fake.serve_tls() as server:
        environment = server.environment()
        command = [
            sys.executable, "-m", "agile_async._cli", "campaign", "run", str(source),
            "--sender", "Shop", "--body", "Hi {name}", "--journal", str(journal),
            "--yes", "--json", "--rate", "200", "--burst", str(BATCH),
            "--batch-size", str(BATCH), "--max-in-flight", "1",
        ]  # fmt: skip
        errors = tmp_path / "stderr.txt"
        with (
            open(errors, "wb") as stderr,
            subprocess.Popen(
                command, env={**os.environ, **environment}, stdout=subprocess.DEVNULL, stderr=stderr
            ) as process,
        ):
            try:
                wait_until(lambda: len(fake.accepted) >= 3 * BATCH or process.poll() is not None)
                assert process.poll() is None, errors.read_text()
                fake.inject(Fault.delay(1.0), path="/sms/send")
                wait_until(lambda: not fake.pending_faults)  # the next request is being held
                os.kill(process.pid, signal.SIGKILL)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait(10)
        assert process.returncode == -signal.SIGKILL

        # The dead run's journal: the held request's rows were on disk as in flight before
        # the request went out, everything before it accepted, the rest pending.
        killed = journal_rows(journal)
        assert len(killed["in_flight"]) == BATCH
        assert len(killed["accepted"]) >= 3 * BATCH
        assert len(killed["accepted"]) + BATCH + len(killed["pending"]) == ROWS
        wait_until(lambda: any(r.fault is not None for r in fake.requests))
        (held,) = [r for r in fake.requests if r.fault is not None]
        held_ids = {i for message in held.json["messages"] for i in message["ids"]}
        assert held_ids == {message_id for message_id, _ in killed["in_flight"]}

        # Resume in this process, against the same provider.
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(
            cli, ["campaign", "resume", "--journal", str(journal), "--yes", "--json"]
        )
    assert result.exit_code == 1, result.output  # finished, with unknown messages
    document = json.loads(result.stdout)
    campaign = document["result"]["campaign"]
    assert (campaign["accepted"], campaign["unknown"], campaign["pending"]) == (
        ROWS - BATCH,
        BATCH,
        0,
    )
    resumed = journal_rows(journal)
    assert {message_id for message_id, _ in resumed["unknown"]} == held_ids

    # The provider's log: every recipient exactly once, the held batch included (the
    # provider took it; the journal, not knowing, reported it unknown and did not resend).
    counts = collections.Counter(message.destination for message in fake.accepted)
    assert len(counts) == ROWS
    assert set(counts.values()) == {1}
    assert len({message.message_id for message in fake.accepted}) == ROWS


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path: Path) -> None:
    """SIGINT: requests under way finish and are recorded, the rest stays pending."""
    source = write_recipients(tmp_path / "recipients.csv")
    journal = tmp_path / "campaign.journal"
    fake = FakeAgileServer()
    with fake.serve_tls() as server:
        environment = server.environment()
        command = [
            sys.executable, "-m", "agile_async._cli", "campaign", "run", str(source),
            "--sender", "Shop", "--body", "Hi {name}", "--journal", str(journal),
            "--yes", "--rate", "200", "--burst", str(BATCH), "--batch-size", str(BATCH),
        ]  # fmt: skip
        with subprocess.Popen(
            command,
            env={**os.environ, **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            try:
                wait_until(lambda: len(fake.accepted) >= 2 * BATCH or process.poll() is not None)
                process.send_signal(signal.SIGINT)
                output, _ = process.communicate(timeout=15)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
    assert process.returncode == 130, output
    assert "Stopping" in output
    assert "-m agile_async campaign resume --journal" in output  # as it was run: python -m
    rows = journal_rows(journal)
    assert set(rows) == {"accepted", "pending"}
    assert {number for _, number in rows["accepted"]} == {m.destination for m in fake.accepted}
