"""Structured-concurrency helpers shared by every part that owns tasks.

A task group (anyio, like trio and asyncio's ``TaskGroup``) wraps whatever leaves it in an
:class:`ExceptionGroup`, even a single :class:`~agile_async.ValidationError` raised by the
caller's own code inside ``async with client.batcher():``. Callers of an SDK write
``except ValidationError:``, not ``except*``: so every public async context manager that
owns tasks opens them with :func:`task_group`, which lets a *lone* exception out as itself.
Several exceptions at once are a real group and stay one.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import anyio
import anyio.abc

T = TypeVar("T")

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs on 3.10
    from exceptiongroup import BaseExceptionGroup

__all__ = ["call_maybe_async", "lone_errors_as_themselves", "running_trio", "task_group", "unwrap"]


@asynccontextmanager
async def task_group() -> AsyncGenerator[anyio.abc.TaskGroup, None]:
    """``anyio.create_task_group()``, but a lone exception leaves as itself.

    The exception keeps its own traceback, ``__cause__`` and ``__context__``: the group
    that carried it is not chained on, so a traceback shows what happened, not the plumbing.
    """
    with lone_errors_as_themselves():
        async with anyio.create_task_group() as group:
            yield group


@contextmanager
def lone_errors_as_themselves() -> Iterator[None]:
    """Let a lone exception out of an exception group (raised by a task group in the block,
    ours or a library's) as itself; a group of several stays a group."""
    try:
        yield
    except BaseExceptionGroup as group_error:
        lone = unwrap(group_error)
        if lone is group_error:
            raise
        context, suppress = lone.__context__, lone.__suppress_context__
        try:
            raise lone  # its own chain is restored below, without the group
        finally:
            lone.__context__, lone.__suppress_context__ = context, suppress
            del lone, group_error


def unwrap(error: BaseException) -> BaseException:
    """The one exception inside (nested) exception groups, or ``error`` itself when it is not
    a group of exactly one."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def running_trio() -> bool:
    """Whether the current thread runs trio (trio is never imported to find out): for the
    few places that must use a backend's own primitive (a system task, a client library)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


async def call_maybe_async(callback: Callable[[T], object], value: T) -> None:
    """Call a user's callback, which may be a plain function or a coroutine function, and
    await its result when it is awaitable: the one rule for every hook the SDK calls."""
    result = callback(value)
    if inspect.isawaitable(result):
        await result
