"""The live event stream: Server-Sent Events of a site's changes and claims, resumable, no text."""

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from service.appkeys import EVENT_STREAMS, MODERATION
from service.domain import State
from service.keys import KeySpace
from service.transitions import EVENT_TYPES
from tests.service.api.test_api_moderation import TEXTS, held_site

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
Frame = dict[str, Any]


async def next_frame(response: ClientResponse) -> Frame:
    """The next event of the stream (comment lines skipped), parsed."""
    async with asyncio.timeout(10):
        while True:
            raw = (await response.content.readuntil(b"\n\n")).decode()
            frame: Frame = {}
            for line in raw.strip("\n").split("\n"):
                field, _, value = line.partition(": ")
                if field in ("id", "event", "retry"):
                    frame[field] = value
                elif field == "data":
                    frame["data"] = json.loads(value)
            if frame:
                return frame


async def open_stream(
    client: Client,
    headers: dict[str, str],
    last_event_id: str | None = None,
    *,
    site_id: str = "held",
) -> ClientResponse:
    # The held comments' evidence is stored first: its events are not the ones a test awaits.
    await client.app[MODERATION].evidence.settled()
    sent = dict(headers)
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    response = await client.get(f"/v1/sites/{site_id}/events", headers=sent)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    first = await next_frame(response)
    assert first["retry"] == "2000"
    # Where the stream starts: a reconnect before any event resumes there.
    assert first["id"] == last_event_id if last_event_id else re.fullmatch(r"\d+-\d+", first["id"])
    return response


