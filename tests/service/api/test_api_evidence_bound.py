"""With no room for evidence waiting, a held comment keeps its verdict and /metrics counts the
evidence dropped."""

import dataclasses
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.settings import Settings
from tests.service.api.conftest import api_settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return dataclasses.replace(api_settings(redis_url), evidence_pending_max=0)


async def test_evidence_past_the_bound_is_counted_and_the_comment_held(
    client: Client, create_site: Any, post_signed: Any, moderator: Any
) -> None:
    site = await create_site("held", mode="pre")
    # Held for the pre-moderation alone: no label reached its limit, there is nothing to explain.
    calm = {"id": "c0", "article": {"id": "a1"}, "author": {"id": "u1"}, "text": "A calm remark."}
    assert (await post_signed(site, calm)).status == 202
    body = {**calm, "id": "c1", "text": "What a silly remark."}
    assert (await post_signed(site, body)).status == 202

    text = await (await client.get("/metrics")).text()
    assert "civility_evidence_dropped_total 1.0" in text
    held = await client.get("/v1/sites/held/comments/c1", headers=moderator(site))
    assert (held.status, (await held.json())["state"]) == (200, "pending")
