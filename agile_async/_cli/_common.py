"""What every command shares: errors, credentials, the sandbox, the event loop.

Exit codes are part of the interface (scripts branch on them); they and the table that maps
errors to them live in :mod:`._exit`. :func:`handle_errors` is where a command's error
meets that table.

Output: what a person reads goes through one :class:`~._render.Display` (stdout, and stderr
for problems and log records). Commands the CLI suggests are built in one place,
:meth:`Settings.command`, from the invocation itself (the program as it was run, the
backend), and are never wrapped, so each works when pasted as printed.

Secrets: the API key or password comes from the environment or a hidden prompt, goes
straight into the client, and is never printed, logged or put in an error message. Errors
are shown as the SDK made them: it leaves the userinfo out of every URL it puts in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import attrs
import click
from rich.console import Console
from rich.markup import escape

from agile_async import AgileClient, AgileError, RateLimit
from agile_async.segments import PriceList

from ._deliveries import SandboxReports
from ._exit import ExitCode, code_for, lone
from ._render import Display

__all__ = [
    "Sandbox",
    "Settings",
    "confirm",
    "echo_json",
    "fail",
    "handle_errors",
    "invoked_program",
    "open_client",
    "parse_prices",
    "rate_limit",
    "require_backend",
    "run_async",
    "terminate_like_interrupt",
]

P = ParamSpec("P")
T = TypeVar("T")

#: What the sandbox's fake provider starts with.
SANDBOX_CREDIT = Decimal("500")


@attrs.define
class Settings:
    """Options of the root command, handed to every subcommand.

    Attributes:
        backend: the event loop (``--backend``).
        program: the command as the operator ran it (``agile-sms``, or ``python3 -m
            agile_async``), ready for a shell: the head of every command a hint prints.
        display: where output goes (one stdout and one stderr console per invocation).
    """

    backend: str = "asyncio"
    program: str = "agile-sms"
    display: Display = attrs.field(factory=Display)

    def console(self) -> Console:
        """Human output (stdout). No colours or live display unless it is a terminal."""
        return self.display.out

    def errors(self) -> Console:
        """Messages about problems (stderr)."""
        return self.display.err

    def command(self, *words: str) -> str:
        """A command line that works when pasted as printed: this program, this backend
        (``--backend`` is an option of the root command, so it comes first), then
        ``words``, each quoted for a POSIX shell."""
        backend = ("--backend", self.backend) if self.backend != "asyncio" else ()
        return " ".join([self.program, shlex.join([*backend, *words])])


def invoked_program(argv0: str | None = None) -> str:
    """How the operator ran ``agile-sms``, as a shell command that runs it again.

    ``python3 -m agile_async`` when it was run as a module (the interpreter by its short
    name when that name finds the same interpreter on the PATH, else by its path); the
    script's name when the PATH finds it, else its path.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name == "__main__.py":
        return f"{_runnable(sys.executable)} -m agile_async"
    return _runnable(argv0) if argv0 else "agile-sms"


def _runnable(path: str) -> str:
    """``path`` by its bare name when the PATH finds that very file, else by its path."""
    name = Path(path).name
    found = shutil.which(name)
    if found is not None and os.path.realpath(found) == os.path.realpath(path):
        return shlex.quote(name)
    return shlex.quote(os.path.abspath(path))


def require_backend(backend: str) -> None:
    """Exit 2 with one line naming the extra when the chosen event loop is not installed.

    Checked before anything runs, so ``--backend trio`` without trio is an install hint,
    not a traceback from deep inside anyio.
    """
    if backend != "trio":
        return
    try:
        import trio  # noqa: F401
    except ImportError:
        fail("--backend trio needs the 'trio' extra (trio is not installed): "
             "pip install 'agile-async[trio]'")  # fmt: skip


