"""Scale-out on Redis: many workers, on many hosts, sharing one account's rate limit.

```python
import coredis                                   # or: import redis.asyncio as redis
from agile_async import AgileClient, RateLimit
from agile_async.scaleout import RedisLimiter

limit = RateLimit(rate=500, burst=100)           # the account's limit, for all workers together
async with (
    coredis.Redis.from_url("redis://redis.internal:6379") as redis,
    AgileClient() as client,
    RedisLimiter(redis, limit, account=client) as limiter,
    client.batcher(max_messages=100, limiter=limiter) as batcher,
):
    ...
```

Needs a Redis client: ``pip install 'agile-async[redis]'`` (redis-py, asyncio) or
``'agile-async[redis-trio]'`` (coredis, asyncio and trio). Keys are named by
:func:`account_key`, a hash: no secret ever appears in Redis.
"""

from __future__ import annotations

from ._scaleout._keys import account_key
from ._scaleout._limiter import (
    DEFAULT_IDLE_TTL,
    DEFAULT_MAX_WAIT,
    DEFAULT_REDIS_ATTEMPTS,
    RedisLimiter,
    RedisLimiterStatistics,
)

__all__ = [
    "DEFAULT_IDLE_TTL",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_REDIS_ATTEMPTS",
    "RedisLimiter",
    "RedisLimiterStatistics",
    "account_key",
]

# Public names say they live here, not in the private modules that define them.
for _obj in (RedisLimiter, RedisLimiterStatistics, account_key):
    _obj.__module__ = __name__
del _obj
