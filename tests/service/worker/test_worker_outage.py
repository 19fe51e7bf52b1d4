"""The webhook worker and the second look while Redis refuses writes: a primary short of the
replicas its ``min-replicas-to-write`` asks for answers every write with ``NOREPLICAS``, as it
does when a failover costs it its replica.

Such a refusal comes back among a pass's per-site replies (each site's call is one command of
one pipeline), where one site's broken data comes back too; it is the store being away, not
every site's data being broken. These tests run on a ``redis-server`` of their own, whose
settings they change.
"""

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from service.deliveries import Admission, DeliveryLog
from service.domain import State
from service.errors import StoreUnavailable
from service.second_look import SecondLookWorker
from service.store import Store
from service.worker import TRIM_INTERVAL_SECONDS, Worker
from tests.clocks import Clock as WallClock
from tests.service.test_domain_outage import (
    REFUSALS,
    OwnRedis,
    own_redis_server,
    quick_client,
    refuse_writes_as,
)

from .support import FAST, KEYS, SITE, CreateSite, Events, Receiver, StartWorker, eventually, now_ms
from .test_second_look import HOSTILE, SETTINGS, Clock, ScriptedBlend, publisher

SITES = ("blog", "forum", SITE)
HOSTILE_TEXT = "People like you are what is wrong here."


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    yield from own_redis_server()


@pytest.fixture
async def redis_client(own_redis: OwnRedis) -> AsyncIterator[aioredis.Redis]:
    """The client every fixture of this folder uses (the store, the delivery log, the workers)."""
    async for client in quick_client(own_redis):
        yield client


async def refuse_writes(client: aioredis.Redis) -> None:
    # No replica is connected, so every write is refused until the setting is lifted.
    await client.config_set("min-replicas-to-write", "1")


async def take_writes(client: aioredis.Redis) -> None:
    await client.config_set("min-replicas-to-write", "0")


async def changes(client: aioredis.Redis) -> int:
    """Redis's own count of the writes it made (this server never saves, so it only grows)."""
    return int((await client.info("persistence"))["rdb_changes_since_last_save"])


def service_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("service.") and record.levelno == level
    ]


