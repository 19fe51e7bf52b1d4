"""The decision webhooks as a host site receives them, checked by the README's words alone.

The receiver here verifies each request as a host reading the README's Webhooks section would
write it, without the service's own signature code: the header's ``t`` and every ``v1``, the
HMAC-SHA256 in hex of ``"<t>." + raw body`` under the site's webhook secret, and the timestamp's
tolerance. Events come from the real application (intake, decisions, a rotation) and a real
worker posting to a loopback port.
"""

import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.appkeys import CLOCK
from service.settings import Settings

from .support import KEYS, Retries, StartWorker, eventually

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "admin-token-for-the-host-side-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GRACE_SECONDS = 3600
# The README's tolerance for a signed request, which a host applies to the webhooks too.
TOLERANCE_SECONDS = 300
# The event types the README names, and the state each one's comment is in.
README_TYPES = {
    "comment.approved": "approved",
    "comment.rejected": "rejected",
    "comment.spam": "spam",
    "comment.held": "pending",
    "comment.reported": "approved",
}
README_EVENT_FIELDS = {"id", "type", "site", "comment", "created_at"}
README_COMMENT_FIELDS = {"id", "article_id", "state", "reasons", "decided_by", "version"}

Client = TestClient[web.Request, web.Application]


def readme_signatures(header: str) -> tuple[int, list[str]]:
    """``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``: the timestamp and every v1 signature."""
    timestamp = None
    signed: list[str] = []
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            timestamp = int(value)
        elif key == "v1":
            signed.append(value)
    assert timestamp is not None, header
    return timestamp, signed


def readme_verifies(header: str, body: bytes, secret: str, now: float) -> bool:
    """A host's check: some v1 is the hex HMAC-SHA256 of "<t>.<raw body>" under its secret, and
    ``t`` is within the tolerance of the host's own clock."""
    timestamp, signed = readme_signatures(header)
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    matches = [hmac.compare_digest(expected, candidate.lower()) for candidate in signed]
    return any(matches) and abs(now - timestamp) <= TOLERANCE_SECONDS


@dataclass
class Request:
    header: str
    body: bytes
    received_at: float

    @property
    def event(self) -> Any:
        return json.loads(self.body)


