"""Operations: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from importlib.metadata import version
from typing import Any

from aiohttp import web
from redis.exceptions import ReadOnlyError

from service import openapi
from service.appkeys import GAUGES, METRICS, REDIS, SCORER, SETTINGS
from service.auth import require_metrics_access
from service.errors import CivilityError, StoreUnavailable
from service.keys import KeySpace
from service.metrics import CONTENT_TYPE
from service.openapi import operation

routes = web.RouteTableDef()

API_VERSION = version("civility")

STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "model": {"type": "string"}},
}


@routes.get("/healthz")
@operation(summary="The process is up", tag="operations", auth="none", response=STATUS)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@operation(
    summary="Redis takes writes and a model is loaded",
    tag="operations",
    auth="none",
    response=STATUS,
    errors=(503,),
)
async def readyz(request: web.Request) -> web.Response:
    # A PING is answered by a primary a failover demoted, which refuses every write: a write is
    # asked instead, one as cheap as a PING (a load balancer asks every few seconds) that changes
    # nothing. On the primary the client writes to: Sentinel's follows the new one after this
    # refusal, Cluster's sends it to the key's slot.
    try:
        await request.app[REDIS].delete(KeySpace(request.app[SETTINGS].redis_prefix).readiness())
    except ReadOnlyError as error:
        raise StoreUnavailable(
            "not ready: Redis is a replica and refuses writes (a failover under way), retry later"
        ) from error
    return web.json_response({"status": "ready", "model": request.app[SCORER].model_version})


@routes.get("/metrics")
@operation(
    summary="Prometheus metrics",
    tag="operations",
    auth="metrics",
    response={"type": "string"},
    response_type="text/plain",
    errors=(401,),
)
async def metrics(request: web.Request) -> web.Response:
    require_metrics_access(request)
    registry = request.app[METRICS]
    gauges = request.app[GAUGES]
    # One read of the figures the writes keep current, whatever the number of sites.
    try:
        await gauges.refresh_changed()
        registry.show(await gauges.figures())
    except CivilityError:
        pass  # a scrape must not fail because Redis blinked
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@routes.get("/openapi.json")
@operation(summary="This document", tag="operations", auth="none", response={"type": "object"})
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.build_document(request.app, API_VERSION))
