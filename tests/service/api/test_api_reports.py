"""Reader reports end to end: signed like intake, one per reader, the threshold, the queue."""

import asyncio
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.keys import KeySpace

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
KEYS = KeySpace("civ")
TEXT = "Thanks for the summary, the part about the negotiations was new to me."


async def published_comment(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Headers, comment_id: str
) -> dict[str, Any]:
    """A comment in state approved: published at once, or approved by the moderator."""
    body = {"id": comment_id, "article": {"id": "a1"}, "author": {"id": "writer"}, "text": TEXT}
    verdict = await (await post_signed(site, body)).json()
    if verdict["state"] != "approved":
        response = await client.post(
            f"/v1/sites/{site['id']}/comments/{comment_id}/decision",
            json={"action": "approve"},
            headers=moderator(site),
        )
        assert response.status == 200, await response.text()
    return await comment_view(client, site, moderator, comment_id)


async def comment_view(
    client: Client, site: dict[str, str], moderator: Headers, comment_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/sites/{site['id']}/comments/{comment_id}", headers=moderator(site)
    )
    assert response.status == 200, await response.text()
    view: dict[str, Any] = await response.json()
    return view


async def report(
    post_signed: Any, site: dict[str, str], comment_id: str, reporter: str, **extra: Any
) -> Any:
    path = f"/v1/sites/{site['id']}/comments/{comment_id}/reports"
    return await post_signed(
        site,
        {"comment_id": comment_id, "reporter_id": reporter, "reason": "abusive", **extra},
        path=path,
    )


async def reported_ids(client: Client, site: dict[str, str], moderator: Headers) -> list[str]:
    response = await client.get(
        f"/v1/sites/{site['id']}/queue?queue=reported&order=oldest", headers=moderator(site)
    )
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def outbox_types(redis_client: aioredis.Redis, site_id: str, comment_id: str) -> list[str]:
    entries = cast(
        list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox(site_id))
    )
    return [fields["type"] for _, fields in entries if fields["comment_id"] == comment_id]


