"""A site's live events as Server-Sent Events: what changed or was claimed, never comment text.

The stream follows the site's audit stream, so a browser's EventSource that reconnects by itself
(sending ``Last-Event-ID``) resumes where it stopped. The token is checked again after each read,
before what it brought is written: a revoked token's stream ends with an ``error`` event within a
read's wait, and tells nothing that happened after the revocation. Each open stream holds
a Redis connection, so a process keeps at most CIVILITY_EVENT_STREAMS_MAX open, at most
CIVILITY_EVENT_STREAMS_PER_SITE of them for one site and CIVILITY_EVENT_STREAMS_PER_MODERATOR for
one moderator of it, and refuses more with 503 and Retry-After (``service/event_streams.py``).
"""

import json
import re
from contextlib import suppress
from typing import Any

from aiohttp import web

from service.appkeys import EVENT_STREAMS, MODERATION, SETTINGS, STOPPING
from service.auth import require_moderator
from service.domain import ADMIN_ACTOR
from service.errors import CivilityError
from service.openapi import operation

routes = web.RouteTableDef()

WAIT_MS = 1_000
"""How long one read waits for news at most: how soon a revoked token or a stopping server ends
the stream. Never more than half the Redis client's socket timeout (``_wait_ms``)."""
KEEPALIVE_EVERY = 15
"""Reads without news between two comment lines, which keep proxies from closing the stream."""
RETRY_MS = 2_000
"""How long a browser waits before it reconnects a dropped stream."""
_EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}

EVENT_STREAM: dict[str, Any] = {
    "type": "string",
    "description": "text/event-stream: events `comment.changed` (data: comment_id, action, "
    "state, version, actor, actor_name, at), `comment.claimed` and `comment.released` (data: "
    "comment_id, actor, actor_name, at, lease_until), `comment.evidence` when the model's "
    "evidence spans of a held comment are stored after its verdict (data: comment_id, action, "
    "actor, actor_name, at; read the comment for the spans), and `error` (data: the error body) "
    "before the stream ends because the token stopped being valid.",
}


LAST_EVENT_ID: dict[str, Any] = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "The id of the last event received (a browser's EventSource sends it when it "
    "reconnects): the stream goes on after it, starting with a frame of that id; a value that "
    "is no stream id starts from the newest",
    "schema": {"type": "string"},
}


@routes.get("/v1/sites/{site}/events")
@operation(
    summary="Live changes and claims of the site's comments (Server-Sent Events, resumable)",
    tag="moderation",
    auth="moderator",
    response=EVENT_STREAM,
    response_type="text/event-stream",
    errors=(401, 404, 503),
    headers=(LAST_EVENT_ID,),
    error_notes={
        503: "or streams_busy: this server holds as many event streams as it may, or as many "
        "for this site as one site may, or for this moderator as one moderator may (the "
        "message says which)"
    },
)
async def events(request: web.Request) -> web.StreamResponse:
    site = request.match_info["site"]
    moderator = await require_moderator(request, site)
    if request.method == "HEAD":
        # A stream's frames follow its headers at once, and a HEAD answer has no body: written,
        # they would be read as the next answer on the connection, and the stream would hold a
        # place and a Redis connection for a client that reads nothing.
        await request.app[MODERATION].require_site(site)
        return web.Response(headers=STREAM_HEADERS)
    places = request.app[EVENT_STREAMS]
    places.take(site, moderator)
    try:
        return await _stream(request, site)
    finally:
        # Also when the handler is cancelled because the client went away.
        places.give_back(site, moderator)


async def _stream(request: web.Request, site: str) -> web.StreamResponse:
    moderation = request.app[MODERATION]
    resume = request.headers.get("Last-Event-ID", "")
    # Read also when resuming: it answers 404 for a site that does not exist, which the admin's
    # token, good for every site, does not.
    latest = await moderation.latest_event_id(site)
    after = resume if _is_event_id(resume) else latest
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    stopping = request.app[STOPPING]
    try:
        # The stream's starting point, so a reconnect before any event resumes from it instead
        # of from whatever is newest then (and loses what happened between).
        await response.write(f"id: {after}\nretry: {RETRY_MS}\n\n".encode())
        quiet = 0
        wait_ms = _wait_ms(request.app[SETTINGS].redis_socket_timeout_seconds)
        while not stopping.is_set() and not _client_gone(request):
            after, news = await moderation.events_after(site, after, block_ms=wait_ms)
            # Checked between the read and the write: what happened after a revocation (the
            # release of the moderator's claims, to begin with) never reaches its stream.
            if await require_moderator(request, site) == ADMIN_ACTOR:
                # The admin's token outlives any site: only the site's record ends the admin's
                # stream of a deleted site, which would otherwise stay open and silent.
                await moderation.require_site(site)
            for event in news:
                await response.write(_frame(event["type"], event, event["id"]))
            quiet = 0 if news else quiet + 1
            if quiet >= KEEPALIVE_EVERY:
                await response.write(b": keep-alive\n\n")
                quiet = 0
    except CivilityError as error:
        # The status line is sent already: the error travels as the stream's last event.
        with suppress(ConnectionResetError):
            await response.write(_frame("error", error.to_json(), None))
    except ConnectionResetError:
        pass  # the browser went away
    return response


def _wait_ms(socket_timeout_seconds: float) -> int:
    """``WAIT_MS``, or half the socket timeout when that is shorter: a read still waiting when
    the client gives up on the socket would end every quiet stream as if Redis were down."""
    return max(1, min(WAIT_MS, int(socket_timeout_seconds * 1000 / 2)))


def _is_event_id(value: str) -> bool:
    """A stream id Redis takes: a header of the right form but past 2**64 - 1 on either side
    would fail every read, and the browser would reconnect with it again and again."""
    return _EVENT_ID.fullmatch(value) is not None and all(
        int(part) < 2**64 for part in value.split("-")
    )


def _client_gone(request: web.Request) -> bool:
    """The connection closed: without news to write, nothing else would notice, and the stream
    would keep its place and its Redis connection until the next keep-alive failed."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _frame(kind: str, data: dict[str, Any], event_id: str | None) -> bytes:
    lines = [f"event: {kind}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    if event_id is not None:
        lines.insert(0, f"id: {event_id}")
    return ("\n".join(lines) + "\n\n").encode()
