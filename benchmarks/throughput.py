"""Throughput over loopback TLS: one request per message, hand-written batched loops, the Batcher.

Every mode talks to the same minimal provider (``_fast_server.py``, its own process, so it
has the second core) in one run, interleaved: the plain loop of issue 13 (a dict per
message, ``json.dumps``, 500 per POST, 4 in flight) is the yardstick for the Batcher's
``submit()`` + ``result()``, ``submit_many()`` and a web app's 1,000 tasks awaiting
``send()``. Then the bytes a queued message costs (tracemalloc), and 1,000,000 messages
stream through ``Batcher.submit()`` while the resident memory is sampled, to show it is
bounded by the queue, not the campaign. Mode (c') is (c) with OpenTelemetry on: an SDK
tracer provider (batch span processor, an exporter that drops) and meter provider (an
in-memory reader) set before the client is made; (c) runs with none set, so agile-async
records nothing (the cost of the extra merely installed).

    python benchmarks/throughput.py [--messages 200000] [--single 5000] [--stream 1000000]

Every message has its own text (a personalised campaign), so the Batcher cannot shrink the
payload by coalescing: the comparison with the hand-written loop is like for like.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import secrets
import ssl
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import anyio
import httpx
import orjson
from _fast_server import serve  # benchmarks/_fast_server.py

from agile_async import AgileClient, Batcher, Message, RequestOutcome, TicketState

API_KEY = "benchmark-key"
SENDER = "Bench"
BATCH = 500
IN_FLIGHT = 4
CHUNK = 5_000


def destination(i: int) -> str:
    return f"+39{3_000_000_000 + i}"


def body(i: int) -> str:
    return f"Hello customer {i}, your code is {i % 10_000:04d}. Reply STOP to opt out."


@contextmanager
def fast_server() -> Iterator[tuple[str, ssl.SSLContext]]:
    """The minimal provider over TLS in its own process; its base URL and a trusting context."""
    with serve() as (base_url, ca_path):
        yield base_url, ssl.create_default_context(cafile=ca_path)


async def timed(run: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    """Messages sent, wall seconds, client CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = await run()
    return count, time.perf_counter() - wall, time.process_time() - cpu


def http_client(context: ssl.SSLContext, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=context,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"X-Api-Key": API_KEY, "Content-Type": "application/json"},
    )


