"""How the CLI shows things to a person: rich tables and the sending progress bar.

Everything a script needs is also available as ``--json``; this module is only for eyes.
The progress bar is redrawn a few times a second from the engine's counters, never per
message, so it costs the campaign next to nothing.

Two rules keep what is printed usable:

- **Commands are never broken.** Off a terminal (a pipe, a file, a CI log) nothing is
  wrapped: rich would otherwise break lines at 80 columns. On a terminal prose wraps at its
  width, but a suggested command is printed as one line (:func:`print_command`), so copying
  it copies the command. Every command comes from :class:`CampaignHints` (or
  ``Settings.command``), built from the invocation: it works as printed.
- **Log records go through the display.** Warnings the SDK logs (a batcher stopping on an
  account error...) are rendered by :class:`Display`: above the live progress bar while one
  is on screen, on stderr otherwise; never written raw over the bar.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType

import attrs
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from agile_async.campaigns import (
    CONFIRMED_BY_REPORT,
    CampaignProgress,
    CampaignReport,
    CampaignResult,
    CampaignStatus,
    Recovery,
    StateCounts,
)
from agile_async.segments import SegmentCount, count_segments

from ._deliveries import SavedReportsSummary

__all__ = [
    "CampaignHints",
    "Display",
    "SendProgress",
    "print_command",
    "print_recovery",
    "print_report",
    "print_result",
    "print_saved_reports",
    "print_segments",
    "print_status",
]


#: The width of output that is not a terminal (a pipe, a file, a CI log) when COLUMNS does
#: not say: wide enough that no table folds a path or a reason, and no line is wrapped.
UNWRAPPED_WIDTH = 4096


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
        if not os.environ.get("COLUMNS"):
            console.width = UNWRAPPED_WIDTH
    return console


class Display:
    """Where one invocation's output goes: a console for stdout, one for stderr, and the
    log records of every library, rendered through them.

    While a live display (a progress bar) runs on a terminal, a log record is printed
    through that console, so rich puts it above the bar; otherwise it goes to stderr.
    """

    def __init__(self) -> None:
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)
        self._live = 0
        self._lock = threading.Lock()

    @contextmanager
    def live(self) -> Iterator[Console]:
        """Mark a live display on :attr:`out` for the block (log records go above it)."""
        with self._lock:
            self._live += 1
        try:
            yield self.out
        finally:
            with self._lock:
                self._live -= 1

    def log_console(self) -> Console:
        """The console a log record is printed on now."""
        return self.out if self._live and self.out.is_terminal else self.err

    @contextmanager
    def capture_logs(self, level: int = logging.WARNING) -> Iterator[None]:
        """Render log records of ``level`` and above through the display for the block
        (instead of Python's last-resort handler, which writes raw lines to stderr)."""
        handler = _DisplayLogHandler(self, level)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)


class _DisplayLogHandler(logging.Handler):
    """One log record, one line: ``warning: the message`` in the level's colour."""

    def __init__(self, display: Display, level: int) -> None:
        super().__init__(level)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = "red" if record.levelno >= logging.ERROR else "yellow"
            line = Text.assemble((f"{record.levelname.lower()}: ", style), self.format(record))
            self._display.log_console().print(line)
        except Exception:  # logging's own contract: never raise from emit
            self.handleError(record)


def print_command(console: Console, label: str, command: str) -> None:
    """``label`` then a command, on one line that is never wrapped (the terminal may fold
    it on screen, but a copy gets the whole command)."""
    console.print(Text.assemble(label, " ", (command, "bold")), soft_wrap=True)


def _absolute(path: str) -> str:
    return os.path.abspath(path)


