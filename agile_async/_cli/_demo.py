"""``agile-sms demo``: a whole campaign against the sandbox, on a fresh machine, no account.

It writes a recipients file (a few rows are deliberately bad), starts the fake provider over
real TLS on loopback, shows the dry run, sends with the progress bar, and leaves the journal
behind so ``campaign status`` and ``campaign export`` can be tried on it.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import click
from rich.markup import escape

from agile_async import BatchSettings, DeliveryStatus, RateLimit
from agile_async.campaigns import Campaign
from agile_async.segments import PriceList
from agile_async.testing import DeliveryScript

from ._campaign import exit_code, load_input, send_campaign
from ._common import Settings, handle_errors, open_client, run_async
from ._exit import ExitCode
from ._render import CampaignHints, print_command, print_report, print_result

__all__ = ["demo"]

BODY = "Hi {name}, your spring code is {code}: -20% until Sunday. Reply STOP to opt out."
SENDER = "AgileDemo"
NAMES = ("Ada", "Luca", "Giulia", "Marco", "Sofia", "Matteo", "Chiara", "Zoë", "Łukasz", "Anna")
#: The sandbox's provider refuses this number: bisection isolates it, the rest go out.
REFUSED = "+393999999999"
PRICES = PriceList({"39": "0.045"}, default="0.09")
#: What the sandbox's phones do: most messages arrive, a few do not (seeded: every demo
#: shows the same mix).
DELIVERY = DeliveryScript(
    outcomes={
        DeliveryStatus.DELIVERED: 0.97,
        DeliveryStatus.UNDELIVERABLE: 0.02,
        DeliveryStatus.EXPIRED: 0.01,
    },
    seed="agile-sms demo",
)


def destination(i: int) -> str:
    """The demo's i-th phone number (fictional, Italian mobile format)."""
    return f"+393{i:09d}"


def write_recipients(path: Path, count: int) -> None:
    """``count`` recipients; rows 100 and 1500 have invalid numbers, row 777 is refused."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["destination", "name", "code"])
        for i in range(1, count + 1):
            number = destination(i)
            if i == 100:
                number = "+39 12"
            elif i == 1500:
                number = "0039347abc"
            elif i == 777:
                number = REFUSED
            writer.writerow([number, NAMES[i % len(NAMES)], f"SPRING{i % 10_000:04d}"])


@click.command()
@click.option("--recipients", default=2000, show_default=True, type=click.IntRange(10),
              help="How many recipients to write (rows 100, 777, 1500 are bad).")  # fmt: skip
@click.option("--rate", default=1000.0, show_default=True, help="Messages per second.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the recipients and the journal (default: a new temp dir).",
)
@click.pass_obj
@handle_errors
def demo(settings: Settings, recipients: int, rate: float, directory: Path | None) -> None:
    """Run a complete campaign against the built-in sandbox: no account, nothing delivered."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="agile-sms-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "recipients.csv"
    journal = directory / "recipients.journal"
    if journal.exists():
        raise click.UsageError(f"{journal} exists already: pass another --dir")
    write_recipients(source, recipients)
    code = run_async(settings, _demo, settings, source, journal, rate)
    raise SystemExit(int(code))


async def _demo(settings: Settings, source: Path, journal: Path, rate: float) -> ExitCode:
    console = settings.console()
    console.print(f"[bold]agile-sms demo[/]: a campaign to the recipients in {escape(str(source))}")
    hints = CampaignHints(settings.command, str(journal), sandbox=True)
    async with open_client(sandbox=True, fake_options={"delivery": DELIVERY}) as (client, sandbox):
        assert client is not None
        assert sandbox is not None
        sandbox.fake.reject_destinations([REFUSED])
        console.print(f"Sandbox provider (fake AgileTelecom over TLS): {sandbox.base_url}")
        async with await Campaign.create(
            journal, source, body=BODY, sender=SENDER, defaults={"sandbox": True, "rate": rate}
        ) as campaign:
            await load_input(campaign, settings.display, quiet=False)
            report = await campaign.dry_run(client, prices=PRICES)
            print_report(console, report, title="Dry run", body=BODY, hints=hints)
            batch = BatchSettings(rate_limit=RateLimit(rate=rate, burst=max(1.0, rate / 10)))
            result = await send_campaign(
                campaign, client, batch, None, settings.display, hints, sandbox=sandbox
            )
            if result is None:
                return ExitCode.INTERRUPTED
            print_result(console, result, hints)
    console.print("\nThe journal stays behind; try:")
    print_command(console, " ", hints.status())
    print_command(console, " ", hints.export("--state", "failed"))
    code = exit_code(result)
    return ExitCode.OK if code is ExitCode.INCOMPLETE and result.complete else code
