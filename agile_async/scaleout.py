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

A Redis outage (a restart, a failover, a network blip) shorter than ``redis_timeout``
(:data:`DEFAULT_REDIS_TIMEOUT`, a minute) is waited out; a longer one raises
:class:`RedisUnavailableError`, and what was not sent is never counted as failed.

A campaign shared by many workers: :class:`RedisCampaign` is a campaign journal in Redis
(load it with :meth:`Campaign.create <agile_async.campaigns.Campaign.create>` and
``load()``), and :func:`work` is one worker; or, from a shell, ``agile-sms campaign
enqueue --redis URL ...`` once and ``agile-sms campaign work --redis URL NAME`` N times.
"""

from __future__ import annotations

from ._exceptions import CampaignStoppedError, ChunkFencedError, RedisUnavailableError
from ._public import claim_public_names
from ._scaleout._campaign import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEASE,
    DEFAULT_MAX_CHUNK_TAKEOVERS,
    DEFAULT_MAX_QUEUED_CHUNKS,
    FleetStop,
    HeldChunk,
    RedisCampaign,
)
from ._scaleout._keys import account_key
from ._scaleout._limiter import (
    DEFAULT_IDLE_TTL,
    DEFAULT_MAX_WAIT,
    RedisLimiter,
    RedisLimiterStatistics,
)
from ._scaleout._outage import DEFAULT_REDIS_TIMEOUT
from ._scaleout._redis_client import open_redis
from ._scaleout._worker import WorkResult, work

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_IDLE_TTL",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_CHUNK_TAKEOVERS",
    "DEFAULT_MAX_QUEUED_CHUNKS",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_REDIS_TIMEOUT",
    "CampaignStoppedError",
    "ChunkFencedError",
    "FleetStop",
    "HeldChunk",
    "RedisCampaign",
    "RedisLimiter",
    "RedisLimiterStatistics",
    "RedisUnavailableError",
    "WorkResult",
    "account_key",
    "open_redis",
    "work",
]

claim_public_names(__name__)
