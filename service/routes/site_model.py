"""A site's own model: its state, a refit on request, and a rollback."""

from typing import Any

from aiohttp import web

from service.appkeys import MODERATION, SCORER, SETTINGS, SITE_MODELS, SITE_VERSIONS
from service.auth import require_admin, require_moderator
from service.openapi import operation
from service.routes.idempotent import by_admin, idempotent
from service.site_models import fitted_on

routes = web.RouteTableDef()

_NUMBER = {"type": ["number", "null"]}
_BY_NAME = {"type": "object", "additionalProperties": _NUMBER}
_LABEL_FIT: dict[str, Any] = {
    "type": "object",
    "required": ["used", "why", "labels", "positives"],
    "properties": {
        "used": {"type": "boolean"},
        "why": {"type": "string"},
        "labels": {"type": "integer"},
        "positives": {"type": "integer"},
        "auc_global": _NUMBER,
        "auc_adapted": _NUMBER,
        "weights": {"type": "object", "additionalProperties": {"type": "number"}},
        "features": {
            "type": ["string", "null"],
            "description": "The feature kinds the blend reads, joined by +: lexical (the "
            "global model's word and character features), scores (its logit of every label), "
            "embedding (the semantic stage's, second look only)",
        },
        "candidates": {
            **_BY_NAME,
            "description": "Out-of-fold ROC-AUC of the best blend of each set of kinds",
        },
        "gain_lower_bound": {
            **_NUMBER,
            "description": "5th percentile of the gain over paired bootstrap resamples",
        },
        "heads": {**_BY_NAME, "description": "Out-of-fold ROC-AUC of each kind's head alone"},
    },
}
_FIT: dict[str, Any] = {
    "type": "object",
    "description": "A fit's card: when, on which global model, the rows used, per label the "
    "labels and positives, out-of-fold ROC-AUC of the global model and of the blend, the "
    "blend weights and feature kinds, whether it is used and why; with a semantic stage, the "
    "same of the second look's site model under second_look",
    "properties": {
        "version": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "global_model": {"type": "string"},
        "global_artifact": {
            "type": ["string", "null"],
            "description": "The sha256 of the global model's artifact it was fitted on: a site "
            "model is used only with that artifact, not another of the same version",
        },
        "rows": {"type": "integer"},
        "fit_seconds": {"type": "number"},
        "why": {"type": "string"},
        "labels": {
            "type": "object",
            "additionalProperties": {
                **_LABEL_FIT,
                "properties": {**_LABEL_FIT["properties"], "second_look": _LABEL_FIT},
            },
        },
    },
}
SITE_MODEL: dict[str, Any] = {
    "type": "object",
    "required": ["adapted", "active", "why", "labels", "last_fit", "history", "refits"],
    "properties": {
        "adapted": {"type": "boolean", "description": "Whether the site's model scores it now"},
        "active": {"oneOf": [_FIT, {"type": "null"}]},
        "why": {"type": "string"},
        "labels": {
            "type": "object",
            "properties": {
                "rows": {"type": "integer"},
                "since_last_fit": {"type": "integer"},
            },
        },
        "last_fit": {"oneOf": [_FIT, {"type": "null"}]},
        "history": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Activations, newest first (0: the global model alone)",
        },
        "refits": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
REFIT: dict[str, Any] = {
    "type": "object",
    "required": ["requested"],
    "properties": {"requested": {"type": "boolean"}},
}


@routes.get("/v1/sites/{site}/model")
@operation(
    summary="The site's own model: whether it is used and why, its card, labels, history",
    tag="moderation",
    auth="moderator",
    response=SITE_MODEL,
    errors=(401, 404, 503),
)
async def show(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    await require_moderator(request, site)
    await request.app[MODERATION].get_site(site)
    return web.json_response(_as_served(request.app, await request.app[SITE_MODELS].state(site)))


def _as_served(app: web.Application, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with ``adapted`` saying what scores the site's verdicts now: not a version fitted
    on another global model than this process serves (until the worker refits it on this one),
    nor any with site models switched off."""
    card = state["active"]
    if card is None:
        return state
    if not app[SETTINGS].site_models.enabled:
        return {**state, "adapted": False, "why": "site models are switched off"}
    served = app[SCORER].info
    if not fitted_on(card, served.version, served.checksum):
        fitted = card.get("global_model")
        other = (
            f"another artifact of global model {fitted}"
            if fitted == served.version
            else f"global model {fitted}"
        )
        why = (
            f"version {card.get('version')} was fitted on {other}, not the one served "
            f"({served.version}): the worker refits it"
        )
        return {**state, "adapted": False, "why": why}
    return state


@routes.post("/v1/sites/{site}/model:refit")
@operation(
    summary="Ask the worker to refit the site's model now",
    tag="admin",
    auth="admin",
    status=202,
    response=REFIT,
    errors=(401, 404, 503),
)
@idempotent(by_admin)
async def refit(request: web.Request) -> web.Response:
    require_admin(request)
    site = request.match_info["site"]
    await request.app[MODERATION].get_site(site)
    await request.app[SITE_MODELS].request_refit(site)
    return web.json_response({"requested": True}, status=202)


@routes.post("/v1/sites/{site}/model:rollback")
@operation(
    summary="Return the site to the model it ran on before the last change",
    tag="admin",
    auth="admin",
    response=SITE_MODEL,
    errors=(401, 404, 409, 503),
)
@idempotent(by_admin)
async def rollback(request: web.Request) -> web.Response:
    require_admin(request)
    site = request.match_info["site"]
    await request.app[MODERATION].get_site(site)
    models = request.app[SITE_MODELS]
    await models.rollback(site)
    request.app[SITE_VERSIONS].forget(site)
    return web.json_response(_as_served(request.app, await models.state(site)))
