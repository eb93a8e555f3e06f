"""The documentation's examples, as the tests run them: one home for finding a block.

A Python block in ``README.md`` or ``docs/`` is taken as written. One preceded by
``<!-- doc-test: NAME -->`` is run by a test of its own that asks for it by page and name
(:func:`doc_block`); one preceded by ``<!-- not-run: REASON -->`` is a fragment, shown but not
run; every other block runs against the fake provider (``tests/docs/test_doc_blocks.py``),
after the hidden code of a ``<!-- doc-setup: CODE -->`` above it if it has one (the names a
sketch leaves to the reader: ``message``, ``records``...). So the docs cannot drift from the
code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests._children import ROOT

__all__ = ["DOCS", "README", "CodeBlock", "code_blocks", "doc_block", "doc_pages", "doc_text"]

README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: A fenced block, with the HTML comment (if any) right above it.
_BLOCK = re.compile(
    r"(?:<!--\s*(?P<kind>doc-test|doc-setup|not-run):\s*(?P<note>.*?)\s*-->\s*\n)?"
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<source>.*?)^```",
    flags=re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a page: where it is, its language, its marker and its text."""

    page: str
    line: int
    lang: str
    kind: str | None
    note: str
    source: str

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line}"


def doc_pages() -> list[Path]:
    """The README and every Markdown page of the site."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def doc_text(page: str) -> str:
    """A page's text, by its path from the repository's root (``"docs/guides/batcher.md"``)."""
    return (ROOT / page).read_text(encoding="utf-8")


def code_blocks(path: Path) -> list[CodeBlock]:
    """The fenced blocks of one page, in order."""
    text = path.read_text(encoding="utf-8")
    page = path.relative_to(ROOT).as_posix()
    return [
        CodeBlock(
            page=page,
            line=text.count("\n", 0, found.start("source")),
            lang=found["lang"],
            kind=found["kind"],
            note=found["note"] or "",
            source=found["source"],
        )
        for found in _BLOCK.finditer(text)
    ]


def doc_block(page: str, name: str) -> str:
    """The Python block right after ``<!-- doc-test: name -->`` on ``page``, as written."""
    found = [
        block.source
        for block in code_blocks(ROOT / page)
        if block.kind == "doc-test" and block.note == name and block.lang == "python"
    ]
    assert len(found) == 1, f"{page}: expected one block marked {name!r}, found {len(found)}"
    return found[0]
