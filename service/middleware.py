"""The one middleware: every failure becomes ``{"error": {...}}`` and every request is measured.

Routes that speak another protocol register an ``ErrorShape`` (``service/error_shapes.py``); the
middleware still decides what a failure means (the ``CivilityError``), and the shape only decides
how that route says it.
"""

import contextlib
import json
import logging
import re
import time

import pydantic
from aiohttp import web
from aiohttp.typedefs import Handler

from service.appkeys import GAUGES, METRICS
from service.error_shapes import ErrorShape, shape_for
from service.errors import (
    BadRequest,
    CivilityError,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
)
from service.store.scripts import is_unavailable, store_unavailable

log = logging.getLogger(__name__)

# A path we do not serve is counted under one label, not one per URL someone tried.
UNMATCHED_ROUTE = "unmatched"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


NOT_JSON = "request body is not valid JSON"
_WHERE = re.compile(r"at (line \d+ column \d+)$")


def _not_json(body: object, reason: str) -> BadRequest:
    """What keeps ``body`` (which the JSON parser refused for ``reason``) from being JSON, and
    where: bytes that are not UTF-8 (Latin-1, a surrogate encoded as a character), or a ``\\u``
    escape of half a UTF-16 surrogate pair, which no UTF-8 text can hold."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = body[error.start]
            return BadRequest(
                f"request body is not valid UTF-8: byte 0x{byte:02x} at offset {error.start}"
            )
        try:
            # Python's parser takes half a surrogate pair; the text it gives cannot be UTF-8.
            json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            where = _WHERE.search(reason)
            return BadRequest(
                f"{NOT_JSON}: a \\u escape{' near ' + where.group(1) if where else ''} is half a "
                "UTF-16 surrogate pair, not a character"
            )
        except (ValueError, RecursionError):
            pass  # not JSON to Python either (or nested too deep): the parser's reason says why
    return BadRequest(f"{NOT_JSON}: {reason}")


def as_civility_error(error: Exception) -> CivilityError | None:
    """The error a failure means to the caller, or None when it is a bug."""
    if isinstance(error, CivilityError):
        return error
    if isinstance(error, pydantic.ValidationError):
        # Pydantic parses the JSON itself, so a syntax error arrives as a "json_invalid" error.
        for item in error.errors(include_url=False):
            if item["type"] == "json_invalid":
                return _not_json(item["input"], item["msg"].removeprefix("Invalid JSON: "))
        return ValidationFailed.from_pydantic(error)
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return BadRequest(NOT_JSON)
    if isinstance(error, web.RequestPayloadError):
        # aiohttp could not take the body as sent: not the Content-Encoding it names, or a
        # broken chunked framing. The client's mistake, whichever route read it.
        detail = getattr(error.__cause__, "message", None) or str(error)
        return BadRequest(f"request body cannot be read: {detail}")
    if is_unavailable(error):
        # A Redis call outside the store's own mapping (the readiness PING): the same refusals
        # are the store being unavailable, never a bug.
        return store_unavailable(error)
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


async def _without_slash(request: web.Request) -> str | None:
    """The path a request for no route meant, when it differs from a route's by trailing slashes
    alone: the 404 names it, rather than leave the client to spot the slash."""
    raw = request.rel_url.raw_path
    stripped = raw.rstrip("/")
    if not stripped or stripped == raw or request.match_info.http_exception is None:
        return None
    meant = request.clone(rel_url=request.rel_url.with_path(stripped, encoded=True))
    match = await request.app.router.resolve(meant)
    # A route there for another method is still the path to use: its 405 says which.
    found = match.http_exception is None or match.http_exception.status == 405
    return stripped if found else None


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPRedirection:
        raise
    except Exception as error:
        if isinstance(error, web.HTTPNotFound) and (route := await _without_slash(request)):
            error = NotFound(
                f"no route at {request.rel_url.raw_path}: paths take no trailing slash, use {route}"
            )
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
