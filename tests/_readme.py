"""The README's examples, as the tests run them: one home for finding a marked block."""

from __future__ import annotations

import re

from tests._children import ROOT

__all__ = ["README", "readme_block"]

README = ROOT / "README.md"


def readme_block(name: str) -> str:
    """The Python block right after ``<!-- readme-test: name -->``, as the README has it."""
    text = README.read_text(encoding="utf-8")
    pattern = rf"<!-- readme-test: {re.escape(name)} -->\s*```python\n(.*?)```"
    found = re.findall(pattern, text, flags=re.DOTALL)
    assert len(found) == 1, f"README: expected one block marked {name!r}, found {len(found)}"
    return str(found[0])
