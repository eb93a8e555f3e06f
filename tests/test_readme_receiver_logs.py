"""The README's receiver examples, run for real: the webhook's token never reaches a log.

Issue 12, point 6: uvicorn's default access log wrote the secret path token
(``"POST /agile/reports/2H4l...-1U HTTP/1.1" 200``). Each README example marked
``<!-- readme-test: NAME -->`` is taken as written and served by uvicorn, in a child process with
uvicorn's own default logging, on a free loopback port. A hook in that process records every
log record of every logger, as its handlers get it (``uvicorn.access`` included, whatever its
``propagate``); the test posts a good report, a bad body and a wrong token with httpx, then
checks that the token is in no record and nowhere in the server's stdout and stderr. A control
run of the same example without its filter line shows the token: the capture would see it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests._children import child_environment
from tests._docs import doc_block

pytestmark = pytest.mark.anyio

pytest.importorskip("uvicorn")  # the server extra

PAGE = "docs/guides/delivery-reports.md"
TOKEN = "readme-Token_0123456789.abcdefghij~XYZ"  # every URL-safe kind of character
FILTER_LINE = 'logging.getLogger("uvicorn.access").addFilter(receiver.log_filter)'

#: Runs in the server's process before the example: records each log record as handlers get
#: it (after the logger's own filters, which is where ``receiver.log_filter`` acts), and lets
#: every logger the SDK and uvicorn use log at DEBUG, so nothing is kept out by a level.
CAPTURE = """
import json, logging, os, runpy, sys, traceback

_out = open(os.environ["LOG_CAPTURE"], "a", encoding="utf-8", buffering=1)
_call_handlers = logging.Logger.callHandlers

def callHandlers(self, record):
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += "\\n" + "".join(traceback.format_exception(*record.exc_info))
    _out.write(json.dumps({"logger": record.name, "level": record.levelname, "text": text}))
    _out.write("\\n")
    _call_handlers(self, record)

logging.Logger.callHandlers = callHandlers
logging.getLogger("agile_async").setLevel(logging.DEBUG)
logging.getLogger("httpx").setLevel(logging.DEBUG)

if sys.argv[1] == "-m":
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(message_id: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "destination": "+393471234567",
        "statusCode": 3,
        "description": "Delivered",
        "doneDate": "2026-04-08 14:35:22.045+0200",
        "concatTotal": 1,
        "concatProgressive": 1,
        "price": 0.045,
    }


