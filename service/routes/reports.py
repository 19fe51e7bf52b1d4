"""Reader reports from host sites, signed with the site's webhook secret like intake."""

from typing import Any

from aiohttp import web

from service.appkeys import MODERATION
from service.auth import require_signature
from service.domain import ReportSpec
from service.openapi import operation
from service.routes.body import parse, read_raw
from service.routes.idempotent import by_site_signature, idempotent
from service.routes.intake import INTAKE_ERRORS

routes = web.RouteTableDef()

REPORT_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["comment_id", "state", "reports", "threshold", "reported", "counted"],
    "properties": {
        "comment_id": {"type": "string"},
        "state": {"enum": ["approved", "pending", "rejected", "spam"]},
        "reports": {"type": "integer", "description": "Distinct readers who reported it"},
        "threshold": {"type": "integer"},
        "reported": {"type": "boolean", "description": "The comment is in the reported queue"},
        "counted": {"type": "boolean", "description": "False for a reader's repeated report"},
    },
}


@routes.post("/v1/sites/{site}/comments/{comment:[^/]+}/reports")
@operation(
    summary="A reader reports a published comment (202); at the site's threshold it enters the "
    "reported queue and a comment.reported event goes out. A reader's repeat answers 200",
    tag="intake",
    auth="signature",
    status=202,
    body=ReportSpec,
    response=REPORT_OUTCOME,
    also={200: "This reader reported the comment before: the standing, nothing counted"},
    errors=(*INTAKE_ERRORS, 409),
    error_notes={
        503: "or erasure_running: the reader's erasure is running, or ended less than a "
        "minute ago; nothing was written, send it again after Retry-After"
    },
)
@idempotent(by_site_signature)
async def report_comment(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    raw = await read_raw(request)
    await require_signature(request, site, raw)
    spec = parse(ReportSpec, raw)
    outcome = await request.app[MODERATION].report(site, request.match_info["comment"], spec)
    return web.json_response(outcome.to_json(), status=202 if outcome.counted else 200)
