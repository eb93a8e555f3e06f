"""What the fake provider saw and accepted, kept for a test's assertions.

Records are frozen so a snapshot handed to a test can never change under it, even while the
server (possibly on another thread, see :meth:`FakeAgileServer.serve_tls`) keeps working.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from ._faults import Fault

__all__ = ["AcceptedMessage", "AuthMode", "RecordedRequest"]

#: How a request authenticated: never the secret itself, only which mechanism it used.
AuthMode = Literal["api_key", "basic"]


@attrs.frozen
class RecordedRequest:
    """One HTTP request that reached the fake, and what it answered.

    Attributes:
        index: arrival order, from 0; ``fake.requests[i].index == i`` once every request in
            flight has finished.
        method: the HTTP method.
        path: the full request path, e.g. ``/services/sms/send``.
        auth: the credentials the request carried (``None`` when it carried none); wrong
            credentials are recorded too, with ``status`` 401.
        client_ip: the peer address the ASGI server reported.
        content_type: the request's ``Content-Type`` header.
        user_agent: the request's ``User-Agent`` header.
        json: the parsed JSON body, or ``None`` when there was none or it was not JSON.
        status: the HTTP status sent, or ``None`` when the client got no response (a dropped
            connection, or an in-memory client that timed out during a delay).
        response_body: the bytes sent (empty when ``status`` is ``None``).
        fault: the scripted fault applied to this request, if any.
        received_at: when the request arrived, by the fake's clock.
        simulation_credentials: it authenticated with the documentation's test credentials
            (``api-value``, or ``user`` / ``pass``), so a send was simulated: listed in
            ``fake.simulated``, nothing charged, no delivery report.
    """

    index: int
    method: str
    path: str
    auth: AuthMode | None
    client_ip: str | None
    content_type: str | None
    user_agent: str | None
    json: Any
    status: int | None
    response_body: bytes
    fault: Fault | None
    received_at: datetime
    simulation_credentials: bool = False

    @property
    def response_json(self) -> Any:
        """The response body decoded as JSON (``None`` when empty or not JSON)."""
        try:
            return json.loads(self.response_body)
        except ValueError:
            return None


@attrs.frozen
class AcceptedMessage:
    """One destination of one message the fake accepted (or simulated).

    A message object with three destinations gives three entries, as the provider sends three
    SMS (each with its own id, and its own delivery reports).

    Attributes:
        message_id: the caller's id for this destination, or the one the fake generated.
        destination: the destination exactly as sent (with or without ``+``).
        sender: the sender alias.
        body: the body as sent (hex digits when ``hex_body``).
        hex_body: whether ``body`` is hex.
        udh_data: the caller's UDH in hex, if any.
        scheduling: the parsed ``scheduling`` (an aware datetime), if any.
        parts: SMS parts for this destination.
        price: what this destination cost (``parts * price per part``), as a ``Decimal``.
        global_id: the request's ``globalId`` (the caller's or the generated one).
        request_index: the :attr:`RecordedRequest.index` of the request that carried it.
        message_index: the position of its message object in the request's ``messages``.
        enable_delivery: the request's ``enableDelivery``: whether reports would follow.
        simulated: the request had ``simulation: true``, or the simulation-only test
            credentials (nothing charged, nothing sent).
        accepted_at: when it was accepted, by the fake's clock.
    """

    message_id: str
    destination: str
    sender: str
    body: str
    hex_body: bool
    udh_data: str | None
    scheduling: datetime | None
    parts: int
    price: Decimal
    global_id: str
    request_index: int
    message_index: int
    enable_delivery: bool
    simulated: bool
    accepted_at: datetime
