"""A deliberately minimal provider for throughput benchmarks: accepts every send at once.

Run in its own process (``python benchmarks/_fast_server.py FOLDER``: it writes its CA and
port there) so it uses the other core; uvicorn with httptools and uvloop keeps the server
from being the bottleneck. It answers like the provider (totals only) and counts what it
accepted. Only the server process needs its packages (uvicorn, httptools, uvloop, orjson,
trustme): a client importing :func:`serve` needs none.
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

accepted = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global accepted
    import orjson  # the server process's own package (see the module docstring)

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
    import trustme
    import uvicorn

    folder = Path(sys.argv[1])
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = folder / "cert.pem", folder / "key.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    port_file = folder / "port"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    with open(port_file, "w") as handle:
        handle.write(str(sock.getsockname()[1]))
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def serve(python: str | None = None) -> Iterator[tuple[str, str]]:
    """Start this server over TLS in a subprocess; yield its base URL and CA file.

    The benchmarks' one way to start it, so they all measure against the same provider.
    ``python`` runs it (default: this interpreter), so a client measured in a bare
    virtualenv needs none of the server's packages (it makes its own certificate too).
    """
    with tempfile.TemporaryDirectory() as tmp:
        port_file, ca_path = Path(tmp, "port"), Path(tmp, "ca.pem")
        server = subprocess.Popen([python or sys.executable, __file__, tmp])
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
