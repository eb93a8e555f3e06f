"""A deliberately minimal provider for throughput benchmarks: accepts every send at once.

Run in its own process (``python benchmarks/_fast_server.py CERT KEY PORTFILE``) so it uses
the other core; uvicorn with httptools and uvloop keeps the server from being the
bottleneck. It answers like the provider (totals only) and counts what it accepted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

accepted = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global accepted
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        event = await receive()
        chunks.append(event.get("body", b""))
        more = event.get("more_body", False)
    if scope["method"] == "POST":
        request = orjson.loads(b"".join(chunks))
        messages = request["messages"]
        count = sum(len(m["destinations"]) for m in messages)
        accepted += count
        body = orjson.dumps(
            {
                "globalId": request.get("globalId", "g"),
                "processedMessages": len(messages),
                "processedSmsParts": count,
                "credit": 1_000_000.0,
            }
        )
    else:
        body = orjson.dumps({"credit": 1_000_000.0, "accepted": accepted})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    cert, key, port_file = sys.argv[1:4]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    with open(port_file, "w") as handle:
        handle.write(str(sock.getsockname()[1]))
    config = uvicorn.Config(
        app,
        ssl_certfile=cert,
        ssl_keyfile=key,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def serve() -> Iterator[tuple[str, str]]:
    """Start this server over TLS in a subprocess; yield its base URL and CA file.

    The benchmarks' one way to start it, so they all measure against the same provider.
    """
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        ca_path, port_file = Path(tmp, "ca.pem"), Path(tmp, "port")
        cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        ca.cert_pem.write_to_path(str(ca_path))
        args = [sys.executable, __file__, str(cert_path), str(key_path), str(port_file)]
        server = subprocess.Popen(args)
        try:
            deadline = time.monotonic() + 20
            while not (port_file.exists() and port_file.read_text()):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the benchmark server did not start")
                time.sleep(0.05)
            time.sleep(0.5)  # let uvicorn start listening on the socket it was given
            yield f"https://127.0.0.1:{port_file.read_text()}/services/", str(ca_path)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
