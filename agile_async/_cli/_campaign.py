"""``agile-sms campaign run|resume|status|export|reports``, over :mod:`agile_async.campaigns`
(the group is :mod:`._campaign_group`; :mod:`._app` registers the commands).

``run`` and ``resume`` share one session: open the client (or the sandbox) and the journal,
finish loading the input, show the dry-run report, ask (unless ``--yes``), then send with a
progress bar. Ctrl-C (or SIGTERM) stops cleanly (requests under way finish and are
recorded, the rest stays pending); a second one aborts at once (what was in flight becomes
unknown).

Spending is never the default: the question defaults to no, and when the estimate exceeds
the credit the run refuses (exit 3) unless ``--allow-insufficient-credit`` says otherwise,
``--yes`` included: answering the question is not accepting a shortfall.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from agile_async import AgileClient, BatchSettings, SendOptions
from agile_async.campaigns import (
    Campaign,
    CampaignResult,
    JournalError,
    LoadProgress,
    RowState,
    StateCounts,
)
from agile_async.scaleout import RedisCampaign
from agile_async.segments import PriceList

from ._common import (
    Sandbox,
    Settings,
    confirm,
    echo_json,
    fail,
    handle_errors,
    open_client,
    parse_prices,
    rate_limit,
    run_async,
)
from ._deliveries import SavedReports, SavedReportsSummary
from ._duration import duration_option
from ._exit import ExitCode, run_code
from ._fleet import fleet_controls, open_redis_campaign, print_fleet_controls
from ._options import input_options
from ._render import (
    CampaignHints,
    Display,
    SendProgress,
    print_command,
    print_recovery,
    print_report,
    print_result,
    print_saved_reports,
    print_status,
)

__all__ = [
    "exit_code",
    "export_command",
    "load_input",
    "reports_command",
    "resume_command",
    "run_command",
    "send_campaign",
    "status_command",
]

#: How long a sandbox run waits for the delivery reports of its last messages, in seconds.
_REPORTS_GRACE = 5.0
#: ``run`` and ``resume`` keep the journal's SQLite work in a process of its own (the CLI is
#: where million-row campaigns run: about half again as fast), except in a frozen
#: application, whose executable cannot start the journal's process.
JOURNAL_PROCESS = not getattr(sys, "frozen", False)


@attrs.frozen(kw_only=True)
class SendingOptions:
    """The options ``run`` and ``resume`` share (``None``: the journal's or the default)."""

    sandbox: bool
    yes: bool
    dry_run: bool
    as_json: bool
    rate: float | None
    per: str | None
    burst: float | None
    batch_size: int | None
    max_in_flight: int | None
    limit: int | None
    prices: PriceList | None
    allow_insufficient_credit: bool

    def batch_settings(self, defaults: dict[str, Any]) -> BatchSettings:
        """Settings from the options, else from those recorded in the journal."""

        def pick(name: str) -> Any:
            value = getattr(self, name)
            return value if value is not None else defaults.get(name)

        limit = rate_limit(pick("rate"), pick("per") or "messages", pick("burst"))
        values: dict[str, Any] = {"rate_limit": limit}
        if pick("batch_size") is not None:
            values["max_messages"] = pick("batch_size")
        if pick("max_in_flight") is not None:
            values["max_in_flight"] = pick("max_in_flight")
        return BatchSettings(**values)

    def recorded(self) -> dict[str, Any]:
        """What to remember in the journal for resumes."""
        names = ("rate", "per", "burst", "batch_size", "max_in_flight")
        recorded: dict[str, Any] = {n: getattr(self, n) for n in names if getattr(self, n)}
        recorded["sandbox"] = self.sandbox
        return recorded


def sending_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``run`` and ``resume``."""
    options = [
        click.option("--sandbox", is_flag=True, help="Send to the built-in fake provider "
                     "over TLS on loopback: no account needed, nothing delivered."),
        click.option("--yes", "-y", is_flag=True, help="Send without asking."),
        click.option("--allow-insufficient-credit", is_flag=True, help="Send even though "
                     "the estimate (--price) exceeds the credit, until the credit runs out "
                     "(the rest stays pending). Without it such a run refuses to start."),
        click.option("--dry-run", is_flag=True, help="Show parts, encodings, cost and "
                     "credit, then stop."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document "
                     "(with --dry-run: the report) instead of tables and a progress bar."),
        click.option("--rate", type=float, help="Rate limit: tokens per second."),
        click.option("--per", type=click.Choice(["messages", "parts", "requests"]),
                     help="What a token pays for (default: messages)."),
        click.option("--burst", type=float, help="Tokens spendable at once (default: "
                     "one second's worth)."),
        click.option("--batch-size", type=click.IntRange(1, 10_000), help="Messages per "
                     "request (default 500)."),
        click.option("--max-in-flight", type=click.IntRange(1, 64), help="Requests under "
                     "way at once (default 4)."),
        click.option("--max-messages", "limit", type=click.IntRange(1), help="Send at most "
                     "this many now; the rest stays pending."),
        click.option("--price", "prices", multiple=True, metavar="[PREFIX=]EUR",
                     help="Price per SMS part for the estimate: 0.045, or 39=0.04 by "
                     "destination prefix (repeatable)."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def _sending(opts: dict[str, Any]) -> SendingOptions:
    prices = parse_prices(opts.pop("prices"))
    sending = SendingOptions(prices=prices, **opts)
    if sending.as_json and not (sending.yes or sending.dry_run):
        raise click.UsageError("--json cannot ask for confirmation: add --yes or --dry-run")
    return sending


@click.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sender", required=True, help="Sender alias (11 characters) or number.")
@click.option("--body", required=True, metavar="TEMPLATE",
              help="Message body; {column} is replaced by the row's value, {{ and }} are "
              "literal braces.")  # fmt: skip
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The campaign's journal (SQLite). Default: FILE.journal")  # fmt: skip
@click.option("--format", "input_format", type=click.Choice(["csv", "jsonl"]),
              help="Input format (default: from the file name).")  # fmt: skip
@input_options
@click.option("--simulation", is_flag=True,
              help="The provider validates and charges nothing, delivers nothing.")  # fmt: skip
@sending_options
@click.pass_obj
@handle_errors
def run_command(
    settings: Settings,
    /,
    file: Path,
    sender: str,
    body: str,
    journal: Path | None,
    input_format: str | None,
    encoding: str,
    delimiter: str | None,
    simulation: bool,
    **opts: Any,
) -> None:
    """Send BODY to every recipient of FILE (CSV with a destination column, or JSONL).

    The campaign is recorded in the journal before anything is sent. Running it again
    with the same file, body and sender continues it (like `campaign resume`).
    """
    sending = _sending(opts)
    journal_path = journal if journal is not None else file.with_name(file.name + ".journal")

    async def open_campaign() -> Campaign:
        return await Campaign.create(
            journal_path,
            file,
            body=body,
            sender=sender,
            options=SendOptions(simulation=simulation),
            format=input_format,  # type: ignore[arg-type]
            encoding=encoding,
            delimiter=delimiter,
            defaults=sending.recorded(),
            exist_ok=True,
            journal_process=JOURNAL_PROCESS,
        )

    code = run_async(settings, _session, settings, open_campaign, sending, str(journal_path))
    raise SystemExit(int(code))


@click.command("resume")
@click.option("--journal", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The campaign's journal.")  # fmt: skip
@click.option("--resend-unknown", is_flag=True,
              help="Send again the messages whose outcome is unknown (some recipients may "
              "get them twice).")  # fmt: skip
@click.option("--silent-for", callback=duration_option, metavar="DURATION",
              help="With --resend-unknown: only the unknown messages sent at least this long "
              "ago with no delivery report since (30s, 10m, 2h, 1d).")  # fmt: skip
@sending_options
@click.pass_obj
@handle_errors
def resume_command(
    settings: Settings,
    /,
    journal: Path,
    resend_unknown: bool,
    silent_for: timedelta | None,
    **opts: Any,
) -> None:
    """Continue a campaign: pending messages are sent once, accepted ones never again.

    Messages in flight when the last run died are reported as unknown and not sent again,
    unless --resend-unknown (--silent-for limits it to those silent that long). A delivery
    report for an unknown message confirms it: it counts as accepted. Rate settings default
    to those the campaign was run with.
    """
    if silent_for is not None and not resend_unknown:
        raise click.UsageError("--silent-for limits --resend-unknown: give both")
    sending = _sending(opts)
    if resend_unknown and not sending.yes and not sending.dry_run:
        which = "" if silent_for is None else " silent for " + _say(silent_for)
        again = confirm(
            f"Messages with an unknown outcome{which} may already have been delivered. Send "
            "them again anyway?"
        )
        if not again:
            settings.console().print("Nothing sent.")
            raise SystemExit(int(ExitCode.OK))

    async def open_campaign() -> Campaign:
        return await Campaign.open(
            journal,
            resend_unknown=resend_unknown,
            silent_for=silent_for,
            journal_process=JOURNAL_PROCESS,
        )

    code = run_async(settings, _session, settings, open_campaign, sending, str(journal), True)
    raise SystemExit(int(code))


def _say(duration: timedelta) -> str:
    """A duration as the operator typed it, roughly: ``1h``, ``90s``, ``2d``."""
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _redis_source(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--redis URL CAMPAIGN``: read a campaign kept in Redis instead of a journal file."""
    function = click.argument("name", metavar="[CAMPAIGN]", required=False)(function)
    return click.option(
        "--redis", "url", metavar="URL", help="Read CAMPAIGN from Redis (redis://, unix:// or "
        "redis+cluster:// for a cluster), instead of --journal."
    )(function)  # fmt: skip


@asynccontextmanager
async def _open_read_only(
    journal: Path | None, url: str | None, name: str | None
) -> AsyncIterator[Campaign]:
    """The campaign of ``--journal``, or of ``--redis URL CAMPAIGN``, opened read-only."""
    if url is not None:
        if name is None or journal is not None:
            raise click.UsageError("with --redis, name the CAMPAIGN (and no --journal)")
        async with (
            open_redis_campaign(url, name) as store,
            await Campaign.open(store, read_only=True) as opened,
        ):
            yield opened
        return
    if journal is None or name is not None:
        raise click.UsageError("give --journal FILE, or --redis URL CAMPAIGN")
    async with await Campaign.open(journal, read_only=True) as opened:
        yield opened


#: ``--journal`` of the commands that read a campaign (status, export).
_JOURNAL_TO_READ = "The campaign's journal (SQLite), e.g. recipients.csv.journal."


@click.command("status")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=_JOURNAL_TO_READ)  # fmt: skip
@_redis_source
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def status_command(
    settings: Settings,
    journal: Path | None,
    as_json: bool,
    url: str | None = None,
    name: str | None = None,
) -> None:
    """Show a campaign's counts by state (readable while it runs)."""

    async def read() -> tuple[Any, dict[str, Any] | None]:
        async with _open_read_only(journal, url, name) as opened:
            controls = None
            if isinstance(opened.journal, RedisCampaign):  # its stop, the chunks set aside
                controls = await fleet_controls(opened.journal)
            return await opened.status(), controls

    status, controls = run_async(settings, read)
    if as_json:
        echo_json({**status.as_dict(), **(controls or {})})
        return
    hints = None
    if journal is not None:
        sandbox = bool(status.definition.defaults.get("sandbox"))
        hints = CampaignHints(settings.command, str(journal), sandbox)
    print_status(settings.console(), status, hints)
    if controls is not None and name is not None:
        print_fleet_controls(settings, name, controls)


