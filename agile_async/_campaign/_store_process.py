"""The SQLite journal's store in a process of its own: ``SQLiteJournal.open(path, process=True)``.

Why a process. The journal's calls are on the path of every request (a request goes out
only once its rows are durably marked in flight), and in a worker thread they share the
interpreter's lock with the event loop, which is busy building and sending requests: the
two threads then run on about one core between them, and every journal call waits its turn
(measured in ``docs/performance.md``: a million-row campaign sends about half again as fast
with the store here). A child process has its own interpreter, on the other core.

```
parent (event loop)                         child: python -c <boot> <the parent's sys.path>
  StoreProcess.start  -- ("open", path...)  -->  _Store(path, create, exclusive)
  StoreProcess.call   -- (method, args)     -->  getattr(store, method)(*args)
                      <-- (True, value) | (False, exception)
  StoreProcess.close  -- ("close", ())      -->  store.close(); exit
```

Every message is a 4-byte length and a pickle, over the child's stdin and stdout (both
sides are this module: nothing else writes them; the child's own ``print`` goes to stderr).
One exchange at a time (the journal's lock); an exchange runs to its end even when its
caller is cancelled, as a call in a worker thread does, so the two sides never disagree
about whose turn it is.

The child's life is tied to its parent's: it ignores SIGINT and SIGTERM (the terminal's
Ctrl-C, or a service manager's stop, goes to the parent, which still records the outcomes
of the requests under way through it), runs in a session (POSIX) or process group
(Windows) of its own, and ends when the parent closes the journal or dies (its stdin then
ends; SQLite keeps what was committed). If the child dies first, every call after that
raises :class:`JournalError` naming its exit status: a run then stops like on any journal
failure, and rows left in flight are recovered as unknown.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from .._exceptions import JournalError

__all__ = ["StoreProcess", "serve"]

#: A message's length, before the message.
_HEADER = struct.Struct("<I")
#: The child's first lines: the parent's import path, then this module.
_BOOT = (
    "import sys; sys.path[:] = sys.argv[1:]; "
    "from agile_async._campaign._store_process import serve; serve()"
)
#: How long a closed child may take to exit before it is killed.
_EXIT_GRACE = 10.0
#: How long to wait for a dead child's exit status, to name it.
_STATUS_WAIT = 1.0


class StoreProcess:
    """The parent's side: a child process serving one journal's ``_Store``.

    Calls are not serialized here: the caller (:class:`SQLiteJournal`) holds its lock
    around each one.
    """

    def __init__(self, process: Process, path: Path) -> None:
        if process.stdin is None or process.stdout is None:  # pragma: no cover - PIPE given
            raise JournalError("the journal's process has no pipes")
        self.path = path
        self._process = process
        self._requests = process.stdin
        self._replies = BufferedByteReceiveStream(process.stdout)
        self._gone: str | None = None  # why calls fail, once the child is gone

    @classmethod
    async def start(cls, path: Path, *, create: bool, exclusive: bool) -> StoreProcess:
        """Start the child and open the journal there; its refusal (no journal, in use...)
        is raised here, as the thread's would be."""
        try:
            process = await anyio.open_process(
                [sys.executable, "-c", _BOOT, *sys.path],
                stderr=None,  # a crash's traceback, if any, goes where the parent's would
                start_new_session=sys.platform != "win32",
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        except OSError as error:  # no interpreter at sys.executable (a frozen application)
            raise JournalError(f"the journal's process could not start: {error}") from error
        host = cls(process, path)
        try:
            await host._exchange("open", (path, create, exclusive))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await host._end()
            raise
        return host

    async def call(self, method: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``method`` (a ``_Store`` method) with ``args`` on the child's store: its
        value, or its exception. The child is told the method's name."""
        return await self._exchange(method.__name__, args)

    async def _exchange(self, method: str, args: tuple[Any, ...]) -> Any:
        if self._gone is not None:
            raise JournalError(self._gone)
        message = pickle.dumps((method, args), protocol=pickle.HIGHEST_PROTOCOL)
        with anyio.CancelScope(shield=True):  # a reply left unread would be the next one's
            try:
                await self._requests.send(_HEADER.pack(len(message)) + message)
                header = await self._replies.receive_exactly(_HEADER.size)
                reply = await self._replies.receive_exactly(_HEADER.unpack(header)[0])
            except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.IncompleteRead):
                self._gone = await self._exit_status()
                raise JournalError(self._gone) from None
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        return value

    async def close(self) -> None:
        """Close the store (committing nothing more), then let the child exit."""
        with anyio.CancelScope(shield=True):
            try:
                if self._gone is None:
                    await self._exchange("close", ())
            finally:
                self._gone = "the journal is closed"
                await self._end()

    async def _end(self) -> None:
        """Close the child's stdin (it exits on that) and wait for it; kill one that hangs."""
        await self._requests.aclose()
        with anyio.move_on_after(_EXIT_GRACE):
            await self._process.wait()
        if self._process.returncode is None:
            self._process.kill()
        await self._process.aclose()

    async def _exit_status(self) -> str:
        with anyio.move_on_after(_STATUS_WAIT):
            await self._process.wait()
        ended = _status(self._process)
        return f"the journal's process for {self.path} ended unexpectedly ({ended})"


def _status(process: Process) -> str:
    """How a child ended, as an operator reads it: ``killed by SIGKILL``, ``exit status 1``."""
    code = process.returncode
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# -- the child ------------------------------------------------------------------------------


def serve() -> None:
    """The child's loop: one store, one call at a time, until closed or orphaned."""
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(_stray_output(), sys.stdout.fileno())  # a stray print cannot break a reply
    from ._sqlite import _Store  # here: the parent imports this module, and _sqlite imports it

    store: Any = None
    try:
        while (request := _read(requests)) is not None:
            method, args = request
            try:
                if method == "open":
                    path, create, exclusive = args
                    store = _Store(path, create=create, exclusive=exclusive)
                    value = None
                elif method == "close":
                    store, closing = None, store
                    value = closing.close()
                else:
                    value = getattr(store, method)(*args)
            except Exception as error:
                _write(replies, (False, _portable(error)))
            else:
                _write(replies, (True, value))
            if method == "close":
                return
    finally:
        if store is not None:  # orphaned: the parent died or closed the pipe
            store.close()


def _stray_output() -> int:
    """Where the child's own output goes: the parent's stderr, or nowhere when there is none
    (a windowed application on Windows)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return os.open(os.devnull, os.O_WRONLY)


def _read(stream: IO[bytes]) -> tuple[str, tuple[Any, ...]] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    request: tuple[str, tuple[Any, ...]] = pickle.loads(body)
    return request


def _write(stream: IO[bytes], reply: tuple[bool, object]) -> None:
    message = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(message)) + message)
    stream.flush()


def _portable(error: Exception) -> Exception:
    """The exception itself when it crosses a pipe intact (a :class:`JournalError`, an
    ``sqlite3`` error); a :class:`JournalError` naming it when it does not."""
    try:
        copy: Exception = pickle.loads(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return JournalError(f"{type(error).__name__}: {error}")
    return copy
