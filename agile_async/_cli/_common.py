"""What every command shares: exit codes, errors, credentials, the sandbox, the event loop.

Exit codes are part of the interface (scripts branch on them):

    0    done: everything accepted (or a dry run, status, export, a declined confirmation)
    1    finished, but some messages failed or their outcome is unknown
    2    usage or input error: bad options, unreadable file, wrong journal, no credentials
    3    account error: wrong credentials, insufficient credit, IP not allowed
    4    stopped early by the provider or the network (retries exhausted): resume later
    5    Redis unavailable for longer than --redis-timeout: nothing failed; run it again
    130  interrupted (Ctrl-C): what was not sent stays pending; resume later

Secrets: the API key or password comes from the environment or a hidden prompt, goes
straight into the client, and is never printed, logged or put in an error message.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import attrs
import click
from rich.console import Console
from rich.markup import escape

from .._client import AgileClient
from .._concurrency import unwrap
from .._exceptions import AgileError, APIError, ConfigurationError, ValidationError
from .._ratelimit import RateLimit
from .._redact import redact_urls
from ..campaigns import CampaignError
from ..scaleout import RedisUnavailableError
from ..segments import PriceList
from ._deliveries import SandboxReports

__all__ = [
    "ExitCode",
    "Sandbox",
    "Settings",
    "confirm",
    "echo_json",
    "fail",
    "handle_errors",
    "open_client",
    "parse_prices",
    "rate_limit",
    "run_async",
]

P = ParamSpec("P")
T = TypeVar("T")

#: What the sandbox's fake provider starts with.
SANDBOX_CREDIT = Decimal("500")


class ExitCode(enum.IntEnum):
    """The exit statuses ``agile-sms`` promises (see the module docstring)."""

    OK = 0
    INCOMPLETE = 1
    USAGE = 2
    ACCOUNT = 3
    STOPPED = 4
    REDIS_UNAVAILABLE = 5
    INTERRUPTED = 130


@attrs.define
class Settings:
    """Options of the root command, handed to every subcommand."""

    backend: str = "asyncio"

    def console(self) -> Console:
        """Human output (stdout). No colours or live display unless it is a terminal."""
        return Console(highlight=False)

    def errors(self) -> Console:
        """Messages about problems (stderr)."""
        return Console(stderr=True, highlight=False)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr (any URL in it without its userinfo) and exit with
    ``code``."""
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    errors.print(f"[bold red]Error:[/] {escape(redact_urls(message))}")
    raise SystemExit(int(code))


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code an error means."""
    if isinstance(error, APIError) and error.scope == "account":
        return ExitCode.ACCOUNT
    if isinstance(error, RedisUnavailableError):
        return ExitCode.REDIS_UNAVAILABLE
    if isinstance(error, (ValidationError, ConfigurationError, CampaignError)):
        return ExitCode.USAGE
    return ExitCode.STOPPED


def handle_errors(function: Callable[P, T]) -> Callable[P, T]:
    """Turn the SDK's errors into a clear message and the matching exit code.

    Errors raised inside task groups arrive wrapped in exception groups: the single error
    inside is what the user needs to see.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except BaseException as caught:
            error = unwrap(caught)
            if isinstance(error, AgileError):
                fail(_describe(error), exit_code_for(error))
            if isinstance(error, OSError):  # a path that cannot be read or written
                fail(str(error), ExitCode.USAGE)
            if isinstance(error, KeyboardInterrupt):
                Console(stderr=True).print("Interrupted.")
                raise SystemExit(int(ExitCode.INTERRUPTED)) from None
            if error is not caught and isinstance(error, (SystemExit, click.ClickException)):
                raise error from None
            raise

    return wrapper


def _describe(error: BaseException) -> str:
    name = type(error).__name__
    code = getattr(error, "code", None)
    where = f" (code {code})" if isinstance(code, int) else ""
    return f"{name}{where}: {error}"


def run_async(settings: Settings, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function on the chosen backend (asyncio or trio)."""
    return anyio.run(functools.partial(function, *args), backend=settings.backend)


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


def confirm(question: str, *, default: bool) -> bool:
    """Ask on stderr; no answer (end of input) is no."""
    try:
        return bool(click.confirm(question, default=default, err=True))
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
    from ..testing import FakeAgileServer

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
