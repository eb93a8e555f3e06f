"""The exit codes ``agile-sms`` promises, and the one table that maps errors to them.

Exit codes are part of the interface (scripts branch on them), so the campaigns guide's table is
written here once, as data, and every command ends through it: an error a command raises
(:func:`code_for`), and a run that ended by itself, early or not (:func:`run_code`), which
is read by the same table, so "an account error means 3" cannot hold in one place and not
in another.

This module imports neither click nor rich: the entry point uses it before it knows that
the ``cli`` extra is installed.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable

from agile_async import AgileError, APIError, ConfigurationError, ValidationError
from agile_async.campaigns import CampaignError
from agile_async.scaleout import CampaignStoppedError, ChunkFencedError, RedisUnavailableError

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs on 3.10
    from exceptiongroup import BaseExceptionGroup

__all__ = ["ERROR_CODES", "ExitCode", "code_for", "lone", "run_code"]


class ExitCode(enum.IntEnum):
    """The exit statuses of ``agile-sms`` (docs/guides/campaigns.md, *Exit codes*)."""

    #: done: everything accepted (or a dry run, status, export, a declined confirmation)
    OK = 0
    #: finished, but some messages failed or their outcome is unknown
    INCOMPLETE = 1
    #: usage or input error: bad options, unreadable file, wrong journal, no credentials
    USAGE = 2
    #: account error: wrong credentials, insufficient credit, IP not allowed
    ACCOUNT = 3
    #: stopped early by the provider or the network (retries exhausted): resume later
    STOPPED = 4
    #: Redis unavailable for longer than --redis-timeout: nothing failed; run it again
    REDIS_UNAVAILABLE = 5
    #: interrupted (Ctrl-C, or SIGTERM, handled the same way): the rest stays pending
    INTERRUPTED = 130
    #: the reader of the output went away (``| head``): nothing more is written
    BROKEN_PIPE = 141


def _account_error(error: BaseException) -> bool:
    """The SDK's own word on it (an :class:`~agile_async.APIError`'s ``scope``), not a list
    of classes here that a new account error would be missing from."""
    return isinstance(error, APIError) and error.scope == "account"


def _kind(*kinds: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda error: isinstance(error, kinds)


#: The campaigns guide's table for errors: the first row that matches gives the code. Order matters
#: where classes nest: a fenced worker or a fleet-wide stop is a CampaignError, but means
#: "stopped early" (4) or "account error" (3), not "wrong journal" (2).
ERROR_CODES: tuple[tuple[Callable[[BaseException], bool], ExitCode], ...] = (
    (_kind(KeyboardInterrupt), ExitCode.INTERRUPTED),
    (_kind(BrokenPipeError), ExitCode.BROKEN_PIPE),
    (_account_error, ExitCode.ACCOUNT),
    (_kind(CampaignStoppedError), ExitCode.ACCOUNT),  # stopped fleet-wide by an account error
    (_kind(ChunkFencedError), ExitCode.STOPPED),  # another worker took this one's chunks over
    (_kind(RedisUnavailableError), ExitCode.REDIS_UNAVAILABLE),
    (_kind(ValidationError, ConfigurationError, CampaignError), ExitCode.USAGE),
    (_kind(OSError), ExitCode.USAGE),  # a path that cannot be read or written
    (_kind(AgileError), ExitCode.STOPPED),  # the provider or the network, past the retries
)


def code_for(error: BaseException) -> ExitCode | None:
    """The exit code ``error`` means, or ``None`` for an error the table does not know (a
    bug: it is left to show its traceback)."""
    for matches, code in ERROR_CODES:
        if matches(error):
            return code
    return None


def run_code(
    stopped_by: BaseException | None, *, interrupted: bool = False, incomplete: bool = False
) -> ExitCode:
    """How a run that ended by itself exits: what stopped it early, by the same table as a
    raised error; else interrupted (130), or finished with rows failed or unknown (1)."""
    if stopped_by is not None:
        return code_for(stopped_by) or ExitCode.STOPPED
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.INCOMPLETE if incomplete else ExitCode.OK


def lone(error: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one, else ``error``: a task group
    reports a lone failure as a group, and the operator needs the failure."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