async def test_admitting_while_redis_refuses_writes_is_the_store_unavailable_not_each_sites(
    redis_client: aioredis.Redis,
    store: Store,
    log: DeliveryLog,
    create_site: CreateSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_site("http://127.0.0.1:9/hooks", site_id="broken")
    await redis_client.set(KEYS.outbox("broken"), "not a stream")
    for site in SITES:
        await create_site("http://127.0.0.1:9/hooks", site_id=site)
        await Events(store, site).held("c1")
    sites = ["broken", *SITES]
    await refuse_writes(redis_client)
    written = await changes(redis_client)

    with caplog.at_level(logging.INFO), pytest.raises(StoreUnavailable) as refused:
        await log.admit_all(sites, 10, now_ms())

    assert refused.value.why.startswith("NOREPLICAS Not enough good replicas to write.")
    # Neither the sites' events nor the broken site are reported: the store was away.
    assert [record for record in caplog.records if record.name.startswith("service.")] == []
    assert await changes(redis_client) == written
    assert await redis_client.xinfo_groups(KEYS.outbox(SITE)) == []

    # Once Redis takes writes again the same call admits every event; the broken site is
    # still reported on its own and holds nobody up.
    await take_writes(redis_client)
    with caplog.at_level(logging.INFO):
        admissions = await log.admit_all(sites, 10, now_ms())

    assert admissions == [Admission(0, 0), Admission(1, 1), Admission(1, 1), Admission(1, 1)]
    [error] = service_lines(caplog, logging.ERROR)
    assert error.startswith("admitting the outbox of site 'broken' failed: WRONGTYPE")


async def test_a_worker_pass_while_redis_refuses_writes_warns_and_delivers_once_it_takes_them(
    redis_client: aioredis.Redis,
    store: Store,
    create_site: CreateSite,
    receiver: Receiver,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = {}
    for site in SITES:
        await create_site(receiver.url, site_id=site)
        held[site] = await Events(store, site).held("c1")
    await refuse_writes(redis_client)
    written = await changes(redis_client)

    async def warned() -> bool:
        return bool(service_lines(caplog, logging.WARNING))

    async def delivered() -> bool:
        return {event["site"]: event["id"] for event in receiver.delivered()} == held

    with caplog.at_level(logging.INFO):
        worker = await start_worker()
        await eventually(warned, what="a warning")
        assert await changes(redis_client) == written
        assert receiver.arrivals == []
        await take_writes(redis_client)
        await eventually(delivered, what="every site's event delivered")

    assert service_lines(caplog, logging.ERROR) == []
    # One line a pass, naming the store's refusal, none a site.
    warnings = service_lines(caplog, logging.WARNING)
    unavailable = re.compile(
        rf"worker {re.escape(worker.name)}: Redis is unavailable \(NOREPLICAS Not enough good "
        r"replicas to write\..*\), trying again"
    )
    assert warnings
    assert all(unavailable.fullmatch(line) for line in warnings), warnings
    assert len(receiver.arrivals) == len(SITES)


async def test_a_second_look_pass_while_redis_refuses_writes_warns_and_looks_once_it_takes_them(
    redis_client: aioredis.Redis,
    store: Store,
    create_site: CreateSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    blend = ScriptedBlend()
    blend.scores[HOSTILE_TEXT] = HOSTILE
    publish = publisher(store, clock)
    for site in SITES:
        await create_site(None, site_id=site)
        await publish("c1", HOSTILE_TEXT, site=site)
    queued = {
        site: await redis_client.zrange(KEYS.second_look_queue(site), 0, -1, withscores=True)
        for site in SITES
    }
    looker = SecondLookWorker(redis_client, blend, SETTINGS, prefix="civ", clock=clock)
    await refuse_writes(redis_client)
    written = await changes(redis_client)

    async def warned() -> bool:
        return bool(service_lines(caplog, logging.WARNING))

    async def looked() -> bool:
        states = [await redis_client.hget(KEYS.comment(site, "c1"), "state") for site in SITES]
        return states == [State.PENDING.value] * len(SITES)

    with caplog.at_level(logging.INFO):
        running = asyncio.create_task(looker.run())
        try:
            await eventually(warned, what="a warning")
            assert await changes(redis_client) == written
            for site in SITES:
                queue = KEYS.second_look_queue(site)
                assert await redis_client.zrange(queue, 0, -1, withscores=True) == queued[site]
            assert blend.batches == []
            await take_writes(redis_client)
            await eventually(looked, what="every site's comment held by its second look")
        finally:
            looker.stop()
            await running

    assert service_lines(caplog, logging.ERROR) == []
    warnings = service_lines(caplog, logging.WARNING)
    unavailable = re.compile(
        r"second look: Redis is unavailable \(NOREPLICAS Not enough good replicas to write\."
        r".*\), trying again"
    )
    assert warnings
    assert all(unavailable.fullmatch(line) for line in warnings), warnings
    # Each comment was taken, and looked at, once: none was lost or leased away meanwhile.
    assert sorted(text for batch in blend.batches for text in batch) == [HOSTILE_TEXT] * 3


async def test_an_outbox_trim_redis_refused_is_tried_again_on_the_next_pass(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await create_site("http://127.0.0.1:9/hooks")
    outbox = KEYS.outbox(SITE)

    async def add_entries(count: int) -> None:
        for _ in range(count):
            # Entries naming no event are admitted without a delivery: nothing is sent.
            await redis_client.xadd(outbox, {"type": "comment.approved", "site": SITE})

    await add_entries(12)
    clock = WallClock()
    worker = Worker(
        redis_client, dataclasses.replace(FAST, outbox_keep=1), prefix="civ", clock=clock
    )
    trim = worker.deliveries.trim_outbox

    async def refused_from_now(site: str, keep: int) -> int:
        # A failover that lands after the pass admitted the entries, as it trims them.
        await refuse_writes(redis_client)
        return await trim(site, keep)

    async with aiohttp.ClientSession() as session:
        with monkeypatch.context() as patched:
            patched.setattr(worker.deliveries, "trim_outbox", refused_from_now)
            with pytest.raises(StoreUnavailable):
                await worker.work_once(session)
        assert await redis_client.xlen(outbox) == 12
        await take_writes(redis_client)

        # The clock has not moved: the next pass trims all the same.
        await worker.work_once(session)
        assert await redis_client.xlen(outbox) == 1

        # A trim that was done is the last for the next 30 s of the worker's clock.
        await add_entries(5)
        await worker.work_once(session)
        assert await redis_client.xlen(outbox) == 6
        clock.advance(TRIM_INTERVAL_SECONDS)
        await worker.work_once(session)
        assert await redis_client.xlen(outbox) == 1


@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_a_worker_pass_redis_refuses_logs_its_whole_reply(
    redis_client: aioredis.Redis,
    store: Store,
    log: DeliveryLog,
    create_site: CreateSite,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    refusal: str,
) -> None:
    await create_site("http://127.0.0.1:9/hooks")
    events = Events(store, SITE)
    await events.held("c1")
    # Admitted once, so the outbox has its group: a full Redis would refuse to make it.
    await log.admit(SITE, 10, now_ms())
    await events.held("c2")
    await refuse_writes_as(redis_client, refusal)

    async def warned() -> bool:
        return bool(service_lines(caplog, logging.WARNING))

    with caplog.at_level(logging.INFO):
        worker = await start_worker()
        await eventually(warned, what="a warning")

    said = re.compile(
        rf"worker {re.escape(worker.name)}: Redis is unavailable "
        rf"\({re.escape(REFUSALS[refusal])}.*\), trying again"
    )
    warning = service_lines(caplog, logging.WARNING)[0]
    assert said.fullmatch(warning), warning
