"""The queue as the console works it: each item's article (title and link), the reason filter,
and claiming the one comment a moderator opens."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
TALKS = {
    "id": "talks",
    "title": "America And Russia Agree To Work On <Critical> Issues",
    "url": "https://news.example/2026/talks?from=home",
}


def comment(comment_id: str, article: dict[str, str], text: str = "A fair summary.") -> Any:
    return {
        "id": comment_id,
        "article": article,
        "author": {"id": f"reader-{comment_id}"},
        "text": f"{text} ({comment_id})",
    }


async def test_queue_items_and_comments_carry_their_articles_title_and_url(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    await post_signed(site, comment("c0", TALKS))
    # A later comment that names only the article's id keeps what the host said before.
    await post_signed(site, comment("c1", {"id": "talks"}))
    await post_signed(site, comment("c2", {"id": "bare"}))

    page = await (
        await client.get("/v1/sites/held/queue?order=oldest", headers=moderator(site))
    ).json()
    assert [item["article"] for item in page["items"]] == [TALKS, TALKS, {"id": "bare"}]
    assert [item["article_id"] for item in page["items"]] == ["talks", "talks", "bare"]
    single = await (await client.get("/v1/sites/held/comments/c1", headers=moderator(site))).json()
    assert single["article"] == TALKS

    # The host retitles the article: every item shows the new title, the url it kept.
    retitled = {**TALKS, "title": "Talks resume"}
    await post_signed(site, comment("c3", {"id": "talks", "title": "Talks resume"}))
    page = await (
        await client.get("/v1/sites/held/queue?order=oldest", headers=moderator(site))
    ).json()
    assert [item["article"] for item in page["items"]] == [
        retitled,
        retitled,
        {"id": "bare"},
        retitled,
    ]
    # PUT replaces the article's metadata; a decision answers with it too.
    spec = {"id": "bare", "title": "Bare, now titled", "url": "http://news.example/bare"}
    put = await post_signed(site, spec, path="/v1/sites/held/articles/bare", method="PUT")
    assert put.status == 200, await put.text()
    decided = await client.post(
        "/v1/sites/held/comments/c2/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert decided.status == 200, await decided.text()
    assert (await decided.json())["article"] == spec


async def test_an_article_url_that_is_not_http_is_refused_and_stores_nothing(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    hostile = {"id": "talks", "title": "Talks", "url": "javascript:alert(1)"}
    refused = await post_signed(site, comment("c0", hostile))
    assert refused.status == 422
    body = await refused.json()
    assert [field["field"] for field in body["error"]["details"]] == ["article.url"]
    page = await (await client.get("/v1/sites/held/queue", headers=moderator(site))).json()
    assert page["items"] == []


async def queue_ids(client: Client, site: dict[str, str], search: str) -> tuple[list[str], int]:
    response = await client.get(f"/v1/sites/held/queue?order=oldest&{search}", headers=_mod(site))
    assert response.status == 200, await response.text()
    page = await response.json()
    return [item["id"] for item in page["items"]], page["total"]


def _mod(site: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {site['moderator_token']}"}


async def test_the_queue_filters_by_reason_and_follows_every_change_of_reasons(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", suspect_words=["bridge"], max_links=0)
    texts = {
        "c0": "The bridge plan is fine",
        "c1": "The plan is at https://news.example/plan",
        "c2": "The bridge plan is at https://news.example/plan",
    }
    for comment_id, text in texts.items():
        verdict = await (await post_signed(site, comment(comment_id, {"id": "a1"}, text))).json()
        assert verdict["state"] == "pending", verdict
    assert await queue_ids(client, site, "reason=SUSPECT_WORD") == (["c0", "c2"], 2)
    assert await queue_ids(client, site, "reason=LINKS") == (["c1", "c2"], 2)
    first, total = await queue_ids(client, site, "reason=LINKS&limit=1")
    assert (first, total) == (["c1"], 2)

    # Decided: out of every reason's index. Edited: filed under its new reasons only.
    decided = await client.post(
        "/v1/sites/held/comments/c2/decision", json={"action": "approve"}, headers=_mod(site)
    )
    assert decided.status == 200, await decided.text()
    edited = comment("c0", {"id": "a1"}, "The plan is at https://news.example/plan")
    assert (await (await post_signed(site, edited)).json())["state"] == "pending"
    assert await queue_ids(client, site, "reason=SUSPECT_WORD") == ([], 0)
    assert await queue_ids(client, site, "reason=LINKS") == (["c0", "c1"], 2)

    # Reopened: back under the reasons the moderator gave.
    reopened = await client.post(
        "/v1/sites/held/comments/c2/decision",
        json={"action": "reopen", "reason": "TOXIC"},
        headers=_mod(site),
    )
    assert reopened.status == 200, await reopened.text()
    assert (await reopened.json())["reasons"] == ["TOXIC"]
    assert await queue_ids(client, site, "reason=TOXIC") == (["c2"], 1)
    assert await queue_ids(client, site, "reason=LINKS") == (["c0", "c1"], 2)


async def test_an_unknown_reason_answers_422(client: Client, create_site: Any) -> None:
    site = await create_site("held", mode="pre")
    unknown = await client.get("/v1/sites/held/queue?reason=RUDE", headers=_mod(site))
    assert unknown.status == 422
    [detail] = (await unknown.json())["error"]["details"]
    assert detail["field"] == "reason"
    assert "TOXIC" in detail["message"]
    listed = await (await client.get("/v1/sites/held/reasons", headers=_mod(site))).json()
    assert "TOXIC" in listed["holds"]
    assert "REPORTED" in listed["holds"]


async def claim_one(
    client: Client, headers: dict[str, str], comment_id: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.post(
        f"/v1/sites/held/comments/{comment_id}/claim", json=body, headers=headers
    )
    return response.status, await response.json()


async def test_one_chosen_comment_is_claimed_by_its_opener_and_refused_to_others(
    client: Client, create_site: Any, post_signed: Any, admin: dict[str, str]
) -> None:
    site = await create_site("held", mode="pre")
    for number in range(3):
        await post_signed(site, comment(f"c{number}", {"id": "a1"}))
    created = await client.post("/v1/sites/held/moderators", json={"name": "Sam"}, headers=admin)
    sam = {"Authorization": f"Bearer {(await created.json())['token']}"}

    status, claimed = await claim_one(client, _mod(site), "c1")
    assert status == 200, claimed
    assert (claimed["id"], claimed["claimed_by"]) == ("c1", site["moderator_id"])
    assert claimed["claimed_by_name"] == "Mo"
    assert claimed["article"] == {"id": "a1"}

    status, refused = await claim_one(client, sam, "c1")
    assert status == 409
    assert refused["error"]["code"] == "claim_conflict"
    assert refused["error"]["details"]["claimed_by_name"] == "Mo"
    # The lease's end as Redis counts it down: the same instant, give or take the round trip.
    held_until = datetime.fromisoformat(claimed["lease_until"])
    conflict_until = datetime.fromisoformat(refused["error"]["details"]["lease_until"])
    assert abs((conflict_until - held_until).total_seconds()) < 1
    decided = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "approve"}, headers=sam
    )
    assert decided.status == 409
    # The queue claim passes over it; its holder renews it.
    taken = await client.post("/v1/sites/held/queue/claim", json={"limit": 10}, headers=sam)
    assert sorted(item["id"] for item in (await taken.json())["items"]) == ["c0", "c2"]
    status, renewed = await claim_one(client, _mod(site), "c1", {"lease_seconds": 30})
    assert status == 200, renewed
    assert renewed["lease_until"] < claimed["lease_until"]

    # Given back, it is anyone's to claim.
    released = await client.post(
        "/v1/sites/held/queue/release", json={"ids": ["c1"]}, headers=_mod(site)
    )
    assert (await released.json())["released"] == ["c1"]
    status, claimed = await claim_one(client, sam, "c1")
    assert status == 200, claimed
    assert claimed["claimed_by_name"] == "Sam"


async def test_claiming_an_unknown_or_decided_comment_or_a_long_lease_is_refused(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", mode="pre")
    await post_signed(site, comment("c0", {"id": "a1"}))
    status, missing = await claim_one(client, _mod(site), "nope")
    assert (status, missing["error"]["code"]) == (404, "not_found")
    status, too_long = await claim_one(client, _mod(site), "c0", {"lease_seconds": 10**6})
    assert (status, too_long["error"]["code"]) == (422, "validation_failed")
    decided = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "reject"}, headers=_mod(site)
    )
    assert decided.status == 200
    status, refused = await claim_one(client, _mod(site), "c0")
    assert (status, refused["error"]["code"]) == (409, "invalid_transition")
    assert "in no queue" in refused["error"]["message"]
    fields = await client.get("/v1/sites/held/comments/c0", headers=_mod(site))
    assert "claimed_by" not in await fields.json()


async def claim_ids(client: Client, site: dict[str, str], body: Any) -> list[str]:
    response = await client.post("/v1/sites/held/queue/claim", json=body, headers=_mod(site))
    assert response.status == 200, await response.text()
    return sorted(item["id"] for item in (await response.json())["items"])


async def test_the_queue_claim_takes_the_listings_filter_and_leaves_the_rest_free(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", suspect_words=["bridge"], max_links=0)
    texts = {
        "c0": ("a1", "The bridge plan is fine"),
        "c1": ("a2", "The plan is at https://news.example/plan"),
        "c2": ("a2", "The bridge plan is at https://news.example/plan"),
        "c3": ("a1", "The plan is at https://news.example/other"),
    }
    for comment_id, (article, text) in texts.items():
        verdict = await (await post_signed(site, comment(comment_id, {"id": article}, text))).json()
        assert verdict["state"] == "pending", verdict

    assert await claim_ids(client, site, {"article": "a2", "order": "oldest"}) == ["c1", "c2"]
    assert await claim_ids(client, site, {"author": "reader-c3"}) == ["c3"]
    # What another filter would take is already held: only c0 is left for SUSPECT_WORD.
    assert await claim_ids(client, site, {"reason": "SUSPECT_WORD"}) == ["c0"]
    assert await claim_ids(client, site, {"article": "a1"}) == []
    held = await client.get("/v1/sites/held/queue?order=oldest", headers=_mod(site))
    assert [item["claimed_by"] for item in (await held.json())["items"]] == [
        site["moderator_id"]
    ] * 4

    # Refused as the listing refuses them, and nothing is claimed.
    await client.post("/v1/sites/held/queue/release", json={}, headers=_mod(site))
    refused = await client.post(
        "/v1/sites/held/queue/claim", json={"reason": "RUDE"}, headers=_mod(site)
    )
    assert refused.status == 422, await refused.text()
    [detail] = (await refused.json())["error"]["details"]
    assert "TOXIC" in detail["message"]
    free = await client.get("/v1/sites/held/queue", headers=_mod(site))
    assert all("claimed_by" not in item for item in (await free.json())["items"])


async def test_the_listing_and_the_claim_take_an_article_or_author_with_a_reason(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", suspect_words=["bridge"], max_links=0)
    link = "The plan is at https://news.example/plan"
    texts = {
        "c0": ("a1", "u1", "The bridge plan is fine"),
        "c1": ("a2", "u1", link),
        "c2": ("a2", "u2", "The bridge plan is at https://news.example/plan"),
        "c3": ("a2", "u2", "The bridge plan is fine"),
        "c4": ("a1", "u2", link),
    }
    for comment_id, (article, author, text) in texts.items():
        body = {**comment(comment_id, {"id": article}, text), "author": {"id": author}}
        verdict = await (await post_signed(site, body)).json()
        assert verdict["state"] == "pending", verdict

    assert await queue_ids(client, site, "article=a2&reason=SUSPECT_WORD") == (["c2", "c3"], 2)
    assert await queue_ids(client, site, "author=u1&reason=LINKS") == (["c1"], 1)
    first = await client.get(
        "/v1/sites/held/queue?order=oldest&article=a2&reason=SUSPECT_WORD&limit=1",
        headers=_mod(site),
    )
    cursor = (await first.json())["next_cursor"]
    assert await queue_ids(
        client, site, f"article=a2&reason=SUSPECT_WORD&limit=1&cursor={cursor}"
    ) == (["c3"], 2)

    # The site's edit files c3 under its new reason, in its article's and author's scopes too.
    edited = {**comment("c3", {"id": "a2"}, link), "author": {"id": "u2"}}
    assert (await (await post_signed(site, edited)).json())["state"] == "pending"
    assert await queue_ids(client, site, "article=a2&reason=SUSPECT_WORD") == (["c2"], 1)
    assert await queue_ids(client, site, "article=a2&reason=LINKS") == (["c1", "c2", "c3"], 3)

    # The claim takes what the listing of both filters shows, nothing of another reason.
    both = {"article": "a2", "reason": "LINKS", "order": "oldest", "limit": 2}
    assert await claim_ids(client, site, both) == ["c1", "c2"]
    assert await claim_ids(client, site, {"author": "u2", "reason": "LINKS"}) == ["c3", "c4"]
    assert await claim_ids(client, site, {"article": "a1", "reason": "LINKS"}) == []
    free = await client.get("/v1/sites/held/queue?order=oldest", headers=_mod(site))
    assert [item["id"] for item in (await free.json())["items"] if "claimed_by" not in item] == [
        "c0"
    ]

    # Decided: out of the combined indexes as well.
    decided = await client.post(
        "/v1/sites/held/comments/c2/decision", json={"action": "approve"}, headers=_mod(site)
    )
    assert decided.status == 200, await decided.text()
    assert await queue_ids(client, site, "article=a2&reason=SUSPECT_WORD") == ([], 0)
    assert await queue_ids(client, site, "author=u2&reason=LINKS") == (["c3", "c4"], 2)


async def test_the_listing_and_the_claim_take_an_article_and_an_author_together(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", max_links=0, mode="pre")
    link = "The plan is at https://news.example/plan"
    texts = {
        "c0": ("a1", "u1", "A fair summary"),
        "c1": ("a1", "u2", "A fair summary"),
        "c2": ("a2", "u1", "A fair summary"),
        "c3": ("a1", "u1", link),
        "c4": ("a2", "u2", "A fair summary"),
        "c5": ("a3", "u1", "A fair summary"),
        "c6": ("a1", "u1", "A fair summary"),
    }
    for comment_id, (article, author, text) in texts.items():
        body = {**comment(comment_id, {"id": article}, text), "author": {"id": author}}
        verdict = await (await post_signed(site, body)).json()
        assert verdict["state"] == "pending", verdict

    # u1 has more queued comments than a1 (5 against 4), u2 fewer (2): each side is walked.
    assert await queue_ids(client, site, "article=a1&author=u1") == (["c0", "c3", "c6"], 3)
    assert await queue_ids(client, site, "article=a1&author=u2") == (["c1"], 1)
    assert await queue_ids(client, site, "article=a3&author=u2") == ([], 0)
    assert await queue_ids(client, site, "article=a1&author=u1&reason=LINKS") == (["c3"], 1)
    # Paged one at a time, in either order, nothing skipped or repeated.
    for order in ("oldest", "priority"):
        seen: list[str] = []
        cursor = ""
        while True:
            response = await client.get(
                f"/v1/sites/held/queue?order={order}&article=a1&author=u1&limit=1{cursor}",
                headers=_mod(site),
            )
            page = await response.json()
            assert page["total"] == 3
            seen += [item["id"] for item in page["items"]]
            if not page["next_cursor"]:
                break
            cursor = f"&cursor={page['next_cursor']}"
        assert sorted(seen) == ["c0", "c3", "c6"]
        assert len(seen) == 3

    # The claim takes what the listing shows, and leaves the author's other comments free.
    both = {"article": "a1", "author": "u1", "order": "oldest", "limit": 2}
    assert await claim_ids(client, site, both) == ["c0", "c3"]
    assert await claim_ids(client, site, {**both, "limit": 10}) == ["c6"]
    assert await claim_ids(client, site, {"article": "a2", "author": "u2"}) == ["c4"]
    assert await claim_ids(client, site, {"article": "a1", "author": "u1"}) == []
    free = await client.get("/v1/sites/held/queue?order=oldest", headers=_mod(site))
    assert [item["id"] for item in (await free.json())["items"] if "claimed_by" not in item] == [
        "c1",
        "c2",
        "c5",
    ]

    # Decided: out of the listing of both.
    decided = await client.post(
        "/v1/sites/held/comments/c3/decision", json={"action": "approve"}, headers=_mod(site)
    )
    assert decided.status == 200, await decided.text()
    assert await queue_ids(client, site, "article=a1&author=u1") == (["c0", "c6"], 2)
