"""The delivery routes of the real application: list by state, redeliver, every refusal."""

import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service import signatures
from service.app import create_app
from service.appkeys import REDIS
from service.deliveries import DeliveryLog
from service.delivery import EVENT_SCHEMA
from service.settings import Settings

from .support import (
    FAST,
    KEYS,
    Receiver,
    Retries,
    StartWorker,
    closed_port_url,
    eventually,
    in_state,
    now_ms,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "admin-token-for-the-delivery-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, topology_url: str, redis_client: aioredis.Redis
) -> Client:
    settings = Settings(
        redis_url=topology_url,
        admin_token=ADMIN_TOKEN,
        models_dir=Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models")),
    )
    return await aiohttp_client(create_app(settings))


async def create_site(client: Client, site_id: str, callback_url: str) -> dict[str, str]:
    spec = {
        "id": site_id,
        "name": site_id.title(),
        "callback_url": callback_url,
        "policy": {"flood_seconds_per_author": 0},
    }
    response = await client.post("/v1/sites", json=spec, headers=ADMIN)
    assert response.status == 201, await response.text()
    created = await response.json()
    moderators = f"/v1/sites/{site_id}/moderators"
    response = await client.post(moderators, json={"name": "Mo"}, headers=ADMIN)
    assert response.status == 201, await response.text()
    token = (await response.json())["token"]
    return {
        "id": site_id,
        "secret": created["webhook_secret"],
        "auth": f"Bearer {token}",
    }


