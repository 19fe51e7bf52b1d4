"""The one way every civility process reaches Redis: ``connect(settings)``.

``REDIS_URL`` names one server, the seed nodes of a Redis Cluster or a Sentinel service
(``service.redis_url.parse_redis_url``); the same store, scripts and worker run on each, because
every multi-key script stays inside one site's hash slot.
"""

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.cluster
import redis.sentinel
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from service.cluster_pool import WaitingCluster
from service.env_reader import SettingsError
from service.redis_url import RedisTarget, parse_redis_url, without_credentials
from service.settings import Settings
from service.store.scripts import RedisClient

CONNECT_TIMEOUT_SECONDS = 2.0

BlockingClient = redis.Redis | redis.cluster.RedisCluster


@dataclass(frozen=True, slots=True)
class Connection:
    """A Redis client with the key prefix it is used under; ``aclose`` releases everything
    it opened (for Sentinel, the sentinels' connections as well)."""

    client: RedisClient
    prefix: str
    sentinels: tuple[aioredis.Redis, ...] = ()

    async def aclose(self) -> None:
        await self.client.aclose()
        for sentinel in self.sentinels:
            await sentinel.aclose()


def connect(settings: Settings) -> Connection:
    """A client of the Redis ``settings`` name; nothing is sent until first used."""
    target = settings.redis_target
    if target is None:
        raise SettingsError("REDIS_URL is required")
    # Fail fast while Redis is down: the caller gets a 503 now rather than a hung request.
    socket_timeout = settings.redis_socket_timeout_seconds
    if target.topology == "cluster":
        cluster = _cluster(target, socket_timeout, settings)
        return Connection(cluster, settings.redis_prefix)
    if target.topology == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            list(target.nodes), **_sentinel_options(target, socket_timeout)
        )
        primary: aioredis.Redis = sentinel.master_for(
            target.service,
            connection_pool_class=WaitingSentinelPool,
            db=target.db,
            username=target.username,
            password=target.password,
            decode_responses=True,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_seconds,
        )
        return Connection(primary, settings.redis_prefix, tuple(sentinel.sentinels))
    # A burst that finds every connection busy waits (bounded) for one, rather than failing at
    # once as redis-py's default pool does: only a real outage answers 503.
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=socket_timeout,
        retry=_once_on_a_closed_connection(),
    )
    single: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return Connection(single, settings.redis_prefix)


def _once_on_a_closed_connection() -> Retry:
    """A command is sent once more, on a new connection, when its pooled connection turns out
    closed (Redis restarted or dropped idle clients): without it each of the pool's connections
    answers one request 503 first. Not on a timeout: the command may still run. (Not for
    Sentinel's primary either: its connections find the new primary themselves after a failover,
    and a retry there sent the command to the demoted one again.)"""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


class WaitingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The Sentinel primary's pool, waiting (bounded) for a free connection like the single
    server's: Sentinel finds the primary, the blocking pool hands out its connections."""


def _cluster(target: RedisTarget, socket_timeout: float, settings: Settings) -> WaitingCluster:
    # redis-py's cluster client has no waiting pool: WaitingCluster makes a burst wait for a
    # free connection, as the single server's pool does.
    return WaitingCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.redis_pool_timeout_seconds,
        **_cluster_options(target, socket_timeout),
    )


def refuse_a_refused_redis_url(settings: Settings) -> str | None:
    """Raise ``SettingsError`` when ``REDIS_URL``'s Redis refuses its credentials (or asks for
    some it does not give), or the URL names a database the server does not have; for a Redis
    that does not answer, what the check met, naming the URL without its credentials.

    redis-py authenticates and selects the database on every new connection, so such a URL would
    end each command, request and delivery in Redis's refusal (a refused password even looks
    like Redis being down: 503s and "unavailable" for ever): said once, at start, instead. A
    Redis that does not answer is not refused here: it may come up after the service, which
    answers 503 until it does; the caller says so."""
    target = settings.redis_target
    if target is None or settings.redis_url is None:
        return None
    shown = without_credentials(settings.redis_url)
    try:
        client = connect_blocking(settings.redis_url, settings.redis_socket_timeout_seconds)
        try:
            client.ping()
        finally:
            client.close()
    except redis.AuthenticationError as error:
        given = shown != settings.redis_url  # credentials were taken out
        refusal = "refuses its credentials" if given else "asks for credentials it does not give"
        raise SettingsError(f"REDIS_URL's Redis {refusal} ({error}): {shown}") from None
    except redis.ResponseError as error:
        if target.db == 0:
            return None  # refused for another reason: the commands say which
        raise SettingsError(
            f"REDIS_URL names database {target.db}, which its Redis does not have ({error}): "
            f"{shown}"
        ) from None
    except (redis.RedisError, RedisClusterException) as error:
        return f"REDIS_URL's Redis does not answer ({error}): {shown}"
    return None


def connect_blocking(url: str, socket_timeout: float) -> BlockingClient:
    """A blocking client of the Redis ``url`` names, on the same topologies as ``connect``, for
    the processes that run no event loop (the scoring processes reading site models). A cluster
    client reaches its nodes at once and raises if none answers."""
    target = parse_redis_url(url)
    if target.topology == "cluster":
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in target.nodes
            ],
            **_cluster_options(target, socket_timeout),
        )
    if target.topology == "sentinel":
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), **_sentinel_options(target, socket_timeout)
        )
        primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service,
            db=target.db,
            username=target.username,
            password=target.password,
            decode_responses=True,
        )
        return primary
    return redis.Redis.from_url(
        target.url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=socket_timeout,
    )


def _cluster_options(target: RedisTarget, socket_timeout: float) -> dict[str, Any]:
    """What a cluster client of either kind needs besides its seed nodes."""
    return {
        "username": target.username,
        "password": target.password,
        "ssl": target.tls,
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": socket_timeout,
    }


def _sentinel_options(target: RedisTarget, socket_timeout: float) -> dict[str, Any]:
    """How a Sentinel client of either kind reaches the sentinels, then the primary."""
    timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS, "socket_timeout": socket_timeout}
    return {"sentinel_kwargs": {**timeouts, "ssl": target.tls}, **timeouts, "ssl": target.tls}
