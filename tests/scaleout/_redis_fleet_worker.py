"""One worker of the fleet test (run as a subprocess): a Batcher paced by a RedisLimiter.

It opens its clients (AgileClient from AGILE_BASE_URL/AGILE_API_KEY, trusting SSL_CERT_FILE),
enters the limiter, prints ``ready``, waits for ``go <seconds>`` on stdin, then submits
messages as fast as the shared limit lets them go for that long, and prints its statistics as
one JSON line. Usage: ``python _redis_fleet_worker.py URL CLIENT BACKEND RATE BURST BATCH N``.
"""

from __future__ import annotations

import json
import sys
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.to_thread

from agile_async import AgileClient, BatchSettings, Message, RateLimit, RetryPolicy
from agile_async.scaleout import RedisLimiter


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def open_redis(stack: AsyncExitStack, kind: str, url: str) -> Any:
    if kind == "coredis":
        import coredis

        return await stack.enter_async_context(coredis.Redis.from_url(url))
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    stack.push_async_callback(client.aclose)
    return client


async def work(url: str, kind: str, rate: float, burst: float, batch: int, number: int) -> None:
    limit = RateLimit(rate=rate, burst=burst)
    settings = BatchSettings(max_messages=batch, max_latency=0.005, queue_capacity=4 * batch)
    async with AsyncExitStack() as stack:
        redis = await open_redis(stack, kind, url)
        client = await stack.enter_async_context(AgileClient(retry=RetryPolicy(attempts=3)))
        limiter = await stack.enter_async_context(RedisLimiter(redis, limit, account=client))
        limiter.check_settings(settings)
        await client.credit()  # the TLS handshake, out of the measured run
        _say("ready")
        command = await anyio.to_thread.run_sync(sys.stdin.readline)
        seconds = float(command.split()[1])
        batcher = await stack.enter_async_context(client.batcher(settings, limiter=limiter))
        sent = 0
        with anyio.move_on_after(seconds):
            while True:
                destination = f"+39{number}{sent:09d}"
                await batcher.submit(Message(destinations=destination, sender="Fleet", body="hi"))
                sent += 1
        await batcher.aclose(cancel=True)
        stats = batcher.statistics()
        report = {
            "kind": kind,
            "accepted": stats.accepted,
            "requests": stats.requests,
            "retries": stats.retries,
            "limiter": limiter.statistics()._asdict(),
        }
    _say(json.dumps(report))


def main() -> None:
    url, kind, backend, rate, burst, batch, number = sys.argv[1:]
    anyio.run(work, url, kind, float(rate), float(burst), int(batch), int(number), backend=backend)


if __name__ == "__main__":
    main()
