"""Moderator routes, each scoped to one site: the queue, claims, decisions, comments, stats."""

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from service.appkeys import DELIVERIES, MODERATION
from service.auth import identify, require_moderator
from service.domain import (
    BulkDecision,
    ClaimRequest,
    Comment,
    CommentClaimRequest,
    CommentQuery,
    Decision,
    DecisionOutcome,
    QueuePage,
    QueueQuery,
    ReleaseRequest,
    SiteStats,
)
from service.errors import ClaimConflict
from service.openapi import operation
from service.path_ids import checked_id
from service.routes.body import read_json, read_query
from service.routes.idempotent import (
    by_site_moderator,
    holds_authors,
    idempotent,
    not_kept,
    seed,
)

routes = web.RouteTableDef()


def unkept_if_claimed(request: web.Request, outcomes: Iterable[DecisionOutcome]) -> None:
    """Kept, an item's claim conflict would be replayed for the key's day; not kept, the retry
    finds the items this request decided made (a bulk decision's by their event ids, a ban's no
    longer held) and decides the rest."""
    if any(item.error and item.error["code"] == ClaimConflict.code for item in outcomes):
        not_kept(request)


COMMENTS: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Comment"}}},
}
RELEASED: dict[str, Any] = {
    "type": "object",
    "required": ["released"],
    "properties": {"released": {"type": "array", "items": {"type": "string"}}},
}
OUTCOMES: dict[str, Any] = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "ok"],
                "properties": {
                    "id": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "comment": {"$ref": "#/components/schemas/Comment"},
                    "error": {"$ref": "#/components/schemas/Error/properties/error"},
                },
            },
        }
    },
}
IDENTITY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "admin", "sites"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "admin": {"type": "boolean"},
        "sites": {"type": "array", "items": {"type": "string"}},
    },
}
READ_ERRORS = (401, 404, 503)
# A read of one comment or author: a malformed id in its path answers 422.
ID_READ_ERRORS = (401, 404, 422, 503)


@routes.get("/v1/me")
@operation(
    summary="Who the bearer token is: a moderator and its site, or the admin and every site",
    tag="moderation",
    auth="moderator",
    response=IDENTITY,
    errors=(401, 503),
)
async def me(request: web.Request) -> web.Response:
    moderator = await identify(request)
    if moderator is None:
        sites = await request.app[DELIVERIES].sites()
        return web.json_response({"id": "admin", "name": "admin", "admin": True, "sites": sites})
    return web.json_response(
        {"id": moderator.id, "name": moderator.name, "admin": False, "sites": [moderator.site_id]}
    )


WRITE_ERRORS = (400, 401, 404, 409, 413, 415, 422, 503)


