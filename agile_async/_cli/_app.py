"""The ``agile-sms`` command group: global options, and every command wired in."""

from __future__ import annotations

import click

from .._version import __version__
from ._campaign import campaign
from ._commands import credit, sandbox, segments, send
from ._common import ExitCode, Settings, require_backend
from ._demo import demo
from ._scaleout import enqueue_command, work_command  # noqa: F401  (campaign enqueue|work)

__all__ = ["cli"]

EPILOG = f"""Exit codes: {ExitCode.OK} done; {ExitCode.INCOMPLETE} some messages failed or are
unknown; {ExitCode.USAGE} usage or input error; {ExitCode.ACCOUNT} account error (credentials,
credit, IP); {ExitCode.STOPPED} stopped by provider or network errors (resume later);
{ExitCode.REDIS_UNAVAILABLE} Redis unavailable past --redis-timeout (run it again);
{ExitCode.INTERRUPTED} interrupted (Ctrl-C or SIGTERM); {ExitCode.BROKEN_PIPE} the reader of
the output went away.

Credentials: AGILE_API_KEY (or AGILE_USERNAME and AGILE_PASSWORD), AGILE_BASE_URL; asked for,
hidden, when missing in a terminal. --sandbox needs no account."""


@click.group("agile-sms", context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EPILOG)  # fmt: skip
@click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio",
              envvar="AGILE_SMS_BACKEND", show_default=True,
              help="The event loop to run on (trio needs the 'trio' extra).")  # fmt: skip
@click.version_option(__version__, prog_name="agile-sms")
@click.pass_context
def cli(context: click.Context, backend: str) -> None:
    """Send SMS through AgileTelecom: single messages, credit, segment counts, campaigns."""
    require_backend(backend)
    settings = Settings(backend=backend, program=context.info_name or "agile-sms")
    # Log records (the SDK's warnings) are rendered through the display until the command
    # ends, never written raw over a progress bar.
    context.with_resource(settings.display.capture_logs())
    context.obj = settings


for command in (send, credit, segments, campaign, sandbox, demo):
    cli.add_command(command)
