"""The idempotency record's three scripts on a real Redis, at the edges the API tests do not
reach: the exact end of a hold and of a day, the record's own expiry in Redis, and a request
whose record another request has taken."""

import base64
import hashlib
import hmac

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.idempotency import (
    KEEP_MS,
    RUNNING_MS,
    Claim,
    IdempotencyStore,
    KeptAnswer,
    digest,
    event_id,
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


def test_the_derived_names_are_pinned_so_a_retry_after_an_upgrade_finds_its_own_write(
    store: IdempotencyStore,
) -> None:
    # Record keys, event ids and sealing keys must come out the same on every process and
    # version: a retry served by a newer process still finds the record and the write it made.
    named = hashlib.sha256(b"admin\0POST\0/v1/sites\0key-\xff").hexdigest()
    assert digest("admin", "POST", "/v1/sites", "key-\udcff") == named
    item = hashlib.sha256(b"seed\0c1").hexdigest()[:32]
    assert event_id("seed", "c1") == f"evt_{item}"
    assert event_id("seed") == f"evt_{hashlib.sha256(b'seed' + bytes(1)).hexdigest()[:32]}"
    body = b'{"name": "News"}'
    claimed = store.claim("news", named, "key-1", body)
    body_hash = hashlib.sha256(body).hexdigest()
    assert claimed.record == f"civ:{{news}}:idempotency:{named}"
    assert claimed.body_hash == body_hash
    assert claimed.seed == hashlib.sha256(f"{named}:{body_hash}".encode()).hexdigest()
    sealing = hmac.digest(b"key-1", f"civility answer:{named}".encode(), "sha256")
    assert claimed.sealing_key == sealing


def test_a_day_is_24_hours_and_a_hold_a_minute() -> None:
    assert (KEEP_MS, RUNNING_MS) == (86_400_000, 60_000)


async def test_a_kept_answer_is_a_fresh_nonce_and_the_sealed_body_bound_to_its_record(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    first = claim(store, b"{}")
    assert await store.begin(first, T0) == "started"
    assert await store.finish(first, ANSWER) is True
    stored = await redis_client.hgetall(first.record)
    raw = base64.b64decode(stored["answer"])
    nonce, sealed = raw[:12], raw[12:]
    assert len(sealed) == len(ANSWER.body) + 16
    opened = AESGCM(first.sealing_key).decrypt(nonce, sealed, first.record.encode())
    assert opened == ANSWER.body
    assert (stored["status"], stored["content_type"]) == ("201", "application/json")


async def test_the_authors_an_answer_carries_are_kept_in_the_clear_beside_it(
    store: IdempotencyStore, redis_client: aioredis.Redis
) -> None:
    carrying = store.claim("news", digest("mod", "POST", "/v1/x", "k-1"), "k-1", b"{}")
    bare = store.claim("news", digest("mod", "POST", "/v1/x", "k-2"), "k-2", b"{}")
    for each in (carrying, bare):
        assert await store.begin(each, T0) == "started"
    assert await store.finish(carrying, ANSWER, authors={"bob", "ada"}) is True
    assert await store.finish(bare, ANSWER) is True
    # Erasing an author reads this field; an answer that carries no one's comments has none.
    assert await redis_client.hget(carrying.record, "authors") == '["ada", "bob"]'
    assert not await redis_client.hexists(bare.record, "authors")
