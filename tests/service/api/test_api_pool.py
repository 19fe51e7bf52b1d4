"""The Redis connection pool: a request that finds every connection busy waits for one, up to
CIVILITY_REDIS_POOL_TIMEOUT_SECONDS, and only then answers 503."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection

from service.appkeys import REDIS
from service.cluster_pool import HELD_OUTSIDE_PLACES, ConnectionPlaces, WaitingCluster
from service.connection import connect
from service.errors import StoreUnavailable
from service.settings import Settings
from service.store.scripts import store_errors
from tests.sentinel import SentinelSetup
from tests.service.api.conftest import api_settings

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
POOL_SIZE = 4
POOL_WAIT_SECONDS = 0.5


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return dataclasses.replace(
        api_settings(redis_url),
        redis_max_connections=POOL_SIZE,
        redis_pool_timeout_seconds=POOL_WAIT_SECONDS,
    )


async def take_every_connection(
    client: Client,
) -> tuple[aioredis.BlockingConnectionPool, list[Any]]:
    redis = client.app[REDIS]
    assert isinstance(redis, aioredis.Redis)
    pool = redis.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == POOL_SIZE
    taken: list[Connection] = []
    while pool.can_get_connection():
        taken.append(await pool.get_connection())  # type: ignore[no-untyped-call]
    return pool, taken


async def test_a_pool_busy_past_the_bound_answers_503(
    client: Client, site: dict[str, str], moderator: Headers
) -> None:
    pool, taken = await take_every_connection(client)
    try:
        response = await client.get("/v1/sites/news/queue", headers=moderator(site))
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "store_unavailable"
    finally:
        for connection in taken:
            await pool.release(connection)
    response = await client.get("/v1/sites/news/queue", headers=moderator(site))
    assert response.status == 200


async def test_a_request_waits_for_a_connection_freed_within_the_bound(
    client: Client, site: dict[str, str], moderator: Headers
) -> None:
    pool, taken = await take_every_connection(client)

    async def give_back() -> None:
        # Given back once the request is waiting: a tenth of the bound later.
        await asyncio.sleep(POOL_WAIT_SECONDS / 10)
        for connection in taken:
            await pool.release(connection)

    released = asyncio.create_task(give_back())
    response = await client.get("/v1/sites/news/queue", headers=moderator(site))
    await released
    assert response.status == 200


async def test_the_sentinel_primarys_pool_waits_within_the_bound_too(
    redis_sentinel: SentinelSetup,
) -> None:
    settings = Settings(
        redis_url=redis_sentinel.url,
        redis_max_connections=2,
        redis_pool_timeout_seconds=POOL_WAIT_SECONDS,
    )
    connection = connect(settings)
    try:
        assert isinstance(connection.client, aioredis.Redis)
        pool = connection.client.connection_pool
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert pool.max_connections == 2
        taken = [await pool.get_connection() for _ in range(2)]  # type: ignore[no-untyped-call]
        with pytest.raises(redis.exceptions.ConnectionError, match="No connection available"):
            await connection.client.ping()
        freed = asyncio.get_running_loop().call_later(
            POOL_WAIT_SECONDS / 10, lambda: asyncio.ensure_future(pool.release(taken.pop()))
        )
        assert await connection.client.ping() is True
        freed.cancel()
        for held in taken:
            await pool.release(held)
    finally:
        await connection.aclose()


@pytest.fixture
async def waiting_cluster(redis_cluster_port: int) -> AsyncIterator[WaitingCluster]:
    """The cluster client ``connect`` makes, with two connections per process."""
    settings = Settings(
        redis_url=f"redis+cluster://127.0.0.1:{redis_cluster_port}",
        redis_max_connections=2,
        redis_pool_timeout_seconds=POOL_WAIT_SECONDS,
    )
    connection = connect(settings)
    assert isinstance(connection.client, WaitingCluster)
    try:
        yield connection.client
    finally:
        await connection.aclose()


async def test_on_a_cluster_more_commands_and_pipelines_than_connections_all_succeed(
    cluster: RedisCluster, waiting_cluster: WaitingCluster
) -> None:
    async def pipelined(number: int) -> list[Any]:
        async with waiting_cluster.pipeline(transaction=number % 2 == 0) as pipe:
            pipe.incr("{burst}:pipelined")
            pipe.sadd("{burst}:numbers", number)
            return await pipe.execute()

    # All sent at once, to the one node that holds the slot: 80 users of 2 connections.
    await asyncio.gather(
        *(waiting_cluster.incr("{burst}:commands") for _ in range(40)),
        *(pipelined(number) for number in range(40)),
    )
    node = waiting_cluster.get_node_from_key("{burst}:commands")
    assert node is not None
    assert len(node._connections) <= 2 + HELD_OUTSIDE_PLACES
    assert await cluster.get("{burst}:commands") == "40"
    assert await cluster.get("{burst}:pipelined") == "40"
    assert await cluster.scard("{burst}:numbers") == 40


async def occupy(places: ConnectionPlaces, taken: asyncio.Event, freed: asyncio.Event) -> None:
    async with places.place():
        taken.set()
        await freed.wait()


async def set_in_a_pipeline(client: RedisCluster, key: str, value: str) -> None:
    async with client.pipeline() as pipe:
        pipe.set(key, value)
        await pipe.execute()


async def test_on_a_cluster_a_wait_past_the_bound_is_the_store_being_unavailable(
    cluster: RedisCluster, waiting_cluster: WaitingCluster
) -> None:
    places = waiting_cluster.places
    freed = asyncio.Event()
    taken = [asyncio.Event() for _ in range(places.size)]
    holders = [asyncio.create_task(occupy(places, event, freed)) for event in taken]
    try:
        await asyncio.gather(*(event.wait() for event in taken))
        with pytest.raises(StoreUnavailable), store_errors():
            await waiting_cluster.set("{busy}:key", "lost")
        with pytest.raises(StoreUnavailable), store_errors():
            await set_in_a_pipeline(waiting_cluster, "{busy}:key", "lost")
        # Given back once the command is waiting: a tenth of the bound later.
        asyncio.get_running_loop().call_later(POOL_WAIT_SECONDS / 10, freed.set)
        assert await waiting_cluster.set("{busy}:key", "kept") is True
        await asyncio.gather(*holders)
    finally:
        freed.set()
    assert await cluster.get("{busy}:key") == "kept"
