"""The package's source itself: what every supported Python must be able to import."""

from __future__ import annotations

import ast
from pathlib import Path

import agile_async

PACKAGE = Path(agile_async.__file__).parent


def test_no_docstring_holds_a_lone_surrogate() -> None:
    """Python 3.13.0 cannot import a module whose docstring holds a lone surrogate (its
    compile-time docstring clean-up encodes it as UTF-8). Write ``\\\\ud800`` in a
    docstring to show the escape; in code, a surrogate in a string is fine."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            ):
                continue
            docstring = ast.get_docstring(node, clean=False)
            if docstring is None:
                continue
            try:
                docstring.encode("utf-8")
            except UnicodeEncodeError:
                found.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', 1)}")
    assert found == []
