"""Coral Talk's routes for one site: its external moderation phase and its webhooks.

``POST /v1/integrations/coral/{site}`` answers the phase; ``POST
/v1/integrations/coral/{site}/webhooks`` receives Coral's signed webhooks. What they do is
``CoralDesk``'s (service/compat/coral_desk.py).
"""

from typing import Any

from aiohttp import web

from service.appkeys import CORAL
from service.compat import coral
from service.openapi import operation
from service.routes.body import parse, read_raw

routes = web.RouteTableDef()

PHASE_RESULT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"enum": [coral.APPROVED, coral.REJECTED, coral.PREMOD, coral.SYSTEM_WITHHELD]},
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["actionType", "reason"],
                "additionalProperties": False,
                "properties": {
                    "actionType": {"const": coral.FLAG},
                    "reason": {"enum": [coral.DETECTED_TOXIC, coral.DETECTED_SPAM]},
                },
            },
        },
    },
}
WEBHOOK_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "applied"],
    "properties": {
        "event": {"type": "string"},
        "applied": {"type": "boolean"},
        "comment_id": {"type": "string"},
        "state": {"type": "string"},
        "reason": {"type": "string"},
    },
}


@routes.post("/v1/integrations/coral/{site}")
@operation(
    summary="Coral Talk's external moderation phase: 204 when the comment may be published, "
    "else 200 with Coral's status and flag actions; held comments also enter our queue, and "
    "an EDIT updates the comment it edits",
    tag="compatibility",
    auth="coral",
    status=200,
    body=coral.ModerationRequest,
    response=PHASE_RESULT,
    also={204: "Nothing to say: Coral goes on with its own settings"},
    errors=(400, 401, 404, 413, 415, 422, 503),
)
async def moderate(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    # Read past the usual limit, so a comment too long to moderate is held, not refused (Coral
    # would publish it); the signature is checked on every byte before anything is answered.
    raw = await read_raw(request, coral.PHASE_MAX_BODY_BYTES)
    desk = request.app[CORAL]
    await desk.verify_phase(site, request.headers.get(coral.SIGNATURE_HEADER), raw)
    body = await desk.moderate(site, parse(coral.ModerationRequest, raw))
    if body is None:
        return web.Response(status=204)
    return web.json_response(body)


@routes.post("/v1/integrations/coral/{site}/webhooks")
@operation(
    summary="Coral Talk's webhooks (signed with the site's coral.webhook_secret): a comment "
    "event links Coral's comment and revision to ours; a decision made in Coral "
    "(COMMENT_LEFT_MODERATION_QUEUE) decides our comment the same way",
    tag="compatibility",
    auth="coral",
    body=coral.WebhookEvent,
    response=WEBHOOK_RESULT,
    errors=(400, 401, 404, 413, 415, 422, 503),
)
async def webhook(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    raw = await read_raw(request)
    desk = request.app[CORAL]
    await desk.verify_webhook(site, request.headers.get(coral.SIGNATURE_HEADER), raw)
    return web.json_response(await desk.webhook(site, parse(coral.WebhookEvent, raw)))
