"""Reading a JSON request body (the media type, the size limit, then the model's validation)
and a query string."""

from codecs import BOM_UTF8
from typing import TypeVar

import pydantic
from aiohttp import web
from pydantic import BaseModel

from service.appkeys import SETTINGS
from service.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

JSON = "application/json"
EMPTY_OBJECT = b"{}"

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_raw(request: web.Request, at_least: int = 0) -> bytes:
    """The raw body (signatures are checked on these bytes), refused unless JSON and small:
    at most ``CIVILITY_MAX_BODY_BYTES``, or ``at_least`` when a route reads further."""
    limit = max(request.app[SETTINGS].max_body_bytes, at_least)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    if request.body_exists and request.content_type != JSON:
        raise UnsupportedMediaType(f"request body must be {JSON}, not {request.content_type}")
    if limit != request.client_max_size:
        request = request.clone(client_max_size=limit)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        # A chunked body has no Content-Length; aiohttp stops reading it at client_max_size.
        raise PayloadTooLarge(f"request body is larger than {limit} bytes") from None


def parse(model: type[ModelT], raw: bytes) -> ModelT:
    """Validate ``raw`` as ``model``; an empty body means ``{}`` (every field at its default),
    and a UTF-8 byte-order mark before the JSON is ignored, as RFC 8259 (section 8.1) allows."""
    text = unmarked(raw)
    # Spaces of the mark's length, not nothing: an error further on keeps its byte offset and
    # column in the body as sent (the parser counts columns in bytes).
    padded = b" " * (len(raw) - len(text)) + text
    return model.model_validate_json(padded or EMPTY_OBJECT)


def unmarked(raw: bytes) -> bytes:
    """``raw`` without a leading UTF-8 byte-order mark: what the API reads of a body, so that
    a body sent with the mark and without it is one request (an ``Idempotency-Key`` retry)."""
    return raw.removeprefix(BOM_UTF8)


async def read_json(request: web.Request, model: type[ModelT]) -> ModelT:
    return parse(model, await read_raw(request))


def read_query(request: web.Request, model: type[ModelT]) -> ModelT:
    """The query string as ``model``. A parameter given again with another value is refused
    with the others' errors: read as its first value alone, a listing asked for two states or
    two articles would answer the first one's, its total too, as if it were both."""
    repeated = [
        (name, "is given more than once, with different values: it takes one")
        for name in dict.fromkeys(request.query)
        if len(set(request.query.getall(name))) > 1
    ]
    try:
        parsed = model.model_validate(dict(request.query))
    except pydantic.ValidationError as error:
        if not repeated:
            raise
        invalid = _fields(ValidationFailed.from_pydantic(error))
        raise ValidationFailed([*repeated, *invalid]) from None
    if repeated:
        raise ValidationFailed(repeated)
    return parsed


def _fields(error: ValidationFailed) -> list[tuple[str, str]]:
    return [(detail["field"], detail["message"]) for detail in error.details]
