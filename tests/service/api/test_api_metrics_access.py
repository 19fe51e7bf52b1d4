"""/metrics names every site and its queue depths: behind a token when one is set, and closed
in production without one."""

import dataclasses

from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.settings import Settings

Client = TestClient[web.Request, web.Application]
TOKEN = "metrics-token-for-the-tests"


def unauthorized(message: str) -> dict[str, object]:
    return {"error": {"code": "unauthorized", "message": message, "details": None}}


async def test_a_metrics_token_is_required_once_set(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(settings, metrics_token=TOKEN)))
    missing = await client.get("/metrics")
    assert missing.status == 401
    assert await missing.json() == unauthorized("missing bearer token in the Authorization header")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert await wrong.json() == unauthorized("invalid metrics token")
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status == 200
    assert "civility_" in await scraped.text()


async def test_production_without_a_metrics_token_serves_no_metrics(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(settings, env="production")))
    refused = await client.get("/metrics")
    assert refused.status == 401
    assert await refused.json() == unauthorized(
        "metrics are disabled: CIVILITY_METRICS_TOKEN is not set"
    )