@routes.get("/v1/sites/{site}/queue")
@operation(
    summary="List a queue by priority or age, filtered by article, author or both and by "
    "reason, cursor paged",
    tag="moderation",
    auth="moderator",
    query=QueueQuery,
    response=QueuePage,
    errors=(400, 401, 404, 422, 503),
)
async def list_queue(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    query = read_query(request, QueueQuery)
    page = await request.app[MODERATION].list_queue(site, query)
    return web.json_response(page.to_json())


@routes.get("/v1/sites/{site}/comments")
@operation(
    summary="List comments in one state, latest decision first, by article, author or both and "
    "decision time, cursor paged",
    tag="moderation",
    auth="moderator",
    query=CommentQuery,
    response=QueuePage,
    errors=(400, 401, 404, 422, 503),
)
async def list_comments(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    query = read_query(request, CommentQuery)
    page = await request.app[MODERATION].list_comments(site, query)
    return web.json_response(page.to_json())


@routes.post("/v1/sites/{site}/queue/claim")
@operation(
    summary="Lease up to `limit` comments of the queue, or of one article, author or both and one "
    "reason as the listing filters it, to the caller; no one else can decide them meanwhile; a "
    "retry with the Idempotency-Key of a claim whose answer was lost answers the comments that "
    "claim leased which the caller still holds, and leases no others",
    tag="moderation",
    auth="moderator",
    body=ClaimRequest,
    response=COMMENTS,
    errors=WRITE_ERRORS,
)
@idempotent(by_site_moderator)
async def claim(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    claim_request = await read_json(request, ClaimRequest)
    # A retry with the same Idempotency-Key names the same batch, which the script finds made.
    items = await request.app[MODERATION].claim(
        site, actor, claim_request, batch_seed=seed(request)
    )
    holds_authors(request, [item.author.id for item in items])
    return web.json_response({"items": [item.to_json() for item in items]})


@routes.post("/v1/sites/{site}/comments/{comment:[^/]+}/claim")
@operation(
    summary="Lease one chosen queued comment to the caller (a lease the caller holds is renewed); "
    "409 claim_conflict while another moderator holds it",
    tag="moderation",
    auth="moderator",
    body=CommentClaimRequest,
    response=Comment,
    errors=WRITE_ERRORS,
)
async def claim_comment(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    claim_request = await read_json(request, CommentClaimRequest)
    comment = await request.app[MODERATION].claim_comment(
        site, actor, checked_id(request.match_info["comment"], "comment"), claim_request
    )
    return web.json_response(comment.to_json())


@routes.post("/v1/sites/{site}/queue/release")
@operation(
    summary="Give back leased comments (the ids given, or every lease the caller holds)",
    tag="moderation",
    auth="moderator",
    body=ReleaseRequest,
    response=RELEASED,
    errors=WRITE_ERRORS,
)
async def release(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    release_request = await read_json(request, ReleaseRequest)
    ids = release_request.ids
    released = await request.app[MODERATION].release(
        site, actor, list(ids) if ids is not None else None
    )
    return web.json_response({"released": released})


@routes.post("/v1/sites/{site}/comments/{comment:[^/]+}/decision")
@operation(
    summary="Approve, reject, mark as spam or reopen (back to pending); deciding again is the "
    "undo, kept in the history",
    tag="moderation",
    auth="moderator",
    body=Decision,
    response=Comment,
    errors=WRITE_ERRORS,
)
@idempotent(by_site_moderator)
async def decide(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    decision = await read_json(request, Decision)
    # A retry with the same Idempotency-Key writes the same event, which the script finds made.
    comment = await request.app[MODERATION].decide(
        site,
        checked_id(request.match_info["comment"], "comment"),
        decision,
        actor,
        event_seed=seed(request),
    )
    holds_authors(request, [comment.author.id])
    return web.json_response(comment.to_json())


@routes.post("/v1/sites/{site}/decisions")
@operation(
    summary="Decide many comments; each gets its own result",
    tag="moderation",
    auth="moderator",
    body=BulkDecision,
    response=OUTCOMES,
    errors=WRITE_ERRORS,
)
@idempotent(by_site_moderator)
async def decide_many(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    decisions = await read_json(request, BulkDecision)
    outcomes = await request.app[MODERATION].decide_many(
        site, decisions, actor, event_seed=seed(request)
    )
    holds_authors(request, [item.comment.author.id for item in outcomes if item.comment])
    unkept_if_claimed(request, outcomes)
    return web.json_response({"results": [outcome.to_json() for outcome in outcomes]})


@routes.get("/v1/sites/{site}/comments/{comment:[^/]+}")
@operation(
    summary="A comment with its scores, reasons, evidence spans and full history",
    tag="moderation",
    auth="moderator",
    response=Comment,
    errors=ID_READ_ERRORS,
)
async def get_comment(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    comment = await request.app[MODERATION].get_comment(
        site, checked_id(request.match_info["comment"], "comment")
    )
    return web.json_response(comment.to_json())


@routes.get("/v1/sites/{site}/stats")
@operation(
    summary="Queue depths, oldest pending age, automatic and moderator decisions, per hour",
    tag="moderation",
    auth="moderator",
    response=SiteStats,
    errors=READ_ERRORS,
)
async def stats(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    site_stats = await request.app[MODERATION].stats(site)
    return web.json_response(site_stats.model_dump(mode="json"))
