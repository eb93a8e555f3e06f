"""The single-shot commands: ``send``, ``credit``, ``segments`` and ``sandbox``."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import click

from agile_async import Message, SendOptions, SendResult, ValidationError
from agile_async.segments import body_problems, count_segments

from ._common import (
    SANDBOX_CREDIT,
    Settings,
    echo_json,
    fail,
    handle_errors,
    open_client,
    run_async,
)
from ._render import print_segments

__all__ = ["credit", "sandbox", "segments", "send"]


@click.command()
@click.option(
    "--to",
    "destinations",
    multiple=True,
    required=True,
    metavar="NUMBER",
    help="Destination in international format, e.g. +393471234567 (repeatable).",
)
@click.option("--sender", required=True, help="Sender alias (11 characters) or number.")
@click.option("--body", required=True, help="The text.")
@click.option("--simulation", is_flag=True, help="Validated by the provider, not delivered.")
@click.option("--sandbox", is_flag=True, help="Send to the built-in fake provider.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")  # fmt: skip
@click.pass_obj
@handle_errors
def send(
    settings: Settings,
    destinations: tuple[str, ...],
    sender: str,
    body: str,
    simulation: bool,
    sandbox: bool,
    as_json: bool,
) -> None:
    """Send one SMS (to one or more destinations) and print the provider's answer."""
    message = Message(destinations=destinations, sender=sender, body=body)

    async def go() -> SendResult:
        async with open_client(sandbox=sandbox) as (client, _):
            assert client is not None
            return await client.send(message, options=SendOptions(simulation=simulation))

    result = run_async(settings, go)
    if as_json:
        echo_json(
            {
                "global_id": result.global_id,
                "ids": list(result.ids),
                "processed_messages": result.processed_messages,
                "processed_sms_parts": result.processed_sms_parts,
                "estimated_sms_parts": result.estimated_sms_parts,
                "credit": str(result.credit),
            }
        )
        return
    settings.console().print(
        f"Accepted: request {result.global_id}, {result.processed_messages} message(s), "
        f"{result.processed_sms_parts} SMS part(s); ids {', '.join(result.ids)}; "
        f"credit {result.credit} EUR."
    )


