"""Perspective's ``/v1alpha1`` routes: analyze scores only; suggestscore stores a label."""

from typing import Any

from aiohttp import web

from service.appkeys import CORAL, LABELS, MODERATION
from service.compat import perspective, perspective_scoring
from service.domain import Site
from service.error_shapes import error_shape
from service.errors import BadRequest, CivilityError
from service.openapi import operation
from service.routes.body import parse, read_raw

routes = web.RouteTableDef()

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
SCORE: dict[str, Any] = {
    "type": "object",
    "required": ["value", "type"],
    "properties": {"value": {"type": "number"}, "type": {"const": perspective.PROBABILITY}},
}
ANALYSIS: dict[str, Any] = {
    "type": "object",
    "required": ["attributeScores", "languages"],
    "properties": {
        "attributeScores": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["summaryScore"],
                "properties": {
                    "summaryScore": SCORE,
                    "spanScores": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "begin": {"type": "integer"},
                                "end": {"type": "integer"},
                                "score": SCORE,
                            },
                        },
                    },
                },
            },
        },
        "languages": {"type": "array", "items": {"type": "string"}},
        "detectedLanguages": {"type": "array", "items": {"type": "string"}},
        "clientToken": {"type": "string"},
    },
}
SUGGESTED: dict[str, Any] = {
    "type": "object",
    "required": ["detectedLanguages", "requestedLanguages"],
    "properties": {
        "detectedLanguages": {"type": "array", "items": {"type": "string"}},
        "requestedLanguages": {"type": "array", "items": {"type": "string"}},
        "clientToken": {"type": "string"},
    },
}
ERRORS = (400, 403, 503)


def perspective_error(error: CivilityError) -> web.Response:
    status, body = perspective.error_body(error)
    return web.json_response(body, status=status)


async def _site(request: web.Request) -> Site:
    key = perspective.api_key(request.query, request.headers)
    site = await request.app[MODERATION].site_for_api_key(key)
    if site is None:
        raise BadRequest(perspective.INVALID_KEY)
    return site


@routes.post("/v1alpha1/comments:analyze")
@operation(
    summary="Perspective's analyze: the model's scores for the requested attributes; nothing "
    "is stored and nothing enters the moderation queue",
    tag="compatibility",
    auth="api_key",
    body=perspective.AnalyzeRequest,
    response=ANALYSIS,
    errors=ERRORS,
    error_schema=ERROR,
)
@error_shape(perspective_error)
async def analyze(request: web.Request) -> web.Response:
    site = await _site(request)
    analysis = parse(perspective.AnalyzeRequest, await read_raw(request))
    moderation = request.app[MODERATION]
    return web.json_response(await perspective_scoring.analyze(moderation, site.id, analysis))


@routes.post("/v1alpha1/comments:suggestscore")
@operation(
    summary="Perspective's suggestscore (what Coral Talk sends when a moderator approves or "
    "rejects): stored as a training label of the site",
    tag="compatibility",
    auth="api_key",
    body=perspective.SuggestScoreRequest,
    response=SUGGESTED,
    errors=ERRORS,
    error_schema=ERROR,
)
@error_shape(perspective_error)
async def suggest_score(request: web.Request) -> web.Response:
    site = await _site(request)
    suggestion = parse(perspective.SuggestScoreRequest, await read_raw(request))
    about = await request.app[CORAL].suggested(site.id, suggestion.client_token)
    body = await perspective_scoring.suggest(
        request.app[MODERATION], request.app[LABELS], site.id, suggestion, about
    )
    return web.json_response(body)
