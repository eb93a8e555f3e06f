"""A campaign kept in Redis, as the CLI opens and shows it: for ``campaign enqueue|work``
and the Redis side of ``campaign status|export|reports`` (``--redis URL CAMPAIGN``).

Both command modules read a Redis campaign; this is where they do, so neither imports the
other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agile_async.scaleout import RedisCampaign, open_redis

from ._common import Settings

__all__ = ["fleet_controls", "open_redis_campaign", "print_fleet_controls"]


@asynccontextmanager
async def open_redis_campaign(url: str, name: str, **options: Any) -> AsyncIterator[RedisCampaign]:
    """A :class:`~agile_async.scaleout.RedisCampaign` on a client opened for ``url``."""
    async with open_redis(url) as redis:
        yield RedisCampaign(redis, name, **options)


async def fleet_controls(journal: RedisCampaign) -> dict[str, Any]:
    """What an operator of a Redis campaign acts on: the fleet-wide stop in force and the
    chunks set aside, as plain data (``status --json`` prints it)."""
    stop = await journal.fleet_stop()
    held = await journal.held_chunks()
    return {
        "fleet_stop": None
        if stop is None
        else {
            "code": stop.code,
            "reason": stop.reason,
            "at": stop.at.isoformat() if stop.at else None,
        },
        "held_back": [
            {
                "chunk": chunk.chunk,
                "rows": chunk.rows,
                "takeovers": chunk.takeovers,
                "reason": chunk.reason,
                "at": chunk.at.isoformat() if chunk.at else None,
            }
            for chunk in held
        ],
    }


def print_fleet_controls(settings: Settings, name: str, controls: dict[str, Any]) -> None:
    """The stop and the chunks set aside, each with the command that acts on it."""
    console = settings.console()
    stop = controls["fleet_stop"]
    if stop is not None:
        when = f" at {stop['at']}" if stop["at"] else ""
        console.print(
            f"Stopped for every worker{when}: account error {stop['code']}"
            + (f" ({stop['reason']})" if stop["reason"] else "")
            + ". Once its cause is fixed: "
            + settings.command("campaign", "clear-stop", "--redis", "URL", name),
            markup=False,
            style="yellow",
        )
    held = controls["held_back"]
    if held:
        rows = sum(chunk["rows"] for chunk in held)
        console.print(
            f"Held back: {rows:,} pending rows in {len(held)} chunk(s) set aside, never sent:",
            markup=False,
            style="yellow",
        )
        for chunk in held:
            console.print(
                f"  chunk {chunk['chunk']}: {chunk['rows']:,} rows, {chunk['reason']}",
                markup=False,
            )
        console.print(
            "Once the cause is known: "
            + settings.command("campaign", "requeue-held", "--redis", "URL", name),
            markup=False,
        )
