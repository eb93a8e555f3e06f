"""A Redis campaign run by 1, 2 and 4 worker processes: aggregate messages/s, Redis memory.

Starts its own redis-server (a private Unix socket in a temporary directory; ``--aof`` for
``appendonly yes`` + ``appendfsync always``, the setting the no-duplicate promise needs) and
the minimal provider of ``_fast_server.py`` (its own process). For each worker count it
enqueues a fresh campaign with ``agile-sms campaign enqueue --redis`` (running alongside
the workers, as in production: it keeps at most 64 chunks ahead of them), starts N
``agile-sms campaign work --redis`` processes, and times the run from the first worker's
start to the last one's exit. Redis's ``used_memory`` is sampled throughout.

    python benchmarks/redis_campaign.py [--rows 200000] [--workers 1,2,4] [--aof]

No rate limit is set (``--rate`` would add one RedisLimiter round trip per request).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from campaign import fast_server, write_recipients  # benchmarks/campaign.py

ROOT = Path(__file__).resolve().parent.parent


def redis_command(sock: str, *args: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(sock)
        conn.sendall(" ".join(args).encode() + b"\r\n")
        data = b""
        while not data.endswith(b"\r\n") or (data.count(b"\r\n") < 2 and data[:1] == b"$"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def used_memory(sock: str) -> int:
    for line in redis_command(sock, "INFO", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def start_redis(directory: Path, aof: bool) -> tuple[subprocess.Popen[bytes], str]:
    sock = str(directory / "r.sock")
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if aof else []
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--unixsocket", sock,
         "--save", "", "--dir", str(directory), *durability],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(500):
        try:
            if redis_command(sock, "PING").startswith(b"+PONG"):
                return process, sock
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("redis-server did not start")


def run(env: dict[str, str], url: str, sock: str, source: Path, workers: int) -> None:
    name = f"bench-{workers}-{time.monotonic_ns()}"
    cli = [sys.executable, "-m", "agile_async._cli", "campaign"]
    loader = subprocess.Popen(
        [*cli, "enqueue", "--redis", url, str(source), "--name", name, "--sender", "Bench",
         "--body", "Hi {name}, your code is {code}.", "--chunk-size", "500", "--json"],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    while int(redis_command(sock, "XLEN", f"{{agile:c:{name}}}:q")[1:].split(b"\r")[0]) == 0:
        time.sleep(0.01)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], used_memory(sock))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                *cli,
                "work",
                "--redis",
                url,
                name,
                "--batch-size",
                "500",
                "--max-in-flight",
                "4",
                "--json",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.wait()
    elapsed = time.monotonic() - start
    if any(proc.returncode for proc in procs):
        print(f"a worker failed: exit codes {[proc.returncode for proc in procs]}", flush=True)
        loader.kill()  # it would wait for room forever
    loader.wait()
    done.set()
    sampler.join()
    rows = sum(1 for _ in source.open()) - 1
    print(
        f"{workers} worker(s): {rows:,} messages in {elapsed:.1f} s = {rows / elapsed:,.0f} msg/s;"
        f" Redis used_memory peak {peak[0] / 2**20:.1f} MiB, after {used_memory(sock) / 2**20:.1f}"
        " MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--aof", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agile-bench-") as tmp:
        directory = Path(tmp)
        source = directory / "recipients.csv"
        write_recipients(source, args.rows)
        redis, sock = start_redis(directory, args.aof)
        try:
            with fast_server() as (base_url, ca_path):
                env = {
                    **os.environ,
                    "AGILE_BASE_URL": base_url,
                    "AGILE_API_KEY": "test-api-key",
                    "SSL_CERT_FILE": ca_path,
                    "PYTHONPATH": str(ROOT),
                }
                print(f"redis-server: before {used_memory(sock) / 2**20:.1f} MiB", flush=True)
                for workers in (int(n) for n in args.workers.split(",")):
                    run(env, f"unix://{sock}", sock, source, workers)
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