async def post_comment(client: Client, site: dict[str, str], comment_id: str) -> str:
    """Send a comment through signed intake; return the event id its verdict wrote."""
    body = json.dumps(
        {
            "id": comment_id,
            "article": {"id": "a1", "title": "An article"},
            "author": {"id": "reader-1", "name": "A Reader"},
            "text": "Thanks for the careful reporting, the second paragraph answered it.",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        signatures.HEADER: signatures.sign(site["secret"], body),
    }
    response = await client.post(f"/v1/sites/{site['id']}/comments", data=body, headers=headers)
    assert response.status in (200, 201, 202), await response.text()
    newest = await client.app[REDIS].xrevrange(KEYS.outbox(site["id"]), count=1)
    entries = cast(list[tuple[str, dict[str, str]]], newest)
    return entries[0][1]["event_id"]


async def listing(client: Client, site: dict[str, str], query: str) -> Any:
    response = await client.get(
        f"/v1/sites/{site['id']}/deliveries?{query}", headers={"Authorization": site["auth"]}
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_dead_letter_is_listed_and_redelivered_after_the_host_is_fixed(
    client: Client,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    start_worker: StartWorker,
    retries: Retries,
) -> None:
    site = await create_site(client, "news", closed_port_url())
    receiver.secret = site["secret"]
    event_id = await post_comment(client, site, "c1")
    await start_worker(dataclasses.replace(FAST, max_attempts=2))
    await retries.until(in_state(redis_client, event_id, "failed"), what="the dead letter")

    failed = await listing(client, site, "state=failed")
    [item] = failed["items"]
    assert (item["id"], item["comment_id"], item["state"]) == (event_id, "c1", "failed")
    assert (item["attempts"], item["last_status"]) == (2, None)
    assert "Connect" in item["last_error"]
    assert failed["next_cursor"] is None
    assert (await listing(client, site, "state=pending"))["items"] == []

    patch = {"callback_url": receiver.url}
    response = await client.patch("/v1/sites/news", json=patch, headers=ADMIN)
    assert response.status == 200, await response.text()
    keyed = {"Authorization": site["auth"], "Idempotency-Key": "fixed-host"}
    response = await client.post(f"/v1/sites/news/deliveries/{event_id}:redeliver", headers=keyed)
    assert response.status == 202, await response.text()
    redelivered = await response.json()
    # The moderator's retry (an answer lost on the way) gets the same answer, not a second run.
    retried = await client.post(f"/v1/sites/news/deliveries/{event_id}:redeliver", headers=keyed)
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert await retried.json() == redelivered
    assert (redelivered["id"], redelivered["state"], redelivered["attempts"]) == (
        event_id,
        "pending",
        0,
    )

    await eventually(in_state(redis_client, event_id, "delivered"), what="the redelivery")
    [arrival] = receiver.arrivals
    assert arrival.signature_ok
    assert arrival.event["id"] == event_id
    delivered = await listing(client, site, "state=delivered")
    assert [entry["id"] for entry in delivered["items"]] == [event_id]
    assert delivered["items"][0]["delivered_at"] is not None
    assert (await listing(client, site, "state=failed"))["items"] == []


async def test_pages_follow_the_cursor_through_every_delivery(
    client: Client, redis_client: aioredis.Redis, start_worker: StartWorker
) -> None:
    site = await create_site(client, "news", closed_port_url())
    events = [await post_comment(client, site, f"c{index}") for index in range(5)]
    await start_worker(dataclasses.replace(FAST, max_attempts=1))
    for event_id in events:
        await eventually(in_state(redis_client, event_id, "failed"), what=event_id)

    seen: list[str] = []
    query = "state=failed&limit=2"
    while True:
        page = await listing(client, site, query)
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"state=failed&limit=2&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(events)
    assert len(seen) == len(events)


def error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


async def test_refusals(client: Client, redis_client: aioredis.Redis) -> None:
    news = await create_site(client, "news", closed_port_url())
    other = await create_site(client, "other", closed_port_url())
    event_id = await post_comment(client, news, "c1")
    mine = {"Authorization": news["auth"]}

    response = await client.get("/v1/sites/news/deliveries")
    assert response.status == 401
    assert await response.json() == error(
        "unauthorized", "missing bearer token in the Authorization header"
    )
    response = await client.get(
        "/v1/sites/news/deliveries", headers={"Authorization": other["auth"]}
    )
    assert (response.status, await response.json()) == (
        404,
        error("not_found", "site 'news' not found"),
    )
    response = await client.get("/v1/sites/nowhere/deliveries", headers=ADMIN)
    assert (response.status, await response.json()) == (
        404,
        error("not_found", "site 'nowhere' not found"),
    )
    response = await client.get("/v1/sites/news/deliveries?state=lost&limit=0", headers=mine)
    assert response.status == 422
    body = await response.json()
    assert body["error"]["code"] == "validation_failed"
    assert [item["field"] for item in body["error"]["details"]] == ["state", "limit"]
    overflowing = base64.urlsafe_b64encode(b'{"s":"pending","t":1e400,"i":"evt_x"}').decode()
    for cursor in ("nonsense", overflowing):
        response = await client.get(f"/v1/sites/news/deliveries?cursor={cursor}", headers=mine)
        assert (response.status, await response.json()) == (
            400,
            error("bad_request", "invalid cursor"),
        )
    response = await client.post("/v1/sites/news/deliveries/evt_nope:redeliver", headers=mine)
    assert (response.status, await response.json()) == (
        404,
        error("not_found", "delivery 'evt_nope' not found"),
    )
    # Not yet admitted by any worker: the event has no delivery record to redeliver.
    response = await client.post(f"/v1/sites/news/deliveries/{event_id}:redeliver", headers=mine)
    assert response.status == 404
    response = await client.post(
        f"/v1/sites/other/deliveries/{event_id}:redeliver", headers={"Authorization": other["auth"]}
    )
    assert response.status == 404
    assert (await DeliveryLog(redis_client).admit("news", 10, now_ms())).read == 1
    response = await client.post(f"/v1/sites/news/deliveries/{event_id}:redeliver", headers=mine)
    assert response.status == 409
    conflict = (await response.json())["error"]
    assert (conflict["code"], conflict["message"]) == (
        "conflict",
        f"delivery {event_id!r} is already pending",
    )
    assert conflict["details"]["attempts"] == 0


async def test_the_openapi_document_describes_the_webhook(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    webhook = document["webhooks"]["decision"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["schema"] == EVENT_SCHEMA
    assert webhook["security"] == [{"signature": []}]
    listing = document["paths"]["/v1/sites/{site}/deliveries"]["get"]
    assert [parameter["name"] for parameter in listing["parameters"]] == [
        "site",
        "state",
        "limit",
        "cursor",
    ]
