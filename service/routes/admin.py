"""Admin routes: sites, their secrets and moderators, and the active model."""

from typing import Any

from aiohttp import web

from service.appkeys import MODERATION, SCORER, SETTINGS
from service.auth import require_admin
from service.domain import CreatedSite, ModeratorSpec, Site, SitePatch, SiteSpec
from service.openapi import operation
from service.routes.body import read_json
from service.routes.idempotent import by_admin, idempotent, record_digest

routes = web.RouteTableDef()

CREATED_MODERATOR: dict[str, Any] = {
    "type": "object",
    "required": ["id", "site_id", "name", "created_at", "token"],
    "properties": {
        "id": {"type": "string"},
        "site_id": {"type": "string"},
        "name": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "token": {"type": "string", "description": "Bearer token, shown only here"},
    },
}
ROTATED_SECRET: dict[str, Any] = {
    "type": "object",
    "required": ["webhook_secret", "previous_valid_until"],
    "properties": {
        "webhook_secret": {"type": "string"},
        "previous_valid_until": {"type": "string", "format": "date-time"},
    },
}
MODEL_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "labels", "thresholds"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "thresholds": {"type": "object"},
        "card": {"type": "object"},
    },
}
# The card fields worth showing an admin; the rest (file hashes, full metrics) stay in models/.
CARD_SUMMARY_FIELDS = ("created_at", "trained_at", "metrics", "training", "library_versions")
ADMIN_ERRORS = (400, 401, 404, 413, 415, 422, 503)


@routes.post("/v1/sites")
@operation(
    summary="Create a site; its webhook secret and api key are shown only in this answer",
    tag="admin",
    auth="admin",
    status=201,
    body=SiteSpec,
    response=CreatedSite,
    errors=(*ADMIN_ERRORS, 409),
)
@idempotent(by_admin)
async def create_site(request: web.Request) -> web.Response:
    require_admin(request)
    spec = await read_json(request, SiteSpec)
    site, credentials = await request.app[MODERATION].create_site(
        spec, created_by_request=record_digest(request)
    )
    return web.json_response({**site.to_json(), **credentials.model_dump()}, status=201)


@routes.get("/v1/sites/{site}")
@operation(
    summary="Read a site and its policy",
    tag="admin",
    auth="admin",
    response=Site,
    errors=(401, 404, 503),
)
async def get_site(request: web.Request) -> web.Response:
    require_admin(request)
    site = await request.app[MODERATION].get_site(request.match_info["site"])
    return web.json_response(site.to_json())


@routes.patch("/v1/sites/{site}")
@operation(
    summary="Change a site's name, callback URL or policy (fields given replace the site's)",
    tag="admin",
    auth="admin",
    body=SitePatch,
    response=Site,
    errors=ADMIN_ERRORS,
)
@idempotent(by_admin)
async def update_site(request: web.Request) -> web.Response:
    require_admin(request)
    patch = await read_json(request, SitePatch)
    site = await request.app[MODERATION].update_site(request.match_info["site"], patch)
    return web.json_response(site.to_json())


@routes.post("/v1/sites/{site}/secrets:rotate")
@operation(
    summary="Issue a new webhook secret; the previous one stays valid for the grace period",
    tag="admin",
    auth="admin",
    response=ROTATED_SECRET,
    errors=(401, 404, 503),
)
@idempotent(by_admin)
async def rotate_secret(request: web.Request) -> web.Response:
    require_admin(request)
    rotation = await request.app[MODERATION].rotate_secret(
        request.match_info["site"], request.app[SETTINGS].secret_grace_seconds
    )
    return web.json_response(rotation.model_dump(mode="json"))


@routes.post("/v1/sites/{site}/moderators")
@operation(
    summary="Create a moderator of the site; the bearer token is shown only in this answer",
    tag="admin",
    auth="admin",
    status=201,
    body=ModeratorSpec,
    response=CREATED_MODERATOR,
    errors=ADMIN_ERRORS,
)
@idempotent(by_admin)
async def create_moderator(request: web.Request) -> web.Response:
    require_admin(request)
    spec = await read_json(request, ModeratorSpec)
    moderator, token = await request.app[MODERATION].create_moderator(
        request.match_info["site"], spec.name
    )
    return web.json_response({**moderator.model_dump(mode="json"), "token": token}, status=201)


@routes.get("/v1/model")
@operation(
    summary="The active model: version, labels, thresholds and a card summary",
    tag="admin",
    auth="admin",
    response=MODEL_SUMMARY,
    errors=(401,),
)
async def model_summary(request: web.Request) -> web.Response:
    require_admin(request)
    info = request.app[SCORER].info
    card = {key: info.card[key] for key in CARD_SUMMARY_FIELDS if key in info.card}
    return web.json_response(
        {
            "name": info.name,
            "version": info.version,
            "labels": list(info.labels),
            "thresholds": info.thresholds,
            "card": card,
        }
    )
