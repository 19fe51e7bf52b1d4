"""Admin route that switches the API processes to the active model."""

from typing import Any

from aiohttp import web

from service.auth import require_admin
from service.openapi import operation
from service.reload import reload_model
from service.routes.idempotent import by_admin, idempotent

routes = web.RouteTableDef()

RELOADED: dict[str, Any] = {
    "type": "object",
    "required": ["previous", "name", "version", "labels"],
    "properties": {
        "previous": {"type": "string", "description": "The version served before"},
        "name": {"type": "string"},
        "version": {"type": "string", "description": "The version served from now on"},
        "labels": {"type": "array", "items": {"type": "string"}},
    },
}


@routes.post("/v1/model:reload")
@operation(
    summary="Load the model models/ACTIVE names in every API process, without dropping a "
    "request; verdicts keep the version that made them",
    tag="admin",
    auth="admin",
    response=RELOADED,
    errors=(401, 409, 503),
)
@idempotent(by_admin)
async def reload(request: web.Request) -> web.Response:
    require_admin(request)
    reloaded = await reload_model(request.app)
    info = reloaded.info
    return web.json_response(
        {
            "previous": reloaded.previous,
            "name": info.name,
            "version": info.version,
            "labels": list(info.labels),
        }
    )
