"""Webhook worker tests: real Redis, a real HTTP receiver on a loopback port, real scripts.

Events come from the store's own state changes (intake and decisions), so the worker reads
exactly what the service writes to a site's outbox.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from service.deliveries import DeliveryLog
from service.settings import DeliverySettings
from service.store import Store
from service.store.scripts import RedisClient
from service.worker import Worker
from tests.clocks import Clock
from tests.conftest import TOPOLOGIES, url_of_topology
from tests.records import site_record

from .support import (
    FAST,
    KEYS,
    SECRET,
    SITE,
    CreateSite,
    Events,
    Receiver,
    Retries,
    StartWorker,
    now_ms,
)


@pytest.fixture
async def receiver(retries: Retries) -> AsyncIterator[Receiver]:
    # The host's clock is the workers': a test moving it on moves both.
    target = Receiver(clock=retries.clock)
    app = web.Application()
    app.router.add_post("/hooks", target.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    target.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield target
    finally:
        if target.hang is not None:
            target.hang.set()
        await runner.cleanup()


@pytest.fixture(params=TOPOLOGIES)
def topology_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The worker suite runs on one server, on the three-node cluster and behind Sentinel (a
    failover moves the primary it reads the outbox from)."""
    return url_of_topology(request, request.param, redis_url)


@pytest.fixture
def redis_client(topology_client: RedisClient) -> RedisClient:
    return topology_client


@pytest.fixture
def store(redis_client: aioredis.Redis) -> Store:
    return Store(redis_client, prefix="civ")


@pytest.fixture
def log(redis_client: aioredis.Redis) -> DeliveryLog:
    return DeliveryLog(redis_client, prefix="civ")


@pytest.fixture
def create_site(store: Store, redis_client: aioredis.Redis) -> CreateSite:
    async def create(callback_url: str | None, site_id: str = SITE, secret: str = SECRET) -> None:
        await store.create_site(site_record(site_id, now_ms(), secret, callback_url))
        assert await redis_client.sismember(KEYS.sites(), site_id)

    return create


@pytest.fixture
def events(store: Store) -> Events:
    return Events(store)


@pytest.fixture
def retries() -> Retries:
    return Retries(Clock())


@pytest.fixture
async def start_worker(
    redis_client: aioredis.Redis, retries: Retries
) -> AsyncIterator[StartWorker]:
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    async def start(settings: DeliverySettings = FAST, name: str | None = None) -> Worker:
        worker = Worker(redis_client, settings, prefix="civ", name=name, clock=retries.clock)
        retries.workers.append(worker)
        running.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, _ in running:
        worker.stop()
    await asyncio.gather(*(task for _, task in running))
