"""``client.send()`` latency against raw ``httpx.AsyncClient.post`` of the same JSON.

Meant for a virtualenv made with ``pip install .`` and no extras (``nox -s latency`` makes
one), which is what a web app gets: one message per request, one request at a time, over
loopback TLS to the minimal provider (``_fast_server.py``, run by ``--server-python``, a
Python that has the server's packages). Interleaved rounds; the p50 and p90 of each.

It also watches for imports that fail while sending: a dependency the SDK or httpx/httpcore
looks for on every request and does not find costs a scan of ``sys.path`` each time (issue
13: sniffio, +0.2-0.35 ms a request).

    python benchmarks/latency.py [--sends 300] [--rounds 5] [--server-python PYTHON]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType

import anyio
import httpx
from _fast_server import serve  # benchmarks/_fast_server.py

from agile_async import AgileClient, Message

API_KEY = "benchmark-key"
DESTINATION = "+393471234567"
SENDER = "Shop"
TEXT = "Your order 1234 has shipped and will arrive tomorrow."


class MissedImports(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: sees every import no other finder could satisfy."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.missed.append(fullname)
        return None


def payload(i: int) -> bytes:
    """The JSON the SDK writes for one message (same keys, same options)."""
    return json.dumps(
        {
            "globalId": f"bench-{i:012d}",
            "maxIdLen": 64,
            "enableConcatenated": True,
            "enableUnicode": True,
            "enableDelivery": True,
            "simulation": False,
            "messages": [
                {"destinations": [DESTINATION], "sender": SENDER, "body": TEXT, "ids": [f"m{i}"]}
            ],
        },
        separators=(",", ":"),
    ).encode()


async def timed_calls(call: Callable[[int], Awaitable[object]], sends: int) -> list[float]:
    latencies = []
    for i in range(sends):
        start = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - start)
    return latencies


async def main(args: argparse.Namespace) -> None:
    missed = MissedImports()
    with serve(args.server_python) as (base_url, ca_path):
        context = ssl.create_default_context(cafile=ca_path)
        raw_http = httpx.AsyncClient(verify=context)
        sdk = AgileClient(
            api_key=API_KEY,
            base_url=base_url,
            transport=httpx.AsyncHTTPTransport(verify=context),
        )
        url = base_url + "sms/send"
        headers = {"X-Api-Key": API_KEY, "Content-Type": "application/json"}

        async def raw(i: int) -> object:
            response = await raw_http.post(url, content=payload(i), headers=headers)
            response.raise_for_status()
            return response.json()

        async def send(i: int) -> object:
            return await sdk.send(Message(destinations=DESTINATION, sender=SENDER, body=TEXT))

        samples: dict[str, list[float]] = {"raw httpx post": [], "client.send()": []}
        async with raw_http, sdk:
            await timed_calls(raw, 50)  # warm up: TLS, pools, caches
            await timed_calls(send, 50)
            sys.meta_path.append(missed)
            try:
                for _ in range(args.rounds):
                    samples["raw httpx post"] += await timed_calls(raw, args.sends)
                    samples["client.send()"] += await timed_calls(send, args.sends)
            finally:
                sys.meta_path.remove(missed)

    print(f"\nOne send at a time over loopback TLS (Python {sys.version.split()[0]})")
    print(f"{args.rounds} interleaved rounds of {args.sends} sends each")
    p50 = {}
    for name, latencies in samples.items():
        quantiles = statistics.quantiles(latencies, n=10)
        p50[name] = statistics.median(latencies)
        print(f"{name:16} p50 {p50[name] * 1e3:6.3f} ms   p90 {quantiles[8] * 1e3:6.3f} ms")
    ratio = p50["client.send()"] / p50["raw httpx post"]
    print(f"\nclient.send() / raw httpx post, p50: {ratio:.2f}x   (target <= 1.1x)")
    misses = sorted(set(missed.missed))
    print(f"imports that failed while sending: {', '.join(misses) if misses else 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sends", type=int, default=300, help="sends per mode per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--server-python", default=None, help="runs the provider")
    anyio.run(main, parser.parse_args())
