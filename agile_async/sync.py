"""Blocking twins of the async API, for code with no event loop (Flask, Django, Celery,
scripts): the same names, arguments, methods and errors as :mod:`agile_async`, without
``await``.

```python
from agile_async import Message
from agile_async.sync import AgileClient

with AgileClient(api_key="...") as client:
    result = client.send(Message(destinations="+393471234567", sender="MyApp", body="Hi"))
    with client.batcher() as batcher:
        ticket = batcher.submit(Message(destinations="+393471234568", sender="MyApp", body="Hi"))
    print(ticket.result().global_id)
```

Each client runs the async :class:`agile_async.AgileClient` on an event loop in a thread of
its own and forwards every call there; it is safe to share between threads. Everything
else (messages, options, results, errors, :mod:`agile_async.segments`) is the async API's:
import it from :mod:`agile_async`.
"""

from ._public import claim_public_names
from ._sync_batcher import Batcher
from ._sync_client import AgileClient, AgileClientWithRawResponse
from ._sync_ticket import Ticket

__all__ = ["AgileClient", "AgileClientWithRawResponse", "Batcher", "Ticket"]

claim_public_names(__name__)