def terminate_like_interrupt() -> None:
    """Handle SIGTERM as Ctrl-C: it raises SIGINT, so whatever answers Ctrl-C (a campaign's
    clean stop, the sandbox's shutdown, the event loop's cancellation) answers it too, and
    temporary files (the sandbox's certificates) are removed. Main thread only."""

    def interrupt(signum: int, frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    with contextlib.suppress(ValueError, OSError, AttributeError):  # not the main thread
        signal.signal(signal.SIGTERM, interrupt)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    errors.print(f"[bold red]Error:[/] {escape(message)}")
    raise SystemExit(int(code))


def handle_errors(function: Callable[P, T]) -> Callable[P, T]:
    """End a command that raised through the one table of exit codes (:mod:`._exit`), with
    a clear message; an error the table does not know is a bug, shown with its traceback.

    Errors raised inside task groups arrive wrapped in exception groups: the single error
    inside is what the user needs to see.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except BaseException as caught:
            error = lone(caught)
            if error is not caught and isinstance(error, (SystemExit, click.ClickException)):
                raise error from None
            code = code_for(error)
            if code is None:
                raise
            if code is ExitCode.BROKEN_PIPE:  # `agile-sms ... | head`: not an error
                _silence_stdout()
            elif code is ExitCode.INTERRUPTED:
                Console(stderr=True).print("Interrupted.")
            else:
                fail(_describe(error), code)
            raise SystemExit(int(code)) from None

    return wrapper


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so flushing it at exit is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


def _describe(error: BaseException) -> str:
    if not isinstance(error, AgileError):  # an OSError: its own words name the path
        return str(error)
    name = type(error).__name__
    code = getattr(error, "code", None)
    where = f" (code {code})" if isinstance(code, int) else ""
    return f"{name}{where}: {error}"


def run_async(settings: Settings, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function on the chosen backend (asyncio or trio).

    Ctrl-C (or SIGTERM) arrives as ``KeyboardInterrupt`` on every backend and Python. On
    asyncio the runner answers SIGINT by cancelling the main task, and turns that
    cancellation back into ``KeyboardInterrupt`` only where tasks can be uncancelled
    (Python 3.11+): on 3.10 the ``CancelledError`` itself escapes. Nothing else cancels
    the main task from outside, so it means the same here.
    """
    try:
        return anyio.run(functools.partial(function, *args), backend=settings.backend)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


def echo_json(data: object) -> None:
    """Print JSON for scripts (stdout, one document)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# -- credentials and clients -------------------------------------------------------------------


def _has_credentials() -> bool:
    env = os.environ
    return bool(
        env.get("AGILE_API_KEY") or (env.get("AGILE_USERNAME") and env.get("AGILE_PASSWORD"))
    )


def interactive() -> bool:
    """Whether a person can answer prompts (stdin is a terminal)."""
    return sys.stdin.isatty()


def confirm(question: str) -> bool:
    """Ask on stderr. Every question the CLI asks is about spending money or sending again,
    so the default (Enter, end of input) is always no: ``[y/N]``."""
    try:
        return bool(click.confirm(question, default=False, err=True))
    except click.Abort:
        return False


def _prompt_api_key() -> str:
    """Ask for the API key without echoing it."""
    try:
        key = click.prompt("AgileTelecom API key", hide_input=True, err=True)
    except click.Abort:
        fail("no API key given")
    return str(key).strip()


@attrs.frozen
class Sandbox:
    """Where the sandbox provider runs, and the delivery reports it posts."""

    base_url: str
    ca_cert_path: str
    api_key: str
    fake: Any
    reports: SandboxReports


@asynccontextmanager
async def open_client(
    *, sandbox: bool, required: bool = True, fake_options: dict[str, Any] | None = None
) -> AsyncIterator[tuple[AgileClient | None, Sandbox | None]]:
    """A client for the account (environment or prompt), or for the built-in sandbox.

    With ``required=False`` and no credentials available, yields ``(None, None)`` (a dry
    run can go on without the account's credit).
    """
    if sandbox:
        async with _sandbox(fake_options or {}) as (client, where):
            yield client, where
        return
    api_key: str | None = None
    if not _has_credentials():
        if not interactive():
            if not required:
                yield None, None
                return
            fail(
                "no credentials: set AGILE_API_KEY (or AGILE_USERNAME and AGILE_PASSWORD), "
                "run in a terminal to be asked, or use --sandbox"
            )
        api_key = await anyio.to_thread.run_sync(_prompt_api_key)
    client = AgileClient(api_key=api_key) if api_key else AgileClient()
    async with client:
        yield client, None


@asynccontextmanager
async def _sandbox(options: dict[str, Any]) -> AsyncIterator[tuple[AgileClient, Sandbox]]:
    try:
        import trustme  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        fail(f"the sandbox needs the 'server' extra ({error.name} is missing): "
             "pip install 'agile-async[server]'")  # fmt: skip
    from agile_async.testing import FakeAgileServer

    reports = SandboxReports()
    fake = FakeAgileServer(
        **{"credit": SANDBOX_CREDIT, "raw_delivery_callback": reports.callback, **options}
    )
    async with fake.serve_tls() as server:
        where = Sandbox(
            server.base_url, str(server.ca_cert_path), fake.api_key or "", fake, reports
        )
        async with server.client() as client:
            yield client, where


# -- option parsing ----------------------------------------------------------------------------


def parse_prices(values: tuple[str, ...]) -> PriceList | None:
    """``--price 0.045`` (every destination) and ``--price 39=0.04`` (by prefix)."""
    if not values:
        return None
    prefixes: dict[str, str] = {}
    default: str | None = None
    for value in values:
        prefix, _, price = value.rpartition("=")
        try:
            Decimal(price)
        except InvalidOperation:
            raise click.BadParameter(f"{value!r} is not a price", param_hint="--price") from None
        if prefix:
            prefixes[prefix] = price
        else:
            default = price
    try:
        return PriceList(prefixes, default=default)
    except (TypeError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--price") from None


def rate_limit(rate: float | None, per: str, burst: float | None) -> RateLimit | None:
    """The rate limit from ``--rate/--per/--burst`` (``None`` without ``--rate``)."""
    if rate is None:
        return None
    try:
        return RateLimit(rate=rate, per=per, burst=burst)  # type: ignore[arg-type]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--rate") from None
