"""agile-async: a typed async SDK for the AgileTelecom SMS REST API, on asyncio and trio.

```python
from agile_async import AgileClient, Message

async with AgileClient(api_key="...") as client:
    result = await client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
```
"""

from ._client import AgileClient, ClientState
from ._config import BASE_URLS, DEFAULT_LIMITS, DEFAULT_TIMEOUT, RetryPolicy
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
from ._models import DeliveryStatus, Message, SendOptions, SendResult
from ._version import __version__

__all__ = [
    "BASE_URLS",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "APIError",
    "AgileClient",
    "AgileError",
    "AuthenticationError",
    "ClientClosedError",
    "ClientState",
    "ConfigurationError",
    "DeliveryStatus",
    "DestinationNotAllowedError",
    "GlobalIdLengthError",
    "IPNotAllowedError",
    "InsufficientCreditError",
    "InvalidDestinationError",
    "Message",
    "OutcomeUnknownError",
    "Problem",
    "RateLimitError",
    "RetryPolicy",
    "SendOptions",
    "SendResult",
    "SenderNotAllowedError",
    "ServerError",
    "ServiceTimeoutError",
    "TransportError",
    "UnknownAPIError",
    "ValidationError",
    "__version__",
]

# Public objects say they live here, not in the private module that defines them, so
# reprs, docs and pickles show the stable import path.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
