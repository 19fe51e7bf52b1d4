"""Moderator routes for a site's authors: their standing, and setting their status."""

from aiohttp import web

from service.appkeys import MODERATION
from service.auth import require_moderator
from service.domain import AuthorStatusChange, AuthorStatusOutcome, AuthorView
from service.openapi import operation
from service.path_ids import checked_id
from service.routes.body import read_json
from service.routes.idempotent import by_site_moderator, holds_authors, idempotent
from service.routes.moderation import ID_READ_ERRORS, WRITE_ERRORS, unkept_if_claimed

routes = web.RouteTableDef()


@routes.get("/v1/sites/{site}/authors/{author:[^/]+}")
@operation(
    summary="An author's counts, status, trust and recent rejection rate",
    tag="moderation",
    auth="moderator",
    response=AuthorView,
    errors=ID_READ_ERRORS,
)
async def get_author(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    author = await request.app[MODERATION].author(
        site, checked_id(request.match_info["author"], "author")
    )
    return web.json_response(author.to_json())


@routes.post("/v1/sites/{site}/authors/{author:[^/]+}/status")
@operation(
    summary="Set an author's status (active, premod, banned, trusted); a ban with "
    "reject_pending also rejects the author's held comments",
    tag="moderation",
    auth="moderator",
    body=AuthorStatusChange,
    response=AuthorStatusOutcome,
    errors=WRITE_ERRORS,
)
@idempotent(by_site_moderator)
async def set_author_status(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    actor = await require_moderator(request, site)
    change = await read_json(request, AuthorStatusChange)
    author = checked_id(request.match_info["author"], "author")
    outcome = await request.app[MODERATION].set_author_status(site, author, change, actor)
    # The answer holds the author's counts and standing: erasing them forgets it.
    holds_authors(request, [author])
    unkept_if_claimed(request, outcome.failed)
    return web.json_response(outcome.to_json())
