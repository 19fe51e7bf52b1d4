"""Routes that speak another protocol answer failures in its shape (Perspective's error object,
Akismet's plain text): they register an ``ErrorShape`` with ``@error_shape``, and the one error
middleware asks ``shape_for`` before it falls back to civility's JSON error."""

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import CivilityError

ErrorShape = Callable[[CivilityError], web.StreamResponse]
"""How one route answers a failure in its own protocol."""

_ERROR_SHAPES: dict[Handler, ErrorShape] = {}


def error_shape(shape: ErrorShape) -> Callable[[Handler], Handler]:
    """Declare that the decorated handler answers its failures with ``shape``."""

    def register(handler: Handler) -> Handler:
        _ERROR_SHAPES[handler] = shape
        return handler

    return register


def shape_for(handler: Handler) -> ErrorShape | None:
    return _ERROR_SHAPES.get(handler)