@click.command("export")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=_JOURNAL_TO_READ)  # fmt: skip
@_redis_source
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of stdout.")  # fmt: skip
@click.option("--state", "states", multiple=True,
              type=click.Choice([state.value for state in RowState]),
              help="Only rows in this state (repeatable).")  # fmt: skip
@click.pass_obj
@handle_errors
def export_command(
    settings: Settings,
    journal: Path | None,
    output: Path | None,
    states: tuple[str, ...],
    url: str | None = None,
    name: str | None = None,
) -> None:
    """Write every recipient's outcome as CSV (id, state, reason, delivery...).

    From Redis, every row has its id, destination, state, reason and delivery status; SMS
    parts, encodings and request ids are not kept there (`parts` reads 0, the others are
    empty).
    """
    wanted = [RowState(state) for state in states] or None

    async def export() -> int:
        async with _open_read_only(journal, url, name) as opened:
            return await opened.export(output if output is not None else sys.stdout, states=wanted)

    count = run_async(settings, export)
    if output is not None:
        Console(stderr=True, highlight=False).print(f"Wrote {count:,} rows to {output}.")


@click.command("reports")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The campaign's journal.")  # fmt: skip
@click.option("--redis", "url", metavar="URL", help="Record into a campaign kept in "
              "Redis (redis://, unix://, redis+cluster://): name it, then FILES.")  # fmt: skip
