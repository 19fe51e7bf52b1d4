"""Comments stored before the browse and reason indexes existed are filed into them by a reindex."""

from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.admin_store import AdminStore
from service.appkeys import ADMINISTRATION
from service.domain import Order, Queue, State
from service.errors import NotFound
from service.keys import KeySpace
from service.settings import Settings
from tests.service.api.test_api_moderation import held_site

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]


async def listing(client: Client, path: str, headers: dict[str, str]) -> list[str]:
    page = await (await client.get(path, headers=headers)).json()
    return sorted(item["id"] for item in page["items"])


async def test_a_reindex_files_older_comments_where_the_listing_and_filters_find_them(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    decided = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "approve"}, headers=mo
    )
    assert decided.status == 200
    keys = KeySpace(settings.redis_prefix)
    by_state = {"approved": ["c0"], "pending": ["c1", "c2", "c3"]}
    queued = ["c1", "c2", "c3"]
    assert await listing(client, "/v1/sites/held/comments?state=approved", mo) == ["c0"]
    before = {
        index: await redis_client.zrange(index, 0, -1, withscores=True)
        for index in (
            keys.comments("held", State.APPROVED),
            keys.queue_index("held", Queue.PENDING, Order.OLDEST, reason="PREMOD"),
        )
    }
    # As stored by a version without these indexes: the comments and their queue, nothing else.
    for state in by_state:
        await redis_client.delete(keys.comments("held", State(state)))
        for author in ("reader-c0", "reader-c1", "reader-c2", "reader-c3"):
            await redis_client.delete(keys.comments("held", State(state), author=author))
        await redis_client.delete(keys.comments("held", State(state), article="a1"))
    for order in Order:
        await redis_client.delete(keys.queue_index("held", Queue.PENDING, order, reason="PREMOD"))
    assert await listing(client, "/v1/sites/held/comments?state=approved", mo) == []
    assert await listing(client, "/v1/sites/held/queue?reason=PREMOD", mo) == []

    store = AdminStore(redis_client, settings.redis_prefix)
    assert await store.reindex("held") == 4
    for state, ids in by_state.items():
        assert await listing(client, f"/v1/sites/held/comments?state={state}", mo) == ids
        path = f"/v1/sites/held/comments?state={state}&article=a1"
        assert await listing(client, path, mo) == ids
    assert await listing(client, "/v1/sites/held/comments?author=reader-c2&state=pending", mo) == [
        "c2"
    ]
    assert await listing(client, "/v1/sites/held/queue?reason=PREMOD", mo) == queued
    # The decided comment's indexes expire with it; the pending ones never do.
    kept = await redis_client.pttl(keys.comment("held", "c0"))
    for index in (
        keys.comments("held", State.APPROVED),
        keys.comments("held", State.APPROVED, article="a1"),
        keys.comments("held", State.APPROVED, author="reader-c0"),
    ):
        assert abs(kept - await redis_client.pttl(index)) < 5_000
    assert await redis_client.pttl(keys.comments("held", State.PENDING, article="a1")) == -1
    # The scores are those the comments had: the listing's order and the queue's are unchanged.
    for index, entries in before.items():
        assert await redis_client.zrange(index, 0, -1, withscores=True) == entries
    # Again: nothing changes.
    assert await store.reindex("held") == 4
    for index, entries in before.items():
        assert await redis_client.zrange(index, 0, -1, withscores=True) == entries


async def test_a_reindex_of_a_site_deleted_meanwhile_files_nothing(
    create_site: Any, post_signed: Any, redis_client: aioredis.Redis, settings: Settings
) -> None:
    await held_site(create_site, post_signed)
    keys = KeySpace(settings.redis_prefix)
    pending = keys.comments("held", State.PENDING)
    # The site goes once the reindex began, its purge past the indexes already.
    await redis_client.delete(keys.site("held"), pending)

    with pytest.raises(NotFound, match="held"):
        await AdminStore(redis_client, settings.redis_prefix).reindex("held")

    assert not await redis_client.exists(pending)


async def test_reindexing_an_unknown_site_names_it(client: Client) -> None:
    with pytest.raises(NotFound, match="nowhere"):
        await client.app[ADMINISTRATION].reindex("nowhere")
