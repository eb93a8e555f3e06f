"""The one place that knows redis-py and coredis: run Lua scripts, on a client that fits.

The SDK needs a single call from a Redis client: ``register_script(source)``, then
``await script(keys=..., args=...)``, which is the same in both libraries (each reloads
the script by itself after ``NOSCRIPT``). Both are imported lazily, when a client of
theirs is handed over or :func:`connect` opens one.

redis-py's asyncio client cannot run under trio (it needs an asyncio event loop), so a
redis-py client is refused with :class:`~agile_async.ConfigurationError` while trio runs;
coredis is built on AnyIO and runs on both.
"""

from __future__ import annotations

import importlib.util
import random
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar, cast

import anyio
import attrs

from .._concurrency import lone_errors_as_themselves, running_trio
from .._exceptions import ConfigurationError
from .._redact import redact_url, redact_urls
from ._outage import Outage, outage_of

if TYPE_CHECKING:
    import coredis
    import redis.asyncio

    #: The clients the SDK accepts.
    RedisClient: TypeAlias = (
        redis.asyncio.Redis
        | redis.asyncio.RedisCluster
        | coredis.Redis[Any]
        | coredis.RedisCluster[Any]
    )

__all__ = [
    "COREDIS_NOT_ENTERED",
    "TRIO_NEEDS_COREDIS",
    "RedisClient",
    "ScriptHost",
    "adapt",
    "cluster_url",
    "connect",
    "open_redis",
]

#: What trio users are told when they hand over a redis-py client.
TRIO_NEEDS_COREDIS = (
    "Redis scale-out on trio needs coredis: pip install 'agile-async[redis-trio]' and pass a "
    "coredis.Redis/RedisCluster that you entered with 'async with'. redis-py's asyncio "
    "client cannot run under trio."
)

#: What coredis users are told when they hand over a client they did not enter.
COREDIS_NOT_ENTERED = (
    "enter the coredis client before the limiter: 'async with coredis.Redis(...) as redis:'"
)

T = TypeVar("T")

Kind = Literal["redis-py", "coredis"]
#: ``await script(keys, args)``: one round trip, the script's reply as the client decodes it.
Script = Callable[[Sequence[str], Sequence[str]], Awaitable[Any]]


class _Registrar(Protocol):
    """What both libraries' async clients offer (the SDK uses nothing else)."""

    def register_script(self, script: str, /) -> Callable[..., Awaitable[Any]]: ...


#: Backoff between tries of a script while Redis is away: 50 ms doubling to 1 s, plus up to
#: 50 ms of jitter (so a fleet does not knock in step when Redis comes back).
_FIRST_DELAY, _MAX_DELAY, _JITTER = 0.05, 1.0, 0.05
#: The longest one try may hang (Redis stopped, a silent network) before it counts as an
#: outage: the tolerance, but never less than this (a short tolerance still lets a slow
#: command finish).
_MIN_TRY_TIME = 10.0


