"""Every answer the API tests receive is checked against the app's own /openapi.json with
openapi-core: an answer the document does not describe (status, media type or body) fails the
test that got it. The document is built and parsed once per session."""

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.exceptions import (
    MissingRequiredRequestBody,
    ParameterValidationError,
    RequestBodyValidationError,
)

from service import openapi

_SPEC: list[OpenAPI] = []


def _spec(app: web.Application) -> OpenAPI:
    if not _SPEC:
        # Text the library does not read by itself (the console's scripts, styles and SVG icon,
        # CSV).
        kinds = ("text/*", "text/javascript", "text/css", "text/csv", "image/svg+xml")
        text: dict[str, Any] = dict.fromkeys(kinds, plain_loads)
        # Whether the document itself is valid OpenAPI is one test's business
        # (test_the_openapi_document_describes_every_route); checked here, it cost each test
        # process a second and a half.
        config = Config(extra_media_type_deserializers=text, spec_validator_cls=None)
        _SPEC.append(OpenAPI.from_dict(openapi.build_document(app, "test"), config=config))
    return _SPEC[0]


def check(
    app: web.Application,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    request = MockRequest("http://localhost", method, path)
    answer = MockResponse(
        body,
        status_code=status,
        headers=dict(headers),
        content_type=headers.get("Content-Type", ""),
    )
    try:
        _spec(app).validate_response(request, answer)
    except (PathNotFound, OperationNotFound, ServerNotFound):
        # A path or method we do not serve: its answer is aiohttp's own 404 or 405. (A path
        # with a trailing slash after an id is taken for the id's route at another server.)
        return
    except OpenAPIError as error:
        detail = "; ".join(str(cause) for cause in _causes(error))
        raise AssertionError(
            f"{method} {path} answered {status}, which /openapi.json "
            f"does not describe: {type(error).__name__}: {detail}"
        ) from error


def refused_parameters(
    app: web.Application,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> set[tuple[str, str]]:
    """The (location, name) of each parameter of this request that /openapi.json refuses."""
    request = MockRequest(
        "http://localhost", method, path, headers=dict(headers), args=dict(query or {})
    )
    return {
        (error.location, error.name)
        for error in _spec(app).iter_request_errors(request)
        if isinstance(error, ParameterValidationError)
    }


def refuses_no_body(
    app: web.Application, method: str, path: str, headers: Mapping[str, str]
) -> bool:
    """Whether /openapi.json refuses this request for coming without a body."""
    request = MockRequest("http://localhost", method, path, headers=dict(headers))
    errors = _spec(app).iter_request_errors(request)
    return any(isinstance(error, MissingRequiredRequestBody) for error in errors)


def refuses_body(
    app: web.Application, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> bool:
    """Whether /openapi.json refuses this request's JSON body."""
    request = MockRequest("http://localhost", method, path, headers=dict(headers), data=body)
    errors = _spec(app).iter_request_errors(request)
    return any(isinstance(error, RequestBodyValidationError) for error in errors)


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    for inner in getattr(error, "schema_errors", None) or []:
        found.append(inner)
    if error.__cause__ is not None:
        found.append(error.__cause__)
        found.extend(_causes(error.__cause__))
    return found


def validating(client: TestClient[web.Request, web.Application]) -> None:
    """Check every answer ``client`` receives from now on."""
    send = client._request

    async def checked(method: str, path: Any, **kwargs: Any) -> ClientResponse:
        response = await send(method, path, **kwargs)
        if response.headers.get("Content-Type", "").startswith("text/event-stream"):
            return response  # a stream that stays open; its shape is tested on its own
        body = await response.read()
        check(client.app, method, response.url.path, response.status, response.headers, body)
        return response

    client._request = checked  # type: ignore[method-assign]
