"""``work``: one worker of a Redis campaign, sending chunks through a local Batcher.

Any number of these run against one campaign, on any hosts. Each drives the campaign
engine's own :class:`~agile_async._campaign._runner.Runner` (the same code that runs an
SQLite campaign) with a :class:`RedisCampaign` as its journal: ``before_send`` claims the
rows (fenced by the chunk's token), ``on_result`` settles them. A task renews the worker's
leases every ``lease / 3``. A worker that sees an account error stops the whole fleet.

A Redis outage shorter than the campaign's ``redis_timeout`` is waited out by every call
(the limiter's too); a longer one stops the worker cleanly, and :func:`work` raises
:class:`RedisUnavailableError`: rows not sent stay pending, none is recorded failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._campaign._journal import StateCounts
from .._campaign._report import CampaignProgress
from .._campaign._runner import Runner, check_run
from .._concurrency import task_group
from .._config import BatchSettings, batch_settings
from .._exceptions import APIError, JournalError, RedisUnavailableError
from .._ratelimit import RateLimiter
from ._campaign import RedisCampaign

if TYPE_CHECKING:
    from .._client import AgileClient

__all__ = ["WorkResult", "work"]

log = logging.getLogger("agile_async")


@attrs.frozen(kw_only=True)
class WorkResult:
    """How one worker's run ended.

    Attributes:
        progress: this worker's own counters (what it sent and recorded).
        counts: the whole campaign's rows by state, when the worker ended.
        stopped_by: the error that stopped this worker early (an account error, a fence,
            a network failure that outlasted the retries), or ``None``. (A Redis outage
            longer than the tolerance is raised instead: Redis cannot be asked for
            :attr:`counts` then.)
        stopped_code: the fleet-wide account error code, when the campaign is stopped.
        became_unknown: rows found in flight in chunks this worker reclaimed.
        held_back: pending rows of the chunks this worker set aside (taken over too
            often: see ``RedisCampaign(max_chunk_takeovers=...)``); they stay pending.
    """

    progress: CampaignProgress
    counts: StateCounts
    stopped_by: BaseException | None
    stopped_code: int | None
    became_unknown: int
    held_back: int = 0

    @property
    def finished(self) -> bool:
        """Whether every row of the campaign has an outcome."""
        return self.counts.pending == 0 and self.counts.in_flight == 0


async def work(
    client: AgileClient,
    campaign: RedisCampaign,
    *,
    settings: BatchSettings | None = None,
    limiter: RateLimiter | None = None,
    on_progress: Callable[[CampaignProgress], object] | None = None,
    progress_interval: float = 1.0,
    resend_unknown: bool = False,
    silent_for: timedelta | None = None,
    **overrides: Any,
) -> WorkResult:
    """Take chunks of ``campaign`` and send them until it is finished or stopped.

    Args:
        client: the client to send with (the campaign's account).
        campaign: the campaign, as this worker sees it (one per worker process).
        settings: the Batcher's settings; their ``options`` are replaced by the campaign's.
        limiter: the account's shared limit (a :class:`RedisLimiter`), so N workers
            together stay within it.
        on_progress: called with this worker's :class:`CampaignProgress` every
            ``progress_interval`` seconds and once at the end (it may be async).
        resend_unknown: send the campaign's unknown rows again first (with
            ``silent_for``, only those unknown at least that long: a delivery report may
            still confirm the others); see :meth:`RedisCampaign.recover`.
        silent_for: with ``resend_unknown``, how long a row must have been unknown.
        overrides: any :class:`~agile_async.BatchSettings` field, on top of ``settings``.

    How long Redis may be away is the campaign's ``redis_timeout`` (and the limiter's own,
    for a :class:`RedisLimiter`): an outage shorter than that is waited out, and sending
    resumes by itself.

    Returns:
        How the run ended; raises nothing for errors that stopped it (see ``stopped_by``).

    Raises:
        RedisUnavailableError: Redis stayed away longer than the tolerance. The worker
            stopped cleanly first: rows not sent stay pending (none is recorded failed),
            rows in flight become unknown only if their outcome could not be recorded.
    """
    check_run(client, None, on_progress, progress_interval)
    batch = batch_settings(settings, overrides)  # checked now; the options come below
    definition = await campaign.definition()
    if definition is None:
        raise JournalError(f"Redis holds no campaign named {campaign.name!r}")
    await campaign.recover(resend_unknown=resend_unknown, silent_for=silent_for)
    batch = attrs.evolve(batch, options=definition.options)
    counts = await campaign.counts()
    runner = Runner(campaign, definition.sender, counts.pending, counts.credit)
    async with task_group() as tasks:
        tasks.start_soon(_keep_leases, campaign, runner)
        await runner.run(
            client,
            batch,
            limiter=limiter,
            limit=None,
            on_progress=on_progress,
            interval=progress_interval,
        )
        tasks.cancel_scope.cancel()
    stopped_by = runner.stopped_by
    unavailable = _redis_unavailable(stopped_by)
    if unavailable is not None:
        raise unavailable
    if (
        isinstance(stopped_by, APIError)
        and stopped_by.scope == "account"
        and stopped_by.code is not None
    ):
        code = await campaign.stop_fleet(stopped_by.code, str(stopped_by))
        log.warning(
            "agile_async campaign %s: stopped for every worker (code %d)", campaign.name, code
        )
    return WorkResult(
        progress=runner.progress(),
        counts=await campaign.counts(),
        stopped_by=stopped_by,
        stopped_code=campaign.stopped_code,
        became_unknown=campaign.became_unknown,
        held_back=campaign.held_back,
    )


async def _keep_leases(campaign: RedisCampaign, runner: Runner) -> None:
    """Renew the worker's chunks every lease/3; a lost chunk stops the worker."""
    while True:
        await anyio.sleep(campaign.lease / 3)
        try:
            lost = await campaign.heartbeat()
        except RedisUnavailableError as error:  # away for longer than the tolerance
            runner.stop(error)
            return
        except Exception as error:  # the next claim will tell, or fence
            log.warning("agile_async campaign %s: heartbeat failed: %r", campaign.name, error)
            continue
        if lost:
            runner.stop(
                JournalError(
                    f"worker {campaign.worker} lost chunk(s) {lost} of campaign "
                    f"{campaign.name!r} to another worker: stopping"
                )
            )


def _redis_unavailable(error: BaseException | None) -> RedisUnavailableError | None:
    """The Redis outage behind ``error``, if any (the batcher and the runner wrap it)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, RedisUnavailableError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
