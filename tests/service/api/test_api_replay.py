"""A signed request acts on its own target only: a captured one replayed on another path is
refused, and ids in paths follow the intake id rule."""

import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service import signatures
from service.keys import KeySpace

Client = TestClient[web.Request, web.Application]
KEYS = KeySpace("civ")
ID_PATTERN = "String should match pattern '^[\\x21-\\x7e]+$'"


def signed(site: dict[str, str], body: Any) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        signatures.HEADER: signatures.sign(site["webhook_secret"], raw),
    }
    return raw, headers


def field_error(field: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "validation_failed",
            "message": "request validation failed",
            "details": [{"field": field, "message": message}],
        }
    }


async def test_a_signed_article_update_cannot_be_replayed_on_another_article(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    raw, headers = signed(site, {"id": "a-legit", "closed": True})
    legit = await client.put("/v1/sites/news/articles/a-legit", data=raw, headers=headers)
    assert legit.status == 200
    for victim in ("victim-0", "victim-1"):
        replayed = await client.put(f"/v1/sites/news/articles/{victim}", data=raw, headers=headers)
        assert replayed.status == 422
        assert await replayed.json() == field_error(
            "id", f"must be {victim!r}, the article of the request path"
        )
        assert await redis_client.exists(KEYS.article("news", victim)) == 0


async def test_a_signed_report_cannot_be_replayed_on_another_comment(
    client: Client, site: dict[str, str], post_signed: Any, redis_client: aioredis.Redis
) -> None:
    for comment_id in ("c1", "c2"):
        body = {
            "id": comment_id,
            "article": {"id": "a1"},
            "author": {"id": "ada"},
            "text": "A calm remark about the harbour.",
        }
        assert (await post_signed(site, body)).status == 202
    raw, headers = signed(site, {"comment_id": "c1", "reporter_id": "r1", "reason": "spam"})
    counted = await client.post("/v1/sites/news/comments/c1/reports", data=raw, headers=headers)
    assert counted.status == 202
    replayed = await client.post("/v1/sites/news/comments/c2/reports", data=raw, headers=headers)
    assert replayed.status == 422
    assert await replayed.json() == field_error(
        "comment_id", "must be 'c2', the comment of the request path"
    )
    assert await redis_client.exists(KEYS.reports("news", "c2")) == 0


@pytest.mark.parametrize(
    ("path_id", "message"),
    [
        ("a%20b", ID_PATTERN),
        ("%00", ID_PATTERN),
        ("%F0%9F%98%80", ID_PATTERN),
        ("x" * 7000, "String should have at most 128 characters"),
    ],
)
async def test_ids_in_paths_follow_the_intake_id_rule(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    redis_client: aioredis.Redis,
    path_id: str,
    message: str,
) -> None:
    response = await post_signed(
        site,
        {"id": "a1", "closed": True},
        path=f"/v1/sites/news/articles/{path_id}",
        method="PUT",
    )
    assert response.status == 422
    assert await response.json() == field_error("article", message)
    assert [key async for key in redis_client.scan_iter(match="civ:{news}:article:*")] == []