@attrs.frozen
class CampaignHints:
    """The commands the CLI suggests about one campaign, as the operator would type them.

    ``command`` is ``Settings.command`` (the program as it was run, and its backend); the
    campaign's journal (an absolute path, so the command works from any directory) and its
    sandbox are carried over.
    """

    command: Callable[..., str]
    journal: str = attrs.field(converter=_absolute)
    sandbox: bool = False

    def resume(self, *extra: str) -> str:
        """Continue the campaign."""
        sandbox = ("--sandbox",) if self.sandbox else ()
        return self.command("campaign", "resume", "--journal", self.journal, *sandbox, *extra)

    def resend_unknown(self) -> str:
        """Send again the unknown messages still without a report an hour later."""
        return self.resume("--resend-unknown", "--silent-for", "1h")

    def export(self, *extra: str) -> str:
        """Write each recipient's outcome."""
        return self.command("campaign", "export", "--journal", self.journal, *extra)

    def status(self) -> str:
        """Show the campaign's counts."""
        return self.command("campaign", "status", "--journal", self.journal)


def _eur(value: Decimal | None, currency: str = "EUR") -> str:
    return "-" if value is None else f"{value:,} {currency}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def print_report(
    console: Console,
    report: CampaignReport,
    *,
    title: str = "Dry run",
    body: str | None = None,
    hints: CampaignHints | None = None,
) -> None:
    """The dry-run report: what will be sent, in how many parts, for how much.

    ``body`` (the template) and ``hints`` say where the characters forcing UCS-2 are.
    """
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("Recipients", f"{report.total:,}")
    table.add_row("To send now", f"{report.to_send:,}")
    if report.accepted:
        table.add_row("Already accepted", f"{report.accepted:,}")
    table.add_row("Failed (not sent)", f"{report.failed:,}")
    if report.unknown:
        table.add_row("Unknown (not re-sent)", f"{report.unknown:,}")
    table.add_row("SMS parts", f"{report.parts:,}")
    table.add_row("GSM-7 / UCS-2", f"{report.gsm7:,} / {report.ucs2:,}")
    if report.cost is not None:
        table.add_row("Estimated cost", _eur(report.cost, report.currency))
    if report.credit is not None:
        table.add_row("Credit", _eur(report.credit))
    if report.sufficient is False:
        table.add_row("[red]Missing credit[/]", f"[red]{_eur(report.shortfall)}[/]")
    console.print(table)
    if report.ucs2:
        _explain_ucs2(console, report.ucs2, body, hints)
    if report.problems:
        problems = Table(title="Rows that will not be sent", title_justify="left")
        problems.add_column("Record", justify="right")  # the reason names the file line
        problems.add_column("Destination")
        problems.add_column("Reason", overflow="fold")
        for row in report.problems:
            reason = "" if row.failure is None else str(row.failure)
            problems.add_row(str(row.seq), escape(row.destination), escape(reason))
        console.print(problems)
        if report.failed > len(report.problems):
            console.print(f"... and {report.failed - len(report.problems):,} more.")


def _explain_ucs2(
    console: Console, ucs2: int, body: str | None, hints: CampaignHints | None
) -> None:
    """Which characters force UCS-2: the template's own, named; else the rows' values."""
    need = f"{ucs2:,} messages need UCS-2 (70 characters a part): "
    forcing = count_segments(body).non_gsm_characters if body else ()
    if forcing:
        named = ", ".join(f"{c!r} U+{ord(c):04X}" for c in forcing)
        console.print(need + escape(f"the body has {named}, outside GSM-7."))
        return
    console.print(need + "a value in their row has a character outside GSM-7.")
    if hints is not None:
        print_command(console, "Each message's encoding:", hints.export("--state", "pending"))


def print_unknown_advice(console: Console, hints: CampaignHints | None) -> None:
    """What to do about unknown messages, wherever the CLI mentions them."""
    if hints is not None and hints.sandbox:
        console.print("Delivery reports confirm them: the sandbox's are recorded as they come.")
    else:
        console.print(
            "Delivery reports confirm them: `campaign reports` records the ones your webhook saved."
        )
    if hints is None:
        return
    print_command(
        console,
        "To send again those still without a report an hour after they went out (some "
        "recipients may then get the message twice):",
        hints.resend_unknown(),
    )


