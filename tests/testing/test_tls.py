"""FakeAgileServer over a real TLS socket (uvicorn + trustme, the ``server`` extra)."""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import warnings
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest

from agile_async.testing import FakeAgileServer, Fault

pytest.importorskip("uvicorn")
pytest.importorskip("trustme")

pytestmark = pytest.mark.tls

HEADERS = {"X-Api-Key": "test-api-key"}
BODY: dict[str, Any] = {
    "messages": [{"destinations": ["+393471234567"], "sender": "MyApp", "body": "Hello"}]
}


@pytest.mark.anyio
async def test_send_and_credit_over_tls() -> None:
    """Runs on asyncio and trio: the server's own loop lives on its thread."""
    fake = FakeAgileServer()
    with anyio.fail_after(15):
        async with fake.serve_tls() as server:
            assert server.base_url == f"https://127.0.0.1:{server.port}/services/"
            async with httpx.AsyncClient(
                base_url=server.base_url, verify=server.ssl_context(), headers=HEADERS
            ) as http:
                sent = await http.post("sms/send", json=BODY)
                credit = await http.get("sms/credit")
    assert sent.status_code == 200
    assert sent.json()["processedSmsParts"] == 1
    assert credit.json() == {"credit": 99.95}
    assert [m.destination for m in fake.accepted] == ["+393471234567"]
    assert [r.status for r in fake.requests] == [200, 200]


@pytest.mark.anyio
async def test_drops_over_tls_lose_the_connection() -> None:
    """Before processing: no response at all. After: a response cut short. Both are
    ``httpx.RemoteProtocolError``; only the fake's logs tell them apart."""
    fake = FakeAgileServer()
    fake.inject(Fault.drop())
    fake.inject(Fault.drop(after_processing=True))
    with anyio.fail_after(15):
        async with (
            fake.serve_tls() as server,
            httpx.AsyncClient(
                base_url=server.base_url, verify=server.ssl_context(), headers=HEADERS
            ) as http,
        ):
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await http.post("sms/send", json=BODY)
            assert fake.accepted == ()
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await http.post("sms/send", json=BODY)
            assert len(fake.accepted) == 1
            # The server is still healthy afterwards.
            assert (await http.get("sms/credit")).json() == {"credit": 99.95}
    assert [r.status for r in fake.requests] == [None, None, 200]


@pytest.mark.anyio
async def test_errors_and_faults_over_tls() -> None:
    fake = FakeAgileServer(credit=Decimal("0"))
    fake.inject(Fault.rate_limited(retry_after=3))
    with anyio.fail_after(15):
        async with (
            fake.serve_tls() as server,
            httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context()) as http,
        ):
            limited = await http.post("sms/send", json=BODY, headers=HEADERS)
            unauthorised = await http.post("sms/send", json=BODY)
            broke = await http.post("sms/send", json=BODY, headers=HEADERS)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert (unauthorised.status_code, unauthorised.json()["code"]) == (401, 1)
    assert (broke.status_code, broke.json()["code"]) == (402, 2)


def test_sync_context_manager_and_the_ca_file() -> None:
    """Sync tests can serve it too; the CA file works for any TLS client."""
    fake = FakeAgileServer()
    with fake.serve_tls() as server:
        context = ssl.create_default_context(cafile=str(server.ca_cert_path))
        with httpx.Client(base_url=server.base_url, verify=context, headers=HEADERS) as http:
            assert http.get("sms/credit").json() == {"credit": 100}
        with (
            httpx.Client(base_url=server.base_url) as untrusting,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusting.get("sms/credit")
        ca_file = server.ca_cert_path
        assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not ca_file.exists()


def test_a_tls_server_is_not_running_outside_its_block() -> None:
    server = FakeAgileServer().serve_tls()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    assert "not started" in repr(server)
    with server:
        pass
    with pytest.raises(RuntimeError, match="only once"), server:
        pass


@pytest.mark.anyio
async def test_tls_client_is_an_agile_client_that_owns_its_transport() -> None:
    """Only the wiring is checked here; the client's own behaviour has its own tests."""
    from agile_async import AgileClient

    fake = FakeAgileServer()
    with anyio.fail_after(15):
        async with fake.serve_tls() as server:
            client = server.client()
            try:
                assert isinstance(client, AgileClient)
                assert str(client.base_url) == server.base_url
            finally:
                await client.aclose()


def test_the_environment_points_a_process_at_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a subprocess gets is exactly what AgileClient reads from the environment."""
    fake = FakeAgileServer(api_key=None, username="user", password="pass")
    with fake.serve_tls() as server:
        environment = server.environment()
        assert environment == {
            "AGILE_BASE_URL": server.base_url,
            "AGILE_USERNAME": "user",
            "AGILE_PASSWORD": "pass",
            "SSL_CERT_FILE": str(server.ca_cert_path),
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)

        async def credit() -> Decimal:
            from agile_async import AgileClient

            async with AgileClient() as client:
                return await client.credit()

        assert anyio.run(credit) == Decimal("100")


def test_a_client_that_resets_the_connection_leaves_no_unclosed_transport() -> None:
    """A client killed mid-connection (a worker process under SIGKILL) resets the TCP
    connection. The server must still close its TLS transport: on Python 3.10 asyncio
    does not mark it closed when the connection is lost, and uvicorn closes it only after
    a clean end of stream, so each reset left a ``ResourceWarning: unclosed transport``."""
    fake = FakeAgileServer()
    with fake.serve_tls() as server:
        context = server.ssl_context()
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(
                b"GET /services/sms/credit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"X-Api-Key: test-api-key\r\n\r\n"
            )
            assert tls.recv(65536).startswith(b"HTTP/1.1 200")
            # SO_LINGER with a zero timeout: close() sends RST, as the kernel does for a
            # killed process with unread data.
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # A request on a new connection takes several turns of the server's loop, by which
        # time it has seen the reset (rather than closing an idle connection at shutdown).
        with httpx.Client(base_url=server.base_url, verify=context, headers=HEADERS) as http:
            assert http.get("sms/credit").status_code == 200
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
