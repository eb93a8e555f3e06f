"""Send an SMS, check the credit, and show a typed error: the README's main job.

With no account configured (no ``AGILE_API_KEY`` or ``AGILE_USERNAME``/``AGILE_PASSWORD``),
it runs against the built-in sandbox: ``FakeAgileServer`` served over real TLS on loopback,
so every byte goes through the same HTTPS path as with the real provider. With an account, it
talks to AgileTelecom with ``simulation=True`` (validated, not delivered) unless ``--live``.

    python examples/quickstart.py [--to +393471234567] [--live] [--trio]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from agile_async import AgileClient, APIError, Message, SendOptions
from agile_async.testing import FakeAgileServer


@asynccontextmanager
async def open_client() -> AsyncIterator[tuple[AgileClient, str]]:
    """A client for the configured account, or for a sandbox over TLS when there is none."""
    if os.environ.get("AGILE_API_KEY") or os.environ.get("AGILE_USERNAME"):
        async with AgileClient() as client:
            yield client, "your AgileTelecom account"
        return
    fake = FakeAgileServer(forbidden_prefixes=["+999"])
    async with fake.serve_tls() as sandbox, sandbox.client() as client:
        yield client, f"the sandbox at {sandbox.base_url} (CA: {sandbox.ca_cert_path})"


async def main(destination: str, live: bool) -> None:
    async with open_client() as (client, where):
        print(f"Sending through {where}")
        options = SendOptions(simulation=not live and "sandbox" not in where)
        print(f"Credit before: {await client.credit()} EUR")

        result = await client.send(
            Message(
                destinations=destination,
                sender="AgileAsync",
                body="Hello from agile-async! Attenzione: domani 38°C.",
            ),
            options=options,
        )
        print(
            f"Accepted request {result.global_id}: {result.processed_messages} message(s), "
            f"{result.processed_sms_parts} SMS part(s), message ids {list(result.ids)}"
        )
        print(f"Credit after: {result.credit} EUR")

        try:
            await client.send(
                Message(destinations="+99912345678", sender="AgileAsync", body="Nope"),
                options=options,
            )
        except APIError as error:
            print(f"Typed error, as expected: {type(error).__name__} (code {error.code}): {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--to", default="+393471234567", help="destination, international format")
    parser.add_argument("--live", action="store_true", help="really deliver (with an account)")
    parser.add_argument("--trio", action="store_true", help="run on trio instead of asyncio")
    args = parser.parse_args()
    if args.trio:
        try:
            import trio  # noqa: F401  (anyio runs on it; it is the 'trio' extra)
        except ImportError:
            print("--trio needs the 'trio' extra: pip install 'agile-async[trio]'", file=sys.stderr)
            sys.exit(2)
    anyio.run(main, args.to, args.live, backend="trio" if args.trio else "asyncio")
