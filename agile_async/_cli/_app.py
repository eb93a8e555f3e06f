"""The ``agile-sms`` command group: global options, and every command registered, here only.

Command modules define commands and register nothing: importing one has no effect on the
command tree, and this module, which imports them all, is where the tree is built.
"""

from __future__ import annotations

import click

from agile_async import __version__

from ._campaign import (
    export_command,
    reports_command,
    resume_command,
    run_command,
    status_command,
)
from ._campaign_group import campaign
from ._commands import credit, sandbox, segments, send
from ._common import Settings, require_backend
from ._demo import demo
from ._exit import ExitCode
from ._scaleout import clear_stop_command, enqueue_command, requeue_held_command, work_command

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


#: ``agile-sms campaign ...``: the journal's commands, then the Redis fleet's.
CAMPAIGN_COMMANDS = (
    run_command,
    resume_command,
    status_command,
    export_command,
    reports_command,
    enqueue_command,
    work_command,
    clear_stop_command,
    requeue_held_command,
)
#: ``agile-sms ...``.
COMMANDS = (send, credit, segments, campaign, sandbox, demo)

for command in CAMPAIGN_COMMANDS:
    campaign.add_command(command)
for command in COMMANDS:
    cli.add_command(command)
