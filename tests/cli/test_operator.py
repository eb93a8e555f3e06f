"""``agile-sms`` as careful as the operator (issue 12): spending is never the default, every
printed command works as printed, output off a terminal is not wrapped, log records go
through the display, a missing trio is one line, and the smaller traps of ``segments``,
``status``, the journal and SIGTERM.

Hints are tested by running them: the command is taken from the output exactly as printed
and handed to a shell.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from agile_async._cli._app import cli
from agile_async.testing import FakeAgileServer, TLSServer
from tests._children import ROOT
from tests._children import child_environment as environment
from tests._waiting import wait_until

pytest.importorskip("uvicorn")  # the sandbox is served over TLS (the server extra)
pytest.importorskip("trustme")

KEY = "operator-key-never-shown"
#: The operator's account: 1 EUR of credit, 20 parts at 0.05.
pytestmark = pytest.mark.fake(api_key=KEY, credit=Decimal("1"))
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="signals and ptys are POSIX")


# -- helpers -----------------------------------------------------------------------------------


def write_csv(path: Path, count: int, extra: str = "") -> Path:
    lines = ["destination,name"] + [f"+39347{i:07d},Ada{i}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def states(journal: Path) -> dict[str, int]:
    with closing(sqlite3.connect(journal)) as conn, conn:
        return dict(conn.execute("SELECT state, count(*) FROM row_states GROUP BY state"))


#: ``agile-sms`` as a user without the script on the PATH runs it.
AGILE_SMS = [sys.executable, "-m", "agile_async"]


def agile_sms(
    *args: str, cwd: Path, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGILE_SMS, *args],
        cwd=cwd,
        env=environment(**env),
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def printed_commands(output: str) -> list[str]:
    """Every command line the CLI printed, exactly as printed (the rest of the line from
    the program on). The program is this interpreter with ``-m agile_async``, by its path
    or, when the PATH finds it, by its name."""
    program = re.compile(r"(?:\S*python[\d.]*|'[^']*python[\d.]*') -m agile_async .*")
    return [match.group(0).rstrip() for match in program.finditer(output)]


def run_printed(command: str, cwd: Path, input: str = "") -> subprocess.CompletedProcess[str]:
    """Run a printed command the way an operator pastes it: through a shell."""
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=environment(),
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def accepted(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        return states(journal).get("accepted", 0)
    except sqlite3.OperationalError:  # not created yet
        return 0


def in_terminal(command: list[str], env: dict[str, str], columns: int = 60) -> tuple[str, int]:
    """Run ``command`` with stdin, stdout and stderr on a pseudo-terminal ``columns`` wide;
    what it wrote (terminal control sequences left in) and its exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execve(command[0], command, {**env, "COLUMNS": str(columns), "TERM": "xterm"})
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace"), os.waitstatus_to_exitcode(status)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- point 2: spending ----------------------------------------------------------------------


def test_the_confirmation_defaults_to_no_and_says_how_to_send_later(tmp_path: Path) -> None:
    """Enter at the question sends nothing; the printed resume command sends it."""
    source = write_csv(tmp_path / "r.csv", 12)
    run = agile_sms("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                    "--sandbox", cwd=tmp_path, input="\n")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Send 12 messages? [y/N]" in run.stderr
    assert "Nothing sent" in run.stdout
    journal = tmp_path / "r.csv.journal"
    assert states(journal) == {"pending": 12}
    (later,) = printed_commands(run.stdout)
    assert "--sandbox" in later
    sent = run_printed(later, cwd=Path("/"), input="y\n")  # from another directory
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert states(journal) == {"accepted": 12}


def test_a_credit_shortfall_refuses_to_start_even_with_yes(
    tmp_path: Path, account: FakeAgileServer
) -> None:
    """Estimate 2 EUR, credit 1 EUR: exit 3, nothing sent, the shortfall and the flag named."""
    source = write_csv(tmp_path / "r.csv", 40)
    args = ["campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
            "--price", "0.05"]  # fmt: skip
    for extra in (["--yes"], ["--yes", "--json"], []):
        result = invoke(*args, *extra, input="y\n")
        assert result.exit_code == 3, result.output
        assert "does not cover the estimate (2.00 EUR): 1.00 missing" in result.stderr
        assert "--allow-insufficient-credit" in result.stderr
    assert not account.accepted
    assert states(tmp_path / "r.csv.journal") == {"pending": 40}
    # With the flag, asked in a terminal, Enter is still no.
    declined = invoke(*args, "--allow-insufficient-credit", input="\n")
    assert declined.exit_code == 0
    assert "Send 40 messages anyway? [y/N]" in declined.stderr
    assert not account.accepted


def test_with_the_flag_it_sends_until_the_credit_runs_out_and_logs_through_the_display(
    tmp_path: Path, account: FakeAgileServer
) -> None:
    """The batcher's warning is a rendered line on stderr, not a raw logger line."""
    source = write_csv(tmp_path / "r.csv", 40)
    result = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                    "--price", "0.05", "--allow-insufficient-credit", "--yes",
                    "--batch-size", "10", "--max-in-flight", "1")  # fmt: skip
    assert result.exit_code == 3, result.output
    assert states(tmp_path / "r.csv.journal") == {"accepted": 20, "pending": 20}
    assert "warning: agile_async batcher stopped: Insufficient credit" in result.stderr
    assert "agile_async batcher stopped" not in result.stdout
    assert KEY not in result.output


