"""A moderator's reason decides what the decision teaches; the API lists the reasons."""

from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from classifier.labels import LABELS
from service.labels import LabelLog
from service.reasons import REASONS, reason_code

Client = TestClient[web.Request, web.Application]


async def test_every_reason_is_listed_with_what_it_teaches(
    client: Client, create_site: Any, moderator: Any, admin: dict[str, str]
) -> None:
    site = await create_site("news")
    for headers in (moderator(site), admin):
        response = await client.get("/v1/sites/news/reasons", headers=headers)
        assert response.status == 200
        listed = (await response.json())["reasons"]
        assert [entry["code"] for entry in listed] == [reason.code for reason in REASONS]
        by_code = {entry["code"]: entry for entry in listed}
        assert by_code["OFF_TOPIC"] == {
            "code": "OFF_TOPIC",
            "description": "Not about the article or the discussion",
            "teaches": {"toxicity": 0},
        }
        assert by_code["INSULT"]["teaches"] == {"toxicity": 1, "insult": 1}
        assert by_code["PERSONAL_INFO"]["teaches"] == {}


def test_the_table_teaches_only_labels_the_model_has_and_codes_are_their_own_form() -> None:
    for reason in REASONS:
        assert set(reason.teaches) <= set(LABELS), reason.code
        assert set(reason.teaches.values()) <= {0, 1}
        assert reason_code(reason.code) == reason.code
    assert len({reason.code for reason in REASONS}) == len(REASONS)


async def test_reasons_are_refused_to_strangers_and_other_sites(
    client: Client, create_site: Any, moderator: Any, admin: dict[str, str]
) -> None:
    news = await create_site("news")
    await create_site("blog")
    other = await client.get("/v1/sites/blog/reasons", headers=moderator(news))
    assert other.status == 404
    assert await other.json() == {
        "error": {"code": "not_found", "message": "site 'blog' not found", "details": None}
    }
    missing = await client.get("/v1/sites/gone/reasons", headers=admin)
    assert missing.status == 404
    assert await missing.json() == {
        "error": {"code": "not_found", "message": "site 'gone' not found", "details": None}
    }
    anonymous = await client.get("/v1/sites/news/reasons")
    assert anonymous.status == 401
    assert await anonymous.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing bearer token in the Authorization header",
            "details": None,
        }
    }


async def decide(client: Client, site: Any, moderator: Any, comment_id: str, **body: Any) -> None:
    response = await client.post(
        f"/v1/sites/{site['id']}/comments/{comment_id}/decision",
        json=body,
        headers=moderator(site),
    )
    assert response.status == 200, await response.text()


async def test_a_rejection_teaches_what_its_reason_says(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Any,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("news", mode="pre")
    reasons = {
        "c1": "off-topic",
        "c2": "Insult",
        "c3": None,
        "c4": "PERSONAL_INFO",
        "c5": "too long, did not read",
    }
    for comment_id, reason in reasons.items():
        body = {"id": comment_id, "article": {"id": "a1"}, "author": {"id": "u1"}, "text": "Hm."}
        assert (await post_signed(site, body)).status == 202
        await decide(client, site, moderator, comment_id, action="reject", reason=reason)
    # An undo whose reason teaches nothing withdraws what the approval taught.
    body = {"id": "c6", "article": {"id": "a1"}, "author": {"id": "u1"}, "text": "Well."}
    assert (await post_signed(site, body)).status == 202
    await decide(client, site, moderator, "c6", action="approve")
    await decide(client, site, moderator, "c6", action="reject", reason="legal")
    await decide(client, site, moderator, "c1", action="spam", reason="off-topic")
    entries = [entry async for entry in LabelLog(redis_client).export("news")]
    assert [(e["comment_id"], e["labels"], e["reason"]) for e in entries] == [
        ("c1", {"toxicity": 0}, "off-topic"),
        ("c2", {"toxicity": 1, "insult": 1}, "Insult"),
        ("c3", {"toxicity": 1}, None),
        ("c4", {}, "PERSONAL_INFO"),
        ("c5", {}, "too long, did not read"),
        ("c6", {"spam": 0, "toxicity": 0}, None),
        ("c6", {}, "legal"),
        ("c1", {"spam": 1}, "off-topic"),
    ]
