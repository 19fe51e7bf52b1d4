"""Admin routes that take access away and data out: moderators, api keys, sites, authors."""

from aiohttp import web

from service.administration import ApiKeyRotation, Erasure, ModeratorList
from service.appkeys import ADMINISTRATION, SETTINGS
from service.auth import require_admin
from service.openapi import operation
from service.path_ids import checked_id
from service.routes.idempotent import by_admin, idempotent

routes = web.RouteTableDef()

ERRORS = (401, 404, 422, 503)


@routes.get("/v1/sites/{site}/moderators")
@operation(
    summary="The site's moderators: name, when created, when their token was last used",
    tag="admin",
    auth="admin",
    response=ModeratorList,
    errors=(401, 404, 503),
)
async def list_moderators(request: web.Request) -> web.Response:
    require_admin(request)
    listed = await request.app[ADMINISTRATION].list_moderators(request.match_info["site"])
    return web.json_response(listed.model_dump(mode="json"))


@routes.delete("/v1/sites/{site}/moderators/{moderator}")
@operation(
    summary="Revoke a moderator: the token answers 401 at once on every API process, and the "
    "moderator's claims are released",
    tag="admin",
    auth="admin",
    status=204,
    errors=ERRORS,
)
@idempotent(by_admin)
async def revoke_moderator(request: web.Request) -> web.Response:
    require_admin(request)
    moderator = checked_id(request.match_info["moderator"], "moderator")
    await request.app[ADMINISTRATION].revoke_moderator(request.match_info["site"], moderator)
    return web.Response(status=204)


@routes.post("/v1/sites/{site}/api-key:rotate")
@operation(
    summary="Issue a new api key; the previous one stays valid for the grace period",
    tag="admin",
    auth="admin",
    response=ApiKeyRotation,
    errors=(401, 404, 503),
)
@idempotent(by_admin)
async def rotate_api_key(request: web.Request) -> web.Response:
    require_admin(request)
    rotation = await request.app[ADMINISTRATION].rotate_api_key(
        request.match_info["site"], request.app[SETTINGS].secret_grace_seconds
    )
    return web.json_response(rotation.model_dump(mode="json"))


@routes.delete("/v1/sites/{site}")
@operation(
    summary="Delete a site: it, its tokens and api keys end at once; the worker then purges "
    "all its data in bounded steps",
    tag="admin",
    auth="admin",
    status=202,
    errors=(401, 404, 503),
)
async def delete_site(request: web.Request) -> web.Response:
    require_admin(request)
    await request.app[ADMINISTRATION].delete_site(request.match_info["site"])
    return web.Response(status=202)


@routes.post("/v1/sites/{site}/authors/{author:[^/]+}:erase")
@operation(
    summary="Erase an author's data: the text and author fields of their comments, the "
    "training labels taken from them and the kept idempotent answers carrying their comments; "
    "states, counts and the decisions' audit stay",
    tag="admin",
    auth="admin",
    response=Erasure,
    errors=ERRORS,
)
@idempotent(by_admin)
async def erase_author(request: web.Request) -> web.Response:
    require_admin(request)
    erasure = await request.app[ADMINISTRATION].erase_author(
        request.match_info["site"], request.match_info["author"]
    )
    return web.json_response(erasure.model_dump(mode="json"))
