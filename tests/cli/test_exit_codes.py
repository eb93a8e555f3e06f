"""The campaigns guide's exit-code table, held by ``agile-sms``: every kind of error the table
names ends a command with its code, through click's runner.

Where the error is cheap to cause for real it is (a fake provider over TLS that refuses, a
closed port, a missing journal, a Redis URL nobody answers); the exhaustive check, one row
per error class, raises each from the SDK call a real command makes (``credit``), so the
table is checked class by class, a lone error inside an exception group included.
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import agile_async as aa
from agile_async._cli._app import cli
from agile_async.campaigns import InputChangedError, JournalError, TemplateError
from agile_async.scaleout import CampaignStoppedError, ChunkFencedError, RedisUnavailableError
from agile_async.testing import FakeAgileServer, Fault
from agile_async.webhooks import InvalidDeliveryReportError
from tests._docs import doc_text

if sys.version_info < (3, 11):  # the backport anyio installs on 3.10
    from exceptiongroup import BaseExceptionGroup

KEY = "exit-codes-key"
#: The account of the tests that use ``account`` (see ``tests/cli/conftest.py``).
pytestmark = pytest.mark.fake(api_key=KEY, credit=Decimal("10"))


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def readme_table() -> dict[int, str]:
    """The campaigns guide's *Exit codes* table: code -> meaning."""
    section = doc_text("docs/guides/campaigns.md").split("## Exit codes", 1)[1]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section.split("\n## ", 1)[0], re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_table_and_the_help_name_the_same_codes() -> None:
    table = readme_table()
    assert sorted(table) == [0, 1, 2, 3, 4, 5, 130, 141]
    epilog = invoke("--help").stdout
    for code in table:
        assert re.search(rf"\b{code}\b", epilog), code


# -- each class of the table, raised by the SDK call of a real command -------------------------

#: (error, the README row it belongs to). Classes the SDK may add land in a row by their base.
ERRORS: list[tuple[BaseException, int]] = [
    (aa.ValidationError.single("message.body", "must not be empty"), 2),
    (InvalidDeliveryReportError("not a delivery report"), 2),
    (aa.ConfigurationError("AGILE_BASE_URL is not a URL"), 2),
    (JournalError("wrong journal"), 2),
    (InputChangedError("the file changed"), 2),
    (TemplateError("bad template {"), 2),
    (FileNotFoundError(2, "No such file or directory", "recipients.csv"), 2),
    (PermissionError(13, "Permission denied", "out.csv"), 2),
    (aa.AuthenticationError("Unauthorized", code=1, status_code=401), 3),
    (aa.InsufficientCreditError("Insufficient credit", code=2, status_code=402), 3),
    (aa.IPNotAllowedError("Source IP not allowed", code=100, status_code=403), 3),
    (CampaignStoppedError("campaign spring is stopped", 2), 3),
    (aa.ServerError("Server error", code=8, status_code=500), 4),
    (aa.ServiceTimeoutError("Service timeout", code=9, status_code=500), 4),
    (aa.RateLimitError("Too many requests"), 4),
    (aa.UnknownAPIError("Unknown", code=99, status_code=400), 4),
    (aa.TransportError("connection refused"), 4),
    (aa.OutcomeUnknownError("read timeout"), 4),
    (ChunkFencedError("chunk 3 was taken over"), 4),
    (RedisUnavailableError("Redis unavailable for 60.0 s", waited=60.0), 5),
    (KeyboardInterrupt(), 130),
    (BrokenPipeError(32, "Broken pipe"), 141),
]


def _raiser(error: BaseException) -> Callable[[aa.AgileClient], Awaitable[Decimal]]:
    """``AgileClient.credit`` as it is when the SDK raises ``error``."""

    async def credit(self: aa.AgileClient) -> Decimal:
        raise error

    return credit


