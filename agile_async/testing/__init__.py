"""Test helpers: :class:`FakeAgileServer`, an imitation of the AgileTelecom provider.

Use it in memory::

    fake = FakeAgileServer(credit=Decimal("10"))
    async with fake.client() as client:
        await client.send(Message(...))
    assert [m.destination for m in fake.accepted] == [...]

or over a real TLS socket (``pip install 'agile-async[server]'``)::

    async with fake.serve_tls() as server:
        async with server.client() as client:
            ...

Script misbehaviour with :class:`Fault`: ``fake.inject(Fault.server_error(code=9), times=2)``.
"""

from ._faults import Fault, FaultKind
from ._records import AcceptedMessage, AuthMode, RecordedRequest
from ._server import FakeAgileServer
from ._tls import TLSServer
from ._transport import FakeTransport

__all__ = [
    "AcceptedMessage",
    "AuthMode",
    "FakeAgileServer",
    "FakeTransport",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "TLSServer",
]