@click.command()
@click.option("--sandbox", is_flag=True, help="Ask the built-in fake provider.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def credit(settings: Settings, sandbox: bool, as_json: bool) -> None:
    """Show the account's remaining credit."""

    async def go() -> Decimal:
        async with open_client(sandbox=sandbox) as (client, _):
            assert client is not None
            return await client.credit()

    amount = run_async(settings, go)
    if as_json:
        echo_json({"credit": str(amount), "currency": "EUR"})
    else:
        settings.console().print(f"Credit: {amount} EUR")


@click.command()
@click.argument("text")
@click.option("--no-unicode", is_flag=True, help="As with enableUnicode=false (GSM-7 only).")
@click.option("--smart-encoding", is_flag=True, help="Replace look-alike characters "
              "(curly quotes, dashes, odd spaces, …) with GSM ones first; shows the text to "
              "send.")  # fmt: skip
@click.option("--price", type=str, metavar="EUR", help="Price of one SMS part, for the cost.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def segments(
    settings: Settings,
    text: str,
    no_unicode: bool,
    smart_encoding: bool,
    price: str | None,
    as_json: bool,
) -> None:
    """Count the SMS parts of TEXT, its encoding, and the characters forcing UCS-2.

    Exits 2 (after the count) when the text cannot be sent as it is: empty, more parts
    than concatenation allows (255), or, with --no-unicode, characters outside GSM-7.
    """
    unicode = not no_unicode
    try:
        count = count_segments(text, unicode=unicode, smart_encoding=smart_encoding)
    except ValidationError:  # --no-unicode and characters outside GSM-7
        fail(_outside_gsm(text, smart_encoding))
    problems = _send_refuses(count.text, unicode)
    cost: Decimal | None = None
    if price is not None:
        try:
            unit = Decimal(price)
        except ArithmeticError:
            raise click.BadParameter(f"{price!r} is not a price", param_hint="--price") from None
        if not unit.is_finite() or unit < 0:
            raise click.BadParameter(f"{price!r} is not a price", param_hint="--price")
        cost = unit * count.segments
    if as_json:
        echo_json(
            {
                "encoding": count.encoding,
                "segments": count.segments,
                "units": count.units,
                "per_part": count.per_part,
                "remaining": count.remaining,
                "non_gsm_characters": [
                    {"character": c, "codepoint": f"U+{ord(c):04X}"}
                    for c in count.non_gsm_characters
                ],
                "cost": None if cost is None else str(cost),
                "replacements": [{"character": a, "replacement": b} for a, b in count.replacements],
                "text": count.text,
                "sendable": not problems,
                "problems": problems,
            }
        )
    else:
        print_segments(settings.console(), count, cost)
    if problems:
        fail("the text cannot be sent: " + "; ".join(problems))


def _send_refuses(text: str, unicode: bool) -> list[str]:
    """What ``send`` would refuse about ``text`` as a body: empty, or what the SDK's public
    body rule (:func:`agile_async.segments.body_problems`, the one the client checks a
    message with) finds: more parts than concatenation numbers, characters outside GSM-7."""
    if not text:
        return ["must not be empty"]
    return [problem.message for problem in body_problems(text, unicode=unicode)]


def _outside_gsm(text: str, smart_encoding: bool) -> str:
    """Why --no-unicode refuses ``text``, in the CLI's own terms (its flags, not the
    Python API's arguments): which characters, and which of them --smart-encoding fixes."""
    outside = count_segments(text, smart_encoding=smart_encoding).non_gsm_characters
    message = f"--no-unicode, but the text has characters outside GSM-7: {_named(outside)}"
    if not smart_encoding:
        fixable = [a for a, _ in count_segments(text, smart_encoding=True).replacements]
        if fixable:
            message += f"; --smart-encoding replaces {_named(fixable)} with GSM ones"
    return message


def _named(characters: Sequence[str], limit: int = 10) -> str:
    named = ", ".join(f"{c!r} U+{ord(c):04X}" for c in characters[:limit])
    more = len(characters) - limit
    return named + (f" and {more} more" if more > 0 else "")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Port (default: free).")
@click.option(
    "--credit",
    "starting_credit",
    default=str(SANDBOX_CREDIT),
    show_default=True,
    help="The fake account's credit, EUR.",
)
@click.option("--duration", type=float, help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines: where it serves and "
              "its credentials when ready, the counts when stopped.")  # fmt: skip
@click.pass_obj
@handle_errors
def sandbox(
    settings: Settings,
    host: str,
    port: int,
    starting_credit: str,
    duration: float | None,
    as_json: bool,
) -> None:
    """Serve the fake provider over HTTPS on loopback, for programs in any language.

    Prints the base URL, the CA certificate to trust and the test credentials (API key and
    Basic); point your program at them (or paste the printed exports) and send as to the real
    provider. The documentation's own test values (API key api-value, Basic user / pass) work
    too and only simulate. Ctrl-C or SIGTERM stops it (exit 0) and removes its temporary
    certificates.
    """  # fmt: skip
    try:
        from agile_async.testing import (
            SIMULATION_API_KEY,
            SIMULATION_PASSWORD,
            SIMULATION_USERNAME,
            FakeAgileServer,
        )

        fake = FakeAgileServer(credit=Decimal(starting_credit))
        server: Any = fake.serve_tls(host=host, port=port)
        server.start()
    except ImportError as error:
        fail(f"the sandbox needs the 'server' extra: pip install 'agile-async[server]' ({error})")
    console = settings.console()
    try:
        # Every value printed here is the sandbox's own, made up for it: none is a secret,
        # and nothing is read from the environment (a real AGILE_API_KEY is never shown).
        username, password = fake.username or "", fake.password or ""
        if as_json:
            _json_line({
                "base_url": server.base_url,
                "ca_cert": str(server.ca_cert_path),
                "api_key": fake.api_key,
                "username": username,
                "password": password,
                "simulation": {"api_key": SIMULATION_API_KEY, "username": SIMULATION_USERNAME,
                               "password": SIMULATION_PASSWORD},
                "environment": dict(server.environment()),
            })  # fmt: skip
        lines = [
            f"  base URL  {server.base_url}",
            f"  CA cert   {server.ca_cert_path}",
            f"  API key   {fake.api_key}  (X-Api-Key)",
            f"  Basic     {username} / {password}  (Authorization: Basic)",
            f"  Simulate  API key {SIMULATION_API_KEY}, or Basic {SIMULATION_USERNAME} / "
            f"{SIMULATION_PASSWORD} (the provider's documented test values:",
            "            checked and answered, never charged or delivered)",
            "These are test credentials, not secrets. In a shell:",
            *(
                f"  export {name}={shlex.quote(value)}"
                for name, value in server.environment().items()
            ),
            "  # or Basic auth instead of the API key:",
            f"  #   unset AGILE_API_KEY; export AGILE_USERNAME={shlex.quote(username)} "
            f"AGILE_PASSWORD={shlex.quote(password)}",
        ]
        if not as_json:
            console.print("[bold]agile-sms sandbox[/]: a fake AgileTelecom provider over TLS.")
            for line in lines:
                console.print(line, markup=False, highlight=False, soft_wrap=True)
            console.print("Serving until Ctrl-C." if duration is None else f"Serving {duration} s.")
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            left = 0.2 if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(0.2, left)))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM once serving (even mid-print): the stop
        pass
    finally:
        server.stop()
    if as_json:
        _json_line({"stopped": {"requests": len(fake.requests), "accepted": len(fake.accepted),
                                "simulated": len(fake.simulated)}})  # fmt: skip
        return
    console.print(
        f"Stopped: {len(fake.requests)} requests, {len(fake.accepted)} messages accepted, "
        f"{len(fake.simulated)} simulated."
    )


def _json_line(data: object) -> None:
    """One JSON document on one line (``click.echo`` flushes it): a script reads it while
    the sandbox serves."""
    click.echo(json.dumps(data, ensure_ascii=False))