async def one_request_per_message(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(a) What most SMS SDKs do: one POST per message, 20 at a time."""
    url = base_url + "sms/send"
    numbers = iter(range(n))
    prefix = secrets.token_hex(6)

    async def worker(http: httpx.AsyncClient) -> None:
        for i in numbers:
            payload = {
                "messages": [
                    {
                        "destinations": [destination(i)],
                        "ids": [f"{prefix}-{i:x}"],
                        "sender": SENDER,
                        "body": body(i),
                    }
                ]
            }
            response = await http.post(url, content=orjson.dumps(payload))
            response.raise_for_status()

    async with http_client(context, 20) as http, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(worker, http)
    return n


async def plain_loop(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(b) The plain hand-written loop of issue 13: a dict per message with an f-string id,
    stdlib ``json.dumps``, 500 messages per POST, 4 POSTs in flight."""
    url = base_url + "sms/send"
    starts = iter(range(0, n, BATCH))

    async def worker(http: httpx.AsyncClient) -> None:
        for start in starts:
            payload = {
                "messages": [
                    {
                        "ids": [f"msg-{i}"],
                        "destinations": [destination(i)],
                        "sender": SENDER,
                        "body": body(i),
                    }
                    for i in range(start, min(start + BATCH, n))
                ],
            }
            response = await http.post(url, content=json.dumps(payload))
            response.raise_for_status()
            response.json()

    async with http_client(context, IN_FLIGHT) as http, anyio.create_task_group() as tg:
        for _ in range(IN_FLIGHT):
            tg.start_soon(worker, http)
    return n


async def hand_written_batches(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(b') A tuned hand-written loop: the same, with orjson and a globalId."""
    url = base_url + "sms/send"
    starts = iter(range(0, n, BATCH))
    prefix = secrets.token_hex(6)

    async def worker(http: httpx.AsyncClient) -> None:
        for start in starts:
            payload = {
                "globalId": secrets.token_hex(16),
                "messages": [
                    {
                        "destinations": [destination(i)],
                        "ids": [f"{prefix}-{i:x}"],
                        "sender": SENDER,
                        "body": body(i),
                    }
                    for i in range(start, min(start + BATCH, n))
                ],
            }
            response = await http.post(url, content=orjson.dumps(payload))
            response.raise_for_status()
            orjson.loads(response.content)

    async with http_client(context, IN_FLIGHT) as http, anyio.create_task_group() as tg:
        for _ in range(IN_FLIGHT):
            tg.start_soon(worker, http)
    return n


def sdk_client(base_url: str, context: ssl.SSLContext) -> AgileClient:
    return AgileClient(
        api_key=API_KEY,
        base_url=base_url,
        transport=httpx.AsyncHTTPTransport(
            verify=context,
            limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT),
        ),
    )


def check_accepted(batcher: Batcher, n: int) -> None:
    stats = batcher.statistics()
    if stats.accepted != n:
        raise RuntimeError(f"the batcher accepted {stats.accepted} of {n}: {stats}")


async def batcher_submit(
    base_url: str, context: ssl.SSLContext, n: int, sample: Callable[[int], None] | None = None
) -> int:
    """``await batcher.submit(Message(...))`` per message, from one task (no handle kept)."""
    async with (
        sdk_client(base_url, context) as client,
        client.batcher(max_messages=BATCH, max_in_flight=IN_FLIGHT) as b,
    ):
        for i in range(n):
            await b.submit(Message(destinations=destination(i), sender=SENDER, body=body(i)))
            if sample is not None and i % 10_000 == 0:
                sample(i)
    check_accepted(b, n)
    return n


async def batcher_submit_result(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(c) ``submit(Message(...))`` for each message, then ``await ticket.result()`` for each."""
    async with (
        sdk_client(base_url, context) as client,
        client.batcher(max_messages=BATCH, max_in_flight=IN_FLIGHT) as b,
    ):
        tickets = [
            await b.submit(Message(destinations=destination(i), sender=SENDER, body=body(i)))
            for i in range(n)
        ]
        for ticket in tickets:
            await ticket.result()
    check_accepted(b, n)
    return n


@contextmanager
def tracing_on() -> Iterator[None]:
    """OpenTelemetry's SDK set as the global providers, then unset again (as the
    OpenTelemetry test utilities do), so the other modes run with none set."""
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.util._once import Once

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def unset() -> None:
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None
        metrics_internal._METER_PROVIDER_SET_ONCE = Once()
        metrics_internal._METER_PROVIDER = None

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    unset()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    try:
        yield
        reader.get_metrics_data()  # a collection, as an exporter would make
    finally:
        unset()
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def batcher_submit_result_traced(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(c') as (c), with an OpenTelemetry SDK tracer and meter provider configured."""
    with tracing_on():
        return await batcher_submit_result(base_url, context, n)


async def batcher_submit_many(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(d) ``submit_many()`` of light rows, 5,000 a call; outcomes through ``on_result``."""
    accepted = 0

    def on_result(outcome: RequestOutcome) -> None:
        nonlocal accepted
        if outcome.state is TicketState.ACCEPTED:
            accepted += len(outcome.tickets)

    async with (
        sdk_client(base_url, context) as client,
        client.batcher(max_messages=BATCH, max_in_flight=IN_FLIGHT, on_result=on_result) as b,
    ):
        for start in range(0, n, CHUNK):
            rows = [(destination(i), body(i)) for i in range(start, min(start + CHUNK, n))]
            await b.submit_many(rows, sender=SENDER, handles=False)
    check_accepted(b, n)
    if accepted != n:
        raise RuntimeError(f"on_result saw {accepted} of {n} accepted")
    return n


async def web_app_sends(base_url: str, context: ssl.SSLContext, n: int) -> int:
    """(e) A web app: 1,000 tasks, each awaiting ``batcher.send()`` for its messages."""
    numbers = iter(range(n))

    async def request_handler(b: Batcher) -> None:
        for i in numbers:
            await b.send(Message(destinations=destination(i), sender=SENDER, body=body(i)))

    async with (
        sdk_client(base_url, context) as client,
        client.batcher(max_messages=BATCH, max_in_flight=IN_FLIGHT, max_latency=0.005) as b,
        anyio.create_task_group() as tg,
    ):
        for _ in range(1_000):
            tg.start_soon(request_handler, b)
    check_accepted(b, n)
    return n


async def bytes_per_queued_message(rows: bool = False, n: int = 100_000) -> float:
    """What a queued message costs in memory (tracemalloc), with nothing sent (the
    dispatcher waits for a request to fill up): its ``Message``, ticket, id and queue slot;
    with ``rows``, a light row's ticket and id (``submit_many``), no ``Message``."""
    numbers = [destination(i) for i in range(n)]
    texts = [body(i) for i in range(n)]
    async with (
        AgileClient(api_key=API_KEY, base_url="https://127.0.0.1:1/") as client,
        client.batcher(max_messages=n, queue_capacity=n, max_latency=3600) as b,
    ):
        await b.submit(Message(destinations=numbers[0], sender=SENDER, body=texts[0]))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        if rows:
            await b.submit_many(
                zip(numbers[1:], texts[1:], strict=True), sender=SENDER, handles=False
            )
        else:
            for i in range(1, n):
                await b.submit(Message(destinations=numbers[i], sender=SENDER, body=texts[i]))
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        await b.aclose(cancel=True)
    return (after - before) / (n - 1)


def rss_mib() -> float:
    """The current resident set size, in MiB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


Mode = Callable[[str, ssl.SSLContext, int], Awaitable[int]]


async def main(args: argparse.Namespace) -> None:
    modes: list[tuple[str, Mode, int]] = [
        ("(a) one request per message", one_request_per_message, args.single),
        ("(b) plain loop (dict, json.dumps)", plain_loop, args.messages),
        ("(b') tuned loop (orjson)", hand_written_batches, args.messages),
        ("(c) submit(Message) + result()", batcher_submit_result, args.messages),
        ("(d) submit_many(rows)", batcher_submit_many, args.messages),
        ("(e) 1,000 tasks awaiting send()", web_app_sends, args.messages),
        ("(c') (c) with OpenTelemetry on", batcher_submit_result_traced, args.messages),
    ]
    # Each mode runs --rounds times, interleaved, and the median counts: on a shared 2-core
    # machine a single run of each can be off by a quarter either way, and the machine's
    # speed drifts from minute to minute (the ratios are taken round by round).
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in modes}
    with fast_server() as (base_url, context):
        await batcher_submit(base_url, context, 5_000)  # warm up: imports, TLS, caches
        for _ in range(args.rounds):
            for name, run, n in modes:

                async def go(run: Mode = run, n: int = n) -> int:
                    return await run(base_url, context, n)

                sent, wall, cpu = await timed(go)
                runs[name].append((sent / wall, cpu / sent * 1e6))

        samples: list[tuple[int, float]] = []
        start_rss = rss_mib()
        streamed, stream_wall, stream_cpu = await timed(
            lambda: batcher_submit(
                base_url, context, args.stream, lambda i: samples.append((i, rss_mib()))
            )
        )
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_message = await bytes_per_queued_message()
    per_row = await bytes_per_queued_message(rows=True)

    python = sys.version.split()[0]
    print(f"\nThroughput over loopback TLS (Python {python}, {os.cpu_count()} cores)")
    print(f"medians of {args.rounds} interleaved rounds")
    print(f"{'mode':38} {'messages':>9} {'msgs/s':>10} {'CPU µs/msg':>11}")
    rates, cpus = {}, {}
    for name, _, n in modes:
        rate = statistics.median(r for r, _ in runs[name])
        cpu_us = statistics.median(c for _, c in runs[name])
        rates[name], cpus[name] = rate, cpu_us
        print(f"{name:38} {n:>9,} {rate:>10,.0f} {cpu_us:>11.1f}")
    a, _plain, tuned, result, _many, _web, traced = rates.values()
    plain_cpu, web_cpu = cpus[modes[1][0]], cpus[modes[5][0]]
    result_cpu, traced_cpu = cpus[modes[3][0]], cpus[modes[6][0]]

    def paired(name: str, of_cpu: bool = False) -> str:
        """A mode against the plain loop, round by round (each round's modes ran back to
        back, so a drift of the machine's speed between rounds cancels out): the median
        of the rounds' ratios, and their range."""
        pairs = zip(runs[name], runs[modes[1][0]], strict=True)
        ratios = sorted(mine[1] / base[1] if of_cpu else mine[0] / base[0] for mine, base in pairs)
        median = statistics.median(ratios)
        return f"{median:.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)"

    print("\nagainst the plain loop, round by round:")
    print(f"submit(Message) + result(): {paired(modes[3][0])}   (target >= 0.6x)")
    print(f"submit_many(): {paired(modes[4][0])}   (target >= 1.0x)")
    print(
        f"1,000 tasks awaiting send(), CPU per message: {paired(modes[5][0], of_cpu=True)}"
        f" ({web_cpu:.1f} and {plain_cpu:.1f} µs, medians)   (target <= 3x)"
    )
    print(
        f"cost with tracing on, submit(Message) + result(): {result_cpu:.1f} -> "
        f"{traced_cpu:.1f} CPU µs/msg ({traced_cpu - result_cpu:+.1f}, "
        f"{traced_cpu / result_cpu - 1:+.0%}); {result:,.0f} -> {traced:,.0f} msgs/s"
    )
    print(f"submit(Message) + result() / tuned loop: {result / tuned:.2f}x")
    print(f"submit(Message) + result() / one request per message: {result / a:.0f}x")
    print(
        f"memory: {per_message:.0f} bytes per queued message (submit), {per_row:.0f} per "
        "queued row (submit_many)   (target <= 300)"
    )
    tenth = next(rss for i, rss in samples if i >= args.stream // 10)
    print(
        f"\n{streamed:,} messages through submit(): {streamed / stream_wall:,.0f} msgs/s, "
        f"{stream_cpu / streamed * 1e6:.1f} CPU µs/msg; RSS {start_rss:.0f} MiB at start, "
        f"{tenth:.0f} MiB at 10%, {samples[-1][1]:.0f} MiB at the end, peak {peak_rss:.0f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200_000, help="for (b) and (c)")
    parser.add_argument("--single", type=int, default=5_000, help="for (a)")
    parser.add_argument("--stream", type=int, default=1_000_000, help="the memory run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repetitions")
    anyio.run(main, parser.parse_args())
