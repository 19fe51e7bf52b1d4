"""Retention end to end: decided comments and their history expire after the site's retention;
pending and reported ones never do; queue and browse indexes never keep an id whose comment is
gone, and the browse indexes of decided comments expire with them."""

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.domain import Order, Queue, State
from service.keys import KeySpace
from tests.clocks import Clock

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
KEYS = KeySpace("civ")
DAY_MS = 86_400_000
TEXT = "A calm remark about the summit and the people who negotiated it."


def comment(comment_id: str, text: str = TEXT, author: str = "u1") -> dict[str, Any]:
    return {"id": comment_id, "article": {"id": "a1"}, "author": {"id": author}, "text": text}


async def expiries(redis_client: aioredis.Redis, site: str, comment_id: str) -> tuple[int, int]:
    """Milliseconds left of the comment hash and of its history (-1: kept until decided)."""
    return (
        await redis_client.pttl(KEYS.comment(site, comment_id)),
        await redis_client.pttl(KEYS.history(site, comment_id)),
    )


def about(days: int, left: tuple[int, ...]) -> bool:
    return all(days * DAY_MS - 60_000 < ms <= days * DAY_MS for ms in left)


def browse_indexes(site: str, state: State, author: str = "u1") -> list[str]:
    """The browse indexes of ``state`` a comment of article a1 by ``author`` is filed in."""
    return [
        KEYS.comments(site, state),
        KEYS.comments(site, state, article="a1"),
        KEYS.comments(site, state, author=author),
    ]


async def index_expiries(redis_client: aioredis.Redis, keys: list[str]) -> tuple[int, ...]:
    return tuple([await redis_client.pttl(key) for key in keys])


async def listed(client: Client, site: dict[str, str], moderator: Headers, query: str) -> list[str]:
    response = await client.get(f"/v1/sites/{site['id']}/comments?{query}", headers=moderator(site))
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def decide(
    client: Client, site: dict[str, str], moderator: Headers, comment_id: str, action: str
) -> None:
    response = await client.post(
        f"/v1/sites/{site['id']}/comments/{comment_id}/decision",
        json={"action": action},
        headers=moderator(site),
    )
    assert response.status == 200, await response.text()


