"""The one middleware: every failure becomes ``{"error": {...}}`` and every request is measured.

Routes that speak another protocol register an ``ErrorShape`` (``service/error_shapes.py``); the
middleware still decides what a failure means (the ``CivilityError``), and the shape only decides
how that route says it.
"""

import contextlib
import json
import logging
import time

import pydantic
import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Handler

from service.appkeys import GAUGES, METRICS
from service.error_shapes import ErrorShape, shape_for
from service.errors import BadRequest, CivilityError, StoreUnavailable, ValidationFailed

log = logging.getLogger(__name__)

# A path we do not serve is counted under one label, not one per URL someone tried.
UNMATCHED_ROUTE = "unmatched"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def as_civility_error(error: Exception) -> CivilityError | None:
    """The error a failure means to the caller, or None when it is a bug."""
    if isinstance(error, CivilityError):
        return error
    if isinstance(error, pydantic.ValidationError):
        # Pydantic parses the JSON itself, so a syntax error arrives as a "json_invalid" error.
        if any(item["type"] == "json_invalid" for item in error.errors(include_url=False)):
            return BadRequest("request body is not valid JSON")
        return ValidationFailed.from_pydantic(error)
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return BadRequest("request body is not valid JSON")
    if isinstance(error, web.RequestPayloadError):
        # aiohttp could not take the body as sent: not the Content-Encoding it names, or a
        # broken chunked framing. The client's mistake, whichever route read it.
        detail = getattr(error.__cause__, "message", None) or str(error)
        return BadRequest(f"request body cannot be read: {detail}")
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StoreUnavailable()
    return None


def error_response(error: Exception, shape: ErrorShape | None = None) -> web.StreamResponse:
    if isinstance(error, web.HTTPException):
        # aiohttp's own answers: no such route (404), wrong method (405).
        code = error.reason.lower().replace(" ", "_")
        body = {"error": {"code": code, "message": error.reason, "details": None}}
        response = web.json_response(body, status=error.status)
        if allow := error.headers.get("Allow"):
            response.headers["Allow"] = allow
        return response
    known = as_civility_error(error)
    if known is None:
        log.error("unhandled error", exc_info=error)
        known = CivilityError()
    if shape is not None:
        answer = shape(known)
    else:
        answer = web.json_response(known.to_json(), status=known.status)
    if known.retry_after_seconds is not None:
        answer.headers["Retry-After"] = str(known.retry_after_seconds)
    return answer


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPRedirection:
        raise
    except Exception as error:
        response = error_response(error, shape_for(request.match_info.handler))
    request.app[METRICS].observe_request(
        _route(request), request.method, response.status, time.perf_counter() - started
    )
    site = request.match_info.get("site")
    if site is not None and request.method not in READS and response.status < 400:
        # Its queue depths may have moved: the next scrape reads them again. The write is done
        # and answered as such; a lost mark only waits for the worker's sweep.
        with contextlib.suppress(StoreUnavailable):
            await request.app[GAUGES].mark(site)
    return response
