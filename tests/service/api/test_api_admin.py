"""Admin API end to end: sites, policy, secrets, moderators and the model summary."""

import asyncio
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.moderation import sites as moderation_sites

Client = TestClient[web.Request, web.Application]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing bearer token in the Authorization header"),
        ({"Authorization": "Basic abc"}, "missing bearer token in the Authorization header"),
        ({"Authorization": "Bearer wrong"}, "invalid admin token"),
    ],
)
async def test_admin_routes_need_the_admin_token(
    client: Client, headers: dict[str, str], message: str
) -> None:
    response = await client.post("/v1/sites", json={"id": "x", "name": "X"}, headers=headers)
    assert response.status == 401
    assert await response.json() == {
        "error": {"code": "unauthorized", "message": message, "details": None}
    }
    assert (await client.get("/v1/sites/x", headers=headers)).status == 401


async def test_a_moderator_token_is_not_an_admin_token(
    client: Client, site: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    response = await client.get("/v1/sites/news", headers=headers)
    assert response.status == 401


async def test_a_created_site_shows_its_secrets_once(client: Client, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/sites",
        json={"id": "blog", "name": "The Blog", "callback_url": "https://blog.example/hook"},
        headers=admin,
    )
    assert response.status == 201
    created = await response.json()
    assert created["id"] == "blog"
    assert created["webhook_secret"]
    assert created["api_key"]
    shown = await (await client.get("/v1/sites/blog", headers=admin)).json()
    assert shown["callback_url"] == "https://blog.example/hook"
    assert shown["policy"]["mode"] == "post"
    text = str(shown)
    assert created["webhook_secret"] not in text
    assert created["api_key"] not in text


async def test_api_keys_have_akismets_format_and_never_repeat(
    client: Client, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = iter(["0123456789ab", "0123456789ab", "ba9876543210"])
    monkeypatch.setattr(moderation_sites, "new_api_key", lambda: next(drawn))
    keys = []
    for site_id in ("one", "two"):
        response = await client.post(
            "/v1/sites", json={"id": site_id, "name": site_id}, headers=admin
        )
        assert response.status == 201
        keys.append((await response.json())["api_key"])
    # The second site drew the first one's key, and drew again.
    assert keys == ["0123456789ab", "ba9876543210"]


async def test_a_real_api_key_survives_wordpress_cleaning_it(
    client: Client, admin: dict[str, str]
) -> None:
    response = await client.post("/v1/sites", json={"id": "wp", "name": "WP"}, headers=admin)
    key = (await response.json())["api_key"]
    # What WordPress's Akismet plugin does to a key before it will use it.
    assert re.sub("[^a-f0-9]", "", key, flags=re.IGNORECASE) == key
    assert len(key) == 12


async def test_a_site_id_is_taken_once(client: Client, admin: dict[str, str]) -> None:
    spec = {"id": "blog", "name": "The Blog"}
    assert (await client.post("/v1/sites", json=spec, headers=admin)).status == 201
    again = await client.post("/v1/sites", json=spec, headers=admin)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "already_exists"


async def test_a_site_spec_lists_every_bad_field(client: Client, admin: dict[str, str]) -> None:
    response = await client.post(
        "/v1/sites",
        json={"id": "Not A Slug", "callback_url": "ftp://x", "policy": {"mode": "later"}},
        headers=admin,
    )
    assert response.status == 422
    error = (await response.json())["error"]
    fields = sorted(item["field"] for item in error["details"])
    assert fields == ["callback_url", "id", "name", "policy.mode"]


@pytest.mark.parametrize(
    "url", ["http://hooks..example.com/civility", f"https://{'a' * 64}.example/hook", "http:///x"]
)
async def test_a_callback_url_whose_host_cannot_be_reached_is_refused(
    client: Client, admin: dict[str, str], site: dict[str, str], url: str
) -> None:
    created = await client.post(
        "/v1/sites", json={"id": "blog", "name": "Blog", "callback_url": url}, headers=admin
    )
    patched = await client.patch("/v1/sites/news", json={"callback_url": url}, headers=admin)
    for response in (created, patched):
        assert response.status == 422
        [detail] = (await response.json())["error"]["details"]
        assert detail["field"] == "callback_url"
    assert (await client.get("/v1/sites/blog", headers=admin)).status == 404
    shown = await (await client.get("/v1/sites/news", headers=admin)).json()
    assert shown["callback_url"] != url


async def test_a_policy_patch_changes_only_the_fields_given(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/sites/news",
        json={"policy": {"banned_words": ["grobble"], "max_links": 0}},
        headers=admin,
    )
    assert response.status == 200
    policy = (await response.json())["policy"]
    assert policy["banned_words"] == ["grobble"]
    assert policy["max_links"] == 0
    assert policy["flood_seconds_per_author"] == 0  # set at creation, untouched


async def test_a_threshold_for_a_label_the_model_does_not_score_is_refused(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    model = await (await client.get("/v1/model", headers=admin)).json()
    typo = {"hold": {"toxcity": 0.4}, "reject": {"toxicity": 0.9, "spamm": 0.99}}

    created = await client.post(
        "/v1/sites", json={"id": "blog", "name": "Blog", "policy": typo}, headers=admin
    )
    patched = await client.patch("/v1/sites/news", json={"policy": typo}, headers=admin)

    for response in (created, patched):
        assert response.status == 422
        details = (await response.json())["error"]["details"]
        assert sorted(item["field"] for item in details) == [
            "policy.hold.toxcity",
            "policy.reject.spamm",
        ]
        assert ", ".join(sorted(model["thresholds"])) in details[0]["message"]
    assert (await client.get("/v1/sites/blog", headers=admin)).status == 404
    shown = await (await client.get("/v1/sites/news", headers=admin)).json()
    assert "toxicity" not in shown["policy"]["reject"]


async def test_concurrent_policy_patches_each_keep_their_change(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    patches: list[dict[str, object]] = [{"report_threshold": 10 + index} for index in range(6)]
    patches += [{"banned_words": [f"word{index}"]} for index in range(6)]
    patches += [{"max_links": index} for index in range(6)]
    responses = await asyncio.gather(
        *(client.patch("/v1/sites/news", json={"policy": p}, headers=admin) for p in patches)
    )
    assert [response.status for response in responses] == [200] * len(patches)
    policy = (await (await client.get("/v1/sites/news", headers=admin)).json())["policy"]
    # Whichever patch of each field landed last, none was lost to another field's patch.
    assert policy["report_threshold"] in range(10, 16)
    assert policy["banned_words"][0].startswith("word")
    assert policy["max_links"] in range(6)
    assert policy["flood_seconds_per_author"] == 0


async def test_an_unknown_site_is_404_for_the_admin(client: Client, admin: dict[str, str]) -> None:
    response = await client.get("/v1/sites/nowhere", headers=admin)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    rotate = await client.post("/v1/sites/nowhere/secrets:rotate", headers=admin)
    assert rotate.status == 404


async def test_moderator_tokens_are_shown_once_and_work_for_their_site(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    response = await client.post("/v1/sites/news/moderators", json={"name": "Ada"}, headers=admin)
    assert response.status == 201
    created = await response.json()
    assert created["name"] == "Ada"
    assert created["site_id"] == "news"
    queue = await client.get(
        "/v1/sites/news/queue", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert queue.status == 200


async def test_the_model_summary_names_the_active_model(
    client: Client, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/model", headers=admin)
    assert response.status == 200
    summary: dict[str, Any] = await response.json()
    assert summary["version"]
    assert {"spam", "toxicity"} <= set(summary["labels"])
    assert set(summary["thresholds"]) <= set(summary["labels"])
