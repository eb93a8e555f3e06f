"""A deliberately minimal provider for throughput benchmarks: accepts every send at once.

Run in its own process (``python benchmarks/_fast_server.py CERT KEY PORTFILE``) so it uses
the other core; uvicorn with httptools and uvloop keeps the server from being the
bottleneck. It answers like the provider (totals only) and counts what it accepted.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
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


if __name__ == "__main__":
    main()
