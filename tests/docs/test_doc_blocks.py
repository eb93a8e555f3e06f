"""Every Python block of the README and of ``docs/``, run as written against the fake provider.

A block is one of three kinds (see ``tests/_docs.py``):

- unmarked, or after ``<!-- doc-setup: CODE -->`` (hidden code that first defines the names
  a sketch leaves to the reader): run here, in a fresh namespace, with the environment pointing at a
  :class:`~agile_async.testing.FakeAgileServer` over real TLS (``AGILE_BASE_URL``, the
  credentials, ``SSL_CERT_FILE``), as a user's script would see it, in a scratch folder
  holding a ``recipients.csv`` (the file the campaign examples read); a function it defines
  named ``test_*`` is called too, on both backends when it is async. A
  block with a top-level ``await`` is the body of an ``async def``: it runs on asyncio and on
  trio with ``fake`` (that server) and ``client`` (an ``AgileClient`` for it) in scope;
- ``<!-- doc-test: NAME -->``: run by a test of its own, which asks for it with
  ``doc_block(page, NAME)``; here we check that such a test exists;
- ``<!-- not-run: REASON -->``: a fragment, shown but not run; here we check the reason is
  given, and that the fragment still parses.
"""

from __future__ import annotations

import ast
import inspect
import logging
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from agile_async.testing import FakeAgileServer, TLSServer
from tests._children import ROOT
from tests._docs import CodeBlock, code_blocks, doc_pages

pytestmark = pytest.mark.tls

#: The account the examples use: the placeholder key they show.
API_KEY = "YOUR_API_KEY"
GUARD = 60.0
BACKENDS = ("asyncio", "trio")
#: The fake provider and its TLS server, as the ``served`` fixture gives them.
Served = tuple[FakeAgileServer, TLSServer]
WEBHOOK_TOKEN = "docs-Token_0123456789abcdefghijklmnopqrstu"
RECIPIENTS = "destination,name,code\n+393471234567,Ada,A7F2\n+393471234568,Bob,B8G3\n"

BLOCKS = [block for page in doc_pages() for block in code_blocks(page) if block.lang == "python"]
RUN = [block for block in BLOCKS if block.kind in (None, "doc-setup")]
NAMED = [block for block in BLOCKS if block.kind == "doc-test"]
FRAGMENTS = [block for block in BLOCKS if block.kind == "not-run"]


def top_level_await(block: CodeBlock) -> bool:
    """Whether the block is the body of an ``async def`` (Python refuses it as a script)."""
    try:
        compile(block.source, block.label, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(block.source, block.label, "exec", dont_inherit=True)
    except SyntaxError:
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        compile(block.source, block.label, "exec", flags=flags, dont_inherit=True)
        return True
    return False


SCRIPTS = [block for block in RUN if not top_level_await(block)]
BODIES = [block for block in RUN if top_level_await(block)]


def setup(block: CodeBlock, namespace: dict[str, Any]) -> None:
    """Run the block's hidden ``doc-setup`` code, if any, in the namespace the block gets."""
    if block.kind == "doc-setup":
        exec(compile(block.note, f"{block.label} (setup)", "exec"), namespace)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Served]:
    """A fake account over TLS, the environment pointing at it, a scratch working folder."""
    fake = FakeAgileServer(api_key=API_KEY, credit=Decimal("100"))
    monkeypatch.chdir(tmp_path)
    # the file the campaign examples read, as the campaigns guide describes it
    (tmp_path / "recipients.csv").write_text(RECIPIENTS, encoding="utf-8")
    with fake.serve_tls() as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AGILE_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
        yield fake, server
    logging.getLogger("agile_async").handlers.clear()


@pytest.mark.parametrize("block", SCRIPTS, ids=[block.label for block in SCRIPTS])
def test_a_script_block_runs(block: CodeBlock, served: Served) -> None:
    module = types.ModuleType("doc_block")
    module.__dict__["__name__"] = "__main__"
    setup(block, module.__dict__)
    exec(compile(block.source, block.label, "exec"), module.__dict__)
    # a block that shows a test runs that test too, as pytest would (no fixtures)
    for name, test in list(module.__dict__.items()):
        if name.startswith("test_") and inspect.isfunction(test):
            if inspect.iscoroutinefunction(test):
                for backend in BACKENDS:
                    anyio.run(test, backend=backend)
            else:
                test()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block", BODIES, ids=[block.label for block in BODIES])
def test_an_async_block_runs(block: CodeBlock, backend: str, served: Served) -> None:
    code = compile(block.source, block.label, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def body() -> None:
        fake, server = served
        async with server.client() as client:
            namespace: dict[str, Any] = {"fake": fake, "client": client}
            setup(block, namespace)
            with anyio.fail_after(GUARD):
                await eval(code, namespace)

    anyio.run(body, backend=backend)


def test_every_named_block_has_its_own_test() -> None:
    tests = "\n".join(path.read_text(encoding="utf-8") for path in ROOT.glob("tests/**/*.py"))
    for block in NAMED:
        assert f'"{block.note}"' in tests, f"{block.label}: no test asks for {block.note!r}"


@pytest.mark.parametrize("block", FRAGMENTS, ids=[block.label for block in FRAGMENTS])
def test_a_fragment_says_why_and_parses(block: CodeBlock) -> None:
    assert block.note, f"{block.label}: a not-run block says why"
    compile(block.source, block.label, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
