"""Per-comment order: a later event of a comment waits while an earlier one is retried or dead."""

import asyncio
import dataclasses
from collections import defaultdict
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.deliveries import DeliveryLog, DeliveryQuery, DeliveryState, Settle
from service.domain import State
from service.errors import Conflict, NotFound
from service.worker import Worker

from .support import (
    FAST,
    KEYS,
    SITE,
    CreateSite,
    Events,
    Receiver,
    Retries,
    StartWorker,
    closed_port_url,
    eventually,
    in_state,
    now_ms,
    record,
)


def retention(now: int) -> dict[str, Any]:
    return {"now_ms": now, "delivered_ttl_ms": 60_000, "delivered_keep": 10}


async def test_a_later_event_waits_while_the_earlier_one_is_retried(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    receiver.failures = 3
    await create_site(receiver.url)
    held = await events.held("c1")
    approved = await events.decide("c1", State.APPROVED)
    other = await events.held("c2")
    await start_worker(dataclasses.replace(FAST, concurrency=1))

    await retries.until(in_state(redis_client, approved, "delivered"), what="both deliveries")

    ids = [arrival.event["id"] for arrival in receiver.arrivals]
    # c1's first event takes the failures; c2 is not held up behind it.
    assert ids.index(other) < ids.index(approved)
    c1_ids = [event_id for event_id in ids if event_id in (held, approved)]
    assert c1_ids[-1] == approved
    assert approved not in c1_ids[: c1_ids.index(held) + 1]
    assert c1_ids.count(approved) == 1


async def test_many_comments_arrive_in_order_per_comment(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    receiver.failures = 15
    await create_site(receiver.url)
    last = ""
    for comment in range(10):
        await events.held(f"c{comment}")
    for target in (State.APPROVED, State.REJECTED, State.SPAM, State.APPROVED):
        for comment in range(10):
            last = await events.decide(f"c{comment}", target)
    await start_worker()
    await start_worker()

    async def all_delivered() -> bool:
        return len(receiver.delivered()) >= 50

    await retries.until(all_delivered, what="50 deliveries")
    await eventually(in_state(redis_client, last, "delivered"))

    versions: dict[str, list[int]] = defaultdict(list)
    for event in receiver.delivered():
        versions[event["comment"]["id"]].append(event["comment"]["version"])
    assert versions == {f"c{comment}": [1, 2, 3, 4, 5] for comment in range(10)}


async def test_a_dead_letter_holds_back_its_comment_until_redelivered(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    await create_site(closed_port_url())
    held = await events.held("c1")
    approved = await events.decide("c1", State.APPROVED)
    await start_worker(dataclasses.replace(FAST, max_attempts=2))

    await retries.until(in_state(redis_client, held, "failed"), what="the dead letter")
    waiting = await record(redis_client, approved)
    assert (waiting["state"], waiting["attempts"]) == ("pending", "0")
    assert waiting["next_attempt_at"] == ""
    pending = await log.page(SITE, DeliveryQuery(state=DeliveryState.PENDING))
    assert [item.id for item in pending.items] == [approved]

    await redis_client.hset(KEYS.site(SITE), "callback_url", receiver.url)
    redelivered = await log.redeliver(SITE, held, now_ms())
    assert (redelivered.state, redelivered.attempts) == (DeliveryState.PENDING, 0)

    await eventually(in_state(redis_client, approved, "delivered"), what="both deliveries")
    assert [event["id"] for event in receiver.delivered()] == [held, approved]
    assert (await log.page(SITE, DeliveryQuery(state=DeliveryState.FAILED))).items == ()


async def test_a_redelivered_event_rejoins_the_end_of_its_comments_line(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
) -> None:
    await create_site(receiver.url)
    held = await events.held("c1")
    approved = await events.decide("c1", State.APPROVED)
    start = now_ms()
    assert (await log.admit(SITE, 10, start)).read == 2
    [first] = await log.lease(SITE, 10, 5_000, "worker-a:1", start)
    assert first["id"] == held
    assert await log.settle(SITE, first, Settle.DELIVERED, status=200, **retention(start + 1))

    again = await log.redeliver(SITE, held, start + 2)

    assert (again.state, again.attempts, again.delivered_at) == (DeliveryState.PENDING, 0, None)
    assert await redis_client.lrange(KEYS.delivery_line(SITE, "c1"), 0, -1) == [approved, held]
    assert await redis_client.zscore(KEYS.deliveries_due(SITE), held) is None
    assert await redis_client.zscore(KEYS.deliveries_due(SITE), approved) is not None
    assert await redis_client.pttl(KEYS.delivery(SITE, held)) == -1
    with pytest.raises(Conflict) as conflict:
        await log.redeliver(SITE, held, start + 3)
    assert conflict.value.message == f"delivery {held!r} is already pending"
    assert conflict.value.details == {"next_attempt_at": None, "attempts": 0}


async def test_a_delivery_settled_or_redelivered_after_its_site_was_deleted_writes_nothing(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
) -> None:
    await create_site(receiver.url)
    failed = await events.held("c1")
    await events.held("c2")
    start = now_ms()
    assert (await log.admit(SITE, 10, start)).read == 2
    leased = {entry["id"]: entry for entry in await log.lease(SITE, 10, 5_000, "w:1", start)}
    assert await log.settle(SITE, leased.pop(failed), Settle.FAILED, **retention(start + 1))
    [sent] = leased.values()
    # The site goes while an event is sent, its purge past the indexes already.
    pending = KEYS.deliveries(SITE, DeliveryState.PENDING)
    delivered = KEYS.deliveries(SITE, DeliveryState.DELIVERED)
    await redis_client.delete(KEYS.site(SITE), pending, delivered)

    settled = await log.settle(SITE, sent, Settle.DELIVERED, status=200, **retention(start + 2))
    with pytest.raises(NotFound):
        await log.redeliver(SITE, failed, start + 3)

    assert not settled
    assert not await redis_client.exists(pending, delivered)


async def test_redelivering_an_unknown_event_is_not_found(log: DeliveryLog) -> None:
    with pytest.raises(NotFound) as missing:
        await log.redeliver(SITE, "evt_missing", now_ms())
    assert missing.value.message == "delivery 'evt_missing' not found"


async def test_a_lost_lease_cannot_settle(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
) -> None:
    await create_site(receiver.url)
    held = await events.held("c1")
    start = now_ms()
    assert (await log.admit(SITE, 10, start)).read == 1
    [first] = await log.lease(SITE, 10, 1_000, "worker-a:1", start)
    # Worker a stalls past its lease; worker b takes the delivery over.
    [second] = await log.lease(SITE, 10, 1_000, "worker-b:1", start + 1_001)
    assert (first["id"], second["id"], second["attempts"]) == (held, held, "2")

    settle = retention(start + 1_100)
    assert not await log.settle(SITE, first, Settle.DELIVERED, status=200, **settle)
    assert (await record(redis_client, held))["state"] == "pending"
    assert await log.settle(SITE, second, Settle.DELIVERED, status=200, **settle)
    assert (await record(redis_client, held))["state"] == "delivered"
    assert await redis_client.pttl(KEYS.delivery(SITE, held)) > 0


async def test_a_delivery_cut_short_by_a_stop_is_handed_back_due_at_once_and_in_order(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    receiver.hang = asyncio.Event()
    await create_site(receiver.url)
    held = await events.held("c1")
    approved = await events.decide("c1", State.APPROVED)
    settings = dataclasses.replace(FAST, drain_seconds=0.2)
    stopping = Worker(redis_client, settings, prefix="civ", clock=retries.clock)
    running = asyncio.create_task(stopping.run())
    await asyncio.wait_for(receiver.entered.wait(), 30)

    stopping.stop()  # a rolling restart: the receiver is still answering
    await asyncio.wait_for(running, 30)

    stored = await record(redis_client, held)
    assert (stored["state"], stored["attempts"], stored["lease"]) == ("pending", "0", "")
    # Due now by the workers' clock, not once the hour-long lease has run out.
    due = await redis_client.zscore(KEYS.deliveries_due(SITE), held)
    assert due is not None
    assert due <= retries.clock() * 1000
    assert await redis_client.zscore(KEYS.deliveries_due(SITE), approved) is None

    receiver.hang.set()
    await start_worker()  # the clock stays where it is
    await eventually(in_state(redis_client, approved, "delivered"), what="both deliveries")
    stored = await record(redis_client, held)
    assert (stored["state"], stored["attempts"]) == ("delivered", "1")
    ids = [arrival.event["id"] for arrival in receiver.arrivals]
    assert ids.index(held) < ids.index(approved)
    assert ids.count(approved) == 1
