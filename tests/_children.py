"""What a test's child process needs to import this checkout's package, written once.

The tests live in folders below ``tests/``; each one that starts ``python -m agile_async`` or a
helper script used to work out the repository's root from its own depth, which a move breaks
silently (the child then imports whatever ``agile_async`` is installed, or none).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ROOT", "child_environment"]

#: The repository's root: the folder holding ``agile_async/``, ``README.md`` and ``examples/``.
ROOT = Path(__file__).resolve().parent.parent


#: What the terminal pytest runs in says about its size (pytest-xdist's workers, or a CI
#: that exports them, set COLUMNS=80): a child's output width is the test's to decide.
_TERMINAL_SIZE = ("COLUMNS", "LINES")


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment with this checkout first on ``PYTHONPATH``, without the
    terminal's size, plus ``extra``."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    inherited = {k: v for k, v in os.environ.items() if k not in _TERMINAL_SIZE}
    return {**inherited, "PYTHONPATH": path, **extra}