def print_recovery(
    console: Console, recovery: Recovery, hints: CampaignHints | None = None
) -> None:
    """What opening the journal found from an earlier, interrupted run."""
    if recovery.confirmed:
        console.print(
            f"{recovery.confirmed:,} messages in flight when the last run stopped are "
            f"accepted: {CONFIRMED_BY_REPORT}."
        )
    if recovery.became_unknown:
        console.print(
            f"[yellow]{recovery.became_unknown:,} messages were in flight when the last run "
            "stopped: their outcome is unknown, so they are not sent again.[/]"
        )
        print_unknown_advice(console, hints)
    if recovery.requeued:
        console.print(f"{recovery.requeued:,} unknown messages will be sent again.")
    if recovery.still_unknown:
        console.print(
            f"[yellow]{recovery.still_unknown:,} unknown messages went out too recently "
            "(--silent-for) and are not sent again yet:[/] a delivery report may still come."
        )


def _counts_table(counts: StateCounts, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("State")
    table.add_column("Messages", justify="right")
    rows: tuple[tuple[str, int, str], ...] = (("accepted", counts.accepted, "green"),)
    if counts.confirmed:
        rows += ((f"  of which {CONFIRMED_BY_REPORT}", counts.confirmed, "green"),)
    for name, value, style in (
        *rows,
        ("failed", counts.failed, "red"),
        ("unknown", counts.unknown, "yellow"),
        ("pending", counts.pending, ""),
        ("in flight", counts.in_flight, ""),
    ):
        if value or name in ("accepted", "failed", "unknown", "pending"):
            table.add_row(f"[{style}]{name}[/]" if style else name, f"{value:,}")
    table.add_row("[bold]total[/]", f"[bold]{counts.total:,}[/]")
    return table


def print_result(console: Console, result: CampaignResult, hints: CampaignHints) -> None:
    """The end of a run: the campaign's states, what the run did, what to do next."""
    counts = result.counts
    console.print(_counts_table(counts, "Campaign"))
    run = result.progress
    console.print(
        f"This run: {run.accepted:,} accepted, {run.failed:,} failed, {run.unknown:,} unknown "
        f"in {_duration(run.elapsed)} ({run.done / run.elapsed if run.elapsed else 0:,.0f}/s); "
        f"{run.parts:,} SMS parts; credit {_eur(run.credit)}."
    )
    if counts.deliveries:
        deliveries = counts.deliveries.items()
        reports = ", ".join(f"{n:,} {status.name.lower()}" for status, n in deliveries)
        console.print(f"Delivery reports so far: {reports}.")
    if result.stopped_by is not None:
        reason = escape(f"{type(result.stopped_by).__name__}: {result.stopped_by}")
        console.print(f"[red]Stopped early:[/] {reason}")
    elif result.interrupted:
        console.print("[yellow]Interrupted.[/]")
    if counts.pending or counts.in_flight:
        print_command(console, "Resume with:", hints.resume())
    if counts.unknown:
        console.print(f"[yellow]{counts.unknown:,} unknown.[/]")
        print_unknown_advice(console, hints)
    if counts.failed or counts.unknown:
        print_command(console, "Outcomes per recipient:", hints.export("-o", "outcomes.csv"))


def print_status(
    console: Console, status: CampaignStatus, hints: CampaignHints | None = None
) -> None:
    """A campaign's definition and counts, read from its journal (``hints``: the commands
    for it, when it has a journal file to resume)."""
    d = status.definition
    about = Table(show_header=False, title=f"Campaign {d.campaign_id}", title_justify="left")
    about.add_column(style="bold")
    about.add_column(overflow="fold")
    about.add_row("Journal", escape(status.journal))
    source = escape(d.source)
    read = f"{d.source_format}, {d.source_encoding}" + (
        f", delimiter {d.source_delimiter!r}" if d.source_delimiter else ""
    )
    about.add_row("Input", f"{source} ({escape(read)}, sha256 {d.source_sha256[:12]}…)")
    about.add_row("Created", f"{d.created_at:%Y-%m-%d %H:%M:%S} UTC")
    about.add_row("Sender", escape(d.sender))
    about.add_row("Body", escape(d.body))
    loading = status.loading
    about.add_row(
        "Loaded", "all rows" if loading.done else f"{loading.loaded_through:,} rows so far"
    )
    counts = status.counts
    about.add_row("SMS parts accepted", f"{counts.parts:,}")
    about.add_row("Latest credit", _eur(counts.credit))
    console.print(about)
    console.print(_counts_table(counts, "Messages"))
    if counts.deliveries:
        deliveries = Table(title="Delivery reports", title_justify="left")
        deliveries.add_column("Status")
        deliveries.add_column("Messages", justify="right")
        for delivery_status, count in counts.deliveries.items():
            deliveries.add_row(delivery_status.name.lower(), f"{count:,}")
        console.print(deliveries)
    if counts.confirmed:
        console.print(
            f"{counts.confirmed:,} accepted messages are {CONFIRMED_BY_REPORT}: their "
            "request's answer was lost, a report proved the provider took them."
        )
    if counts.unknown:
        console.print(f"[yellow]{counts.unknown:,} unknown.[/]")
        print_unknown_advice(console, hints)
    if counts.in_flight:
        console.print(
            f"{counts.in_flight:,} messages are in flight: if no run is active, their outcome "
            "is unknown and `campaign resume` will report them as such."
        )


def print_saved_reports(console: Console, summary: SavedReportsSummary) -> None:
    """What ``campaign reports`` recorded."""
    others = summary.reports - summary.matched
    console.print(
        f"Recorded {summary.matched:,} delivery reports for this campaign"
        + (f" ({others:,} were for other messages)" if others else "")
        + f"; {summary.confirmed:,} unknown messages are now accepted, {CONFIRMED_BY_REPORT}."
    )
    if summary.refused:
        console.print(f"[red]{summary.refused:,} lines are not delivery reports:[/]")
        for problem in summary.problems:
            console.print(f"  {escape(problem)}")


def print_segments(console: Console, count: SegmentCount, cost: Decimal | None) -> None:
    """What one text costs, and which characters force UCS-2."""
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("Encoding", count.encoding)
    table.add_row("Parts", str(count.segments))
    table.add_row("Size", f"{count.units} units, {count.per_part} per part, {count.remaining} left")
    if count.non_gsm_characters:
        forcing = ", ".join(f"{c!r} U+{ord(c):04X}" for c in count.non_gsm_characters)
        table.add_row("Forcing UCS-2", escape(forcing))
    if count.replacements:
        replaced = ", ".join(f"{a!r} → {b!r}" for a, b in count.replacements)
        table.add_row("Replaced", escape(replaced))
        table.add_row("Text to send", escape(count.text))
    if cost is not None:
        table.add_row("Cost", _eur(cost))
    console.print(table)


class _TwoLineProgress(Progress):
    """The bar on one line, the counters under it (they do not fit beside it in 80 columns)."""

    stats: Text = Text()

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self.stats


class SendProgress:
    """The live progress bar of a run: accepted, failed, unknown, parts, rate, ETA, credit."""

    def __init__(self, display: Display, total: int) -> None:
        self._display = display
        self._live = display.live()
        console = display.out
        self._progress = _TwoLineProgress(
            TextColumn("[bold]Sending"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[eta]}"),
            console=console,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task("send", total=total, eta="")

    def update(self, progress: CampaignProgress) -> None:
        """Show a snapshot (the engine calls this a few times a second)."""
        self._progress.stats = Text.from_markup(
            f"[green]{progress.accepted:,} accepted[/] · [red]{progress.failed:,} failed[/] · "
            f"[yellow]{progress.unknown:,} unknown[/] · {progress.parts:,} parts · "
            f"{progress.rate:,.0f}/s · credit {_eur(progress.credit)}"
        )
        self._progress.update(
            self._task,
            completed=progress.done,
            total=max(progress.total, 1),
            eta=f"ETA {_duration(progress.eta)}",
        )

    def __enter__(self) -> SendProgress:
        self._live.__enter__()
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._progress.stop()
        finally:
            self._live.__exit__(exc_type, exc, tb)