@dataclass
class HostReceiver:
    """A host's endpoint that keeps every request as it came, with when it came by ``clock``,
    and answers 200."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Request(
                request.headers.get("Civility-Signature", ""), await request.read(), self.clock()
            )
        )
        return web.json_response({"ok": True})

    async def arrival(self, count: int) -> list[Request]:
        async def arrived() -> bool:
            return len(self.requests) >= count

        await eventually(arrived, what=f"{count} webhooks")
        return self.requests


@pytest.fixture
def topology_url(redis_url: str) -> str:
    """What a host receives does not depend on how Redis is deployed: one server."""
    return redis_url


@pytest.fixture
async def host(retries: Retries) -> AsyncIterator[HostReceiver]:
    # The host's clock is the service's: the test moves it past the grace period.
    target = HostReceiver(clock=retries.clock)
    app = web.Application()
    app.router.add_post("/hooks", target.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    try:
        yield target
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, redis_url: str, redis_client: aioredis.Redis, retries: Retries
) -> Client:
    settings = Settings(
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        models_dir=Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models")),
        secret_grace_seconds=GRACE_SECONDS,
        scoring_long_workers=0,
    )
    # The API and the worker read one clock, which the test moves past the grace period.
    return await aiohttp_client(create_app(settings, clock=retries.clock))


async def create_site(client: Client, host: HostReceiver, **policy: Any) -> dict[str, str]:
    spec = {
        "id": "news",
        "name": "The News",
        "callback_url": host.url,
        "policy": {"flood_seconds_per_author": 0, **policy},
    }
    response = await client.post("/v1/sites", json=spec, headers=ADMIN)
    assert response.status == 201, await response.text()
    created = await response.json()
    response = await client.post("/v1/sites/news/moderators", json={"name": "Mo"}, headers=ADMIN)
    assert response.status == 201, await response.text()
    moderator = await response.json()
    return {
        "secret": created["webhook_secret"],
        "moderator": f"Bearer {moderator['token']}",
        "moderator_id": moderator["id"],
    }


async def send_comment(
    client: Client, secret: str, comment_id: str, text: str, **fields: Any
) -> dict[str, Any]:
    body = json.dumps(
        {
            "id": comment_id,
            "article": {"id": "a-42", "title": "The new bridge"},
            "author": {"id": fields.pop("author", "u-7"), "name": "Ann"},
            "text": text,
            **fields,
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Civility-Signature": signed(client, secret, body),
    }
    response = await client.post("/v1/sites/news/comments", data=body, headers=headers)
    assert response.status in (200, 202), await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


def signed(client: Client, secret: str, body: bytes) -> str:
    """The intake signature as the README's Quick start makes it with openssl, at the time of
    the host's clock, which is the service's."""
    timestamp = int(client.app[CLOCK]())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


CIVIL = "Finally! The old bridge was a real problem for cyclists."


async def test_a_host_following_the_readme_verifies_every_webhook_through_a_rotation(
    client: Client, host: HostReceiver, start_worker: StartWorker, retries: Retries
) -> None:
    site = await create_site(client, host)
    old = site["secret"]
    await start_worker()
    await send_comment(client, old, "c-1", CIVIL)
    [before] = await host.arrival(1)
    assert len(readme_signatures(before.header)[1]) == 1
    assert readme_verifies(before.header, before.body, old, before.received_at)

    response = await client.post("/v1/sites/news/secrets:rotate", headers=ADMIN)
    assert response.status == 200, await response.text()
    new = (await response.json())["webhook_secret"]
    await send_comment(client, new, "c-2", CIVIL)
    during = (await host.arrival(2))[1]
    # Within the grace both secrets sign: a host that has not switched yet, and one that has,
    # each accept the event.
    assert len(readme_signatures(during.header)[1]) == 2
    assert readme_verifies(during.header, during.body, old, during.received_at)
    assert readme_verifies(during.header, during.body, new, during.received_at)
    assert not readme_verifies(during.header, during.body, "whsec_another", during.received_at)
    # A body changed on the way, or a request kept and sent again later, fails the check.
    tampered = during.body.replace(b'"c-2"', b'"c-3"')
    assert not readme_verifies(during.header, tampered, new, during.received_at)
    later = during.received_at + TOLERANCE_SECONDS + 1
    assert not readme_verifies(during.header, during.body, new, later)

    retries.clock.advance(GRACE_SECONDS + 1)
    await send_comment(client, new, "c-3", CIVIL)
    after = (await host.arrival(3))[2]
    assert len(readme_signatures(after.header)[1]) == 1
    assert readme_verifies(after.header, after.body, new, after.received_at)
    assert not readme_verifies(after.header, after.body, old, after.received_at)
    assert [request.event["comment"]["id"] for request in host.requests] == ["c-1", "c-2", "c-3"]


async def test_every_event_carries_exactly_the_fields_the_readme_lists(
    client: Client, host: HostReceiver, start_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    site = await create_site(client, host, report_threshold=1)
    secret, moderator_id = site["secret"], site["moderator_id"]
    moderator = {"Authorization": site["moderator"]}
    await start_worker()

    async def decide(comment_id: str, action: str) -> None:
        path = f"/v1/sites/news/comments/{comment_id}/decision"
        response = await client.post(path, json={"action": action}, headers=moderator)
        assert response.status == 200, await response.text()

    first = await send_comment(client, secret, "c-1", CIVIL, created_at="2026-12-01T09:00:00Z")
    auto = "auto:" + first["model"]
    await send_comment(client, secret, "c-1", CIVIL + " Edited.", edited_at="2026-12-01T10:00:00Z")
    await send_comment(
        client, secret, "c-2", "Cheap pills http://a.example http://b.example", author="u-8"
    )
    await send_comment(
        client, secret, "c-3", "You are an idiot and everyone who agrees is a moron.", author="u-9"
    )
    await decide("c-2", "reopen")
    report = json.dumps({"comment_id": "c-1", "reporter_id": "r-1", "reason": "spam"}).encode()
    response = await client.post(
        "/v1/sites/news/comments/c-1/reports",
        data=report,
        headers={
            "Content-Type": "application/json",
            "Civility-Signature": signed(client, secret, report),
        },
    )
    assert response.status == 202, await response.text()
    # A ban that rejects the author's held comment decides it as the moderator.
    response = await client.post(
        "/v1/sites/news/authors/u-8/status",
        json={"status": "banned", "reject_pending": True},
        headers=moderator,
    )
    assert response.status == 200, await response.text()
    # An erasure changes no comment's state: the host hears nothing of it.
    response = await client.post("/v1/sites/news/authors/u-7:erase", headers=ADMIN)
    assert response.status == 200, await response.text()
    await send_comment(
        client, secret, "c-4", "The council should have asked the cyclists.", author="u-10"
    )

    # Every event written, erasure or not: the outbox the worker delivers from holds eight.
    assert await redis_client.xlen(KEYS.outbox("news")) == 8
    requests = await host.arrival(8)
    for request in requests:
        event = request.event
        assert set(event) == README_EVENT_FIELDS, event
        assert set(event["comment"]) == README_COMMENT_FIELDS, event
        assert README_TYPES[event["type"]] == event["comment"]["state"], event
        assert event["site"] == "news"
        assert event["created_at"].endswith("Z")
    seen = sorted(
        (
            request.event["comment"]["id"],
            request.event["comment"]["version"],
            request.event["type"],
            request.event["comment"]["reasons"],
            request.event["comment"]["decided_by"],
        )
        for request in requests
    )
    assert seen == [
        ("c-1", 1, "comment.approved", [], auto),
        ("c-1", 2, "comment.approved", [], auto),  # the edit
        ("c-1", 3, "comment.reported", ["REPORTED"], "readers"),
        ("c-2", 1, "comment.spam", ["SPAM"], auto),
        ("c-2", 2, "comment.held", [], moderator_id),  # reopened
        ("c-2", 3, "comment.rejected", ["AUTHOR_BANNED"], moderator_id),  # the ban
        ("c-3", 1, "comment.rejected", ["TOXIC"], auto),
        ("c-4", 1, "comment.approved", [], auto),
    ]
    assert len({request.event["id"] for request in requests}) == 8


async def test_intake_is_signed_on_the_bytes_sent_within_five_minutes_either_way(
    client: Client, host: HostReceiver
) -> None:
    secret = (await create_site(client, host))["secret"]
    # Spaces, key order and escapes as the host's own serialiser wrote them: the bytes sent are
    # the bytes signed, never a re-serialised form of the JSON.
    body = (
        b'{ "text" : "Caf\\u00e9 talk about the bridge, nothing more.",\n'
        b'  "author": {"name": "Ann", "id": "u-7"}, "id": "c-1",'
        b' "article": {"id": "a-42"} }'
    )
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    now = int(client.app[CLOCK]())

    async def post(header: str) -> int:
        headers = {"Content-Type": "application/json", "Civility-Signature": header}
        response = await client.post("/v1/sites/news/comments", data=body, headers=headers)
        return response.status

    def header(signed_bytes: bytes, timestamp: int) -> str:
        payload = f"{timestamp}.".encode() + signed_bytes
        return f"t={timestamp},v1={hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()}"

    assert await post(header(compact, now)) == 401
    assert await post(header(body, now - TOLERANCE_SECONDS - 60)) == 401
    assert await post(header(body, now + TOLERANCE_SECONDS + 60)) == 401
    assert await post(header(body, now + TOLERANCE_SECONDS - 60)) == 202
    assert await post(header(body, now - TOLERANCE_SECONDS + 60)) == 200
