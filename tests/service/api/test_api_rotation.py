"""A rotated-out webhook secret stops working when its grace period ends."""

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.settings import Settings

Client = TestClient[web.Request, web.Application]
GRACE_SECONDS = 1


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
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    rotation = await (await client.post("/v1/sites/news/secrets:rotate", headers=admin)).json()
    assert (await post_signed(site, comment("during"))).status == 202
    # The grace period is a native Redis expiry: only real time can end it.
    await asyncio.sleep(GRACE_SECONDS + 0.2)
    late = await post_signed(site, comment("after"))
    assert late.status == 401
    assert (await late.json())["error"]["code"] == "unauthorized"
    fresh = await post_signed(site, comment("after"), secret=rotation["webhook_secret"])
    assert fresh.status == 202
    assert json.loads(await fresh.text())["id"] == "after"
