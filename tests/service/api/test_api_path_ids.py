"""Ids in URL paths follow the intake id rule: anything else answers 422 naming the id, before a
lookup could answer 404 for a comment that could never have existed."""

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]

BAD_IDS = ["a b", "x" * 129, "é", "a\tb"]
ROUTES = [
    ("GET", "/v1/sites/news/comments/{id}", None, "comment"),
    ("POST", "/v1/sites/news/comments/{id}/decision", {"action": "approve"}, "comment"),
    ("POST", "/v1/sites/news/comments/{id}/claim", {}, "comment"),
    ("GET", "/v1/sites/news/authors/{id}", None, "author"),
    ("POST", "/v1/sites/news/authors/{id}/status", {"status": "banned"}, "author"),
    ("POST", "/v1/sites/news/deliveries/{id}:redeliver", None, "event"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(("method", "path", "body", "field"), ROUTES)
async def test_a_malformed_id_in_a_path_is_refused_by_name(
    client: Client,
    site: dict[str, str],
    admin: dict[str, str],
    method: str,
    path: str,
    body: Any,
    field: str,
    bad: str,
) -> None:
    response = await client.request(
        method, path.format(id=quote(bad, safe="")), json=body, headers=admin
    )
    assert response.status == 422, await response.text()
    details = (await response.json())["error"]["details"]
    assert [detail["field"] for detail in details] == [field]
