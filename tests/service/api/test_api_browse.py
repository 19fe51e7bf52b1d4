"""What the console needs from the API: browsing comments in any state, reopening a decided one,
names beside moderator ids, totals and the oldest age of each queue, an edit's old text."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.clocks import Clock
from tests.service.api.test_api_moderation import comment, held_site, second_moderator

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]


async def decide(
    client: Client, headers: dict[str, str], comment_id: str, action: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/sites/held/comments/{comment_id}/decision",
        json={"action": action, **extra},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def listing(client: Client, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = await client.get(f"/v1/sites/held/comments?{query}", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_decided_comments_are_listed_by_state_latest_first_with_a_total(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    for comment_id, action in [("c0", "approve"), ("c2", "approve"), ("c1", "reject")]:
        await decide(client, mo, comment_id, action)

    approved = await listing(client, mo, "state=approved")
    assert [item["id"] for item in approved["items"]] == ["c2", "c0"]
    assert approved["total"] == 2
    assert approved["next_cursor"] is None
    assert [item["decided_by_name"] for item in approved["items"]] == ["Mo", "Mo"]
    rejected = await listing(client, mo, "state=rejected")
    assert [item["id"] for item in rejected["items"]] == ["c1"]
    pending = await listing(client, mo, "state=pending")
    assert [item["id"] for item in pending["items"]] == ["c3"]
    assert pending["items"][0]["decided_by_name"] is None  # the model held it
    assert (await listing(client, mo, "state=spam")) == {
        "items": [],
        "next_cursor": None,
        "total": 0,
    }


async def test_the_listing_pages_with_a_cursor_and_filters_by_article_or_author(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    other = {**comment("d1", "Another article, another calm remark."), "article": {"id": "a2"}}
    assert (await post_signed(site, other)).status == 202
    for comment_id in ["c0", "c1", "c2", "c3", "d1"]:
        await decide(client, mo, comment_id, "approve")

    first = await listing(client, mo, "state=approved&limit=2")
    assert [item["id"] for item in first["items"]] == ["d1", "c3"]
    assert first["total"] == 5
    second = await listing(client, mo, f"state=approved&limit=2&cursor={first['next_cursor']}")
    third = await listing(client, mo, f"state=approved&limit=2&cursor={second['next_cursor']}")
    assert [item["id"] for item in second["items"] + third["items"]] == ["c2", "c1", "c0"]
    assert third["next_cursor"] is None

    by_article = await listing(client, mo, "state=approved&article=a2")
    assert [item["id"] for item in by_article["items"]] == ["d1"]
    assert by_article["total"] == 1
    by_author = await listing(client, mo, "state=approved&author=reader-c1")
    assert [item["id"] for item in by_author["items"]] == ["c1"]

    foreign = await client.get(
        f"/v1/sites/held/comments?state=rejected&cursor={first['next_cursor']}", headers=mo
    )
    assert foreign.status == 400
    assert await foreign.json() == {
        "error": {
            "code": "bad_request",
            "message": "the cursor belongs to a different queue, order or filter",
            "details": None,
        }
    }


async def test_the_listing_takes_an_article_and_an_author_together(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await create_site("held", mode="pre")
    mo = moderator(site)
    scopes = {
        "c0": ("a1", "u1"),
        "c1": ("a1", "u2"),
        "c2": ("a2", "u1"),
        "c3": ("a1", "u1"),
        "c4": ("a2", "u2"),
        "c5": ("a3", "u1"),
        "c6": ("a1", "u1"),
        "c7": ("a3", "u1"),
        "c8": ("a1", "u1"),
    }
    decided_at: dict[str, str] = {}
    for comment_id, (article, author) in scopes.items():
        body = {
            **comment(comment_id, f"A calm remark, number {comment_id}."),
            "article": {"id": article},
            "author": {"id": author},
        }
        assert (await post_signed(site, body)).status == 202
    for comment_id in scopes:
        # A minute apart, so the latest decision first is one order.
        clock.advance(60)
        action = "reject" if comment_id == "c3" else "approve"
        decided_at[comment_id] = (await decide(client, mo, comment_id, action))["decided_at"]

    async def ids(query: str) -> tuple[list[str], int]:
        page = await listing(client, mo, query)
        return [item["id"] for item in page["items"]], page["total"]

    # Approved, u1 has more comments than a1 (6 against 4), u2 fewer (2): each side is walked.
    assert await ids("state=approved&article=a1&author=u1") == (["c8", "c6", "c0"], 3)
    assert await ids("state=approved&article=a1&author=u2") == (["c1"], 1)
    assert await ids("state=approved&article=a3&author=u2") == ([], 0)
    assert await ids("state=rejected&article=a1&author=u1") == (["c3"], 1)
    # Decision times bound the page and the total alike.
    since, until = decided_at["c6"], decided_at["c8"]
    assert await ids(f"state=approved&article=a1&author=u1&since={since}") == (["c8", "c6"], 2)
    assert await ids(f"state=approved&article=a1&author=u1&since={since}&until={until}") == (
        ["c6"],
        1,
    )
    assert await ids(f"state=approved&article=a2&author=u1&until={since}") == (["c2"], 1)

    # Paged one at a time, nothing skipped or repeated, the total the same on every page.
    seen: list[str] = []
    cursor = ""
    while True:
        page = await listing(client, mo, f"state=approved&article=a1&author=u1&limit=1{cursor}")
        assert page["total"] == 3
        seen += [item["id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ["c8", "c6", "c0"]
    # A cursor of the pair is not one of the article alone.
    first = await listing(client, mo, "state=approved&article=a1&author=u1&limit=1")
    alone = await client.get(
        f"/v1/sites/held/comments?state=approved&article=a1&cursor={first['next_cursor']}",
        headers=mo,
    )
    assert alone.status == 400

    # Sent back to pending: out of the pair's approved listing, into its pending one.
    await decide(client, mo, "c6", "reopen")
    assert await ids("state=approved&article=a1&author=u1") == (["c8", "c0"], 2)
    assert await ids("state=pending&article=a1&author=u1") == (["c6"], 1)


async def test_the_listing_refuses_bad_queries_with_every_field_named(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    missing = await client.get("/v1/sites/held/comments", headers=moderator(site))
    assert missing.status == 422
    assert (await missing.json())["error"]["details"] == [
        {"field": "state", "message": "Field required"}
    ]
    wrong = await client.get(
        "/v1/sites/held/comments?state=gone&limit=0&since=yesterday", headers=moderator(site)
    )
    assert wrong.status == 422
    fields = [detail["field"] for detail in (await wrong.json())["error"]["details"]]
    assert fields == ["state", "since", "limit"]
    backwards = await client.get(
        "/v1/sites/held/comments?state=approved&since=2026-02-01T00:00:00Z"
        "&until=2026-01-01T00:00:00Z",
        headers=moderator(site),
    )
    assert backwards.status == 422
    # Named as the query's parameter, as every other field error is: a query has no body.
    assert (await backwards.json())["error"]["details"] == [
        {
            "field": "until",
            "message": "Value error, must be after since (2026-02-01T00:00:00.000Z): the listing "
            "takes decision times from since up to, not including, until",
        }
    ]
    # An empty range is refused on until too; an until after a since that is no time is not.
    for since, named in (("2026-01-01T00:00:00Z", "until"), ("yesterday", "since")):
        response = await client.get(
            f"/v1/sites/held/comments?state=approved&since={since}&until=2026-01-01T00:00:00Z",
            headers=moderator(site),
        )
        assert response.status == 422
        details = (await response.json())["error"]["details"]
        assert [detail["field"] for detail in details] == [named]
    anonymous = await client.get("/v1/sites/held/comments?state=approved")
    assert anonymous.status == 401


async def test_a_listing_refuses_a_parameter_given_twice_rather_than_read_one_of_them(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    # A client asking for two states (or two articles) at once would otherwise get the list of
    # the first alone, its total too, and take it for both.
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    for comment_id, action in [("c0", "approve"), ("c1", "reject")]:
        await decide(client, mo, comment_id, action)
    twice_message = "is given more than once, with different values: it takes one"
    for path in (
        "comments?state=approved&state=rejected&limit=0",
        "queue?article=a1&article=a2&limit=0",
        "deliveries?state=failed&state=delivered&limit=0",
    ):
        response = await client.get(f"/v1/sites/held/{path}", headers=mo)
        assert response.status == 422, path
        details = (await response.json())["error"]["details"]
        twice = "state" if "state=" in path else "article"
        assert details == [
            {"field": twice, "message": twice_message},
            {"field": "limit", "message": "Input should be greater than or equal to 1"},
        ]
    once = await listing(client, mo, "state=approved&state=approved")
    assert [item["id"] for item in once["items"]] == ["c0"]


async def test_a_decision_time_bound_given_as_a_number_is_refused(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    for bound in ("since", "until"):
        response = await client.get(
            f"/v1/sites/held/comments?state=approved&{bound}=1764234000", headers=moderator(site)
        )
        assert response.status == 422
        [detail] = (await response.json())["error"]["details"]
        assert detail["field"] == bound
        assert "ISO 8601" in detail["message"]


async def test_an_offsets_plus_left_unencoded_in_a_bound_is_named(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    # A URL's query reads "+" as a space, so "+01:00" arrives as " 01:00".
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    for bound in ("since", "until"):
        for moment in ("2026-01-01T00:00:00+01:00", "2026-01-01 00:00:00.250+01:00"):
            path = f"/v1/sites/held/comments?state=approved&{bound}={moment}"
            response = await client.get(path, headers=mo)
            assert response.status == 422, path
            [detail] = (await response.json())["error"]["details"]
            assert detail["field"] == bound
            assert "write the + of its offset as %2B" in detail["message"], detail
            encoded = path.replace("+", "%2B")
            assert (await client.get(encoded, headers=mo)).status == 200, encoded
        # A space that is no offset's sign gets no word of %2B.
        response = await client.get(
            f"/v1/sites/held/comments?state=approved&{bound}=2026-01-01T00:00 01:00", headers=mo
        )
        [detail] = (await response.json())["error"]["details"]
        assert "%2B" not in detail["message"]
        assert "ISO 8601" in detail["message"]


async def test_decision_time_bounds_finer_than_a_millisecond_are_exact(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    decided = datetime.fromisoformat((await decide(client, mo, "c1", "approve"))["decided_at"])

    async def found(**bounds: timedelta) -> list[str]:
        query = {"state": "approved"}
        for bound, shift in bounds.items():
            query[bound] = (decided + shift).isoformat().replace("+00:00", "Z")
        response = await client.get("/v1/sites/held/comments", params=query, headers=mo)
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    half = timedelta(microseconds=500)
    # since <= decision time: a bound half a millisecond after it leaves it out.
    assert await found(since=timedelta()) == ["c1"]
    assert await found(since=half) == []
    assert await found(since=-half) == ["c1"]
    # decision time < until: half a millisecond after it takes it in, at it or before leaves it.
    assert await found(until=half) == ["c1"]
    assert await found(until=timedelta()) == []
    assert await found(until=-half) == []
    assert await found(since=-half, until=half) == ["c1"]


async def test_a_token_of_another_site_cannot_list_its_comments(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    await held_site(create_site, post_signed)
    other = await create_site("other")
    response = await client.get("/v1/sites/held/comments?state=pending", headers=moderator(other))
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "site 'held' not found", "details": None}
    }


async def test_reopen_sends_a_decided_comment_back_to_the_queue(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    await decide(client, mo, "c1", "reject", reason="OFF_TOPIC")
    queue = await (await client.get("/v1/sites/held/queue?order=oldest", headers=mo)).json()
    assert [item["id"] for item in queue["items"]] == ["c0", "c2", "c3"]

    reopened = await decide(client, mo, "c1", "reopen", note="second opinion")
    assert reopened["state"] == "pending"
    assert reopened["decided_by_name"] == "Mo"
    queue = await (await client.get("/v1/sites/held/queue?order=oldest", headers=mo)).json()
    # Back in the queue, it waits from now: after those that never left.
    assert [item["id"] for item in queue["items"]] == ["c0", "c2", "c3", "c1"]
    assert queue["total"] == 4
    assert (await listing(client, mo, "state=rejected"))["total"] == 0
    assert [item["id"] for item in (await listing(client, mo, "state=pending"))["items"]] == [
        "c1",
        "c3",
        "c2",
        "c0",
    ]
    history = (await (await client.get("/v1/sites/held/comments/c1", headers=mo)).json())["history"]
    assert [(entry["action"], entry["to_state"], entry["actor_name"]) for entry in history] == [
        ("create", "pending", None),
        ("reject", "rejected", "Mo"),
        ("reopen", "pending", "Mo"),
    ]
    assert history[2]["note"] == "second opinion"

    again = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "reopen"}, headers=mo
    )
    assert again.status == 409
    assert await again.json() == {
        "error": {
            "code": "invalid_transition",
            "message": "cannot reopen a comment in state pending",
            "details": None,
        }
    }


async def test_names_stand_beside_the_ids_of_who_claimed_and_decided(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: Any
) -> None:
    site = await held_site(create_site, post_signed)
    second = await second_moderator(client, admin, "held")
    claimed = await client.post("/v1/sites/held/queue/claim", json={"limit": 1}, headers=second)
    [item] = (await claimed.json())["items"]
    assert item["claimed_by_name"] == "Second"
    assert item["claimed_by"].startswith("mod_")
    queue = await (await client.get("/v1/sites/held/queue", headers=moderator(site))).json()
    held = {entry["id"]: entry for entry in queue["items"]}
    assert held[item["id"]]["claimed_by_name"] == "Second"
    taken = await client.post(
        f"/v1/sites/held/comments/{item['id']}/decision",
        json={"action": "approve"},
        headers=moderator(site),
    )
    assert taken.status == 409
    details = (await taken.json())["error"]["details"]
    assert (details["claimed_by"], details["claimed_by_name"]) == (item["claimed_by"], "Second")
    free = next(entry["id"] for entry in queue["items"] if entry["id"] != item["id"])
    decided = await decide(client, admin, free, "approve")
    assert (decided["decided_by"], decided["decided_by_name"]) == ("admin", "admin")


async def test_queue_pages_and_stats_carry_totals_and_the_oldest_age_of_each_queue(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    page = await (await client.get("/v1/sites/held/queue?limit=1", headers=moderator(site))).json()
    assert (len(page["items"]), page["total"]) == (1, 4)
    stats = await (await client.get("/v1/sites/held/stats", headers=moderator(site))).json()
    assert stats["queue_depths"] == {"pending": 4, "reported": 0}
    assert stats["oldest_ages_seconds"]["reported"] is None
    assert stats["oldest_ages_seconds"]["pending"] == stats["oldest_pending_age_seconds"]
    assert stats["oldest_ages_seconds"]["pending"] >= 0


async def test_an_edit_keeps_the_text_it_replaced_in_the_history(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    edited = comment("c0", "I disagree with the minister; the summary is fair, I take it back.")
    assert (await post_signed(site, edited)).status == 202
    view = await (await client.get("/v1/sites/held/comments/c0", headers=moderator(site))).json()
    first, edit = view["history"]
    assert "previous_text" not in first
    assert edit["action"] == "edit"
    assert edit["previous_text"] == (
        "I disagree with the minister, but the summary of the talks is fair."
    )


async def test_erasing_an_author_removes_the_text_an_edit_replaced(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: dict[str, str]
) -> None:
    site = await held_site(create_site, post_signed)
    edited = comment("c0", "I disagree with the minister; the summary is fair, I take it back.")
    assert (await post_signed(site, edited)).status == 202
    erased = await client.post("/v1/sites/held/authors/reader-c0:erase", headers=admin)
    assert erased.status == 200, await erased.text()
    view = await (await client.get("/v1/sites/held/comments/c0", headers=moderator(site))).json()
    assert view["text"] == ""
    assert [entry["action"] for entry in view["history"]] == ["create", "edit"]
    assert all("previous_text" not in entry for entry in view["history"])