@pytest.fixture
def offline_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a base URL nobody answers on: nothing here reaches a network."""
    monkeypatch.setenv("AGILE_API_KEY", KEY)
    monkeypatch.setenv("AGILE_BASE_URL", "https://127.0.0.1:9/services/")


@pytest.mark.parametrize("grouped", [False, True], ids=["alone", "in-a-group"])
@pytest.mark.parametrize(
    ("error", "code"), ERRORS, ids=[type(error).__name__ for error, _ in ERRORS]
)
def test_each_error_class_exits_with_its_row_of_the_table(
    error: BaseException,
    code: int,
    grouped: bool,
    offline_account: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raised = BaseExceptionGroup("from a task group", [error]) if grouped else error
    monkeypatch.setattr(aa.AgileClient, "credit", _raiser(raised))
    result = invoke("credit")
    assert result.exit_code == code, result.output
    assert code in readme_table()
    if code in (130, 141):  # interrupted: one word; a closed pipe: nothing at all
        assert "Error" not in result.stderr
    else:
        assert f"Error: {type(error).__name__}" in result.stderr or (
            isinstance(error, OSError) and f"Error: {error}" in result.stderr
        )
    assert "Traceback" not in result.output


def test_an_error_outside_the_table_is_a_bug_and_keeps_its_traceback(
    offline_account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aa.AgileClient, "credit", _raiser(ZeroDivisionError("a bug")))
    with pytest.raises(ZeroDivisionError):
        invoke("credit")


# -- the same codes, caused for real -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (Fault.error(status=401, code=1), "AuthenticationError"),
        (Fault.error(status=402, code=2), "InsufficientCreditError"),
        (Fault.error(status=403, code=100), "IPNotAllowedError"),
    ],
)
def test_account_errors_from_the_provider_exit_3(
    account: FakeAgileServer, fault: Fault, name: str
) -> None:
    account.inject(fault, times=None)
    result = invoke("credit")
    assert result.exit_code == 3, result.output
    assert f"Error: {name}" in result.stderr


def test_a_message_the_sdk_refuses_exits_2(account: FakeAgileServer) -> None:
    before = len(account.requests)
    result = invoke("send", "--to", "+39 12", "--sender", "Shop", "--body", "Hi")
    assert result.exit_code == 2, result.output
    assert "Error: ValidationError" in result.stderr
    assert len(account.requests) == before  # refused before any request


def test_a_provider_nobody_answers_for_exits_4(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AGILE_API_KEY", KEY)
    monkeypatch.setenv("AGILE_BASE_URL", f"https://127.0.0.1:{port}/services/")
    result = invoke("credit")
    assert result.exit_code == 4, result.output
    assert "Error: TransportError" in result.stderr


def test_a_journal_that_is_not_there_exits_2(tmp_path: Path) -> None:
    result = invoke("campaign", "status", "--journal", str(tmp_path / "missing.journal"))
    assert result.exit_code == 2, result.output
    assert "Error:" in result.stderr


def test_an_output_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    source = tmp_path / "r.csv"
    source.write_text("destination,name\n+393471234567,Ada\n")
    journal = tmp_path / "r.journal"
    dry = invoke("campaign", "run", str(source), "--sender", "Shop", "--body", "Hi",
                 "--journal", str(journal), "--dry-run")  # fmt: skip
    assert dry.exit_code == 0, dry.output
    result = invoke("campaign", "export", "--journal", str(journal),
                    "-o", str(tmp_path / "no-such-dir" / "out.csv"))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "no-such-dir" in result.stderr


def test_redis_away_past_the_tolerance_exits_5(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = tmp_path / "r.csv"
    source.write_text("destination,name\n+393471234567,Ada\n")
    result = invoke("campaign", "enqueue", str(source), "--redis", f"redis://127.0.0.1:{port}/0",
                    "--sender", "Shop", "--body", "Hi", "--redis-timeout", "0")  # fmt: skip
    assert result.exit_code == 5, result.output
    assert "Error: RedisUnavailableError" in result.stderr
