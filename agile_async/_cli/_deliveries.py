"""Delivery reports from the sandbox into the journal: what a webhook receiver does for a
real account (``agile_async.webhooks``), in process.

The sandbox's provider posts each report to a callback on its own server thread; the
callback only queues it (thread-safe), and a task in the CLI's event loop records what has
queued a few times a second, in one journal write each time.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping
from typing import Any

import anyio

from ..campaigns import Campaign
from ..webhooks import parse_delivery_reports

__all__ = ["SandboxReports"]


class SandboxReports:
    """Delivery reports the sandbox posted, waiting to be recorded."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Mapping[str, Any]] = queue.SimpleQueue()

    def callback(self, report: Mapping[str, Any]) -> None:
        """The sandbox's delivery callback (any thread)."""
        self._queue.put(report)

    async def drain(self, campaign: Campaign) -> int:
        """Record every queued report; how many matched a message of the campaign."""
        bodies: list[Mapping[str, Any]] = []
        while True:
            try:
                bodies.append(self._queue.get_nowait())
            except queue.Empty:
                break
        reports = [report for body in bodies for report in parse_delivery_reports(body)]
        return await campaign.record_deliveries(reports)

    async def settle(self, campaign: Campaign, fake: Any, *, grace: float = 5.0) -> None:
        """After a run: post what the sandbox still holds and record it, until two rounds
        in a row bring nothing new (the provider queues a request's reports only after
        answering it, so the last ones may trail the run by a moment)."""
        quiet = 0
        with anyio.move_on_after(grace):
            while quiet < 2:
                await fake.flush_reports()
                quiet = 0 if await self.drain(campaign) else quiet + 1
                await anyio.sleep(0.05)

    async def pump(self, campaign: Campaign, interval: float = 0.25) -> None:
        """Record reports as they come, until cancelled."""
        while True:
            await self.drain(campaign)
            await anyio.sleep(interval)
