"""A rotated-out webhook secret stops working when its grace period ends."""

import dataclasses
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.settings import Settings
from tests.clocks import Clock

Client = TestClient[web.Request, web.Application]
GRACE_SECONDS = 60


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secret_grace_seconds=GRACE_SECONDS)


def comment(comment_id: str) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": f"author-{comment_id}"},
        "text": "A calm and friendly remark about the weather.",
    }


async def test_the_old_secret_fails_after_the_grace_period(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str], clock: Clock
) -> None:
    rotation = await (await client.post("/v1/sites/news/secrets:rotate", headers=admin)).json()
    assert (await post_signed(site, comment("during"))).status == 202
    clock.advance(GRACE_SECONDS / 2)
    assert (await post_signed(site, comment("still"))).status == 202
    clock.advance(GRACE_SECONDS / 2)
    late = await post_signed(site, comment("after"))
    assert late.status == 401
    assert (await late.json())["error"]["code"] == "unauthorized"
    fresh = await post_signed(site, comment("after"), secret=rotation["webhook_secret"])
    assert fresh.status == 202
    assert json.loads(await fresh.text())["id"] == "after"
