"""The Redis connection pool: a request that finds every connection busy waits for one, up to
CIVILITY_REDIS_POOL_TIMEOUT_SECONDS, and only then answers 503."""

import asyncio
import contextlib
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
BURST_WAIT_SECONDS = 30.0


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


def waiting_for_a_connection(
    pool: aioredis.BlockingConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> asyncio.Event:
    """An event set once a caller finds no free connection: the pool's condition checks
    ``can_get_connection`` and, on False, registers the caller as its waiter in the same step,
    so a connection given back after the event wakes that caller."""
    waiting = asyncio.Event()
    can_get_connection = pool.can_get_connection

    def checked() -> bool:
        free = bool(can_get_connection())
        if not free:
            waiting.set()
        return free

    monkeypatch.setattr(pool, "can_get_connection", checked)
    return waiting


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
    client: Client, site: dict[str, str], moderator: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, taken = await take_every_connection(client)
    waiting = waiting_for_a_connection(pool, monkeypatch)

    async def give_back() -> None:
        # Given back once the request waits for a connection, not before.
        await waiting.wait()
        for connection in taken:
            await pool.release(connection)

    released = asyncio.create_task(give_back())
    response = await client.get("/v1/sites/news/queue", headers=moderator(site))
    assert waiting.is_set()  # else the connections are never given back
    await released
    assert response.status == 200


async def test_connections_redis_closed_are_replaced_without_a_failed_request(
    client: Client, site: dict[str, str], moderator: Headers, redis_client: aioredis.Redis
) -> None:
    for _ in range(POOL_SIZE):
        assert (await client.get("/v1/sites/news/queue", headers=moderator(site))).status == 200
    # Redis drops the app's pooled connections (a restart, a failover, idle clients dropped);
    # only this test's database: other runs share the server.
    own = await redis_client.client_id()
    database = redis_client.connection_pool.connection_kwargs.get("db", 0)
    closed = 0
    for listed in await redis_client.client_list():
        if int(listed["db"]) == database and int(listed["id"]) != own:
            await redis_client.client_kill_filter(_id=listed["id"])
            closed += 1
    assert closed >= 1

    answers = [
        (await client.get("/v1/sites/news/queue", headers=moderator(site))).status
        for _ in range(POOL_SIZE)
    ]

    assert answers == [200] * POOL_SIZE


async def test_the_sentinel_primarys_pool_waits_within_the_bound_too(
    redis_sentinel: SentinelSetup, monkeypatch: pytest.MonkeyPatch
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
        waiting = waiting_for_a_connection(pool, monkeypatch)

        async def give_one_back() -> None:
            await waiting.wait()
            await pool.release(taken.pop())

        freed = asyncio.create_task(give_one_back())
        assert await connection.client.ping() is True
        assert waiting.is_set()
        await freed
        for held in taken:
            await pool.release(held)
    finally:
        await connection.aclose()


@contextlib.asynccontextmanager
async def cluster_client(port: int, pool_timeout: float) -> AsyncIterator[WaitingCluster]:
    """The cluster client ``connect`` makes, with two connections per process."""
    settings = Settings(
        redis_url=f"redis+cluster://127.0.0.1:{port}",
        redis_max_connections=2,
        redis_pool_timeout_seconds=pool_timeout,
    )
    connection = connect(settings)
    assert isinstance(connection.client, WaitingCluster)
    try:
        yield connection.client
    finally:
        await connection.aclose()


@pytest.fixture
async def waiting_cluster(redis_cluster_port: int) -> AsyncIterator[WaitingCluster]:
    async with cluster_client(redis_cluster_port, POOL_WAIT_SECONDS) as client:
        yield client


@pytest.fixture
async def patient_cluster(redis_cluster_port: int) -> AsyncIterator[WaitingCluster]:
    """A bound no burst reaches, even on a loaded machine: the burst must queue, not time out."""
    async with cluster_client(redis_cluster_port, BURST_WAIT_SECONDS) as client:
        yield client


async def test_on_a_cluster_more_commands_and_pipelines_than_connections_all_succeed(
    cluster: RedisCluster, patient_cluster: WaitingCluster
) -> None:
    async def pipelined(number: int) -> list[Any]:
        async with patient_cluster.pipeline(transaction=number % 2 == 0) as pipe:
            pipe.incr("{burst}:pipelined")
            pipe.sadd("{burst}:numbers", number)
            return await pipe.execute()

    # All sent at once, to the one node that holds the slot: 80 users of 2 connections.
    await asyncio.gather(
        *(patient_cluster.incr("{burst}:commands") for _ in range(40)),
        *(pipelined(number) for number in range(40)),
    )
    node = patient_cluster.get_node_from_key("{burst}:commands")
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


def waiting_for_a_place(places: ConnectionPlaces, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set once a command finds every place taken: the semaphore registers it as a
    waiter in the same step, so a place given back after the event goes to that command."""
    waiting = asyncio.Event()
    semaphore = places._places
    acquire = semaphore.acquire

    async def acquire_noting_the_wait() -> bool:
        if semaphore.locked():
            waiting.set()
        return await acquire()

    monkeypatch.setattr(semaphore, "acquire", acquire_noting_the_wait)
    return waiting


async def test_on_a_cluster_a_wait_past_the_bound_is_the_store_being_unavailable(
    cluster: RedisCluster, waiting_cluster: WaitingCluster, monkeypatch: pytest.MonkeyPatch
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
        # Given back once the command waits for a place, not before.
        waiting = waiting_for_a_place(places, monkeypatch)

        async def give_back() -> None:
            await waiting.wait()
            freed.set()

        giving_back = asyncio.create_task(give_back())
        assert await waiting_cluster.set("{busy}:key", "kept") is True
        assert waiting.is_set()
        await giving_back
        await asyncio.gather(*holders)
    finally:
        freed.set()
    assert await cluster.get("{busy}:key") == "kept"
