"""The reasons a moderator may give, and what each teaches the site's model; and the reasons
automatic verdicts give, which the queue filters by."""

from typing import Any

from aiohttp import web

from service.appkeys import MODERATION
from service.auth import require_moderator
from service.domain import Reason
from service.openapi import operation
from service.reasons import REASONS

routes = web.RouteTableDef()

REASON_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["reasons", "holds"],
    "properties": {
        "holds": {
            "type": "array",
            "description": "The reason codes of automatic verdicts (what a held or reported "
            "comment carries): the values `GET .../queue?reason=` accepts",
            "items": {"type": "string"},
        },
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "description", "teaches"],
                "properties": {
                    "code": {"type": "string"},
                    "description": {"type": "string"},
                    "teaches": {
                        "type": "object",
                        "description": "Training labels a rejection for this reason gives "
                        "the text (1 it is, 0 it is not); {} teaches nothing",
                        "additionalProperties": {"type": "integer", "enum": [0, 1]},
                    },
                },
            },
        },
    },
}


@routes.get("/v1/sites/{site}/reasons")
@operation(
    summary="The reasons a moderator may give for a rejection, with the labels each teaches, "
    "and the reason codes of automatic verdicts",
    tag="moderation",
    auth="moderator",
    response=REASON_LIST,
    errors=(401, 404, 503),
)
async def list_reasons(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    # The admin's token passes for any site id: the site must still exist.
    await request.app[MODERATION].get_site(site)
    return web.json_response(
        {
            "reasons": [reason.to_json() for reason in REASONS],
            "holds": [reason.value for reason in Reason],
        }
    )
