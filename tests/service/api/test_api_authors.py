"""Authors end to end: counts and standing, the new-author and recent-rejection rules, statuses
set by moderators (premod, banned, trusted) and a ban that rejects the author's held comments."""

from collections.abc import Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.appkeys import ADMINISTRATION, MODERATION
from service.domain import Comment
from service.keys import KeySpace
from service.store.records import DecisionWrite
from tests.clocks import Clock
from tests.service.api.conftest import fail_decide_once

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
KEYS = KeySpace("civ")
TEXT = "I read the whole piece; the point about the trade talks is well made."


@pytest.fixture
async def lenient(client: Client, admin: dict[str, str], create_site: Any) -> Any:
    """A site factory whose model thresholds never hold or reject, so only author rules act."""
    labels = (await (await client.get("/v1/model", headers=admin)).json())["labels"]

    async def create(site_id: str = "news", **policy: Any) -> dict[str, str]:
        never = {label: 1.0 for label in labels}
        site: dict[str, str] = await create_site(site_id, hold=never, reject=never, **policy)
        return site

    return create


def comment(comment_id: str, author: str = "ann", text: str = TEXT) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": author},
        "text": f"{text} ({comment_id})",
    }


async def post(post_signed: Any, site: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await post_signed(site, body)
    assert response.status == 202, await response.text()
    verdict: dict[str, Any] = await response.json()
    return verdict


async def decide(
    client: Client, site: dict[str, str], moderator: Headers, comment_id: str, action: str
) -> None:
    response = await client.post(
        f"/v1/sites/{site['id']}/comments/{comment_id}/decision",
        json={"action": action},
        headers=moderator(site),
    )
    assert response.status == 200, await response.text()


async def author_view(
    client: Client, site: dict[str, str], moderator: Headers, author: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/sites/{site['id']}/authors/{author}", headers=moderator(site))
    assert response.status == 200, await response.text()
    view: dict[str, Any] = await response.json()
    return view


async def set_status(
    client: Client, site: dict[str, str], moderator: Headers, author: str, **body: Any
) -> Any:
    return await client.post(
        f"/v1/sites/{site['id']}/authors/{author}/status", json=body, headers=moderator(site)
    )


async def test_the_author_view_counts_every_outcome(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient()
    for number in range(4):
        assert (await post(post_signed, site, comment(f"c{number}")))["state"] == "approved"
    await decide(client, site, moderator, "c1", "spam")
    await decide(client, site, moderator, "c2", "reject")
    view = await author_view(client, site, moderator, "ann")
    assert view["counts"] == {"approved": 2, "rejected": 1, "spam": 1, "pending": 0}
    assert view["status"] == "active"
    assert view["recent"]["days"] == 7
    assert (view["recent"]["decided"], view["recent"]["rejected"]) == (4, 2)
    assert view["recent"]["rejection_rate"] == 0.5
    assert view["first_seen"] is not None
    assert view["first_seen"] <= view["last_seen"]
    # Half of the recent decisions were rejections: the next comment is held.
    assert view["trust"] == "premod"


async def test_an_unknown_author_answers_404(
    client: Client, site: dict[str, str], moderator: Headers
) -> None:
    response = await client.get("/v1/sites/news/authors/nobody", headers=moderator(site))
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "author 'nobody' not found", "details": None}
    }


async def test_a_new_author_is_held_until_enough_comments_were_approved(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient(new_author_min_approved=1)
    first = await post(post_signed, site, comment("c1"))
    assert (first["state"], first["reasons"]) == ("pending", ["NEW_AUTHOR"])
    assert (await author_view(client, site, moderator, "ann"))["trust"] == "new"
    await decide(client, site, moderator, "c1", "approve")
    assert (await author_view(client, site, moderator, "ann"))["trust"] == "regular"
    second = await post(post_signed, site, comment("c2"))
    assert (second["state"], second["reasons"]) == ("approved", [])


async def test_a_high_recent_rejection_rate_puts_the_author_on_premoderation(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient(author_premod_rejection_rate=0.3, author_premod_min_decisions=3)
    for number in range(4):
        await post(post_signed, site, comment(f"c{number}"))
    # Automatic verdicts count as decisions too: one rejection among four is 25%, under 30%.
    await decide(client, site, moderator, "c0", "reject")
    assert (await post(post_signed, site, comment("c4")))["state"] == "approved"
    assert (await author_view(client, site, moderator, "ann"))["trust"] == "regular"
    # Two among five is 40%.
    await decide(client, site, moderator, "c1", "spam")
    held = await post(post_signed, site, comment("c5"))
    assert (held["state"], held["reasons"]) == ("pending", ["AUTHOR_PREMOD"])
    view = await author_view(client, site, moderator, "ann")
    assert (view["recent"]["decided"], view["recent"]["rejected"]) == (5, 2)
    assert view["recent"]["rejection_rate"] == 0.4
    assert view["trust"] == "premod"
    assert view["status"] == "active"  # earned by the rate, not set by anyone
    # Undoing the rejections counts each comment once, as its latest decision.
    await decide(client, site, moderator, "c0", "approve")
    await decide(client, site, moderator, "c1", "approve")
    assert (await post(post_signed, site, comment("c6")))["state"] == "approved"
    # Another author is not affected.
    assert (await post(post_signed, site, comment("d1", author="bob")))["state"] == "approved"


async def test_the_rate_counts_only_after_enough_decisions(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient(author_premod_rejection_rate=0.3, author_premod_min_decisions=3)
    await post(post_signed, site, comment("c0"))
    await decide(client, site, moderator, "c0", "reject")
    # 1 of 1, then 1 of 2 rejected: too few decisions to judge.
    assert (await post(post_signed, site, comment("c1")))["state"] == "approved"
    assert (await post(post_signed, site, comment("c2")))["state"] == "approved"
    # 1 of 3 (33%) now counts.
    assert (await post(post_signed, site, comment("c3")))["state"] == "pending"


async def test_the_rate_rule_can_be_turned_off(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient(author_premod_rejection_rate=0, author_premod_min_decisions=1)
    await post(post_signed, site, comment("c1"))
    await decide(client, site, moderator, "c1", "reject")
    assert (await post(post_signed, site, comment("c2")))["state"] == "approved"


async def test_a_moderator_sets_premod_and_back_to_active(
    client: Client,
    lenient: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await lenient()
    response = await set_status(client, site, moderator, "ann", status="premod", reason="heated")
    assert response.status == 200
    outcome = await response.json()
    assert outcome["rejected"] == []
    assert outcome["failed"] == []
    assert outcome["author"]["status"] == "premod"
    assert outcome["author"]["status_reason"] == "heated"
    assert outcome["author"]["status_by"] == site["moderator_id"]
    assert outcome["author"]["first_seen"] is None  # set before the author ever posted
    held = await post(post_signed, site, comment("c1"))
    assert (held["state"], held["reasons"]) == ("pending", ["AUTHOR_PREMOD"])
    await set_status(client, site, moderator, "ann", status="active")
    assert (await post(post_signed, site, comment("c2")))["state"] == "approved"
    audit = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.audit("news")))
    changes = [f["to_state"] for _, f in audit if f["action"] == "author_status"]
    assert changes == ["premod", "active"]


async def test_a_trusted_author_skips_holds_but_not_banned_words(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre", banned_words=["scoundrel"])
    response = await set_status(client, site, moderator, "ann", status="trusted")
    assert (await response.json())["author"]["trust"] == "trusted"
    published = await post(post_signed, site, comment("c1"))
    assert (published["state"], published["reasons"]) == ("approved", [])
    banned = await post(post_signed, site, comment("c2", text="The minister is a scoundrel"))
    assert banned["state"] == "rejected"
    assert banned["reasons"] == ["BANNED_WORD"]
    # Anyone else on this pre-moderated site is held.
    other = await post(post_signed, site, comment("d1", author="bob"))
    assert other["state"] == "pending"


async def test_a_banned_author_is_rejected(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient()
    await set_status(client, site, moderator, "ann", status="banned")
    verdict = await post(post_signed, site, comment("c1"))
    assert (verdict["state"], verdict["reasons"]) == ("rejected", ["AUTHOR_BANNED"])
    assert (await author_view(client, site, moderator, "ann"))["trust"] == "banned"


async def test_a_ban_rejects_the_authors_held_comments_through_the_decision_path(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(3):
        assert (await post(post_signed, site, comment(f"c{number}")))["state"] == "pending"
    await post(post_signed, site, comment("d1", author="bob"))
    response = await set_status(
        client, site, moderator, "ann", status="banned", reason="spam run", reject_pending=True
    )
    assert response.status == 200
    outcome = await response.json()
    assert outcome["rejected"] == ["c0", "c1", "c2"]
    assert outcome["failed"] == []
    assert outcome["remaining"] == 0
    assert outcome["author"]["counts"] == {"approved": 0, "rejected": 3, "spam": 0, "pending": 0}
    for number in range(3):
        view = await (
            await client.get(f"/v1/sites/held/comments/c{number}", headers=moderator(site))
        ).json()
        assert view["state"] == "rejected"
        assert view["reasons"] == ["spam run"]
        assert view["history"][-1]["actor"] == site["moderator_id"]
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox("held")))
    rejected = [f["comment_id"] for _, f in entries if f["type"] == "comment.rejected"]
    assert rejected == ["c0", "c1", "c2"]
    queue = await (await client.get("/v1/sites/held/queue", headers=moderator(site))).json()
    assert [item["id"] for item in queue["items"]] == ["d1"]


async def test_a_ban_redis_fails_half_way_answers_503_and_its_retry_rejects_the_rest(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(3):
        await post(post_signed, site, comment(f"c{number}"))
    path = "/v1/sites/held/authors/ann/status"
    ban = {"status": "banned", "reject_pending": True}
    headers = {**moderator(site), "Idempotency-Key": "ban-ann"}
    fail_decide_once(client, monkeypatch, "c1", written=False)
    failed = await client.post(path, json=ban, headers=headers)
    # Not an answer naming c1 failed, kept for the key and replayed to every retry.
    assert failed.status == 503
    assert (await failed.json())["error"]["code"] == "store_unavailable"

    retried = await client.post(path, json=ban, headers=headers)
    assert retried.status == 200
    assert "Idempotent-Replayed" not in retried.headers
    outcome = await retried.json()
    # Every comment the ban rejected, c0 by the failed first call included.
    assert (outcome["rejected"], outcome["failed"]) == (["c0", "c1", "c2"], [])
    assert outcome["already_set"] is True
    assert outcome["author"]["counts"]["rejected"] == 3
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox("held")))
    rejected = [f["comment_id"] for _, f in entries if f["type"] == "comment.rejected"]
    assert rejected == ["c0", "c1", "c2"]


async def test_a_ban_sent_again_changes_nothing_and_names_what_the_first_rejected(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(2):
        await post(post_signed, site, comment(f"c{number}"))
    ban = {"status": "banned", "reason": "spam run", "reject_pending": True}
    first = await (await set_status(client, site, moderator, "ann", **ban)).json()
    assert (first["rejected"], first["rejected_now"]) == (["c0", "c1"], ["c0", "c1"])
    assert first["already_set"] is False
    audit = await redis_client.xlen(KEYS.audit("held"))
    clock.advance(60)

    # The first answer was lost: the same ban again, without a key.
    again = await set_status(client, site, moderator, "ann", **ban)
    assert again.status == 200
    outcome = await again.json()
    assert outcome["already_set"] is True
    assert outcome["author"]["status_at"] == first["author"]["status_at"]
    assert (outcome["rejected"], outcome["rejected_now"]) == (["c0", "c1"], [])
    assert outcome["author"]["counts"]["rejected"] == 2
    assert await redis_client.xlen(KEYS.audit("held")) == audit

    # A comment reopened meanwhile is rejected by the next repeat, and listed once.
    reopened = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "reopen"}, headers=moderator(site)
    )
    assert reopened.status == 200
    repeat = await (await set_status(client, site, moderator, "ann", **ban)).json()
    assert (repeat["rejected"], repeat["rejected_now"]) == (["c0", "c1"], ["c1"])

    # A new status is a change again, and ends the ban's list.
    active = await (await set_status(client, site, moderator, "ann", status="active")).json()
    assert (active["already_set"], active["rejected"], active["rejected_now"]) == (False, [], [])
    assert active["author"]["status_at"] != first["author"]["status_at"]


async def test_a_ban_leaves_a_comment_another_moderator_claimed(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(2):
        await post(post_signed, site, comment(f"c{number}"))
    created = await client.post("/v1/sites/held/moderators", json={"name": "Second"}, headers=admin)
    second = {"Authorization": f"Bearer {(await created.json())['token']}"}
    claimed = await client.post(
        "/v1/sites/held/queue/claim", json={"limit": 1, "order": "oldest"}, headers=second
    )
    assert [item["id"] for item in (await claimed.json())["items"]] == ["c0"]
    outcome = await (
        await set_status(client, site, moderator, "ann", status="banned", reject_pending=True)
    ).json()
    assert outcome["rejected"] == ["c1"]
    assert [(item["id"], item["error"]["code"]) for item in outcome["failed"]] == [
        ("c0", "claim_conflict")
    ]


async def test_a_ban_leaves_a_comment_a_moderator_decided_after_the_ban_listed_it(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(2):
        await post(post_signed, site, comment(f"c{number}"))
    created = await client.post("/v1/sites/held/moderators", json={"name": "Second"}, headers=admin)
    second = {"Authorization": f"Bearer {(await created.json())['token']}"}
    store = client.app[MODERATION].store
    pending_of_author = store.pending_of_author

    async def listed_then_published(site_id: str, author_id: str) -> list[str]:
        held = await pending_of_author(site_id, author_id)
        # The second moderator publishes c0 between the ban's listing and its rejections.
        await decide(client, site, lambda _: second, "c0", "approve")
        return held

    monkeypatch.setattr(store, "pending_of_author", listed_then_published)
    outcome = await (
        await set_status(client, site, moderator, "ann", status="banned", reject_pending=True)
    ).json()
    assert (outcome["rejected"], outcome["failed"]) == (["c1"], [])
    assert outcome["author"]["counts"]["approved"] == 1
    view = await (await client.get("/v1/sites/held/comments/c0", headers=second)).json()
    assert (view["state"], view["decided_by_name"]) == ("approved", "Second")
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox("held")))
    assert [f["type"] for _, f in entries if f["comment_id"] == "c0"] == [
        "comment.held",
        "comment.approved",
    ]


async def test_bad_status_requests_are_refused_and_change_nothing(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await lenient()
    await post(post_signed, site, comment("c1"))
    unknown = await set_status(client, site, moderator, "ann", status="vip", reject_pending="x")
    assert unknown.status == 422
    assert (await unknown.json())["error"]["details"] == [
        {"field": "status", "message": "Input should be 'active', 'premod', 'banned' or 'trusted'"},
        {"field": "reject_pending", "message": "Input should be a valid boolean"},
    ]
    not_a_ban = await set_status(
        client, site, moderator, "ann", status="premod", reject_pending=True
    )
    assert not_a_ban.status == 422
    assert await not_a_ban.json() == {
        "error": {
            "code": "validation_failed",
            "message": "request validation failed",
            "details": [
                {
                    "field": "reject_pending",
                    "message": "only a ban can reject the author's held comments",
                }
            ],
        }
    }
    bad_id = await set_status(client, site, moderator, "has%20space", status="banned")
    assert bad_id.status == 422
    assert [item["field"] for item in (await bad_id.json())["error"]["details"]] == ["author"]
    assert (await author_view(client, site, moderator, "ann"))["status"] == "active"


async def test_authors_are_private_to_their_site(
    client: Client, lenient: Any, post_signed: Any, moderator: Headers
) -> None:
    news = await lenient("news")
    other = await lenient("other")
    await post(post_signed, news, comment("c1"))
    response = await client.get("/v1/sites/news/authors/ann", headers=moderator(other))
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "site 'news' not found", "details": None}
    }
    response = await client.post(
        "/v1/sites/news/authors/ann/status", json={"status": "banned"}, headers=moderator(other)
    )
    assert response.status == 404
    unauthenticated = await client.get("/v1/sites/news/authors/ann")
    assert unauthenticated.status == 401
    assert (await author_view(client, news, moderator, "ann"))["status"] == "active"


async def test_a_ban_whose_site_is_deleted_part_way_answers_404_and_keeps_nothing(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(2):
        await post(post_signed, site, comment(f"c{number}"))
    store = client.app[MODERATION].store
    decide = store.decide

    async def deleted_before_second(site_id: str, write: DecisionWrite) -> Comment:
        if write.comment_id == "c1":
            # Deleted by another process: this one still has the site cached.
            await client.app[ADMINISTRATION].store.delete_site("held")
        return await decide(site_id, write)

    monkeypatch.setattr(store, "decide", deleted_before_second)
    answer = await client.post(
        "/v1/sites/held/authors/ann/status",
        json={"status": "banned", "reject_pending": True},
        headers={**moderator(site), "Idempotency-Key": "ban-gone"},
    )
    # The site ended the ban as it ends a single decision: not a 200 naming c1 not found.
    assert answer.status == 404, await answer.text()
    assert (await answer.json())["error"]["code"] == "not_found"
    assert [key async for key in redis_client.scan_iter(KEYS.idempotency("held", "*"))] == []


async def test_a_keyed_ban_leaving_a_claimed_comment_runs_again_once_the_claim_ends(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(2):
        await post(post_signed, site, comment(f"c{number}"))
    created = await client.post("/v1/sites/held/moderators", json={"name": "Second"}, headers=admin)
    second = {"Authorization": f"Bearer {(await created.json())['token']}"}
    claimed = await client.post(
        "/v1/sites/held/queue/claim", json={"limit": 1, "order": "oldest"}, headers=second
    )
    assert [item["id"] for item in (await claimed.json())["items"]] == ["c0"]
    path = "/v1/sites/held/authors/ann/status"
    ban = {"status": "banned", "reject_pending": True}
    headers = {**moderator(site), "Idempotency-Key": "ban-claimed"}
    first = await (await client.post(path, json=ban, headers=headers)).json()
    assert first["rejected"] == ["c1"]
    assert [(item["id"], item["error"]["code"]) for item in first["failed"]] == [
        ("c0", "claim_conflict")
    ]
    # The second moderator gives c0 back: the retry with the key rejects it, where a kept answer
    # would replay the conflict for the key's day; c1, rejected by the first, is not again, but
    # is listed among the ban's rejections.
    released = await client.post("/v1/sites/held/queue/release", json={}, headers=second)
    assert (await released.json())["released"] == ["c0"]
    retried = await client.post(path, json=ban, headers=headers)
    assert retried.status == 200, await retried.text()
    assert "Idempotent-Replayed" not in retried.headers
    outcome = await retried.json()
    assert (outcome["rejected"], outcome["failed"]) == (["c1", "c0"], [])
    assert outcome["author"]["counts"]["rejected"] == 2
    again = await client.post(path, json=ban, headers=headers)
    assert (again.status, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert await again.read() == await retried.read()
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox("held")))
    rejected = [f["comment_id"] for _, f in entries if f["type"] == "comment.rejected"]
    assert rejected == ["c1", "c0"]
