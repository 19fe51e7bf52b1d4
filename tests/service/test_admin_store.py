"""The admin store's edges the API rarely reaches: a key hash one site holds is refused to
another, a rotation's old key lives exactly as long as its grace, a missing site is named in
the 404, and a purge follows SCAN's cursor through a site too large for one step."""

import json
from collections.abc import Awaitable
from typing import cast

import pytest
import redis.asyncio as aioredis

from service.admin_store import AdminStore
from service.errors import NotFound
from service.store import Store
from tests.records import site_record
from tests.service.test_store import KEYS, NOW


@pytest.fixture
async def admin(redis_client: aioredis.Redis) -> AdminStore:
    await Store(redis_client, prefix="civ").create_site(site_record("news", NOW))
    return AdminStore(redis_client, prefix="civ")


async def test_a_key_hash_another_site_holds_cannot_be_claimed(
    admin: AdminStore, redis_client: aioredis.Redis
) -> None:
    assert await admin.claim_api_key("news", "fresh") is True
    assert await admin.claim_api_key("blog", "fresh") is False
    assert await admin.claim_api_key("blog", "hash-of-news") is False
    assert await redis_client.get(KEYS.api_key("fresh")) == "news"
    assert await redis_client.get(KEYS.api_key("hash-of-news")) == "news"


async def test_the_old_key_ends_with_its_grace_and_at_once_when_the_grace_is_now(
    admin: AdminStore, redis_client: aioredis.Redis
) -> None:
    # NOW is later than the server's clock: an index kept until NOW would still be there.
    await admin.claim_api_key("news", "second")
    await admin.rotate_api_key("news", "second", NOW, NOW + 60_000)
    assert await redis_client.pexpiretime(KEYS.api_key("hash-of-news")) == NOW + 60_000
    await admin.claim_api_key("news", "third")
    await admin.rotate_api_key("news", "third", NOW, NOW)
    assert await redis_client.exists(KEYS.api_key("second")) == 0
    await admin.claim_api_key("news", "fourth")
    await admin.rotate_api_key("news", "fourth", NOW, NOW - 1)
    assert await redis_client.exists(KEYS.api_key("third")) == 0
    assert await redis_client.get(KEYS.api_key("fourth")) == "news"


async def test_each_rotated_out_key_keeps_its_own_deadline_and_one_stored_before_the_list(
    admin: AdminStore, redis_client: aioredis.Redis
) -> None:
    # A key rotated out before previous_api_keys existed is known by the single fields alone.
    await redis_client.hset(
        KEYS.site("news"),
        mapping={"previous_api_key_hash": "older", "previous_api_key_valid_until": NOW + 500},
    )
    await admin.claim_api_key("news", "second")
    await admin.rotate_api_key("news", "second", NOW, NOW + 1_000)
    await admin.claim_api_key("news", "third")
    await admin.rotate_api_key("news", "third", NOW + 100, NOW + 2_000)
    record = await Store(redis_client, prefix="civ").load_site("news")
    assert record is not None
    assert record.previous_api_keys == (
        ("older", NOW + 500),
        ("hash-of-news", NOW + 1_000),
        ("second", NOW + 2_000),
    )
    assert [record.api_key_matches(key, NOW + 499) for key in ("older", "hash-of-news")] == [
        True,
        True,
    ]
    assert record.api_key_matches("older", NOW + 500) is False
    assert record.api_key_matches("hash-of-news", NOW + 999) is True
    assert record.api_key_matches("hash-of-news", NOW + 1_000) is False
    assert record.api_key_matches("second", NOW + 1_999) is True
    assert record.api_key_matches("third", NOW + 10**9) is True
    assert record.api_key_matches("other", NOW) is False
    # A rotation after a key's deadline drops it, even from the count.
    await admin.claim_api_key("news", "fourth")
    await admin.rotate_api_key("news", "fourth", NOW + 1_000, NOW + 3_000)
    fields = await redis_client.hgetall(KEYS.site("news"))
    assert json.loads(fields["previous_api_keys"]) == [
        ["second", NOW + 2_000],
        ["third", NOW + 3_000],
    ]
    assert (fields["previous_api_key_hash"], fields["previous_api_key_valid_until"]) == (
        "third",
        str(NOW + 3_000),
    )


async def test_rotating_a_missing_sites_key_frees_the_claimed_hash_and_names_the_site(
    admin: AdminStore, redis_client: aioredis.Redis
) -> None:
    assert await admin.claim_api_key("gone", "orphan") is True
    with pytest.raises(NotFound) as raised:
        await admin.rotate_api_key("gone", "orphan", NOW, NOW + 60_000)
    assert raised.value.message == "site 'gone' not found"
    assert await redis_client.exists(KEYS.api_key("orphan")) == 0


async def test_deleting_a_missing_site_names_it(admin: AdminStore) -> None:
    with pytest.raises(NotFound) as raised:
        await admin.delete_site("gone")
    assert raised.value.message == "site 'gone' not found"


async def test_a_site_deleted_between_the_check_and_the_script_is_named_in_the_404(
    admin: AdminStore, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A concurrent deletion lands just after this one saw the site: the script finds it gone.
    hsetnx = redis_client.hsetnx

    async def deleted_meanwhile(name: str, key: str, value: str) -> bool:
        await redis_client.delete(KEYS.site(key))
        return await cast(Awaitable[bool], hsetnx(name, key, value))

    monkeypatch.setattr(redis_client, "hsetnx", deleted_meanwhile)
    with pytest.raises(NotFound) as raised:
        await admin.delete_site("news")
    assert raised.value.message == "site 'news' not found"


async def test_a_purge_follows_the_scan_cursor_through_more_keys_than_one_step(
    admin: AdminStore, redis_client: aioredis.Redis
) -> None:
    # More hash buckets than one SCAN call may visit (ten times its COUNT): a step that began
    # again at cursor 0 would stall on the buckets already emptied, one with a smaller COUNT
    # would need hundreds of steps.
    count = 12_000
    async with redis_client.pipeline(transaction=False) as pipe:
        for number in range(count):
            pipe.set(f"civ:{{news}}:comment:c{number}", "1")
        await pipe.execute()
    await admin.delete_site("news")
    steps = []
    for _ in range(30):
        steps.append(await admin.purge_step("news"))
        if steps[-1].done:
            break
    assert steps[-1].done
    assert len(steps) > 1
    assert sum(step.removed for step in steps) >= count
    assert [key async for key in redis_client.scan_iter(match="civ:{news}:*")] == []
    assert await admin.purging() == []
