"""A 1,000,000-row campaign against the sandbox: wall time, messages/s, peak memory.

The recipients file is generated in a temporary directory (every row has its own text, a
personalised campaign). The sandbox provider (``agile-sms sandbox``: FakeAgileServer over
real TLS) runs in its own process, so it has the second core and its log of accepted
messages does not count in this process's memory. The campaign runs through the public API
(:class:`agile_async.campaigns.Campaign`), exactly what ``agile-sms campaign run`` does.

    python benchmarks/campaign.py [--rows 1000000] [--server sandbox|fast] [--trio] [--rounds N]
                                  [--journal process|thread]

``--server fast`` uses the minimal provider of ``_fast_server.py`` instead (needs httptools
and uvloop), to show the campaign's own ceiling, and then sends as many messages with the
plain hand-written loop of issue 13 (``throughput.py``'s) to the same server, before and
after the campaign (the better of the two is the yardstick; on trio with ``--trio``, as a
trio user would write it), so the send phase is measured against it in the same run, in
wall time and in CPU time per message. Memory: ``ru_maxrss`` (the peak), and the resident
size sampled while sending, to show it stays flat.

``--journal`` says where the SQLite journal's work runs while sending: in a process of its
own (the default here, and what ``agile-sms campaign run`` does; its CPU time is counted
with this process's), or in a worker thread (``Campaign.open``'s default).

``--rounds N`` sends the loaded journal N times, each from a fresh copy of it, with the plain
loop run between them (each round measured against the better of the runs just before and
just after it), and prints each round and the medians: this host's speed moves between runs
more than the ratio does, so one round can mislead either way.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import resource
import shutil
import ssl
import statistics
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


async def prepare(source: Path, journal: Path) -> dict[str, float]:
    """Load the recipients into a new journal and dry-run it (closed again after)."""
    figures: dict[str, float] = {}
    started = time.perf_counter()
    async with await Campaign.create(journal, source, body=BODY, sender="Bench") as opened:
        await opened.load()
        figures["load s"] = time.perf_counter() - started
        mark = time.perf_counter()
        report = await opened.dry_run(prices=Decimal("0.045"))
        figures["dry run s"] = time.perf_counter() - mark
    figures["rows"] = report.total
    return figures


async def send(base_url: str, ca: str, journal: Path, journal_process: bool) -> dict[str, float]:
    """Open a loaded journal and send it all: the send phase's figures.

    With ``journal_process``, the CPU figure counts the journal's process too (all of its
    life: it is reaped when the campaign closes, and only then do its times show)."""
    figures: dict[str, float] = {}
    samples: list[float] = []

    def sample(progress: CampaignProgress) -> None:
        samples.append(rss_mib())

    reaped = children_cpu()
    async with await Campaign.open(journal, journal_process=journal_process) as opened:
        transport = httpx.AsyncHTTPTransport(verify=ca)
        async with AgileClient(api_key=API_KEY, base_url=base_url, transport=transport) as client:
            mark, cpu = time.perf_counter(), time.process_time()
            result = await opened.run(
                client, settings=BatchSettings(), on_progress=sample, progress_interval=0.5
            )
            figures["send s"] = time.perf_counter() - mark
            send_cpu = time.process_time() - cpu
    journal_cpu = children_cpu() - reaped
    accepted = max(result.counts.accepted, 1)
    figures["accepted"] = result.counts.accepted
    figures["send msg/s"] = result.counts.accepted / figures["send s"]
    figures["send CPU us/msg"] = (send_cpu + journal_cpu) / accepted * 1e6
    if journal_process:
        figures["of which the journal's process"] = journal_cpu / accepted * 1e6
    steady = samples[len(samples) // 10 :] or samples
    figures["RSS while sending MiB (min)"] = min(steady, default=float("nan"))
    figures["RSS while sending MiB (max)"] = max(steady, default=float("nan"))
    figures["peak RSS MiB (ru_maxrss)"] = peak_mib()
    figures["journal MiB"] = journal_mib(journal)
    return figures


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (and been waited for)."""
    times = os.times()
    return times.children_user + times.children_system


def journal_mib(journal: Path) -> float:
    """The journal's size with its ``-wal`` and ``-shm`` files."""
    return sum(p.stat().st_size for p in journal.parent.glob(journal.name + "*")) / 2**20


