"""The idempotency record's three scripts on a real Redis, at the edges the API tests do not
reach: the exact end of a hold and of a day, the record's own expiry in Redis, and a request
whose record another request has taken."""

import pytest
import redis.asyncio as aioredis

from service.idempotency import (
    KEEP_MS,
    RUNNING_MS,
    Claim,
    IdempotencyStore,
    KeptAnswer,
    digest,
)

T0 = 1_700_000_000_000
ANSWER = KeptAnswer(201, b'{"ok": true}', "application/json")
OTHER_ANSWER = KeptAnswer(200, b'{"other": true}', "application/json")


@pytest.fixture
def store(redis_client: aioredis.Redis) -> IdempotencyStore:
    return IdempotencyStore(redis_client)


def claim(store: IdempotencyStore, body: bytes) -> Claim:
    key = "key-1"
    return store.claim(None, digest("admin", "POST", "/v1/sites", key), key, body)


async def test_a_hold_ends_exactly_when_its_time_is_up(store: IdempotencyStore) -> None:
    first = claim(store, b"{}")
    assert await store.begin(first, T0) == "started"
    assert await store.begin(first, T0 + RUNNING_MS - 1) == "running"
    assert await store.begin(first, T0 + RUNNING_MS) == "started"


async def test_an_answer_is_kept_exactly_a_day_in_the_service_and_in_redis(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    first = claim(store, b"{}")
    assert await store.begin(first, T0) == "started"
    assert await store.finish(first, ANSWER) is True
    assert 0 < await redis_client.pttl(first.record) <= KEEP_MS
    assert await redis_client.pttl(first.record) > KEEP_MS - 60_000
    assert await store.begin(first, T0 + KEEP_MS - 1) == ANSWER
    assert await store.begin(first, T0 + KEEP_MS) == "started"


async def test_a_rerun_after_a_lost_hold_keeps_the_first_requests_day(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    first = claim(store, b"{}")
    assert await store.begin(first, T0) == "started"
    rerun_at = T0 + RUNNING_MS
    assert await store.begin(first, rerun_at) == "started"
    assert await store.finish(first, ANSWER) is True
    # Kept until the first request's day ends, not a day from the rerun.
    assert await redis_client.pttl(first.record) <= KEEP_MS - RUNNING_MS
    assert await store.begin(first, T0 + KEEP_MS) == "started"


async def test_a_request_whose_record_another_body_took_keeps_nothing_and_frees_nothing(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    first, second = claim(store, b'{"n": 1}'), claim(store, b'{"n": 2}')
    assert await store.begin(first, T0) == "started"
    # The first request outlived the day; the key then went to a request with another body.
    assert await store.begin(second, T0 + KEEP_MS) == "started"
    assert await store.finish(first, ANSWER) is False
    await store.release(first)
    assert await store.begin(second, T0 + KEEP_MS + 1) == "running"
    assert await store.finish(second, OTHER_ANSWER) is True
    assert await store.begin(second, T0 + KEEP_MS + 2) == OTHER_ANSWER


async def test_a_late_first_request_neither_replaces_nor_frees_its_retrys_answer(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    first = claim(store, b"{}")
    assert await store.begin(first, T0) == "started"
    # The hold ended, a retry ran the request and kept its answer; then the first one ends.
    assert await store.begin(first, T0 + RUNNING_MS) == "started"
    assert await store.finish(first, ANSWER) is True
    assert await store.finish(first, OTHER_ANSWER) is False
    await store.release(first)
    assert await store.begin(first, T0 + RUNNING_MS + 1) == ANSWER