async def test_the_report_reaching_the_threshold_queues_the_comment_once(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    before = await published_comment(client, site, post_signed, moderator, "c1")
    answers = []
    for reader in ("r1", "r2", "r3", "r4"):
        response = await report(post_signed, site, "c1", reader, note=f"by {reader}")
        assert response.status == 202
        answers.append(await response.json())
    assert [(a["reports"], a["reported"], a["counted"]) for a in answers] == [
        (1, False, True),
        (2, False, True),
        (3, True, True),
        (4, True, True),
    ]
    assert all(a["threshold"] == 3 and a["state"] == "approved" for a in answers)
    assert await reported_ids(client, site, moderator) == ["c1"]
    listed = await client.get("/v1/sites/news/queue?queue=reported", headers=moderator(site))
    assert [item["report_count"] for item in (await listed.json())["items"]] == [4]
    # One event for entering the queue, however many reports follow.
    types = await outbox_types(redis_client, "news", "c1")
    assert types.count("comment.reported") == 1
    view = await comment_view(client, site, moderator, "c1")
    assert view["state"] == "approved"
    assert view["version"] == before["version"] + 1
    assert "REPORTED" in view["reasons"]
    assert [r["reporter_id"] for r in view["reports"]] == ["r1", "r2", "r3", "r4"]
    assert view["reports"][0]["reason"] == "abusive"
    assert view["reports"][0]["note"] == "by r1"
    assert view["history"][-1]["action"] == "report"
    assert view["history"][-1]["actor"] == "readers"
    # Waiting for a moderator, it does not expire.
    assert await redis_client.pttl(KEYS.comment("news", "c1")) == -1


async def test_reports_below_the_threshold_expire_with_their_comment(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    assert (await report(post_signed, site, "c1", "r1")).status == 202
    comment_ttl = await redis_client.pttl(KEYS.comment("news", "c1"))
    assert comment_ttl > 0
    assert 0 < await redis_client.pttl(KEYS.reports("news", "c1")) <= comment_ttl


async def test_a_readers_second_report_is_answered_with_the_standing_and_not_counted(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Headers
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    first = await report(post_signed, site, "c1", "r1")
    assert first.status == 202
    again = await report(post_signed, site, "c1", "r1", reason="spam")
    assert again.status == 200
    assert await again.json() == {
        "comment_id": "c1",
        "state": "approved",
        "reports": 1,
        "threshold": 3,
        "reported": False,
        "counted": False,
    }
    view = await comment_view(client, site, moderator, "c1")
    assert [(r["reporter_id"], r["reason"]) for r in view["reports"]] == [("r1", "abusive")]


async def test_the_threshold_is_the_sites_policy(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("blog", report_threshold=1)
    await published_comment(client, site, post_signed, moderator, "c1")
    answer = await (await report(post_signed, site, "c1", "r1")).json()
    assert (answer["reported"], answer["threshold"]) == (True, 1)
    assert await reported_ids(client, site, moderator) == ["c1"]


async def test_keeping_a_reported_comment_clears_its_reports_and_the_queue(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    for reader in ("r1", "r2", "r3"):
        await report(post_signed, site, "c1", reader)
    claimed = await client.post(
        "/v1/sites/news/queue/claim", json={"queue": "reported"}, headers=moderator(site)
    )
    assert [item["id"] for item in (await claimed.json())["items"]] == ["c1"]
    kept = await client.post(
        "/v1/sites/news/comments/c1/decision",
        json={"action": "approve", "reason": "fair criticism"},
        headers=moderator(site),
    )
    assert kept.status == 200
    assert (await kept.json())["state"] == "approved"
    assert await reported_ids(client, site, moderator) == []
    view = await comment_view(client, site, moderator, "c1")
    assert view["reports"] == []
    assert "report_count" not in view
    assert view["reasons"] == ["fair criticism"]
    # Reports start again from none: the same readers count again.
    again = await (await report(post_signed, site, "c1", "r1")).json()
    assert (again["reports"], again["counted"], again["reported"]) == (1, True, False)
    # Kept, it is decided again and expires with the site's retention.
    assert await redis_client.pttl(KEYS.comment("news", "c1")) > 0


async def test_rejecting_a_reported_comment_takes_it_down_and_out_of_the_queue(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    for reader in ("r1", "r2", "r3"):
        await report(post_signed, site, "c1", reader)
    rejected = await client.post(
        "/v1/sites/news/comments/c1/decision", json={"action": "reject"}, headers=moderator(site)
    )
    assert (await rejected.json())["state"] == "rejected"
    assert await reported_ids(client, site, moderator) == []
    assert (await outbox_types(redis_client, "news", "c1"))[-2:] == [
        "comment.reported",
        "comment.rejected",
    ]
    # The reports stay on record with the rejected comment.
    view = await comment_view(client, site, moderator, "c1")
    assert len(view["reports"]) == 3


async def test_only_published_comments_can_be_reported(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    body = {"id": "c1", "article": {"id": "a1"}, "author": {"id": "u1"}, "text": TEXT}
    assert (await (await post_signed(site, body)).json())["state"] == "pending"
    response = await report(post_signed, site, "c1", "r1")
    assert response.status == 409
    assert await response.json() == {
        "error": {
            "code": "invalid_transition",
            "message": "only published comments can be reported; this one is pending",
            "details": {"state": "pending"},
        }
    }
    view = await comment_view(client, site, moderator, "c1")
    assert view["reports"] == []


async def test_an_unknown_comment_answers_404(site: dict[str, str], post_signed: Any) -> None:
    response = await report(post_signed, site, "missing", "r1")
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "comment 'missing' not found", "details": None}
    }


async def test_every_failing_field_of_a_report_is_listed(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    path = "/v1/sites/news/comments/c1/reports"
    response = await post_signed(
        site,
        {"comment_id": "c1", "reporter_id": "has space", "reason": "boring", "extra": 1},
        path=path,
    )
    assert response.status == 422
    assert await response.json() == {
        "error": {
            "code": "validation_failed",
            "message": "request validation failed",
            "details": [
                {
                    "field": "reporter_id",
                    "message": "String should match pattern '^[\\x21-\\x7e]+$'",
                },
                {
                    "field": "reason",
                    "message": "Input should be 'offensive', 'abusive', 'spam' or 'other'",
                },
                {"field": "extra", "message": "Extra inputs are not permitted"},
            ],
        }
    }
    assert await redis_client.exists(KEYS.reports("news", "c1")) == 0


async def test_a_report_must_be_signed_by_the_site(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    path = "/v1/sites/news/comments/c1/reports"
    body = {"comment_id": "c1", "reporter_id": "r1", "reason": "spam"}
    wrong = await post_signed(site, body, path=path, secret="whsec_not-the-secret")
    assert wrong.status == 401
    assert (await wrong.json())["error"]["code"] == "unauthorized"
    unsigned = await client.post(path, json=body)
    assert unsigned.status == 401
    assert await redis_client.exists(KEYS.reports("news", "c1")) == 0


async def test_an_edit_of_a_reported_comment_is_judged_afresh(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Headers
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    for reader in ("r1", "r2", "r3"):
        await report(post_signed, site, "c1", reader)
    assert await reported_ids(client, site, moderator) == ["c1"]
    edited = {
        "id": "c1",
        "article": {"id": "a1"},
        "author": {"id": "writer"},
        "text": f"{TEXT} I removed the part people objected to.",
    }
    assert (await post_signed(site, edited)).status == 202
    # The readers reported the old text: the new one leaves the queue and starts with no reports.
    assert await reported_ids(client, site, moderator) == []
    view = await comment_view(client, site, moderator, "c1")
    assert view["reports"] == []
    assert view["history"][-1]["action"] == "edit"


async def test_concurrent_reports_queue_the_comment_exactly_once(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    await published_comment(client, site, post_signed, moderator, "c1")
    readers = [f"r{number}" for number in range(12)] * 2  # each reader twice, all at once
    responses = await asyncio.gather(*(report(post_signed, site, "c1", r) for r in readers))
    answers = [await response.json() for response in responses]
    assert sum(answer["counted"] for answer in answers) == 12
    assert sorted(answer["reports"] for answer in answers if answer["counted"]) == list(
        range(1, 13)
    )
    assert (await outbox_types(redis_client, "news", "c1")).count("comment.reported") == 1
    assert await reported_ids(client, site, moderator) == ["c1"]