async def test_a_decided_comment_expires_after_the_default_ninety_days(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    await post_signed(site, comment("c1"))
    # No history list yet: the comment's creation is in its hash until its first change.
    assert await expiries(redis_client, "held", "c1") == (-1, -2)
    await decide(client, site, moderator, "c1", "reject")
    assert about(90, await expiries(redis_client, "held", "c1"))


async def test_the_sites_retention_applies_and_an_edit_back_to_pending_keeps_it_again(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre", retention_days=2)
    await post_signed(site, comment("c1"))
    await decide(client, site, moderator, "c1", "approve")
    assert about(2, await expiries(redis_client, "held", "c1"))
    # The host edits it: moderated again on a pre-moderated site, it waits and is kept.
    edited = await post_signed(site, comment("c1", text=f"{TEXT} (edited)"))
    assert (await edited.json())["state"] == "pending"
    assert await expiries(redis_client, "held", "c1") == (-1, -1)
    await decide(client, site, moderator, "c1", "spam")
    assert about(2, await expiries(redis_client, "held", "c1"))


async def test_a_reported_comment_is_kept_until_a_moderator_decides(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre", retention_days=3, report_threshold=2)
    await post_signed(site, comment("c1"))
    await decide(client, site, moderator, "c1", "approve")
    path = "/v1/sites/held/comments/c1/reports"
    await post_signed(site, {"comment_id": "c1", "reporter_id": "r1", "reason": "other"}, path=path)
    # Below the threshold the report lives as long as the comment.
    assert about(3, (await redis_client.pttl(KEYS.reports("held", "c1")),))
    await post_signed(site, {"comment_id": "c1", "reporter_id": "r2", "reason": "other"}, path=path)
    assert await expiries(redis_client, "held", "c1") == (-1, -1)
    assert await redis_client.pttl(KEYS.reports("held", "c1")) == -1
    await decide(client, site, moderator, "c1", "reject")
    assert about(3, await expiries(redis_client, "held", "c1"))
    assert about(3, (await redis_client.pttl(KEYS.reports("held", "c1")),))


async def test_an_expired_comment_is_gone_and_a_new_delivery_creates_it_afresh(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    first = await post_signed(site, comment("c1"))
    assert first.status == 202
    await decide(client, site, moderator, "c1", "approve")
    # Retention is days; let this comment's time run out now: an expiry time already past (1 ms
    # after the epoch) makes Redis expire each key at once.
    for key in (KEYS.comment("news", "c1"), KEYS.history("news", "c1")):
        assert await redis_client.pexpireat(key, 1)
    gone = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert gone.status == 404
    again = await post_signed(site, comment("c1"))
    assert again.status == 202
    view = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert view["version"] == 1
    assert [entry["action"] for entry in view["history"]] == ["create"]


async def test_paging_prunes_an_index_entry_whose_comment_is_gone(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(3):
        await post_signed(site, comment(f"c{number}", text=f"{TEXT} {number}"))
    await redis_client.delete(KEYS.comment("held", "c1"))
    index = KEYS.queue_index("held", Queue.PENDING, Order.OLDEST)
    page = await (
        await client.get("/v1/sites/held/queue?order=oldest", headers=moderator(site))
    ).json()
    assert [item["id"] for item in page["items"]] == ["c0", "c2"]
    assert await redis_client.zrange(index, 0, -1) == ["c0", "c2"]


async def test_browse_indexes_of_decided_comments_expire_and_drop_expired_comments(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    site = await create_site("held", mode="pre", retention_days=2)
    await post_signed(site, comment("c1"))
    pending = browse_indexes("held", State.PENDING)
    assert await index_expiries(redis_client, pending) == (-1, -1, -1)
    await decide(client, site, moderator, "c1", "approve")
    approved = browse_indexes("held", State.APPROVED)
    assert about(2, await index_expiries(redis_client, approved))
    assert await redis_client.exists(*pending) == 0

    # c1's retention runs out; three days on, another reader's comment of a1 is approved.
    assert await redis_client.pexpireat(KEYS.comment("held", "c1"), 1)
    clock.advance(3 * DAY_MS / 1000)
    await post_signed(site, comment("c2", text=f"{TEXT} Indeed.", author="u2"))
    await decide(client, site, moderator, "c2", "approve")

    # Filing c2 dropped c1 from the indexes it shares, unlisted ...
    for key in approved[:2]:
        assert await redis_client.zrange(key, 0, -1) == ["c2"]
    # ... and u1's index, which nothing was filed into since, ends with the retention.
    assert about(2, await index_expiries(redis_client, [approved[2]]))


async def test_a_reported_comment_stays_listed_past_its_retention_until_decided(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    site = await create_site("held", mode="pre", retention_days=3, report_threshold=1)
    await post_signed(site, comment("c1"))
    await decide(client, site, moderator, "c1", "approve")
    path = "/v1/sites/held/comments/c1/reports"
    await post_signed(site, {"comment_id": "c1", "reporter_id": "r1", "reason": "other"}, path=path)
    approved = browse_indexes("held", State.APPROVED)
    assert await index_expiries(redis_client, approved) == (-1, -1, -1)

    # Four days on, still in the reported queue, c1 is listed beside a comment approved now.
    clock.advance(4 * DAY_MS / 1000)
    await post_signed(site, comment("c2", text=f"{TEXT} Indeed."))
    await decide(client, site, moderator, "c2", "approve")
    assert await index_expiries(redis_client, approved) == (-1, -1, -1)
    for query in ("state=approved", "state=approved&article=a1", "state=approved&author=u1"):
        assert await listed(client, site, moderator, query) == ["c2", "c1"]

    # Decided, it expires again, and so do the indexes it leaves.
    await decide(client, site, moderator, "c1", "reject")
    assert about(3, await index_expiries(redis_client, approved))
    assert await listed(client, site, moderator, "state=rejected") == ["c1"]
