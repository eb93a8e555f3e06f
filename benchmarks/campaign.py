"""A 1,000,000-row campaign against the sandbox: wall time, messages/s, peak memory.

The recipients file is generated in a temporary directory (every row has its own text, a
personalised campaign). The sandbox provider (``agile-sms sandbox``: FakeAgileServer over
real TLS) runs in its own process, so it has the second core and its log of accepted
messages does not count in this process's memory. The campaign runs through the public API
(:class:`agile_async.campaigns.Campaign`), exactly what ``agile-sms campaign run`` does.

    python benchmarks/campaign.py [--rows 1000000] [--server sandbox|fast] [--trio]

``--server fast`` uses the minimal provider of ``_fast_server.py`` instead (needs httptools
and uvloop), to show the campaign's own ceiling, and then sends as many messages with the
plain hand-written loop of issue 13 (``throughput.py``'s) to the same server, before and
after the campaign (the better of the two is the yardstick), so the send phase is measured
against it in the same run, in wall time and in CPU time per message. Memory: ``ru_maxrss``
(the peak), and the resident size sampled while sending, to show it stays flat.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
from _fast_server import serve  # benchmarks/_fast_server.py
from throughput import plain_loop  # benchmarks/throughput.py

from agile_async import AgileClient, BatchSettings
from agile_async.campaigns import Campaign, CampaignProgress

API_KEY = "test-api-key"
BODY = "Hi {name}, your code is {code}. Reply STOP to opt out."


def write_recipients(path: Path, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["destination", "name", "code"])
        for i in range(rows):
            writer.writerow([f"+39{3_000_000_000 + i}", f"Customer{i}", f"{i % 10_000:04d}"])


def rss_mib() -> float:
    """The current resident set size (Linux), in MiB."""
    with contextlib.suppress(OSError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return float("nan")


def peak_mib() -> float:
    """``ru_maxrss``: KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


@contextlib.contextmanager
def sandbox_server() -> Iterator[tuple[str, str]]:
    """``agile-sms sandbox`` in a subprocess; yields its base URL and CA file."""
    server = subprocess.Popen(
        [sys.executable, "-m", "agile_async._cli", "sandbox", "--credit", "100000000"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert server.stdout is not None
        found: dict[str, str] = {}
        for line in server.stdout:
            match = re.match(r"\s+(base URL|CA cert)\s+(\S+)", line)
            if match:
                found[match.group(1)] = match.group(2)
            if len(found) == 2:
                break
        if len(found) != 2:
            raise RuntimeError("the sandbox did not start")
        yield found["base URL"], found["CA cert"]
    finally:
        server.terminate()
        server.wait(10)


fast_server = serve  # the shared launcher, under the name redis_campaign.py imports


async def plain(base_url: str, ca: str, rows: int) -> tuple[float, float]:
    """Messages per second of the plain hand-written loop against the same server, and
    its CPU microseconds per message (this process, every thread)."""
    started, cpu = time.perf_counter(), time.process_time()
    await plain_loop(base_url, ssl.create_default_context(cafile=ca), rows)
    return rows / (time.perf_counter() - started), (time.process_time() - cpu) / rows * 1e6


async def campaign(base_url: str, ca: str, source: Path, journal: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    samples: list[float] = []

    def sample(progress: CampaignProgress) -> None:
        samples.append(rss_mib())

    started = time.perf_counter()
    async with await Campaign.create(journal, source, body=BODY, sender="Bench") as opened:
        await opened.load()
        figures["load s"] = time.perf_counter() - started
        mark = time.perf_counter()
        report = await opened.dry_run(prices=Decimal("0.045"))
        figures["dry run s"] = time.perf_counter() - mark
        transport = httpx.AsyncHTTPTransport(verify=ca)
        async with AgileClient(api_key=API_KEY, base_url=base_url, transport=transport) as client:
            mark, cpu = time.perf_counter(), time.process_time()
            result = await opened.run(
                client, settings=BatchSettings(), on_progress=sample, progress_interval=0.5
            )
            figures["send s"] = time.perf_counter() - mark
            send_cpu = time.process_time() - cpu
    figures["total s"] = time.perf_counter() - started
    figures["rows"] = report.total
    figures["accepted"] = result.counts.accepted
    figures["send msg/s"] = result.counts.accepted / figures["send s"]
    figures["send CPU us/msg"] = send_cpu / max(result.counts.accepted, 1) * 1e6
    figures["end-to-end msg/s"] = result.counts.accepted / figures["total s"]
    steady = samples[len(samples) // 10 :] or samples
    figures["RSS while sending MiB (min)"] = min(steady, default=float("nan"))
    figures["RSS while sending MiB (max)"] = max(steady, default=float("nan"))
    figures["peak RSS MiB (ru_maxrss)"] = peak_mib()
    figures["journal MiB"] = (
        sum(p.stat().st_size for p in journal.parent.glob(journal.name + "*")) / 2**20
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--server", choices=["sandbox", "fast"], default="sandbox")
    parser.add_argument("--trio", action="store_true", help="run the campaign on trio")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agile-bench-") as tmp:
        source, journal = Path(tmp, "recipients.csv"), Path(tmp, "campaign.journal")
        mark = time.perf_counter()
        write_recipients(source, args.rows)
        generated = time.perf_counter() - mark
        size = source.stat().st_size / 2**20
        print(f"{args.rows:,} rows, {size:.1f} MiB of CSV, generated in {generated:.1f} s")
        serve = sandbox_server if args.server == "sandbox" else fast_server
        with serve() as (base_url, ca):
            # The plain loop runs before and after the campaign and its best is kept: on a
            # shared machine the load moves between runs (the CPU figures move less).
            before = anyio.run(plain, base_url, ca, args.rows) if args.server == "fast" else None
            figures = anyio.run(
                campaign,
                base_url,
                ca,
                source,
                journal,
                backend="trio" if args.trio else "asyncio",
            )
            if before is not None:
                after = anyio.run(plain, base_url, ca, args.rows)
                loop_rate, loop_cpu = max(before[0], after[0]), min(before[1], after[1])
                figures["plain loop msg/s (same server, best of 2)"] = loop_rate
                figures["plain loop CPU us/msg"] = loop_cpu
                figures["send phase / plain loop"] = figures["send msg/s"] / loop_rate
                figures["plain loop CPU / send CPU"] = loop_cpu / figures["send CPU us/msg"]
    backend = "trio" if args.trio else "asyncio"
    print(f"\nCampaign against the {args.server} provider over TLS, on {backend}:")
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        shown = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
        print(f"  {name:<{width}}  {shown:>12}")


if __name__ == "__main__":
    main()
