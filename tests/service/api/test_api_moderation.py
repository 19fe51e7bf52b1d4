"""Moderators end to end: the queue, claims and leases, decisions and their conflicts, undo."""

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.keys import KeySpace
from service.settings import Settings

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
TEXTS = (
    "I disagree with the minister, but the summary of the talks is fair.",
    "Good article. The part about the negotiations was new to me.",
    "Does anyone know when the next round of talks is planned?",
    "The photo caption names the wrong city, please fix it.",
)


def comment(comment_id: str, text: str, author: str = "reader") -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": f"{author}-{comment_id}"},
        "text": text,
    }


async def held_site(create_site: Any, post_signed: Any, site_id: str = "held") -> dict[str, str]:
    """A pre-moderated site with one held comment per text, created oldest first."""
    site: dict[str, str] = await create_site(site_id, mode="pre")
    for number, text in enumerate(TEXTS):
        response = await post_signed(site, comment(f"c{number}", text))
        verdict = await response.json()
        assert verdict["state"] == "pending", verdict
        assert "PREMOD" in verdict["reasons"]
    return site


async def second_moderator(client: Client, admin: dict[str, str], site_id: str) -> dict[str, str]:
    response = await client.post(
        f"/v1/sites/{site_id}/moderators", json={"name": "Second"}, headers=admin
    )
    created = await response.json()
    return {"Authorization": f"Bearer {created['token']}"}


async def test_the_queue_lists_held_comments_oldest_first_or_by_priority(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    oldest = await client.get("/v1/sites/held/queue?order=oldest", headers=moderator(site))
    assert oldest.status == 200
    page = await oldest.json()
    assert [item["id"] for item in page["items"]] == ["c0", "c1", "c2", "c3"]
    assert page["next_cursor"] is None
    assert all(item["state"] == "pending" for item in page["items"])
    by_priority = await client.get("/v1/sites/held/queue?order=priority", headers=moderator(site))
    items = (await by_priority.json())["items"]
    assert sorted(item["id"] for item in items) == ["c0", "c1", "c2", "c3"]
    risk = [max(item["scores"].values()) for item in items]
    assert risk == sorted(risk, reverse=True)


async def test_the_queue_pages_with_a_cursor(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    seen: list[str] = []
    url = "/v1/sites/held/queue?order=oldest&limit=3"
    first = await (await client.get(url, headers=moderator(site))).json()
    seen += [item["id"] for item in first["items"]]
    assert first["next_cursor"]
    second = await (
        await client.get(f"{url}&cursor={first['next_cursor']}", headers=moderator(site))
    ).json()
    seen += [item["id"] for item in second["items"]]
    assert seen == ["c0", "c1", "c2", "c3"]
    assert second["next_cursor"] is None


async def test_a_bad_queue_query_lists_every_bad_parameter(
    client: Client, site: dict[str, str], moderator: Headers
) -> None:
    response = await client.get(
        "/v1/sites/news/queue?order=loudest&limit=0", headers=moderator(site)
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert sorted(item["field"] for item in error["details"]) == ["limit", "order"]


async def test_claimed_comments_are_leased_to_the_claimer_until_the_lease_ends(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_site(create_site, post_signed)
    other = await second_moderator(client, admin, "held")
    response = await client.post(
        "/v1/sites/held/queue/claim",
        json={"limit": 2, "lease_seconds": 1, "order": "oldest"},
        headers=moderator(site),
    )
    assert response.status == 200
    claimed = (await response.json())["items"]
    assert [item["id"] for item in claimed] == ["c0", "c1"]
    assert all(item["claimed_by"] == site["moderator_id"] for item in claimed)
    # The other moderator's claim skips the leased comments.
    rest = await client.post(
        "/v1/sites/held/queue/claim", json={"limit": 5, "order": "oldest"}, headers=other
    )
    assert [item["id"] for item in (await rest.json())["items"]] == ["c2", "c3"]
    blocked = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "approve"}, headers=other
    )
    assert blocked.status == 409
    assert (await blocked.json())["error"]["code"] == "claim_conflict"
    # Leases are native Redis expiries: the claim asked for one second, and when it runs out
    # Redis drops the key, which deleting it stands in for here (no test waits a real second).
    lease = KeySpace(settings.redis_prefix).lease("held", "c0")
    assert 0 < await redis_client.pttl(lease) <= 1000
    await redis_client.delete(lease)
    after = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "approve"}, headers=other
    )
    assert after.status == 200
    assert (await after.json())["state"] == "approved"