@attrs.frozen
class ScriptHost:
    """A Redis client the SDK may use, with the errors worth retrying on it.

    Attributes:
        kind: which library the client comes from.
        client: the caller's client (or one :func:`connect` opened).
        transient: what a restart, a failover or a network blip raises: safe to retry an
            idempotent script after them.
        outage: the client's availability, shared by every host on the same client.
    """

    kind: Kind
    client: _Registrar
    transient: tuple[type[BaseException], ...]
    outage: Outage = attrs.field(factory=Outage, eq=False)

    def script(self, source: str) -> Script:
        """Register ``source`` (nothing is sent until the first call)."""
        registered = self.client.register_script(source)

        async def run(keys: Sequence[str], args: Sequence[str]) -> Any:
            return await registered(keys=list(keys), args=list(args))

        return run

    async def call(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str],
        *,
        tolerance: float,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> Any:
        """Run ``script``, waiting out a Redis outage of up to ``tolerance`` seconds.

        Every SDK script is idempotent for its arguments, so running one again after a
        connection error is safe. The outage is counted from the first failure seen on this
        client by any caller (:class:`~._outage.Outage`), so every caller gives up at the
        same time, and one line is logged when Redis goes and one when it is back.

        Raises:
            RedisUnavailableError: Redis was away for longer than ``tolerance``.
        """
        delay = _FIRST_DELAY
        while True:
            started = time.monotonic()
            try:
                with anyio.fail_after(max(tolerance, _MIN_TRY_TIME)):
                    reply = await script(keys, args)
            except self.transient as error:  # (a try that hung raises TimeoutError)
                left = self.outage.failed(error, started=started, tolerance=tolerance)
                if left <= 0:
                    raise self.outage.give_up(error, tolerance) from error
                if on_retry is not None:
                    on_retry(error)
                await anyio.sleep(min(left, delay + random.uniform(0, _JITTER)))
                delay = min(2 * delay, _MAX_DELAY)
                continue
            self.outage.recovered()
            return reply

    def check_backend(self) -> None:
        """Refuse a client that cannot run on the current event loop."""
        if self.kind == "redis-py" and running_trio():
            raise ConfigurationError(TRIO_NEEDS_COREDIS)

    def check_ready(self) -> None:
        """Refuse a coredis client that was not entered (before it leaks a connection)."""
        pool = getattr(self.client, "connection_pool", None)
        if self.kind != "coredis" or pool is None:
            return
        try:
            pool.task_group  # noqa: B018  (coredis raises RuntimeError before `async with`)
        except RuntimeError:
            raise ConfigurationError(COREDIS_NOT_ENTERED) from None
        except AttributeError:  # another coredis version: the first command will tell
            return


def _library(module: str) -> Kind | None:
    root = module.partition(".")[0]
    if root == "redis":
        return "redis-py"
    if root == "coredis":
        return "coredis"
    return None


def adapt(client: object) -> ScriptHost:
    """Wrap a caller's client, refusing what the SDK cannot use.

    Raises:
        ConfigurationError: not an async client of redis-py or coredis, or a redis-py client
            while trio runs.
    """
    kind = _library(type(client).__module__)
    if kind == "redis-py":
        host = _adapt_redis_py(client)
    elif kind == "coredis":
        host = _adapt_coredis(client)
    else:
        raise ConfigurationError(
            f"unsupported Redis client {type(client).__qualname__!r}: pass a "
            "redis.asyncio.Redis or RedisCluster (pip install 'agile-async[redis]'), or a "
            "coredis.Redis or RedisCluster (pip install 'agile-async[redis-trio]', also on trio)"
        )
    host.check_backend()
    return host


def _adapt_redis_py(client: object) -> ScriptHost:
    import redis.asyncio
    import redis.exceptions as errors

    if not isinstance(client, (redis.asyncio.Redis, redis.asyncio.RedisCluster)):
        raise ConfigurationError(
            f"{type(client).__qualname__} is redis-py's synchronous client: pass a "
            "redis.asyncio.Redis (or redis.asyncio.RedisCluster)"
        )
    transient = (
        errors.ConnectionError,  # BusyLoadingError (a restart loading its data) included
        errors.TimeoutError,
        errors.ClusterDownError,
        errors.TryAgainError,
        errors.ReadOnlyError,  # a failover: this node was demoted, the script wrote nothing
        ConnectionError,
        TimeoutError,
    )
    return ScriptHost("redis-py", client, transient, outage_of(client))


def _adapt_coredis(client: object) -> ScriptHost:
    import coredis
    import coredis.exceptions as errors

    if not isinstance(client, (coredis.Redis, coredis.RedisCluster)):
        raise ConfigurationError(
            f"unsupported coredis client {type(client).__qualname__!r}: pass a coredis.Redis "
            "or coredis.RedisCluster"
        )
    transient = (
        errors.ConnectionError,  # BusyLoadingError included
        errors.ClusterDownError,
        errors.TryAgainError,
        errors.ReadOnlyError,  # a failover: this node was demoted, the script wrote nothing
        ConnectionError,
        TimeoutError,
    )
    return ScriptHost("coredis", client, transient, outage_of(client))


