"""Webhook delivery routes: list a site's deliveries by state, and redeliver one event."""

from aiohttp import web

from service.appkeys import CLOCK, DELIVERIES
from service.auth import require_moderator, site_not_found
from service.deliveries import Delivery, DeliveryLog, DeliveryPage, DeliveryQuery
from service.openapi import operation
from service.path_ids import checked_id
from service.routes.body import read_query
from service.routes.idempotent import by_site_moderator, idempotent

routes = web.RouteTableDef()


async def _require_site(request: web.Request, site: str) -> DeliveryLog:
    # The admin passes require_moderator for any site id, so the site itself is checked here.
    await require_moderator(request, site)
    log = request.app[DELIVERIES]
    if not await log.site_exists(site):
        raise site_not_found(site)
    return log


@routes.get("/v1/sites/{site}/deliveries")
@operation(
    summary="List webhook deliveries in one state, cursor paged: failed (the default: the dead "
    "letter, newest first), delivered (newest first) or pending (oldest first: the events a worker "
    "has taken from the outbox and not yet settled; those no worker has taken are not listed)",
    tag="webhooks",
    auth="moderator",
    query=DeliveryQuery,
    response=DeliveryPage,
    errors=(400, 401, 404, 422, 503),
)
async def list_deliveries(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    log = await _require_site(request, site)
    query = read_query(request, DeliveryQuery)
    page = await log.page(site, query)
    return web.json_response(page.model_dump(mode="json"))


@routes.post("/v1/sites/{site}/deliveries/{event}:redeliver")
@operation(
    summary="Deliver a failed (or already delivered) event again, with a fresh retry schedule; "
    "it still waits behind earlier undelivered events of its comment",
    tag="webhooks",
    auth="moderator",
    status=202,
    response=Delivery,
    errors=(401, 404, 409, 503),
)
@idempotent(by_site_moderator)
async def redeliver(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    log = await _require_site(request, site)
    delivery = await log.redeliver(
        site, checked_id(request.match_info["event"], "event"), int(request.app[CLOCK]() * 1000)
    )
    return web.json_response(delivery.to_json(), status=202)
