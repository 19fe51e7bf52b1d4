"""A Redis Cluster client whose commands wait (bounded) for a free connection.

redis-py's cluster client takes a node's connection synchronously and raises
``MaxConnectionsError`` at once when they are all busy, so a burst larger than the pool fails
while Redis is healthy. Here every command and every pipeline first takes one of
``max_connections`` places, waiting up to ``pool_timeout`` seconds for one; one operation uses
at most one connection per node, so a node that allows one connection more than there are
places (the model-reload subscription holds one outside them) is never found full.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

# Connections a node keeps beyond the places: a pub/sub subscription holds one outside them.
HELD_OUTSIDE_PLACES = 1

# Set while this task (and the tasks it starts) holds a place: a pipeline resends a redirected
# command through the client, which must not wait for a second place it may never get.
_holding: ContextVar[bool] = ContextVar("cluster_place_held", default=False)


class ConnectionPlaces:
    """``size`` places shared by one client's commands and pipelines, handed out in order."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.timeout = timeout
        self._places = asyncio.Semaphore(size)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold a place for the block; ``MaxConnectionsError`` (a ``ConnectionError``, so the
        store's 503) when none is given back within the timeout."""
        if _holding.get():
            yield
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._places.acquire()
        except TimeoutError:
            raise MaxConnectionsError(
                f"No connection available: all {self.size} were busy for {self.timeout} s"
            ) from None
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._places.release()


class WaitingCluster(RedisCluster):
    """``RedisCluster`` whose commands and pipelines wait for a place (``ConnectionPlaces``)."""

    def __init__(self, *, max_connections: int, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections + HELD_OUTSIDE_PLACES, **kwargs)
        self.places = ConnectionPlaces(max_connections, pool_timeout)

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        """redis-py's, but with no node answering raised as a ``ConnectionError``, as a single
        server that does not answer is: the store's 503 and the worker's "unavailable", not an
        internal error with a traceback, while a cluster this client never reached is down."""
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as error:
            if isinstance(error.__cause__, RedisConnectionError | RedisTimeoutError):
                raise RedisConnectionError(str(error)) from error
            raise

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.places.place():
            return await super().execute_command(*args, **kwargs)

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        # redis-py's command protocol declares an event dispatcher no cluster pipeline has.
        return WaitingPipeline(self, self.places, transaction)  # type: ignore[abstract]


class WaitingPipeline(ClusterPipeline):
    """A cluster pipeline that sends its commands once it holds a place."""

    def __init__(
        self, client: RedisCluster, places: ConnectionPlaces, transaction: Any | None
    ) -> None:
        super().__init__(client, transaction)
        self._waiting_places = places

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        async with self._waiting_places.place():
            return await super().execute(raise_on_error, allow_redirections)
