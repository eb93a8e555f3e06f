"""agile-async: a typed async SDK for the AgileTelecom SMS REST API, on asyncio and trio.

```python
from agile_async import AgileClient, Message

async with AgileClient(api_key="...") as client:
    result = await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
```
"""

import attrs as _attrs

from ._batching import (
    Batcher,
    BatcherState,
    BatcherStatistics,
    BatcherStoppedError,
    CreditThresholdError,
    MessageRow,
    MessageWithdrawnError,
    QueueFullError,
    RequestOutcome,
)
from ._client import AgileClient, ClientState, CreditCheck
from ._config import BASE_URLS, DEFAULT_LIMITS, DEFAULT_TIMEOUT, BatchSettings, RetryPolicy
from ._exceptions import (
    AgileError,
    APIError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    DestinationNotAllowedError,
    GlobalIdLengthError,
    InsufficientCreditError,
    InvalidDestinationError,
    IPNotAllowedError,
    OutcomeUnknownError,
    Problem,
    RateLimitError,
    SenderNotAllowedError,
    ServerError,
    ServiceTimeoutError,
    TransportError,
    UnknownAPIError,
    ValidationError,
)
from ._models import DeliveryReport, DeliveryStatus, Message, SendOptions, SendResult
from ._ratelimit import Cost, RateLimit, RateLimiter, TokenBucket
from ._tickets import Receipt, RequestTotals, Ticket, TicketState
from ._tracking import DeliveryOutcome, DeliverySummary, DeliveryTracker
from ._version import __version__

__all__ = [
    "BASE_URLS",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "APIError",
    "AgileClient",
    "AgileError",
    "AuthenticationError",
    "BatchSettings",
    "Batcher",
    "BatcherState",
    "BatcherStatistics",
    "BatcherStoppedError",
    "ClientClosedError",
    "ClientState",
    "ConfigurationError",
    "Cost",
    "CreditCheck",
    "CreditThresholdError",
    "DeliveryOutcome",
    "DeliveryReport",
    "DeliveryStatus",
    "DeliverySummary",
    "DeliveryTracker",
    "DestinationNotAllowedError",
    "GlobalIdLengthError",
    "IPNotAllowedError",
    "InsufficientCreditError",
    "InvalidDestinationError",
    "Message",
    "MessageRow",
    "MessageWithdrawnError",
    "OutcomeUnknownError",
    "Problem",
    "QueueFullError",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "Receipt",
    "RequestOutcome",
    "RequestTotals",
    "RetryPolicy",
    "SendOptions",
    "SendResult",
    "SenderNotAllowedError",
    "ServerError",
    "ServiceTimeoutError",
    "Ticket",
    "TicketState",
    "TokenBucket",
    "TransportError",
    "UnknownAPIError",
    "ValidationError",
    "__version__",
]

# Public objects say they live here, not in the private module that defines them, so
# reprs, docs and pickles show the stable import path.
# Annotations are resolved first, while the defining module's names are still reachable.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        if _attrs.has(_obj):
            _attrs.resolve_types(_obj)
        _obj.__module__ = __name__
del _name, _obj
