"""Waiting for what another process or thread does: the one polling rule of the tests.

Inside one event loop a test waits exactly, on what the code under test offers (an event,
``Hold.wait_held``, ``anyio.wait_all_tasks_blocked``). What a child process, redis-server or
the TLS server's thread changes offers nothing to wait on in the test's loop, so it is polled:
every :data:`POLL` seconds, up to a timeout that bounds a hang and measures nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

__all__ = ["GUARD", "POLL", "eventually", "wait_until"]

#: How often a condition is looked at again, in seconds.
POLL = 0.01
#: How long a condition may take before the test fails, in seconds: a hang's bound.
GUARD = 20.0


def wait_until(
    condition: Callable[[], bool], *, timeout: float = GUARD, what: str = "the condition"
) -> None:
    """Block until ``condition()`` is true (a synchronous test, or a thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)  # another process or thread makes it true: nothing to wait on


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` is true, letting the test's event loop run meanwhile.

    Bound it with ``anyio.fail_after``, as any wait in an async test.
    """
    # Another process or thread makes it true: no event in this loop to wait on.
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(POLL)
