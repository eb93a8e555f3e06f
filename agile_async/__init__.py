"""agile-async: a typed async SDK for the AgileTelecom SMS REST API, on asyncio and trio.

```python
from agile_async import AgileClient, Message

async with AgileClient(api_key="...") as client:
    result = await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
```
"""

from ._batching import Batcher, BatcherState, BatcherStatistics, MessageRow, RequestOutcome
from ._client import AgileClient, AgileClientWithRawResponse, ClientState, CreditCheck
from ._config import BASE_URLS, DEFAULT_LIMITS, DEFAULT_TIMEOUT, BatchSettings, RetryPolicy
from ._exceptions import (
    AgileError,
    APIError,
    AuthenticationError,
    BatcherStoppedError,
    ClientClosedError,
    ConfigurationError,
    CreditThresholdError,
    DestinationNotAllowedError,
    GlobalIdLengthError,
    InsufficientCreditError,
    InvalidDestinationError,
    IPNotAllowedError,
    MessageWithdrawnError,
    OutcomeUnknownError,
    Problem,
    QueueFullError,
    RateLimitError,
    SenderNotAllowedError,
    ServerError,
    ServiceTimeoutError,
    TransportError,
    UnknownAPIError,
    ValidationError,
)
from ._models import DeliveryReport, DeliveryStatus, Message, SendOptions, SendResult
from ._public import claim_public_names as _claim_public_names
from ._ratelimit import Cost, RateLimit, RateLimiter, TokenBucket
from ._raw_response import RawResponse
from ._tickets import Receipt, RequestTotals, Ticket, TicketState
from ._tracking import DeliveryOutcome, DeliverySummary, DeliveryTracker
from ._version import __version__

__all__ = [
    "BASE_URLS",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "APIError",
    "AgileClient",
    "AgileClientWithRawResponse",
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
    "RawResponse",
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

_claim_public_names(__name__)
