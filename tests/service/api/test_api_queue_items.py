"""What a queue item tells a moderator beyond the comment: its article's title and link."""

from collections.abc import Callable
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
