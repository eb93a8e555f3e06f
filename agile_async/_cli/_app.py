"""The ``agile-sms`` command group: global options, and every command wired in."""

from __future__ import annotations

import click

from .._version import __version__
from ._campaign import campaign
from ._commands import credit, sandbox, segments, send
from ._common import ExitCode, Settings
from ._demo import demo
from ._scaleout import enqueue_command, work_command  # noqa: F401  (campaign enqueue|work)

__all__ = ["cli"]

EPILOG = f"""Exit codes: {ExitCode.OK} done; {ExitCode.INCOMPLETE} some messages failed or are
unknown; {ExitCode.USAGE} usage or input error; {ExitCode.ACCOUNT} account error (credentials,
credit, IP); {ExitCode.STOPPED} stopped by provider or network errors (resume later);
{ExitCode.REDIS_UNAVAILABLE} Redis unavailable past --redis-timeout (run it again);
{ExitCode.INTERRUPTED} interrupted.

Credentials: AGILE_API_KEY (or AGILE_USERNAME and AGILE_PASSWORD), AGILE_BASE_URL; asked for,
hidden, when missing in a terminal. --sandbox needs no account."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio",
              envvar="AGILE_SMS_BACKEND", show_default=True,
              help="The event loop to run on (trio needs the 'trio' extra).")  # fmt: skip
@click.version_option(__version__, prog_name="agile-sms")
@click.pass_context
def cli(context: click.Context, backend: str) -> None:
    """Send SMS through AgileTelecom: single messages, credit, segment counts, campaigns."""
    context.obj = Settings(backend=backend)


for command in (send, credit, segments, campaign, sandbox, demo):
    cli.add_command(command)
