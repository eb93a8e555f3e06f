"""``agile-sms sandbox``: what it prints is what a program in any language needs, and works.

The printed credentials are the sandbox's own test values (API key and Basic), plus the
documentation's simulation-only ones; a real credential in the environment is never shown.
"""

from __future__ import annotations

import re
import signal
import sys
from decimal import Decimal
from typing import Any

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from click.testing import CliRunner

from agile_async import AgileClient, Message
from agile_async._cli._app import cli
from tests._children import child_environment

pytest.importorskip("uvicorn")  # the sandbox is served over TLS (the server extra)
pytest.importorskip("trustme")

REAL_KEY = "real-key-must-never-show"
REAL_USER = "real-user-must-never-show"
REAL_PASSWORD = "real-password-must-never-show"


def test_sandbox_prints_both_auth_modes_and_no_real_secret() -> None:
    result = CliRunner().invoke(
        cli,
        ["sandbox", "--duration", "0.1"],
        env={
            "AGILE_API_KEY": REAL_KEY,
            "AGILE_USERNAME": REAL_USER,
            "AGILE_PASSWORD": REAL_PASSWORD,
            "AGILE_BASE_URL": "https://secure.agiletelecom.com/services/",
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "API key   test-api-key" in out
    assert "Basic     test-user / test-password" in out
    assert "API key api-value, or Basic user / pass" in out
    assert re.search(r"^  export AGILE_BASE_URL=https://127\.0\.0\.1:\d+/services/$", out, re.M)
    assert "  export AGILE_API_KEY=test-api-key\n" in out
    assert "export AGILE_USERNAME=test-user AGILE_PASSWORD=test-password" in out
    assert "  export SSL_CERT_FILE=" in out
    for secret in (REAL_KEY, REAL_USER, REAL_PASSWORD, "secure.agiletelecom.com"):
        assert secret not in out
    assert "PRIVATE KEY" not in out
    assert out.rstrip().endswith("Stopped: 0 requests, 0 messages accepted, 0 simulated.")


@pytest.mark.tls
@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
async def test_every_printed_credential_works_from_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run the command as a user would, then send with what it printed."""
    env = child_environment(AGILE_API_KEY=REAL_KEY)
    command = [sys.executable, "-m", "agile_async._cli", "sandbox", "--credit", "7"]
    sms = Message(destinations="+393471234567", sender="MyApp", body="Hi")
    results = []
    async with await anyio.open_process([*command, "--duration", "60"], env=env) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            lines = TextReceiveStream(process.stdout)
            printed = ""
            with anyio.fail_after(30):
                while "Serving" not in printed:
                    printed += await lines.receive()
            exports = dict(
                re.findall(r"^  export (AGILE_BASE_URL|SSL_CERT_FILE)=(\S+)$", printed, re.M)
            )
            base_url = exports["AGILE_BASE_URL"]
            monkeypatch.setenv("SSL_CERT_FILE", exports["SSL_CERT_FILE"])  # as printed
            every: list[dict[str, Any]] = [
                {"api_key": "test-api-key"},
                {"username": "test-user", "password": "test-password"},
                {"api_key": "api-value"},
                {"username": "user", "password": "pass"},
            ]
            for credentials in every:
                async with AgileClient(**credentials, base_url=base_url) as client:
                    results.append(await client.send(sms))
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(30):
                out = printed + "".join([chunk async for chunk in lines])
                err = "".join([chunk async for chunk in TextReceiveStream(process.stderr)])
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    assert process.returncode == 0, err
    assert [r.credit for r in results] == [
        Decimal("6.95"),
        Decimal("6.90"),
        Decimal("6.90"),
        Decimal("6.90"),
    ]
    assert "Stopped: 4 requests, 2 messages accepted, 2 simulated." in out
    assert REAL_KEY not in out + err