def _coredis_cluster(url: str) -> coredis.RedisCluster[Any]:
    """coredis's cluster client for a ``redis://`` or ``rediss://`` URL naming one node.

    Built from the URL's parts rather than ``RedisCluster.from_url``, which (coredis 6)
    warns about its own deprecated way of naming the startup node.
    """
    import coredis
    from coredis.connection import TCPLocation

    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ConfigurationError("a redis+cluster:// URL needs a host: redis+cluster://host:port")
    return coredis.RedisCluster(
        startup_nodes=[TCPLocation(parts.hostname, parts.port or 6379)],
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
    )


def _from_url(factory: Callable[[str], T], url: str) -> T:
    """``factory(url)``, with an unreadable URL reported without its userinfo (and not
    raised while the library's error, whose message might show it, is being handled)."""
    problem: str | None = None
    try:
        return factory(url)
    except ValueError as error:
        problem = redact_urls(str(error))
    raise ConfigurationError(f"the Redis URL {redact_url(url)!r} is not valid: {problem}")


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


#: URL schemes that select a cluster client, and the plain scheme each stands for.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str) -> tuple[bool, str]:
    """Whether ``url`` asks for Redis Cluster, and the URL in the client libraries' form.

    ``redis+cluster://host:port`` (``rediss+cluster://`` for TLS) names any one node of a
    cluster: the client discovers the others and sends each command to the node that
    holds its keys. Every other URL opens a client for a single server.
    """
    scheme, separator, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower()) if separator else None
    if plain is None:
        return False, url
    return True, f"{plain}://{rest}"


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[ScriptHost]:
    """Open a client for ``url`` that fits the running backend, and close it at the end.

    redis-py on asyncio when it is installed, otherwise coredis (the only choice on trio);
    a cluster client for a ``redis+cluster://`` URL (see :func:`cluster_url`).

    Raises:
        ImportError: the library the backend needs is missing; the message names the extra.
        ConfigurationError: ``url`` cannot be read (shown without its password).
    """
    cluster, url = cluster_url(url)
    if running_trio() or not _installed("redis"):
        if not _installed("coredis"):
            if running_trio():
                raise ImportError(TRIO_NEEDS_COREDIS)
            raise ImportError(
                "Redis scale-out needs a Redis client: pip install 'agile-async[redis]' "
                "(redis-py, asyncio) or 'agile-async[redis-trio]' (coredis, asyncio and trio)"
            )
        import coredis

        coredis_client: coredis.Redis[Any] | coredis.RedisCluster[Any]
        if cluster:
            coredis_client = _from_url(_coredis_cluster, url)
        else:
            coredis_client = _from_url(coredis.Redis.from_url, url)
        # coredis runs its own task group: an error (ours, or the caller's in the block)
        # would come out wrapped in a group of one.
        with lone_errors_as_themselves():
            async with coredis_client as client:
                yield adapt(client)
        return
    import redis.asyncio

    redis_client: redis.asyncio.Redis | redis.asyncio.RedisCluster
    if cluster:
        redis_client = _from_url(redis.asyncio.RedisCluster.from_url, url)
    else:
        redis_client = _from_url(redis.asyncio.Redis.from_url, url)
    try:
        yield adapt(redis_client)
    finally:
        with anyio.CancelScope(shield=True):
            await redis_client.aclose()


@asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[RedisClient]:
    """A Redis client for ``url`` that fits the running event loop, closed at the end.

    For :class:`~agile_async.scaleout.RedisCampaign` and
    :class:`~agile_async.scaleout.RedisLimiter` when all you have is a URL (what
    ``agile-sms campaign work --redis URL`` does): redis-py on asyncio when it is installed,
    otherwise coredis (the only choice on trio); ``redis+cluster://host:port`` (or
    ``rediss+cluster://``) opens a cluster client from any one node.

    Raises:
        ImportError: the client library the event loop needs is missing; the message names
            the extra to install.
        ConfigurationError: ``url`` cannot be read (shown without its password).
    """
    async with connect(url) as host:
        # connect() opened one of the clients RedisClient names; the host keeps only the
        # narrow view of it that scripts need.
        yield cast("RedisClient", host.client)
