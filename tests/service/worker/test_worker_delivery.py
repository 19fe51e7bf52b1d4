"""Deliveries against a real receiver: retries, timeouts, refused connections, dead letter."""

import asyncio
import dataclasses
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.deliveries import DeliveryLog, DeliveryQuery, DeliveryState
from service.delivery import EVENT_SCHEMA
from service.domain import State
from service.store import Store

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


async def test_a_failing_receiver_gets_retries_then_exactly_one_success(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    receiver.failures = 2
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker()

    await retries.until(in_state(redis_client, held, "delivered"), what="delivery")

    assert [arrival.status for arrival in receiver.arrivals] == [500, 500, 200]
    assert all(arrival.signature_ok for arrival in receiver.arrivals)
    assert [arrival.event["id"] for arrival in receiver.arrivals] == [held] * 3
    stored = await record(redis_client, held)
    assert (stored["attempts"], stored["last_status"], stored["last_error"]) == ("3", "200", "")


@pytest.mark.parametrize(
    ("ahead_seconds", "least", "most"),
    # FAST's first backoff draws at most 30 s, and a Retry-After counts up to its 60 s cap.
    [(45, 45_000, 45_000), (-45, 0, 30_000), (3600, 60_000, 60_000)],
)
async def test_a_retry_after_date_is_waited_for_by_the_workers_clock(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
    ahead_seconds: int,
    least: int,
    most: int,
) -> None:
    # The workers' clock is a day behind the wall clock: only it says when the date comes.
    retries.clock.advance(-86_400)
    written = int(retries.clock())
    when = datetime.fromtimestamp(written + ahead_seconds, UTC)
    receiver.retry_after = format_datetime(when, usegmt=True)
    receiver.failures = 1
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker()

    async def retried() -> bool:
        # Settled, not only taken: a claim counts the attempt before the receiver answers.
        stored = await record(redis_client, held)
        return (stored.get("attempts"), stored.get("last_status")) == ("1", "500")

    await eventually(retried, what="a failed attempt")
    stored = await record(redis_client, held)
    # Whole seconds in the date: the wait ends at the date's second, up to a second early,
    # less the time since the date was written, however long the attempt took.
    waited = int(stored["updated_at"]) - written * 1000
    wait = int(stored["next_attempt_at"]) - int(stored["updated_at"])
    assert least - waited - 1_000 <= wait <= most, (receiver.retry_after, wait, waited)


async def test_each_attempt_is_signed_with_the_time_it_is_sent_by_the_workers_clock(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    # The workers' clock (the receiver's too) is a day behind the wall clock, and the retry is
    # asked to wait an hour: it is due a minute later (FAST's cap), when the test moves it on.
    retries.clock.advance(-86_400)
    receiver.retry_after = "3600"
    receiver.failures = 1
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker()

    await retries.until(in_state(redis_client, held, "delivered"), what="delivery")

    first, retry = receiver.arrivals
    assert (first.status, retry.status) == (500, 200)
    assert first.signed_at is not None
    assert retry.signed_at is not None
    # Each signed in the whole second it was sent, by the receiver's clock, not the wall's.
    assert first.received_at - 10 < first.signed_at <= first.received_at
    assert retry.received_at - 10 < retry.signed_at <= retry.received_at
    assert retry.signed_at - first.signed_at >= 59


async def test_during_a_rotation_events_are_signed_with_the_old_secret_too(
    redis_client: aioredis.Redis,
    store: Store,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
) -> None:
    # The receiver still checks with the secret it had before the rotation.
    await create_site(receiver.url)
    now = now_ms()
    await store.rotate_secret(SITE, "whsec_rotated", now, now + 60_000)
    held = await events.held("c1")
    await start_worker()

    await eventually(in_state(redis_client, held, "delivered"), what="delivery")
    assert [arrival.signature_ok for arrival in receiver.arrivals] == [True]


async def test_the_payload_describes_the_decision(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
) -> None:
    await create_site(receiver.url)
    await events.held("c1", article="article-9")
    rejected = await events.decide("c1", State.REJECTED, actor="mod_7")
    await start_worker()

    await eventually(in_state(redis_client, rejected, "delivered"), what="delivery")

    event: dict[str, Any] = receiver.delivered()[-1]
    # The body has exactly the fields the OpenAPI document promises.
    assert set(event) == set(EVENT_SCHEMA["required"]) == set(EVENT_SCHEMA["properties"])
    assert event["type"] in EVENT_SCHEMA["properties"]["type"]["enum"]
    assert set(event["comment"]) == set(EVENT_SCHEMA["properties"]["comment"]["required"])
    created_at = event.pop("created_at")
    assert event == {
        "id": rejected,
        "type": "comment.rejected",
        "site": SITE,
        "comment": {
            "id": "c1",
            "article_id": "article-9",
            "state": "rejected",
            "reasons": ["OFF_TOPIC"],
            "decided_by": "mod_7",
            "version": 2,
        },
    }
    assert created_at.endswith("Z")


async def test_a_hanging_receiver_times_out_and_is_retried(
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
    await start_worker(dataclasses.replace(FAST, timeout_seconds=0.2))

    async def timed_out() -> bool:
        return "timed out" in (await record(redis_client, held)).get("last_error", "")

    await eventually(timed_out, what="a timeout to be recorded")
    assert (await record(redis_client, held))["state"] == "pending"
    receiver.hang.set()

    await retries.until(in_state(redis_client, held, "delivered"), what="delivery")
    assert int((await record(redis_client, held))["attempts"]) >= 2


async def test_a_receiver_that_is_down_ends_in_the_dead_letter(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    await create_site(closed_port_url())
    held = await events.held("c1")
    await start_worker(dataclasses.replace(FAST, max_attempts=3))

    await retries.until(in_state(redis_client, held, "failed"), what="the dead letter")

    stored = await record(redis_client, held)
    assert stored["attempts"] == "3"
    assert stored["last_status"] == ""
    assert "Connect" in stored["last_error"]
    failed = await log.page(SITE, DeliveryQuery(state=DeliveryState.FAILED))
    assert [item.id for item in failed.items] == [held]
    assert await redis_client.zscore(KEYS.deliveries_due(SITE), held) is None
    pending = await log.page(SITE, DeliveryQuery(state=DeliveryState.PENDING))
    assert pending.items == ()


async def test_a_callback_url_that_cannot_be_encoded_backs_off_into_the_dead_letter(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    # The API refuses such a URL now; one stored before that must still end, not loop.
    await create_site("http://hooks..example.com/civility")
    held = await events.held("c1")
    await start_worker(dataclasses.replace(FAST, max_attempts=3))

    await retries.until(in_state(redis_client, held, "failed"), what="the dead letter")

    stored = await record(redis_client, held)
    assert stored["attempts"] == "3"
    assert stored["last_error"].startswith("UnicodeError")


async def test_a_site_without_a_callback_url_records_no_deliveries(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
) -> None:
    await create_site(None)
    await events.held("c1")
    await start_worker()

    async def admitted() -> bool:
        groups = await redis_client.xinfo_groups(KEYS.outbox(SITE))
        return bool(groups) and groups[0]["lag"] == 0

    await eventually(admitted, what="the outbox to be read")
    for state in DeliveryState:
        assert (await log.page(SITE, DeliveryQuery(state=state))).items == ()


async def test_a_site_with_broken_data_does_not_stop_the_others(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    start_worker: StartWorker,
) -> None:
    # One site's outbox cannot be read (nor trimmed); another's due delivery cannot be leased.
    await create_site(receiver.url, site_id="broken")
    await redis_client.set(KEYS.outbox("broken"), "not a stream")
    await create_site(receiver.url, site_id="tangled")
    await redis_client.zadd(KEYS.deliveries_due("tangled"), {"evt_x": 0})
    await redis_client.set(KEYS.delivery("tangled", "evt_x"), "not a record")
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker()

    await eventually(in_state(redis_client, held, "delivered"), what="the healthy site's delivery")
    assert [event["id"] for event in receiver.delivered()] == [held]