class Run:
    """What one served example left behind: captured records, stdout, stderr, responses."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.statuses: dict[str, int] = {}

    @property
    def records(self) -> list[dict[str, str]]:
        lines = (self.folder / "records.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    @property
    def stdout(self) -> str:
        return (self.folder / "stdout.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return (self.folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")

    def everything(self) -> str:
        return "\n".join([*(r["text"] for r in self.records), self.stdout, self.stderr])

    def access_lines(self) -> list[str]:
        return [r["text"] for r in self.records if r["logger"] == "uvicorn.access"]


@asynccontextmanager
async def serving(folder: Path, command: list[str]) -> AsyncIterator[str]:
    """Run ``command`` (after the capture hook; ``{port}`` in it is the free port chosen) in
    ``folder``; yield the base URL once it answers; stop it with SIGINT, as Ctrl-C would."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    (folder / "capture.py").write_text(CAPTURE, encoding="utf-8")
    env = child_environment(
        AGILE_WEBHOOK_TOKEN=TOKEN,
        LOG_CAPTURE=str(folder / "records.jsonl"),
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    base_url = f"http://127.0.0.1:{port}"
    with (folder / "stdout.txt").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
        process = await anyio.open_process(
            [sys.executable, "capture.py", *command], cwd=folder, env=env, stdout=out, stderr=err
        )
        try:
            with anyio.fail_after(30):
                async with httpx.AsyncClient(base_url=base_url, trust_env=False) as http:
                    while True:
                        assert process.returncode is None, "the example's server exited"
                        try:
                            await http.get("/health")  # any answer: it is serving
                            break
                        except httpx.TransportError:
                            await anyio.sleep(0.05)  # the child process is not listening yet
            yield base_url
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
            with anyio.move_on_after(15):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


async def exercise(base_url: str, run: Run) -> None:
    """What the provider and a prober send: a report, a bad body, a guessed token."""
    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as http:
        good = await http.post(f"/agile/reports/{TOKEN}", json=report("readme-msg-1"))
        bad = await http.post(f"/agile/reports/{TOKEN}", content=b'{"messageId": 1}')
        guess = await http.post("/agile/reports/guessed-token-0123456789", json=report("x"))
    run.statuses = {"good": good.status_code, "bad": bad.status_code, "guess": guess.status_code}


def uvicorn_script(*, with_filter: bool = True, access_log: bool = True) -> str:
    """The README's receiver block and its uvicorn block, on a free loopback port."""
    block = doc_block(PAGE, "uvicorn")
    documented = 'uvicorn.run(receiver, host="0.0.0.0", port=8080)'
    assert block.count(documented) == 1, "the README's uvicorn.run line changed"
    options = "" if access_log else ", access_log=False"
    block = block.replace(
        documented,
        f'uvicorn.run(receiver, host="127.0.0.1", port=int(os.environ["PORT"]){options})',
    )
    if not with_filter:
        assert block.count(FILTER_LINE) == 1
        block = "\n".join(line for line in block.splitlines() if FILTER_LINE not in line)
    return doc_block(PAGE, "receiver") + "\n" + block


def assert_served_and_masked(run: Run) -> None:
    assert run.statuses == {"good": 200, "bad": 400, "guess": 404}
    assert "readme-msg-1 DELIVERED 0.045" in run.stdout  # the example's on_report ran
    access = run.access_lines()
    assert any('"POST /agile/reports/*** HTTP/1.1" 200' in line for line in access), access
    assert any("/agile/reports/guessed-token-0123456789" in line for line in access)
    assert any(r["logger"] == "agile_async" for r in run.records)  # the 400 was logged
    assert TOKEN not in run.everything()
    assert TOKEN not in "\n".join(access)


async def test_readme_uvicorn_example_never_logs_the_token(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(uvicorn_script(), encoding="utf-8")
    run = Run(tmp_path)
    async with serving(tmp_path, ["app.py"]) as base_url:
        await exercise(base_url, run)
    assert_served_and_masked(run)


async def test_without_the_filter_uvicorn_logs_the_token(tmp_path: Path) -> None:
    """The control: the same example minus its filter line leaks, and the capture sees it
    (in the access log's records and on the server's stdout)."""
    (tmp_path / "app.py").write_text(uvicorn_script(with_filter=False), encoding="utf-8")
    run = Run(tmp_path)
    async with serving(tmp_path, ["app.py"]) as base_url:
        await exercise(base_url, run)
    assert run.statuses["good"] == 200
    assert any(TOKEN in line for line in run.access_lines())
    assert TOKEN in run.stdout + run.stderr


async def test_with_the_access_log_off_the_token_is_not_logged(tmp_path: Path) -> None:
    """The README's other way: ``access_log=False``, no filter."""
    script = uvicorn_script(with_filter=False, access_log=False)
    (tmp_path / "app.py").write_text(script, encoding="utf-8")
    run = Run(tmp_path)
    async with serving(tmp_path, ["app.py"]) as base_url:
        await exercise(base_url, run)
    assert run.statuses == {"good": 200, "bad": 400, "guess": 404}
    assert "readme-msg-1 DELIVERED 0.045" in run.stdout
    assert run.access_lines() == []
    assert TOKEN not in run.everything()


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_readme_framework_examples_never_log_the_token(
    framework: str, tmp_path: Path
) -> None:
    """``uvicorn myapp:app``, as the README says to serve them, with uvicorn's CLI."""
    if os.environ.get("CI") == "true":
        __import__(framework)  # in the dev extra: CI must run these, never skip them
    else:
        pytest.importorskip(framework)
    source = doc_block(PAGE, "receiver") + "\n" + doc_block(PAGE, framework)
    (tmp_path / "myapp.py").write_text(source, encoding="utf-8")
    run = Run(tmp_path)
    command = ["-m", "uvicorn", "myapp:app", "--host", "127.0.0.1", "--port", "{port}"]
    async with serving(tmp_path, command) as base_url:
        await exercise(base_url, run)
    assert_served_and_masked(run)
