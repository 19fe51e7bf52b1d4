"""The worker on a real three-node Redis Cluster: each site's delivery work stays in one slot."""

import asyncio
from collections import defaultdict

from redis.asyncio.cluster import RedisCluster

from service.deliveries import DeliveryLog, DeliveryQuery, DeliveryState
from service.domain import Policy, Site, State
from service.store import Store
from service.store.records import SiteRecord
from service.times import from_ms
from service.worker import Worker
from tests.clocks import Clock

from .support import FAST, SECRET, Events, Receiver, Retries, now_ms

SITES = ("news", "blog", "forum", "shop")


async def test_sites_in_different_slots_are_delivered_in_order(
    cluster: RedisCluster, receiver: Receiver
) -> None:
    store = Store(cluster)
    log = DeliveryLog(cluster)
    moment = from_ms(now_ms())
    for site_id in SITES:
        site = Site(
            id=site_id,
            name=site_id,
            callback_url=f"{receiver.url}?site={site_id}",
            policy=Policy(),
            created_at=moment,
            updated_at=moment,
        )
        await store.create_site(SiteRecord(site, SECRET, None, 0, f"key-{site_id}"))
    slots = {site_id: cluster.keyslot(store.keys.outbox(site_id)) for site_id in SITES}
    assert len(set(slots.values())) > 1
    expected: list[str] = []
    for site_id in SITES:
        events = Events(store, site_id)
        events.count = 100 * SITES.index(site_id)
        for comment in ("c1", "c2"):
            expected.append(await events.held(comment))
            expected.append(await events.decide(comment, State.APPROVED))
    receiver.failures = 3

    retries = Retries(Clock())
    worker = Worker(cluster, FAST, clock=retries.clock)
    retries.workers.append(worker)
    running = asyncio.create_task(worker.run())
    try:

        async def all_delivered() -> bool:
            return {event["id"] for event in receiver.delivered()} == set(expected)

        # Three nodes' round trips for each of the 16 events' four attempts: a loaded machine
        # (the whole suite beside another run) took longer than the default bound.
        await retries.until(all_delivered, what="every site's events", within=60.0)
    finally:
        worker.stop()
        await running

    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in receiver.delivered():
        versions[event["site"], event["comment"]["id"]].append(event["comment"]["version"])
    assert versions == {(site, comment): [1, 2] for site in SITES for comment in ("c1", "c2")}
    for site_id in SITES:
        page = await log.page(site_id, DeliveryQuery(state=DeliveryState.DELIVERED))
        assert len(page.items) == 4
        assert await log.trim_outbox(site_id, keep=1) == 3