def copy_journal(loaded: Path, to: Path) -> None:
    """A fresh copy of a closed journal for one round (its ``-wal``, if any, with it)."""
    for suffix in ("", "-wal"):
        if Path(f"{loaded}{suffix}").exists():
            shutil.copyfile(f"{loaded}{suffix}", f"{to}{suffix}")


def remove_journal(journal: Path) -> None:
    for path in journal.parent.glob(journal.name + "*"):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--server", choices=["sandbox", "fast"], default="sandbox")
    parser.add_argument("--trio", action="store_true", help="run the campaign on trio")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="send phases of the loaded journal, each from a fresh copy, alternated with the "
        "plain loop (--server fast); their median ratio is printed too",
    )
    parser.add_argument(
        "--journal",
        choices=["process", "thread"],
        default="process",
        help="where the SQLite journal's work runs: a process of its own (what `agile-sms "
        "campaign run` does), or a worker thread (Campaign.open's default)",
    )
    args = parser.parse_args()
    backend = "trio" if args.trio else "asyncio"
    journal_process = args.journal == "process"
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="agile-bench-") as tmp:
        source, loaded = Path(tmp, "recipients.csv"), Path(tmp, "campaign.journal")
        mark = time.perf_counter()
        write_recipients(source, args.rows)
        generated = time.perf_counter() - mark
        size = source.stat().st_size / 2**20
        print(f"{args.rows:,} rows, {size:.1f} MiB of CSV, generated in {generated:.1f} s")
        serve = sandbox_server if args.server == "sandbox" else fast_server
        with serve() as (base_url, ca):
            figures = anyio.run(prepare, source, loaded, backend=backend)
            # The plain loop runs before and after each send phase, and the better of the two
            # is that round's yardstick: on a shared machine the load moves between runs
            # (the CPU figures move less).
            before = (
                anyio.run(plain, base_url, ca, args.rows, backend=backend)
                if args.server == "fast"
                else None
            )
            for number in range(1, args.rounds + 1):
                journal = Path(tmp, f"round{number}.journal")
                copy_journal(loaded, journal)
                sent = anyio.run(send, base_url, ca, journal, journal_process, backend=backend)
                remove_journal(journal)
                if before is not None:
                    after = anyio.run(plain, base_url, ca, args.rows, backend=backend)
                    sent["plain loop msg/s (same server, best of 2)"] = max(before[0], after[0])
                    sent["plain loop CPU us/msg"] = min(before[1], after[1])
                    before = after
                rounds.append(sent)
    first = rounds[0]
    figures.update(first)
    figures["total s"] = figures["load s"] + figures["dry run s"] + first["send s"]
    figures["end-to-end msg/s"] = first["accepted"] / figures["total s"]
    loop = "plain loop msg/s (same server, best of 2)"
    for sent in rounds:
        if loop in sent:
            sent["send phase / plain loop"] = sent["send msg/s"] / sent[loop]
            sent["plain loop CPU / send CPU"] = (
                sent["plain loop CPU us/msg"] / sent["send CPU us/msg"]
            )
    if loop in first:
        figures["send phase / plain loop"] = first["send phase / plain loop"]
        figures["plain loop CPU / send CPU"] = first["plain loop CPU / send CPU"]
    print(
        f"\nCampaign against the {args.server} provider over TLS, on {backend}, "
        f"the journal in a {args.journal}:"
    )
    show(figures)
    if len(rounds) > 1:
        print(f"\n{len(rounds)} rounds, each a send phase of a fresh copy of the loaded journal:")
        for number, sent in enumerate(rounds, 1):
            line = f"  round {number}: send {sent['send msg/s']:,.0f} msgs/s, "
            line += f"{sent['send CPU us/msg']:.2f} CPU us/msg"
            if loop in sent:
                line += f"; plain loop {sent[loop]:,.0f} msgs/s, "
                line += f"{sent['plain loop CPU us/msg']:.2f} us; "
                line += f"ratio {sent['send phase / plain loop']:.2f}"
            print(line)
        medians = {"send msg/s (median)": statistics.median(r["send msg/s"] for r in rounds)}
        if loop in first:
            medians["plain loop msg/s (median)"] = statistics.median(r[loop] for r in rounds)
            medians["send phase / plain loop (median)"] = statistics.median(
                r["send phase / plain loop"] for r in rounds
            )
        show(medians)


def show(figures: dict[str, float]) -> None:
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        shown = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
        print(f"  {name:<{width}}  {shown:>12}")


if __name__ == "__main__":
    main()