async def test_released_comments_can_be_claimed_by_others(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: dict[str, str]
) -> None:
    site = await held_site(create_site, post_signed)
    other = await second_moderator(client, admin, "held")
    await client.post("/v1/sites/held/queue/claim", json={"limit": 4}, headers=moderator(site))
    released = await client.post(
        "/v1/sites/held/queue/release", json={"ids": ["c1"]}, headers=moderator(site)
    )
    assert released.status == 200
    assert (await released.json())["released"] == ["c1"]
    claimed = await client.post("/v1/sites/held/queue/claim", json={}, headers=other)
    assert [item["id"] for item in (await claimed.json())["items"]] == ["c1"]


async def test_a_moderators_claims_expire_with_the_longest_lease_they_hold(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_site(create_site, post_signed)
    headers = moderator(site)
    claims = KeySpace(settings.redis_prefix).claims("held", site["moderator_id"])

    async def claim(lease_seconds: int, comment_id: str | None = None) -> None:
        path = "/v1/sites/held/queue/claim"
        body: dict[str, Any] = {"limit": 1, "lease_seconds": lease_seconds, "order": "oldest"}
        if comment_id is not None:
            path = f"/v1/sites/held/comments/{comment_id}/claim"
            body = {"lease_seconds": lease_seconds}
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 200, await response.text()

    async def expiry() -> int:
        return int(await redis_client.pttl(claims))

    await claim(60)  # c0
    assert 59_000 < await expiry() <= 60_000
    await claim(600, "c3")
    assert 599_000 < await expiry() <= 600_000
    await claim(30)  # c1: a shorter lease leaves the longest held
    assert 599_000 < await expiry() <= 600_000
    await claim(10, "c3")  # renewed shorter: c0's lease is now the longest
    assert 59_000 < await expiry() <= 60_000
    released = await client.post("/v1/sites/held/queue/release", json={}, headers=headers)
    assert sorted((await released.json())["released"]) == ["c0", "c1", "c3"]
    assert await redis_client.exists(claims) == 0


async def test_concurrent_conflicting_decisions_let_exactly_one_win(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: dict[str, str]
) -> None:
    site = await held_site(create_site, post_signed)
    other = await second_moderator(client, admin, "held")
    approve = client.post(
        "/v1/sites/held/comments/c2/decision",
        json={"action": "approve", "version": 1},
        headers=moderator(site),
    )
    reject = client.post(
        "/v1/sites/held/comments/c2/decision",
        json={"action": "reject", "version": 1},
        headers=other,
    )
    responses = await asyncio.gather(approve, reject)
    assert sorted(response.status for response in responses) == [200, 409]
    loser = next(response for response in responses if response.status == 409)
    assert (await loser.json())["error"]["code"] == "version_conflict"
    winner = next(response for response in responses if response.status == 200)
    decided = await winner.json()
    stored = await (await client.get("/v1/sites/held/comments/c2", headers=moderator(site))).json()
    assert stored["state"] == decided["state"]
    assert stored["version"] == 2
    assert len(stored["history"]) == 2


async def test_a_conflict_says_what_the_comment_became_and_what_to_do(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: dict[str, str]
) -> None:
    site = await held_site(create_site, post_signed)
    other = await second_moderator(client, admin, "held")
    url = "/v1/sites/held/comments/c2/decision"
    taken = await client.post(url, json={"action": "reject", "version": 1}, headers=other)
    assert taken.status == 200
    stale = await client.post(
        url, json={"action": "approve", "version": 1}, headers=moderator(site)
    )
    assert stale.status == 409
    # A script learns where the comment went and which version to send to decide it still.
    assert (await stale.json())["error"] == {
        "code": "version_conflict",
        "message": "comment 'c2' changed since version 1: it is at version 2, now rejected; "
        "read it again, and send version 2 to decide it as it stands",
        "details": {"current_version": 2, "state": "rejected"},
    }

    claimed = await client.post(
        "/v1/sites/held/comments/c3/claim", json={"lease_seconds": 60}, headers=other
    )
    assert claimed.status == 200
    for refused in (
        await client.post(
            "/v1/sites/held/comments/c3/decision",
            json={"action": "approve"},
            headers=moderator(site),
        ),
        await client.post("/v1/sites/held/comments/c3/claim", json={}, headers=moderator(site)),
    ):
        assert refused.status == 409
        error = (await refused.json())["error"]
        assert error["code"] == "claim_conflict"
        assert error["message"] == (
            f"comment 'c3' is claimed by another moderator until {error['details']['lease_until']}"
            ": it can be decided once they release it or their lease ends"
        )


async def test_a_decision_can_be_undone_and_both_are_in_the_history(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    url = "/v1/sites/held/comments/c3/decision"
    first = await client.post(url, json={"action": "approve"}, headers=moderator(site))
    assert (await first.json())["state"] == "approved"
    undo = await client.post(
        url,
        json={"action": "reject", "reason": "off-topic", "note": "changed my mind"},
        headers=moderator(site),
    )
    assert undo.status == 200
    undone = await undo.json()
    assert undone["state"] == "rejected"
    assert undone["version"] == 3
    assert undone["decided_by"] == site["moderator_id"]
    stored = await (await client.get("/v1/sites/held/comments/c3", headers=moderator(site))).json()
    states = [entry["to_state"] for entry in stored["history"]]
    assert states == ["pending", "approved", "rejected"]
    assert stored["history"][-1]["note"] == "changed my mind"


async def test_bulk_decisions_answer_per_item(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    response = await client.post(
        "/v1/sites/held/decisions",
        json={
            "decisions": [
                {"id": "c0", "action": "approve"},
                {"id": "c1", "action": "spam", "version": 7},
                {"id": "missing", "action": "reject"},
            ]
        },
        headers=moderator(site),
    )
    assert response.status == 200
    results = (await response.json())["results"]
    assert [result["id"] for result in results] == ["c0", "c1", "missing"]
    assert [result["ok"] for result in results] == [True, False, False]
    assert results[1]["error"]["code"] == "version_conflict"
    assert results[2]["error"]["code"] == "not_found"


async def test_a_bulk_decision_naming_a_comment_twice_is_refused_whole(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    twice = [{"id": "c0", "action": "approve"}, {"id": "c0", "action": "spam"}]
    for headers in ({}, {"Idempotency-Key": "bulk-1"}):
        response = await client.post(
            "/v1/sites/held/decisions",
            json={"decisions": [*twice, {"id": "c1", "action": "reject"}]},
            headers={**moderator(site), **headers},
        )
        assert response.status == 422
        assert "repeated: ['c0']" in (await response.json())["error"]["details"][0]["message"]
    queue = await (await client.get("/v1/sites/held/queue", headers=moderator(site))).json()
    assert {"c0", "c1"} <= {item["id"] for item in queue["items"]}


async def test_a_comment_shows_scores_reasons_and_history(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    response = await client.get("/v1/sites/held/comments/c0", headers=moderator(site))
    assert response.status == 200
    shown = await response.json()
    for key in (
        "id",
        "article_id",
        "parent_id",
        "author",
        "text",
        "state",
        "reasons",
        "scores",
        "evidence",
        "model",
        "version",
        "decided_by",
        "created_at",
        "updated_at",
        "history",
    ):
        assert key in shown
    assert shown["text"] == TEXTS[0]
    assert shown["reasons"] == ["PREMOD"]
    assert shown["history"][0]["actor"].startswith("auto")


async def test_stats_count_queue_depth_and_decisions(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "approve"}, headers=moderator(site)
    )
    stats = await (await client.get("/v1/sites/held/stats", headers=moderator(site))).json()
    assert stats["queue_depths"]["pending"] == 3
    assert stats["oldest_pending_age_seconds"] >= 0


async def test_another_sites_token_gets_404_like_a_missing_site(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    held = await held_site(create_site, post_signed)
    outsider = await create_site("elsewhere")
    paths = [
        ("GET", "/v1/sites/held/comments/c0"),
        ("GET", "/v1/sites/held/queue"),
        ("GET", "/v1/sites/held/stats"),
        ("POST", "/v1/sites/held/queue/claim"),
        ("POST", "/v1/sites/held/comments/c0/decision"),
    ]
    for method, path in paths:
        response = await client.request(
            method, path, json={"action": "approve"}, headers=moderator(outsider)
        )
        assert response.status == 404, path
        missing = await client.request(
            method, path.replace("held", "nowhere"), json={}, headers=moderator(outsider)
        )
        body = await response.json()
        assert body["error"]["code"] == "not_found"
        assert body["error"]["message"] == (await missing.json())["error"]["message"].replace(
            "nowhere", "held"
        )
    # Nothing of site "held" was changed by the attempts.
    shown = await (await client.get("/v1/sites/held/comments/c0", headers=moderator(held))).json()
    assert shown["state"] == "pending"


async def test_moderator_routes_need_a_valid_token(client: Client, site: dict[str, str]) -> None:
    missing = await client.get("/v1/sites/news/queue")
    assert missing.status == 401
    assert await missing.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing bearer token in the Authorization header",
            "details": None,
        }
    }
    wrong = await client.get("/v1/sites/news/queue", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert await wrong.json() == {
        "error": {"code": "unauthorized", "message": "invalid moderator token", "details": None}
    }


async def test_a_decision_with_a_bad_action_lists_the_field(
    client: Client, site: dict[str, str], moderator: Headers
) -> None:
    response = await client.post(
        "/v1/sites/news/comments/c0/decision",
        json={"action": "delete", "version": 0},
        headers=moderator(site),
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert sorted(item["field"] for item in error["details"]) == ["action", "version"]
