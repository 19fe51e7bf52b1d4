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


async def test_ids_with_braces_reach_their_comment_author_and_article(
    client: Client, create_site: Any, post_signed: Any, admin: dict[str, str]
) -> None:
    # Braces are printable ASCII, so intake takes them ("{3F2504E0-...}" spells many GUIDs).
    comment_id, author_id, article_id = "{3F2504E0-4F89}", "{ada}", "{a1}"
    site = await create_site("held", mode="pre")
    body = {
        "id": comment_id,
        "article": {"id": article_id},
        "author": {"id": author_id},
        "text": "A calm remark about the harbour.",
    }
    assert (await post_signed(site, body)).status == 202
    moderator = {"Authorization": f"Bearer {site['moderator_token']}"}
    comment_path = f"/v1/sites/held/comments/{quote(comment_id, safe='')}"
    author_path = f"/v1/sites/held/authors/{quote(author_id, safe='')}"
    article = {"id": article_id, "closed": True}
    article_path = f"/v1/sites/held/articles/{quote(article_id, safe='')}"

    answers = [
        await client.get(comment_path, headers=moderator),
        await client.post(f"{comment_path}/claim", json={}, headers=moderator),
        await client.post(
            f"{comment_path}/decision", json={"action": "approve"}, headers=moderator
        ),
        await client.post(
            f"{comment_path}/reports", json={"comment_id": comment_id, "reporter_id": "r1"}
        ),
        await client.get(author_path, headers=moderator),
        await post_signed(site, article, path=article_path, method="PUT"),
        await client.post(f"{author_path}:erase", headers=admin),
    ]

    # Each reached its handler (the report unsigned: 401, not a 404 for no route).
    assert [answer.status for answer in answers] == [200, 200, 200, 401, 200, 200, 200]
    assert (await answers[0].json())["id"] == comment_id
    assert (await answers[4].json())["id"] == author_id
    assert (await answers[6].json())["comments_erased"] == 1
