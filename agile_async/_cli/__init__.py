"""``agile-sms``: the command line tool (the ``cli`` extra: click and rich).

click and rich are imported only when the command runs, so a missing extra gets a one-line
hint instead of a traceback, and ``import agile_async`` never pays for them.

The CLI is a user of the SDK like any other: it imports the package's public modules only
(``agile_async``, ``.campaigns``, ``.scaleout``, ``.segments``, ``.testing``,
``.webhooks``), never a private one, so what it needs is public and documented
(``tests/test_cli_structure.py`` keeps it so, and its modules free of import cycles).
Every command is registered in :mod:`._app`; every exit code comes from :mod:`._exit`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """The ``agile-sms`` entry point."""
    from ._exit import ExitCode

    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as error:
        sys.stderr.write(
            f"agile-sms needs the 'cli' extra ({error.name} is missing): "
            "pip install 'agile-async[cli]'\n"
        )
        raise SystemExit(int(ExitCode.USAGE)) from None
    from ._app import cli
    from ._common import invoked_program, terminate_like_interrupt

    terminate_like_interrupt()
    cli(prog_name=invoked_program())
