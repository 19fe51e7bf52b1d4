"""Coral Talk's external moderation phase for one site: ``POST /v1/integrations/coral/{site}``.

The comment goes through ``Moderation.ingest`` like an intake comment, with Coral's ids, so a
held comment waits in both Coral's queue and ours.
"""

from typing import Any

from aiohttp import web

from service.appkeys import METRICS, MODERATION
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


@routes.post("/v1/integrations/coral/{site}")
@operation(
    summary="Coral Talk's external moderation phase: 204 when the comment may be published, "
    "else 200 with Coral's status and flag actions; held comments also enter our queue",
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
    raw = await read_raw(request)
    moderation = request.app[MODERATION]
    secret = await moderation.coral_signing_secret(site)
    coral.verify(request.headers.get(coral.SIGNATURE_HEADER), raw, secret)
    moderated = parse(coral.ModerationRequest, raw)
    if (withheld := coral.too_long(moderated)) is not None:
        return web.json_response(withheld)
    submission = coral.submission(moderated)
    if submission is None:
        return web.Response(status=204)
    result = await moderation.ingest(site, submission)
    if result.created:
        request.app[METRICS].observe_verdict(result.comment.state.value)
    body = coral.response(result.comment)
    if body is None:
        return web.Response(status=204)
    return web.json_response(body)
