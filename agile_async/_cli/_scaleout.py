"""``agile-sms campaign enqueue|work --redis URL``: one campaign, any number of worker processes.

```
agile-sms campaign enqueue --redis URL FILE --sender Shop --body "Hi {name}" --name spring
agile-sms campaign work --redis URL spring --rate 500 --burst 100     # on every host, N times
agile-sms campaign status --redis URL spring
agile-sms campaign export --redis URL spring --state unknown
agile-sms campaign clear-stop --redis URL spring      # after an account error, once fixed
agile-sms campaign requeue-held --redis URL spring    # chunks set aside, once understood
```

``enqueue`` records the campaign and streams its rows into Redis, at most
``--max-queued-chunks`` chunks ahead of the workers (so it runs as long as the campaign);
killed, it is simply started again. ``work`` sends until the campaign is finished or
stopped; ``--rate`` is the account's limit for *all* workers together (a
:class:`~agile_async.scaleout.RedisLimiter`).

A Redis outage shorter than ``--redis-timeout`` is waited out (one log line when Redis goes,
one when it is back); a longer one stops the command cleanly with exit code 5 and a
one-line error: nothing is recorded failed, and running it again carries on.

An account error stops every worker (sticky, with its code and reason, shown by
``status``) until ``clear-stop``. A chunk taken over from ``--max-chunk-takeovers``
workers that went silent while sending it is set aside: its pending rows are held back (shown by
``status``) until ``requeue-held``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from agile_async import BatchSettings, SendOptions
from agile_async.campaigns import Campaign
from agile_async.scaleout import (
    DEFAULT_MAX_CHUNK_TAKEOVERS,
    DEFAULT_REDIS_TIMEOUT,
    CampaignStoppedError,
    RedisLimiter,
    WorkResult,
    work,
)

from ._common import (
    Settings,
    echo_json,
    handle_errors,
    open_client,
    rate_limit,
    run_async,
)
from ._duration import duration_option
from ._exit import run_code
from ._fleet import open_redis_campaign
from ._options import input_options

__all__ = ["clear_stop_command", "enqueue_command", "requeue_held_command", "work_command"]


def _redis_timeout(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--redis-timeout SECONDS``: how long a Redis outage is waited out."""
    return click.option(
        "--redis-timeout",
        type=click.FloatRange(min=0),
        default=DEFAULT_REDIS_TIMEOUT,
        show_default=True,
        envvar="AGILE_REDIS_TIMEOUT",
        metavar="SECONDS",
        help="How long a Redis outage (restart, failover) is waited out before stopping "
        "(exit code 5; nothing is failed). Env AGILE_REDIS_TIMEOUT.",
    )(function)


