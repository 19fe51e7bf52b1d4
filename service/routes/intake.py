"""Intake from host sites, signed with the site's webhook secret: comments and articles."""

from typing import Any

from aiohttp import web

from service.appkeys import METRICS, MODERATION
from service.auth import require_signature
from service.domain import Article, ArticleSpec, Comment, Submission
from service.openapi import operation
from service.routes.body import parse, read_raw

routes = web.RouteTableDef()

VERDICT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "state", "reasons", "scores", "model", "version"],
    "properties": {
        "id": {"type": "string"},
        "state": {"enum": ["approved", "pending", "rejected", "spam"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "model": {"type": ["string", "null"]},
        "version": {"type": "integer"},
    },
}
INTAKE_ERRORS = (400, 401, 404, 413, 415, 422, 503)
ERASURE_NOTE = {
    503: "or erasure_running: a new comment of an author whose erasure is running, or ended "
    "less than a minute ago; nothing was written, send it again after Retry-After"
}


def verdict(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "state": comment.state.value,
        "reasons": list(comment.reasons),
        "scores": comment.scores,
        "model": comment.model,
        "version": comment.version,
    }


@routes.post("/v1/sites/{site}/comments")
@operation(
    summary="Moderate a new or edited comment (202); a repeated delivery answers 200, unchanged",
    tag="intake",
    auth="signature",
    status=202,
    body=Submission,
    response=VERDICT,
    also={200: "The same id and text were delivered before: the stored verdict"},
    # 409: the author's standing, the article or a window kept changing under the decision.
    errors=(*INTAKE_ERRORS, 409),
    error_notes=ERASURE_NOTE,
)
async def submit_comment(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    raw = await read_raw(request)
    await require_signature(request, site, raw)
    submission = parse(Submission, raw)
    result = await request.app[MODERATION].ingest(site, submission)
    if result.created:
        request.app[METRICS].observe_verdict(result.comment.state.value)
    return web.json_response(verdict(result.comment), status=202 if result.created else 200)


@routes.put("/v1/sites/{site}/articles/{article:[^/]+}")
@operation(
    summary="Set an article's metadata and settings (closed, pre-moderate every comment)",
    tag="intake",
    auth="signature",
    body=ArticleSpec,
    response=Article,
    errors=INTAKE_ERRORS,
)
async def put_article(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    raw = await read_raw(request)
    await require_signature(request, site, raw)
    spec = parse(ArticleSpec, raw)
    article = await request.app[MODERATION].put_article(site, request.match_info["article"], spec)
    return web.json_response(article.model_dump(mode="json"))