async def test_claims_and_decisions_stream_live_without_comment_text(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    stream = await open_stream(client, mo)
    claim = {"limit": 1, "order": "oldest"}
    assert (await client.post("/v1/sites/held/queue/claim", json=claim, headers=mo)).status == 200
    claimed = await next_frame(stream)
    assert claimed["event"] == "comment.claimed"
    assert claimed["data"]["comment_id"] == "c0"
    assert claimed["data"]["actor"] == site["moderator_id"]
    assert claimed["data"]["actor_name"] == "Mo"
    assert claimed["data"]["lease_until"].endswith("Z")
    assert claimed["id"] == claimed["data"]["id"]

    decision = {"action": "reject", "reason": "OFF_TOPIC", "note": "not about the talks"}
    response = await client.post("/v1/sites/held/comments/c0/decision", json=decision, headers=mo)
    assert response.status == 200
    changed = await next_frame(stream)
    assert changed["event"] == "comment.changed"
    data = changed["data"]
    assert (data["comment_id"], data["action"], data["state"], data["version"]) == (
        "c0",
        "reject",
        "rejected",
        2,
    )
    assert set(data) == {"id", "type", "comment_id", "action", "actor", "actor_name", "at"} | {
        "state",
        "version",
    }
    stream.close()

    # A reconnecting browser sends the last id it saw and gets what it missed, in order.
    resumed = await open_stream(client, mo, last_event_id=claimed["id"])
    assert (await next_frame(resumed))["id"] == changed["id"]
    new_comment = {"id": "c9", "article": {"id": "a1"}, "author": {"id": "n"}, "text": TEXTS[0]}
    assert (await post_signed(site, new_comment)).status == 202
    created = await next_frame(resumed)
    assert (created["data"]["action"], created["data"]["state"]) == ("create", "pending")
    assert created["data"]["actor_name"] is None
    resumed.close()


async def test_a_stream_resumes_from_the_header_the_document_names(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    document = await (await client.get("/openapi.json")).json()
    described = document["paths"]["/v1/sites/{site}/events"]["get"]["parameters"]
    [header] = [param["name"] for param in described if param["in"] == "header"]
    stream = await open_stream(client, mo)
    for _ in range(2):
        claim = {"limit": 1, "order": "oldest"}
        response = await client.post("/v1/sites/held/queue/claim", json=claim, headers=mo)
        assert response.status == 200
    first, second = await next_frame(stream), await next_frame(stream)
    stream.close()
    await client.app[MODERATION].evidence.settled()
    resumed = await client.get("/v1/sites/held/events", headers={**mo, header: first["id"]})
    assert (await next_frame(resumed))["id"] == first["id"]
    assert (await next_frame(resumed))["id"] == second["id"]
    resumed.close()


async def test_evidence_stored_after_the_verdict_is_a_live_event_and_no_webhook(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    stream = await open_stream(client, mo)
    rude = {"id": "rude", "article": {"id": "a1"}, "author": {"id": "r"}, "text": "You idiot."}
    verdict = await (await post_signed(site, rude)).json()
    await client.app[MODERATION].evidence.settled()

    created = await next_frame(stream)
    assert (created["event"], created["data"]["action"]) == ("comment.changed", "create")
    explained = await next_frame(stream)
    assert explained["event"] == "comment.evidence"
    assert explained["id"] == explained["data"]["id"]
    data = explained["data"]
    assert (data["comment_id"], data["action"]) == ("rude", "evidence")
    assert data["actor"] == f"auto:{verdict['model']}"
    assert data["at"].endswith("Z")
    assert set(data) == {"id", "type", "comment_id", "action", "actor", "actor_name", "at"}
    stored = await (await client.get("/v1/sites/held/comments/rude", headers=mo)).json()
    assert stored["evidence"]
    # The host hears of the comment once, for its verdict: evidence is the moderators' own.
    outbox = cast(
        list[tuple[str, dict[str, str]]], await redis_client.xrange(KeySpace().outbox("held"))
    )
    assert [fields["type"] for _, fields in outbox if fields["comment_id"] == "rude"] == [
        EVENT_TYPES[State(verdict["state"])]
    ]
    stream.close()


async def test_a_stream_reconnected_before_its_first_event_misses_nothing(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    await client.app[MODERATION].evidence.settled()
    quiet = await client.get("/v1/sites/held/events", headers=mo)
    start = (await next_frame(quiet))["id"]
    quiet.close()
    # While the browser reconnects (a failover, a proxy), a moderator decides.
    decision = {"action": "approve"}
    response = await client.post("/v1/sites/held/comments/c0/decision", json=decision, headers=mo)
    assert response.status == 200

    resumed = await open_stream(client, mo, last_event_id=start)

    changed = await next_frame(resumed)
    assert (changed["data"]["comment_id"], changed["data"]["action"]) == ("c0", "approve")
    resumed.close()


async def test_a_resume_point_past_what_a_stream_id_can_be_starts_from_the_newest(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    # Twenty digits fit the header's form but not a stream id (at most 2**64 - 1 each side).
    impossible = {**mo, "Last-Event-ID": f"{2**64}-0"}
    stream = await client.get("/v1/sites/held/events", headers=impossible)
    assert stream.status == 200
    start = await next_frame(stream)
    assert re.fullmatch(r"\d+-\d+", start["id"])
    assert start["id"] != f"{2**64}-0"
    decision = {"action": "approve"}
    response = await client.post("/v1/sites/held/comments/c0/decision", json=decision, headers=mo)
    assert response.status == 200
    changed = await next_frame(stream)
    assert (changed["event"], changed["data"]["comment_id"]) == ("comment.changed", "c0")
    stream.close()


async def test_the_stream_ends_with_an_error_event_once_the_token_is_revoked(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: Any
) -> None:
    site = await held_site(create_site, post_signed)
    stream = await open_stream(client, moderator(site))
    revoked = await client.delete(
        f"/v1/sites/held/moderators/{site['moderator_id']}", headers=admin
    )
    assert revoked.status == 204
    frame = await next_frame(stream)
    assert frame == {
        "event": "error",
        "data": {
            "error": {
                "code": "unauthorized",
                "message": "invalid moderator token",
                "details": None,
            }
        },
    }
    async with asyncio.timeout(10):
        assert await stream.content.read() == b""


async def test_the_stream_refuses_other_sites_and_missing_tokens(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    await held_site(create_site, post_signed)
    other = await create_site("other")
    foreign = await client.get("/v1/sites/held/events", headers=moderator(other))
    assert foreign.status == 404
    assert await foreign.json() == {
        "error": {"code": "not_found", "message": "site 'held' not found", "details": None}
    }
    anonymous = await client.get("/v1/sites/held/events")
    assert anonymous.status == 401
    assert await anonymous.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing bearer token in the Authorization header",
            "details": None,
        }
    }


async def test_a_resumed_stream_of_an_unknown_site_is_refused(
    client: Client, admin: dict[str, str]
) -> None:
    # The admin's token fits every site, so only the site's record tells a deleted or mistyped
    # one; a browser reconnecting sends Last-Event-ID and must hear 404, not an endless stream.
    for resume in ({}, {"Last-Event-ID": "0-0"}):
        response = await client.get("/v1/sites/nope/events", headers={**admin, **resume})
        assert response.status == 404
        assert await response.json() == {
            "error": {"code": "not_found", "message": "site 'nope' not found", "details": None}
        }
    assert client.app[EVENT_STREAMS].taken == 0


async def test_the_admins_stream_ends_with_an_error_event_once_its_site_is_deleted(
    client: Client, create_site: Any, post_signed: Any, admin: dict[str, str]
) -> None:
    await held_site(create_site, post_signed)
    stream = await open_stream(client, admin)
    assert (await client.delete("/v1/sites/held", headers=admin)).status == 202
    frame = await next_frame(stream)
    assert frame == {
        "event": "error",
        "data": {
            "error": {"code": "not_found", "message": "site 'held' not found", "details": None}
        },
    }
    async with asyncio.timeout(10):
        assert await stream.content.read() == b""
    # The ended stream's place is free again (the handler's finally ran before the body ended).
    assert client.app[EVENT_STREAMS].taken == 0


async def test_a_revoked_token_is_sent_nothing_that_happened_after_its_revocation(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: Any
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    stream = await open_stream(client, mo)
    claim = {"limit": 1, "order": "oldest"}
    assert (await client.post("/v1/sites/held/queue/claim", json=claim, headers=mo)).status == 200
    assert (await next_frame(stream))["event"] == "comment.claimed"
    # Revoking gives the moderator's claims back, and then the admin decides: both happen after
    # the token stopped being valid, so its stream must not tell of them.
    revoked = await client.delete(
        f"/v1/sites/held/moderators/{site['moderator_id']}", headers=admin
    )
    assert revoked.status == 204
    decision = {"action": "approve"}
    decided = await client.post("/v1/sites/held/comments/c1/decision", json=decision, headers=admin)
    assert decided.status == 200
    frame = await next_frame(stream)
    assert frame["event"] == "error", frame
    assert frame["data"]["error"]["code"] == "unauthorized"
    async with asyncio.timeout(10):
        assert await stream.content.read() == b""


async def test_a_head_of_the_stream_answers_its_headers_alone_and_opens_no_stream(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, admin: Any
) -> None:
    site = await held_site(create_site, post_signed)
    mo = moderator(site)
    head = await client.head("/v1/sites/held/events", headers=mo)
    assert head.status == 200
    assert head.headers["Content-Type"] == "text/event-stream"
    assert head.headers["Cache-Control"] == "no-store"
    assert await head.read() == b""
    assert client.app[EVENT_STREAMS].taken == 0
    # The connection carries the next request as it should: no frame was written after the
    # headers for the client to read as the next answer's status line.
    for _ in range(3):
        queue = await client.get("/v1/sites/held/queue", headers=mo)
        assert queue.status == 200
        assert (await queue.json())["total"] == len(TEXTS)
    # Refused as the stream is: a site it may not see, no token.
    assert (await client.head("/v1/sites/nope/events", headers=admin)).status == 404
    assert (await client.head("/v1/sites/held/events")).status == 401
    assert client.app[EVENT_STREAMS].taken == 0