@POSIX
def test_in_a_terminal_log_records_print_above_the_progress_bar(
    tmp_path: Path, provider: tuple[FakeAgileServer, TLSServer]
) -> None:
    """On a terminal the warning goes through the live display's console: a whole,
    rendered line, never the raw logger text written over the bar."""
    _, server = provider
    source = write_csv(tmp_path / "r.csv", 40)
    command = [*AGILE_SMS, "campaign", "run", str(source), "--sender", "Shop", "--body",
               "Hi {name}", "--price", "0.05", "--allow-insufficient-credit", "--yes",
               "--batch-size", "10", "--max-in-flight", "1"]  # fmt: skip
    output, code = in_terminal(command, environment(**server.environment()))
    assert code == 3, output
    text = ANSI.sub("", output)
    lines = [line.strip("\r") for line in text.split("\n")]
    warnings = [line for line in lines if "batcher stopped" in line]
    assert warnings
    assert all(line.startswith("warning: agile_async batcher stopped") for line in warnings)


# -- point 4 and 8: hints that work as printed, never wrapped --------------------------------


@POSIX
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_resume_hint_after_an_interrupted_sandbox_campaign_works_as_printed(
    tmp_path: Path, backend: str
) -> None:
    """Ctrl-C in a sandbox campaign; the printed command (sandbox, backend and journal
    carried over) finishes it, from another directory, and its own hints work too."""
    deep = tmp_path / ("a-directory-with-a-long-name-" * 3) / "campaigns"
    deep.mkdir(parents=True)
    source = write_csv(deep / "recipients.csv", 300, extra="+39abc,Bad\n")
    journal = deep / "recipients.csv.journal"
    command = [*AGILE_SMS, "--backend", backend, "campaign", "run", str(source), "--sender",
               "Shop", "--body", "Hi {name}", "--sandbox", "--yes", "--rate", "100",
               "--burst", "10", "--batch-size", "10", "--max-in-flight", "1"]  # fmt: skip
    with subprocess.Popen(
        command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            wait_until(lambda: accepted(journal) >= 20 or process.poll() is not None)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, out + err
    resume = [c for c in printed_commands(out) if " campaign resume " in c]
    assert len(resume) == 1, out
    (hint,) = resume
    assert len(hint) > 80  # longer than the 80 columns rich would wrap a pipe at
    assert "--sandbox" in hint
    assert ("--backend trio" in hint) is (backend == "trio")
    assert str(journal) in hint

    finished = run_printed(hint, cwd=Path("/"), input="y\n")
    assert finished.returncode == 1, finished.stdout + finished.stderr  # the bad row failed
    assert states(journal) == {"accepted": 300, "failed": 1}
    (export,) = [c for c in printed_commands(finished.stdout) if " campaign export " in c]
    exported = run_printed(export, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert len((tmp_path / "outcomes.csv").read_text(encoding="utf-8").splitlines()) == 302


def test_every_command_the_demo_prints_works_as_printed(tmp_path: Path) -> None:
    demo = agile_sms("demo", "--recipients", "120", "--dir", str(tmp_path / "d"), cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    commands = printed_commands(demo.stdout)
    assert len(commands) >= 3, demo.stdout  # encodings, outcomes, status, failed rows
    for command in commands:
        ran = run_printed(command, cwd=tmp_path)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
    assert (tmp_path / "outcomes.csv").exists()


def test_a_sandbox_campaign_resumed_without_sandbox_prints_the_command_that_works(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "r.csv", 10)
    first = agile_sms("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                      "--sandbox", "--yes", "--max-messages", "4", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "r.csv.journal"
    wrong = agile_sms("campaign", "resume", "--journal", str(journal), "--yes", cwd=tmp_path,
                      AGILE_API_KEY=KEY)  # fmt: skip
    assert wrong.returncode == 2
    assert "created in the sandbox" in wrong.stderr
    (hint,) = printed_commands(wrong.stderr)
    right = run_printed(hint, cwd=tmp_path, input="y\n")
    assert right.returncode == 0, right.stdout + right.stderr
    assert states(journal) == {"accepted": 10}


@POSIX
def test_on_a_narrow_terminal_a_command_is_never_broken(tmp_path: Path) -> None:
    """Prose wraps at the terminal's width; a command stays one line (a copy gets it all)."""
    deep = tmp_path / ("long-directory-name-" * 4)
    deep.mkdir()
    source = write_csv(deep / "r.csv", 10)
    command = [*AGILE_SMS, "campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
               "--sandbox", "--yes", "--max-messages", "3"]  # fmt: skip
    output, code = in_terminal(command, environment(), columns=60)
    assert code == 0, output
    text = ANSI.sub("", output).replace("\r", "")
    (hint,) = [c for c in printed_commands(text) if " campaign resume " in c]
    assert len(hint) > 60
    assert hint.endswith("r.csv.journal --sandbox")


def test_output_to_a_pipe_is_not_wrapped(tmp_path: Path) -> None:
    """A long reason, a long path and a command stay on their lines in a CI log, tables
    included (rich would fold them at 80 columns)."""
    deep = tmp_path / ("a-directory-with-a-long-name-" * 3)
    deep.mkdir()
    source = write_csv(deep / "r.csv", 3, extra="+39" + "1" * 100 + ",Bad\n")
    result = agile_sms("campaign", "run", str(source), "--sender", "Shop", "--body",
                       "Hi {name} " + "°" * 3, "--sandbox", "--yes", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "3 messages need UCS-2 (70 characters a part): the body has '°' U+00B0" in (
        result.stdout
    )
    (reason,) = [line for line in lines if "+39111" in line]
    assert re.search(r"line 5: '\+391{100}' is too long \(102 digits, at most 15\)", reason)
    for line in lines:
        if "-m agile_async" in line:
            assert line.endswith(("--sandbox", "outcomes.csv")), line
    status = agile_sms("campaign", "status", "--journal", str(deep / "r.csv.journal"),
                       cwd=tmp_path)  # fmt: skip
    assert any(str(deep / "r.csv.journal") in line for line in status.stdout.splitlines())


def test_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """``agile-sms campaign export ... | head -1``: exit 141, nothing on stderr."""
    source = write_csv(tmp_path / "r.csv", 3000)
    dry = agile_sms("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                    "--sandbox", "--dry-run", cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    export = [*AGILE_SMS, "campaign", "export", "--journal", str(tmp_path / "r.csv.journal")]
    with subprocess.Popen(
        export, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"seq,id,")
        process.stdout.close()
        assert process.stderr is not None
        err = process.stderr.read()
        process.wait(30)
    assert process.returncode == 141
    assert err == b""


# -- point 9: a missing trio -----------------------------------------------------------------

#: Python that cannot import trio, as on a machine without the extra.
WITHOUT_TRIO = "import sys, runpy; sys.modules['trio'] = None; "


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--backend", "trio", "credit", "--sandbox"], {}),
        (["campaign", "status", "--journal", "x"], {"AGILE_SMS_BACKEND": "trio"}),
    ],
)
def test_backend_trio_without_trio_is_one_line_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    code = WITHOUT_TRIO + (
        f"sys.argv = ['agile-sms', *{args!r}]; runpy.run_module('agile_async', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment(**env), capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "Error: --backend trio needs the 'trio' extra (trio is not installed): "
        "pip install 'agile-async[trio]'"
    ]


def test_the_quickstart_with_trio_missing_is_one_line_exit_2() -> None:
    code = (
        WITHOUT_TRIO + "sys.argv = ['quickstart.py', '--trio']; "
        f"runpy.run_path({str(ROOT / 'examples' / 'quickstart.py')!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--trio needs the 'trio' extra: pip install 'agile-async[trio]'"
    ]


# -- point 10: segments, help texts, the journal, SIGTERM -------------------------------------


def test_segments_refuses_what_send_refuses() -> None:
    """An empty text and more than 255 parts: the count, then exit 2 with the reason."""
    empty = invoke("segments", "")
    assert empty.exit_code == 2
    assert "must not be empty" in empty.stderr
    too_long = invoke("segments", "x" * 40_000, "--json")
    assert too_long.exit_code == 2
    document = json.loads(too_long.stdout)
    assert (document["segments"], document["sendable"]) == (262, False)
    assert document["problems"] == ["needs 262 parts; concatenated SMS allow at most 255"]
    assert "at most 255" in too_long.stderr
    longest = invoke("segments", "x" * (255 * 153), "--json")
    assert longest.exit_code == 0
    assert json.loads(longest.stdout)["segments"] == 255
    # and send says the same about the same texts, before any request
    for text in ("", "x" * 40_000):
        sent = invoke("send", "--sandbox", "--to", "+393471234567", "--sender", "S", "--body",
                      text)  # fmt: skip
        assert sent.exit_code == 2


def test_no_unicode_suggests_a_flag_that_exists() -> None:
    refused = invoke("segments", "--no-unicode", "“Hi” — there")
    assert refused.exit_code == 2
    assert "smart_encoding=True" not in refused.stderr
    assert "--smart-encoding replaces '“' U+201C, '”' U+201D, '—' U+2014" in refused.stderr
    fixed = invoke("segments", "--no-unicode", "--smart-encoding", "“Hi” — there", "--json")
    assert fixed.exit_code == 0, fixed.output
    document = json.loads(fixed.stdout)
    assert (document["encoding"], document["text"]) == ("GSM-7", '"Hi" - there')
    assert [r["character"] for r in document["replacements"]] == ["“", "”", "—"]
    still = invoke("segments", "--no-unicode", "--smart-encoding", "“38°C”")
    assert still.exit_code == 2
    assert "'°' U+00B0" in still.stderr


def _every_command(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[Any]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _every_command(command, (*path, name))


def test_every_option_and_command_has_help() -> None:
    """`campaign status --journal` had none: no option of any command may lack it."""
    missing = [
        " ".join(path) + (f" {param.opts[0]}" if param is not None else "")
        for path, command in _every_command(cli)
        for param in [None, *command.params]
        if (param is None and not command.help)
        or (isinstance(param, click.Option) and not param.help)
    ]
    assert missing == []
    status = invoke("campaign", "status", "--help")
    assert "The campaign's journal" in status.stdout


@pytest.mark.parametrize(
    ("again", "named"),
    [
        (["--sender", "Shop", "--body", "Hello {name}"],
         "another body"),
        (["--sender", "Other", "--body", "Hi {name}"],
         "another sender ('Shop' in the journal, 'Other' now)"),
        (["--sender", "Shop", "--body", "Hi {name}", "--simulation"],
         "another options (simulation)"),
    ],
)  # fmt: skip
def test_the_journal_mismatch_names_the_setting_that_differs(
    tmp_path: Path, again: list[str], named: str
) -> None:
    source = write_csv(tmp_path / "r.csv", 3)
    first = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi {name}",
                   "--sandbox", "--dry-run")  # fmt: skip
    assert first.exit_code == 0
    second = invoke("campaign", "run", str(source), *again, "--sandbox", "--dry-run")
    assert second.exit_code == 2
    assert named in second.stderr


def test_the_journal_mismatch_names_a_changed_input(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "r.csv", 3)
    args = ["campaign", "run", str(source), "--sender", "S", "--body", "Hi", "--sandbox",
            "--dry-run"]  # fmt: skip
    assert invoke(*args).exit_code == 0
    write_csv(source, 4)
    again = invoke(*args)
    assert again.exit_code == 2
    assert "with another input file content (sha256 " in again.stderr


@POSIX
@pytest.mark.parametrize("as_json", [False, True])
def test_sigterm_stops_the_sandbox_cleanly(tmp_path: Path, as_json: bool) -> None:
    """SIGTERM is Ctrl-C: exit 0, the summary, and no certificate folder left behind."""
    command = [*AGILE_SMS, "sandbox", *(["--json"] if as_json else [])]
    with subprocess.Popen(
        command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            if as_json:
                ready = json.loads(first)
                ca_cert = Path(ready["ca_cert"])
                assert ready["environment"]["SSL_CERT_FILE"] == str(ca_cert)
                assert ready["base_url"].startswith("https://127.0.0.1:")
                assert ready["api_key"] == "test-api-key"
            else:
                printed = first
                while "Serving" not in printed:
                    printed += process.stdout.readline()
                ca_cert = Path(re.findall(r"CA cert +(\S+)", printed)[0])
            assert ca_cert.is_file()
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    assert not ca_cert.parent.exists()
    if as_json:
        assert json.loads(out) == {"stopped": {"requests": 0, "accepted": 0, "simulated": 0}}
    else:
        assert "Stopped: 0 requests" in out


SCRIPT = Path(sys.executable).with_name("agile-sms")


@pytest.mark.skipif(not SCRIPT.is_file(), reason="the agile-sms script is not installed here")
@pytest.mark.parametrize("on_path", [True, False])
def test_hints_name_the_script_as_it_can_be_run(tmp_path: Path, on_path: bool) -> None:
    """``agile-sms`` by name when the PATH finds it, else by its path: either way the
    printed command runs."""
    path = os.pathsep.join([str(SCRIPT.parent)] * on_path + ["/usr/bin", "/bin"])
    source = write_csv(tmp_path / "r.csv", 5)
    first = subprocess.run(
        [str(SCRIPT), "campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
         "--sandbox", "--yes", "--max-messages", "2"],
        env=environment(PATH=path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    (hint,) = re.findall(r"^Resume with: (.*)$", first.stdout, re.M)
    assert hint.startswith("agile-sms campaign resume" if on_path else f"{SCRIPT} campaign")
    resumed = subprocess.run(
        ["/bin/sh", "-c", hint], env=environment(PATH=path), input="y\n",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert states(tmp_path / "r.csv.journal") == {"accepted": 5}


@POSIX
def test_sigterm_stops_a_sandbox_campaign_like_ctrl_c_and_removes_its_certificates(
    tmp_path: Path,
) -> None:
    """The demo (and every --sandbox command) serves the sandbox from a temporary folder:
    SIGTERM stops the run cleanly (exit 130, the resume command printed) and removes it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    journal = tmp_path / "d" / "recipients.journal"
    command = [*AGILE_SMS, "demo", "--recipients", "2000", "--rate", "100", "--dir",
               str(tmp_path / "d")]  # fmt: skip
    with subprocess.Popen(
        command, env=environment(TMPDIR=str(temp)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        try:
            wait_until(lambda: accepted(journal) >= 50 or process.poll() is not None)
            assert list(temp.glob("agile-fake-tls-*"))  # the sandbox's certificates
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, out + err
    assert "Stopping" in err
    assert not list(temp.glob("agile-fake-tls-*"))
    (resume,) = [c for c in printed_commands(out) if " campaign resume " in c]
    assert resume.endswith(f"{journal} --sandbox")


@POSIX
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_at_the_question_is_ctrl_c(tmp_path: Path, backend: str) -> None:
    """Outside a run (here: waiting for the answer) SIGTERM is handled as Ctrl-C too: exit
    130, nothing sent, the sandbox's certificate folder removed."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    source = write_csv(tmp_path / "r.csv", 10)
    command = [*AGILE_SMS, "--backend", backend, "campaign", "run", str(source), "--sender",
               "Shop", "--body", "Hi", "--sandbox"]  # fmt: skip
    with subprocess.Popen(
        command, env=environment(TMPDIR=str(temp)), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        try:
            assert process.stderr is not None
            asked = ""
            while "[y/N]" not in asked:
                asked += process.stderr.read(1)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, out + asked + err
    assert "Interrupted." in err
    assert states(tmp_path / "r.csv.journal") == {"pending": 10}
    assert not list(temp.glob("agile-fake-tls-*"))
