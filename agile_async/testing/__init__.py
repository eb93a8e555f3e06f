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

The documentation's test credentials (:data:`SIMULATION_API_KEY` ``"api-value"``, or
:data:`SIMULATION_USERNAME` / :data:`SIMULATION_PASSWORD` ``"user"`` / ``"pass"``) work on
every fake as simulation-only: checked, never charged or delivered::

    async with AgileClient(api_key="api-value", transport=FakeAgileServer().transport()) as c:
        await c.send(Message(...))  # listed in fake.simulated, not fake.accepted

Script misbehaviour with :class:`Fault`: ``fake.inject(Fault.server_error(code=9), times=2)``;
hold a request the provider already accepted until the test lets it go with a :class:`Hold`:
``fake.inject(Fault.hold(hold, after_processing=True))``.

Have it post delivery reports (one per SMS part) to a webhook or a callback, scripted by a
:class:`DeliveryScript`::

    fake = FakeAgileServer(
        delivery_url="http://127.0.0.1:8000/reports",
        delivery=DeliveryScript(outcomes={DeliveryStatus.DELIVERED: 0.9,
                                          DeliveryStatus.UNDELIVERABLE: 0.1}, seed=1),
    )
    async with fake.delivering():  # posts in the background (serve_tls does it by itself)
        ...
    await fake.flush_reports()     # or: post everything queued now, and wait
"""

from .._public import claim_public_names
from ._auth import SIMULATION_API_KEY, SIMULATION_PASSWORD, SIMULATION_USERNAME
from ._delivery import (
    DeliveryAttempt,
    DeliveryCallback,
    DeliveryCallbackError,
    DeliveryScript,
    DeliveryStatistics,
    DeliveryTarget,
    DestinationFormat,
    PartRule,
    RawDeliveryCallback,
)
from ._faults import Fault, FaultKind, Hold
from ._records import AcceptedMessage, AuthMode, RecordedRequest
from ._server import FakeAgileServer
from ._tls import TLSServer
from ._transport import FakeTransport

__all__ = [
    "SIMULATION_API_KEY",
    "SIMULATION_PASSWORD",
    "SIMULATION_USERNAME",
    "AcceptedMessage",
    "AuthMode",
    "DeliveryAttempt",
    "DeliveryCallback",
    "DeliveryCallbackError",
    "DeliveryScript",
    "DeliveryStatistics",
    "DeliveryTarget",
    "DestinationFormat",
    "FakeAgileServer",
    "FakeTransport",
    "Fault",
    "FaultKind",
    "Hold",
    "PartRule",
    "RawDeliveryCallback",
    "RecordedRequest",
    "TLSServer",
]

claim_public_names(__name__)