def _redis_url(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--redis URL`` (required), env ``AGILE_REDIS_URL``."""
    return click.option(
        "--redis",
        "url",
        required=True,
        metavar="URL",
        envvar="AGILE_REDIS_URL",
        help="redis://host:port/db, unix:///path or redis+cluster://node:port "
        "(env AGILE_REDIS_URL).",
    )(function)


def _default_name(file: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", file.stem)[:64] or "campaign"


@click.command("enqueue")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--redis", "url", required=True, metavar="URL", envvar="AGILE_REDIS_URL",
              help="redis://host:port/db, unix:///path or redis+cluster://node:port "
                   "(env AGILE_REDIS_URL).")  # fmt: skip
@click.option("--name", help="The campaign's name in Redis (default: the file's name).")
@click.option("--sender", required=True, help="Sender alias (11 characters) or number.")
@click.option("--body", required=True, metavar="TEMPLATE",
              help="Message body; {column} is replaced by the row's value.")  # fmt: skip
@click.option("--format", "input_format", type=click.Choice(["csv", "jsonl"]),
              help="Input format (default: from the file name).")  # fmt: skip
@input_options
@click.option("--simulation", is_flag=True,
              help="The provider validates and charges nothing, delivers nothing.")  # fmt: skip
@click.option("--chunk-size", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="Rows per chunk (the unit a worker takes).")  # fmt: skip
@click.option("--max-queued-chunks", type=click.IntRange(1), default=64, show_default=True,
              help="Chunks kept in Redis ahead of the workers (memory stays flat).")  # fmt: skip
@_redis_timeout
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def enqueue_command(
    settings: Settings,
    /,
    file: Path,
    url: str,
    name: str | None,
    sender: str,
    body: str,
    input_format: str | None,
    encoding: str,
    delimiter: str | None,
    simulation: bool,
    chunk_size: int,
    max_queued_chunks: int,
    redis_timeout: float,
    as_json: bool,
) -> None:
    """Record a campaign in Redis and stream FILE's rows to its workers (resumable)."""
    campaign_name = name or _default_name(file)

    async def enqueue() -> tuple[int, bool]:
        async with open_redis_campaign(
            url,
            campaign_name,
            chunk_size=chunk_size,
            max_queued_chunks=max_queued_chunks,
            redis_timeout=redis_timeout,
        ) as journal:
            opened = await Campaign.create(
                journal,
                file,
                body=body,
                sender=sender,
                options=SendOptions(simulation=simulation),
                format=input_format,  # type: ignore[arg-type]
                encoding=encoding,
                delimiter=delimiter,
                exist_ok=True,
            )
            async with opened:
                state = await opened.load()
            return state.loaded_through, state.done

    rows, done = run_async(settings, enqueue)
    if as_json:
        echo_json({"campaign": campaign_name, "rows": rows, "done": done})
    else:
        settings.console().print(f"Campaign {campaign_name}: {rows:,} rows enqueued.")


@click.command("work")
@click.argument("name", metavar="CAMPAIGN")
@click.option("--redis", "url", required=True, metavar="URL", envvar="AGILE_REDIS_URL",
              help="redis://host:port/db, unix:///path or redis+cluster://node:port "
                   "(env AGILE_REDIS_URL).")  # fmt: skip
@click.option("--rate", type=float, help="The account's limit, for all workers together: "
              "tokens per second (shared in Redis).")  # fmt: skip
@click.option("--per", type=click.Choice(["messages", "parts", "requests"]),
              default="messages", help="What a token pays for.")  # fmt: skip
@click.option("--burst", type=float, help="Tokens spendable at once.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), help="Messages per request.")
@click.option("--max-in-flight", type=click.IntRange(1, 64), help="Requests under way at once.")
@click.option("--lease", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds a silent worker keeps its chunks (beyond any request).")  # fmt: skip
@click.option("--worker", "worker_name", help="This worker's name (default: random).")
@click.option("--resend-unknown", is_flag=True,
              help="First send again the messages whose outcome is unknown (some recipients "
              "may get them twice). One worker is enough.")  # fmt: skip
@click.option("--silent-for", callback=duration_option, metavar="DURATION",
              help="With --resend-unknown: only the messages unknown at least this long, with "
              "no delivery report since (30s, 10m, 2h, 1d).")  # fmt: skip
@click.option("--max-chunk-takeovers", type=click.IntRange(min=0),
              default=DEFAULT_MAX_CHUNK_TAKEOVERS, show_default=True, metavar="N",
              help="Set a chunk aside once N workers went silent while sending it (it "
                   "may be what kills them): its pending rows are held back until "
                   "requeue-held. 0: never.")  # fmt: skip
@_redis_timeout
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def work_command(
    settings: Settings,
    /,
    name: str,
    url: str,
    rate: float | None,
    per: str,
    burst: float | None,
    batch_size: int | None,
    max_in_flight: int | None,
    lease: float,
    worker_name: str | None,
    resend_unknown: bool,
    silent_for: timedelta | None,
    max_chunk_takeovers: int,
    redis_timeout: float,
    as_json: bool,
) -> None:
    """Send CAMPAIGN's chunks until it is finished or stopped (run any number of these).

    Messages whose outcome is unknown (their worker died with their request in flight) are
    not sent again unless --resend-unknown (--silent-for limits it to those unknown that
    long). A delivery report for an unknown message confirms it: it counts as accepted.
    """
    if silent_for is not None and not resend_unknown:
        raise click.UsageError("--silent-for limits --resend-unknown: give both")
    resend: dict[str, Any] = {"resend_unknown": resend_unknown, "silent_for": silent_for}
    limit = rate_limit(rate, per, burst)
    values: dict[str, Any] = {}
    if batch_size is not None:
        values["max_messages"] = batch_size
    if max_in_flight is not None:
        values["max_in_flight"] = max_in_flight
    batch = BatchSettings(**values)

    async def run() -> WorkResult:
        async with (
            open_client(sandbox=False) as (client, _),
            open_redis_campaign(
                url,
                name,
                lease=lease,
                worker=worker_name,
                max_chunk_takeovers=max_chunk_takeovers,
                redis_timeout=redis_timeout,
            ) as journal,
        ):
            assert client is not None
            if limit is None:
                return await work(client, journal, settings=batch, **resend)
            async with RedisLimiter(
                journal.redis, limit, account=client, redis_timeout=redis_timeout
            ) as limiter:
                limiter.check_settings(batch)
                return await work(client, journal, settings=batch, limiter=limiter, **resend)

    result = run_async(settings, run)
    counts = result.counts
    summary = {
        "campaign": name,
        "sent_by_this_worker": {
            "accepted": result.progress.accepted,
            "failed": result.progress.failed,
            "unknown": result.progress.unknown,
        },
        "campaign_counts": {
            "pending": counts.pending,
            "in_flight": counts.in_flight,
            "accepted": counts.accepted,
            "failed": counts.failed,
            "unknown": counts.unknown,
        },
        "became_unknown": result.became_unknown,
        "held_back": result.held_back,
        "stopped_by": str(result.stopped_by) if result.stopped_by is not None else None,
        "stopped_code": result.stopped_code,
    }
    if as_json:
        echo_json(summary)
    else:
        settings.console().print(
            f"Worker done: accepted {result.progress.accepted:,}, failed "
            f"{result.progress.failed:,}, unknown {result.progress.unknown:,}. Campaign: "
            f"{counts.accepted:,} accepted, {counts.failed:,} failed, {counts.unknown:,} "
            f"unknown, {counts.pending:,} pending.",
            markup=False,
        )
        if result.held_back:
            settings.errors().print(
                f"Held back: {result.held_back:,} pending rows of chunk(s) this worker set "
                "aside (taken over too often); see "
                + settings.command("campaign", "status", "--redis", "URL", name),
                markup=False,
            )
        if result.stopped_by is not None:
            settings.errors().print(f"Stopped: {result.stopped_by}", markup=False)
        if result.stopped_code is not None:
            settings.errors().print(
                f"Campaign {name} is stopped for every worker (account error "
                f"{result.stopped_code}): see "
                + settings.command("campaign", "status", "--redis", "URL", name)
                + "; once the cause is fixed, "
                + settings.command("campaign", "clear-stop", "--redis", "URL", name),
                markup=False,
            )
    stopped_by = result.stopped_by
    if result.stopped_code is not None:  # the fleet is stopped: an account error, here or not
        stopped_by = CampaignStoppedError(f"campaign {name} is stopped", result.stopped_code)
    raise SystemExit(int(run_code(stopped_by)))


@click.command("clear-stop")
@click.argument("name", metavar="CAMPAIGN")
@_redis_url
@_redis_timeout
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def clear_stop_command(
    settings: Settings, /, name: str, url: str, redis_timeout: float, as_json: bool
) -> None:
    """Lift CAMPAIGN's fleet-wide stop (after an account error, once its cause is fixed).

    Workers started from now on send again; the ones that stopped are not restarted."""

    async def clear() -> Any:
        async with open_redis_campaign(url, name, redis_timeout=redis_timeout) as journal:
            if await journal.definition() is None:
                raise click.UsageError(f"Redis holds no campaign named {name!r}")
            return await journal.clear_stop()

    cleared = run_async(settings, clear)
    if as_json:
        echo_json(
            {
                "campaign": name,
                "cleared": None
                if cleared is None
                else {"code": cleared.code, "reason": cleared.reason},
            }
        )
    elif cleared is None:
        settings.console().print(f"Campaign {name} was not stopped.", markup=False)
    else:
        settings.console().print(
            f"Campaign {name}: the stop for account error {cleared.code} is cleared; "
            "start workers again.",
            markup=False,
        )


@click.command("requeue-held")
@click.argument("name", metavar="CAMPAIGN")
@_redis_url
@click.option("--chunk", "chunks", type=click.IntRange(min=1), multiple=True, metavar="N",
              help="Only this chunk (repeatable; default: every chunk set aside).")  # fmt: skip
@_redis_timeout
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def requeue_held_command(
    settings: Settings,
    /,
    name: str,
    url: str,
    chunks: tuple[int, ...],
    redis_timeout: float,
    as_json: bool,
) -> None:
    """Give CAMPAIGN's chunks set aside (taken over too often) back to the workers.

    Only their pending rows are sent; rows that became unknown stay unknown."""

    async def requeue() -> tuple[int, int]:
        async with open_redis_campaign(url, name, redis_timeout=redis_timeout) as journal:
            if await journal.definition() is None:
                raise click.UsageError(f"Redis holds no campaign named {name!r}")
            result: tuple[int, int] = await journal.requeue_held(chunks)
            return result

    count, rows = run_async(settings, requeue)
    if as_json:
        echo_json({"campaign": name, "chunks": count, "rows": rows})
    else:
        settings.console().print(
            f"Campaign {name}: {count:,} chunk(s), {rows:,} pending rows re-queued.",
            markup=False,
        )