@click.argument("files", metavar="[CAMPAIGN] FILES...", nargs=-1, required=True,
                type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def reports_command(
    settings: Settings,
    journal: Path | None,
    url: str | None,
    files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Record delivery reports saved from your webhook (FILES: JSON lines, - for stdin).

    Each line is a body as the provider posts it: one report object, or an array of them.
    A message is delivered when every part is; a report for a message whose outcome is
    unknown confirms it (accepted). Safe to run twice, and while the campaign runs.
    """
    name: str | None = None
    if url is not None:
        if journal is not None or len(files) < 2:
            raise click.UsageError("with --redis, give CAMPAIGN then FILES (and no --journal)")
        name, files = str(files[0]), files[1:]
    elif journal is None:
        raise click.UsageError("give --journal FILE, or --redis URL CAMPAIGN")
    for path in files:
        if str(path) != "-" and not path.is_file():
            raise click.BadParameter(f"{path} is not a file", param_hint="FILES")
    saved = SavedReports(files)

    async def record() -> SavedReportsSummary:
        if url is None or name is None:
            assert journal is not None
            return await saved.record(journal)
        async with open_redis_campaign(url, name) as store:
            if await store.definition() is None:
                raise JournalError(f"Redis holds no campaign named {name!r}")
            return await saved.record_into(store)

    summary = run_async(settings, record)
    if as_json:
        echo_json(summary.as_dict())
    else:
        print_saved_reports(settings.console(), summary)
    raise SystemExit(int(ExitCode.INCOMPLETE if summary.refused else ExitCode.OK))


# -- the session shared by run and resume ------------------------------------------------------


async def _session(
    settings: Settings,
    open_campaign: Callable[[], Awaitable[Campaign]],
    sending: SendingOptions,
    journal: str,
    resuming: bool = False,
) -> ExitCode:
    console = settings.console()
    quiet = sending.as_json
    async with (
        open_client(sandbox=sending.sandbox, required=not sending.dry_run) as (client, where),
        await open_campaign() as opened,
    ):
        defaults = dict(opened.definition.defaults)
        recovered = attrs.asdict(opened.recovery)  # what opening did (--json)
        hints = CampaignHints(settings.command, journal, bool(defaults.get("sandbox")))
        if defaults.get("sandbox") and not sending.sandbox:
            fail(f"this campaign was created in the sandbox: resume it with {hints.resume()}")
        if not quiet:
            print_recovery(console, opened.recovery, hints)
        await load_input(opened, settings.display, quiet)
        report = await opened.dry_run(client, prices=sending.prices)
        body = opened.definition.body
        if sending.dry_run:
            if quiet:
                echo_json(report.as_dict())
            else:
                print_report(console, report, body=body, hints=hints)
            return ExitCode.OK
        if not quiet:
            title = "Resume" if resuming else "Campaign"
            print_report(console, report, title=title, body=body, hints=hints)
        if report.to_send == 0:
            if not quiet:
                console.print("Nothing left to send.")
            counts = await opened.counts()
            code = run_code(None, incomplete=_unfinished(counts))
            if quiet:
                echo_json({"journal": journal, "recovery": recovered, "report": report.as_dict(),
                           "result": None})  # fmt: skip
            return code
        if report.sufficient is False and not sending.allow_insufficient_credit:
            fail(
                f"the credit ({report.credit} EUR) does not cover the estimate ({report.cost} "
                f"{report.currency}): {report.shortfall} missing. Nothing was sent. Top up, "
                "or pass --allow-insufficient-credit to send until the credit runs out (the "
                "rest stays pending)",
                ExitCode.ACCOUNT,
            )
        if not sending.yes and not await _confirm(report.to_send, report.sufficient):
            console.print(f"Nothing sent. The campaign is recorded in {journal}.", markup=False)
            print_command(console, "Send it later with:", hints.resume())
            return ExitCode.OK
        assert client is not None
        batch = sending.batch_settings(defaults)
        result = await send_campaign(
            opened, client, batch, sending.limit, settings.display, hints, quiet=quiet,
            sandbox=where,
        )  # fmt: skip
        if result is None:
            return ExitCode.INTERRUPTED
        if quiet:
            echo_json({"journal": journal, "recovery": recovered, "report": report.as_dict(),
                       "result": result.as_dict()})  # fmt: skip
        else:
            print_result(console, result, hints)
        return exit_code(result)


async def _confirm(count: int, sufficient: bool | None) -> bool:
    question = f"Send {count:,} messages?"
    if sufficient is False:
        question = f"The credit does not cover the estimate. Send {count:,} messages anyway?"
    return await anyio.to_thread.run_sync(functools.partial(confirm, question))


async def load_input(opened: Campaign, display: Display, quiet: bool) -> None:
    """Record the input in the journal, with a progress bar for big files."""
    state = await opened.journal.load_state()
    if state.done:
        return
    if quiet:
        await opened.load()
        return
    size = opened.definition.source_size
    with (
        display.live() as console,
        Progress(
            TextColumn("[bold]Reading recipients"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]} rows"),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("load", total=size, rows="0")

        def show(progress: LoadProgress) -> None:
            bar.update(task, completed=progress.bytes_read, rows=f"{progress.rows:,}")

        await opened.load(on_progress=show)


async def send_campaign(
    opened: Campaign,
    client: AgileClient,
    batch: BatchSettings,
    limit: int | None,
    display: Display,
    hints: CampaignHints,
    *,
    quiet: bool = False,
    sandbox: Sandbox | None = None,
) -> CampaignResult | None:
    """Run the campaign, with a progress bar unless ``quiet``, recording the sandbox's
    delivery reports; ``None`` when a second Ctrl-C aborted it."""
    result: CampaignResult | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_watch_interrupts, opened, tasks.cancel_scope, display)
        if sandbox is not None:
            tasks.start_soon(sandbox.reports.pump, opened)
        if quiet:
            result = await opened.run(client, settings=batch, limit=limit)
        else:
            counts = await opened.counts()
            total = counts.pending if limit is None else min(counts.pending, limit)
            with SendProgress(display, total) as bar:
                result = await opened.run(
                    client, settings=batch, limit=limit, on_progress=bar.update
                )
        if sandbox is not None:  # the reports of the last requests
            await sandbox.reports.settle(opened, sandbox.fake, grace=_REPORTS_GRACE)
        tasks.cancel_scope.cancel()
    if result is None:
        display.err.print(
            "[red]Aborted.[/] Messages that were in flight will be reported as unknown."
        )
        print_command(display.err, "Send the rest with:", hints.resume())
        return None
    return attrs.evolve(result, counts=await opened.counts())


async def _watch_interrupts(opened: Campaign, scope: anyio.CancelScope, display: Display) -> None:
    """First Ctrl-C (or SIGTERM): stop cleanly. Second: abort. Said above the progress bar,
    or on stderr (stdout may be a --json document)."""
    try:
        receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
        with receiver as signals:
            stopping = False
            async for _ in signals:
                if stopping:
                    scope.cancel()
                    return
                stopping = True
                display.log_console().print(
                    "[yellow]Stopping:[/] requests under way finish and are recorded; "
                    "the rest stays pending. Ctrl-C again to abort."
                )
                opened.stop()
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows...)
        await anyio.sleep_forever()


def exit_code(result: CampaignResult) -> ExitCode:
    """How a campaign run exits (the campaigns guide's table, :func:`._exit.run_code`)."""
    incomplete = _unfinished(result.counts)
    return run_code(result.stopped_by, interrupted=result.interrupted, incomplete=incomplete)


def _unfinished(counts: StateCounts) -> bool:
    """Rows failed, or whose outcome is unknown: a campaign that ends so exits 1."""
    return bool(counts.failed or counts.unknown)
