"""``/openapi.json``: built from the routes the application registered and the models they use.

Handlers declare what they accept and return with ``@operation``; the document walks the router,
so a route added without a declaration is missing from it and the completeness test fails.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from service import delivery
from service.domain import ExternalId, SiteId

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal[
    "admin", "moderator", "signature", "api_key", "akismet_key", "coral", "metrics", "none"
]
Schema = type[BaseModel] | dict[str, Any]
NATIVE: frozenset[Auth] = frozenset({"admin", "moderator", "signature"})
"""The native API's callers; the others speak a platform's protocol (Perspective, Akismet, Coral),
whose bodies are read as leniently as the platform reads them."""
JSON_TYPES = (
    "Each value in JSON's own type, as the schema names it: an integer written without a "
    'fraction or exponent (not "5", 5.0 or 5e0), a boolean as true or false (not "true" or 1), a '
    "string in quotes (not a number); another type is 422 naming the field. A number may be "
    "written as an integer; enumerations and times are strings."
)

REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
ERROR_MEANINGS = {
    400: "Malformed request (invalid JSON, bad cursor, a setting without its pair)",
    401: "Missing or invalid credentials, or a bad or stale signature",
    403: "Credentials missing where the protocol asks for them",
    404: "Unknown (or another site's) resource",
    409: "Version, claim or state conflict",
    413: "Request body too large",
    415: "Request body is not application/json",
    422: "Field errors: details lists every failing field",
    503: "Redis is unavailable; nothing was written",
}
RETRY_AFTER: dict[str, Any] = {
    "description": "Seconds to wait before trying again, sent when the refusal knows",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
}
SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "admin": [{"admin": []}],
    "moderator": [{"moderator": []}, {"admin": []}],
    "signature": [{"signature": []}],
    "api_key": [{"api_key": []}],
    "akismet_key": [{"akismet_key": []}],
    "coral": [{"coral": []}],
    # Open in development when no metrics token is set; "{}" says so.
    "metrics": [{"metrics": []}, {}],
    "none": [],
}


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    tag: str
    auth: Auth
    status: int = 200
    body: Schema | None = None
    query: type[BaseModel] | None = None
    response: Schema | None = None
    response_type: str = "application/json"
    errors: tuple[int, ...] = ()
    also: dict[int, str] = field(default_factory=dict)
    body_type: str = "application/json"
    error_schema: dict[str, Any] | None = None
    """The errors' own shape, for routes that speak another protocol (``@error_shape``)."""
    error_type: str = "application/json"
    also_types: dict[str, Schema] = field(default_factory=dict)
    """Other media types the main answer may come in, with their schemas."""
    error_notes: dict[int, str] = field(default_factory=dict)
    """What an error status also means for this operation, beyond ``ERROR_MEANINGS``."""
    headers: tuple[dict[str, Any], ...] = ()
    """Request headers the operation reads, as OpenAPI header parameters."""
    idempotent: bool = False
    """The handler honours an Idempotency-Key header (``service/routes/idempotent.py``)."""


_OPERATIONS: dict[Handler, Operation] = {}
REPLAYED: dict[str, Any] = {
    "description": "Sent on an answer given again to a retry with the same Idempotency-Key",
    "required": False,
    "schema": {"const": "true"},
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A key of the caller's choosing (1-255 printable ASCII characters): the "
    "first answer is kept for 24 hours and a retry with the same key and body gets it again "
    "(with Idempotent-Replayed: true); the same key with another body is 422 "
    "idempotency_key_reused, a retry while the first still runs is 409 idempotency_in_progress "
    "(with Retry-After); "
    "a 409 claim_conflict is not kept (it ends with the other moderator's lease)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}


def operation(**declaration: Any) -> Callable[[Handler], Handler]:
    """Declare a handler's contract; the arguments are those of ``Operation``."""
    described = Operation(**declaration)

    def register(handler: Handler) -> Handler:
        idempotent = bool(getattr(handler, "__idempotent__", False))
        _OPERATIONS[handler] = replace(described, idempotent=idempotent)
        return handler

    return register


JsonMode = Literal["validation", "serialization"]
Refs = Mapping[tuple[Any, JsonMode], dict[str, Any]]


def _schema_models(operations: list[Operation]) -> list[tuple[type[BaseModel], JsonMode]]:
    wanted: list[tuple[type[BaseModel], JsonMode]] = []
    for op in operations:
        pairs: list[tuple[Schema | None, JsonMode]] = [
            (op.body, "validation"),
            (op.query, "validation"),
            (op.response, "serialization"),
        ]
        for schema, mode in pairs:
            if isinstance(schema, type) and (schema, mode) not in wanted:
                wanted.append((schema, mode))
    return wanted


# The ids a path names: a site's (unknown when it is not one, 404), and the host's or civility's
# own, which ``service/path_ids.py`` checks as a body's (422 naming the parameter).
PATH_IDS: dict[str, dict[str, Any]] = {
    "site": TypeAdapter(SiteId).json_schema(),
    **dict.fromkeys(
        ("article", "author", "comment", "event", "moderator"),
        TypeAdapter(ExternalId).json_schema(),
    ),
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1 : part.index("}")] for part in path.split("/") if part.startswith("{")]
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_IDS.get(name, {"type": "string"}),
        }
        for name in names
    ]


def _query_parameters(
    model: type[BaseModel], refs: Refs, schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    schema = schemas[refs[model, "validation"]["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _schema_ref(schema: Schema | None, mode: JsonMode, refs: Refs) -> dict[str, Any]:
    if schema is None:
        return {}
    if isinstance(schema, dict):
        return schema
    return refs[schema, mode]


def _describe(path: str, op: Operation, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    # An operation without a response schema answers without a body (204, 202).
    answer = (
        {}
        if op.response is None
        else {
            "content": {
                op.response_type: {"schema": _schema_ref(op.response, "serialization", refs)}
            }
        }
    )
    if op.also_types:
        answer.setdefault("content", {}).update(
            {
                kind: {"schema": _schema_ref(schema, "serialization", refs)}
                for kind, schema in op.also_types.items()
            }
        )
    responses: dict[str, Any] = {str(op.status): {"description": op.summary, **answer}}
    for status, description in op.also.items():
        # 204 is "No Content" by definition, whatever the main answer carries.
        responses[str(status)] = {"description": description, **({} if status == 204 else answer)}
    error_schema = op.error_schema or {"$ref": "#/components/schemas/Error"}
    for status in op.errors:
        note = op.error_notes.get(status)
        responses[str(status)] = {
            "description": ERROR_MEANINGS[status] + (f"; {note}" if note else ""),
            "content": {op.error_type: {"schema": error_schema}},
        }
        if status == 503:
            responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER}
    parameters = _path_parameters(path)
    if op.query is not None:
        parameters += _query_parameters(op.query, refs, schemas)
    parameters += op.headers
    if op.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
        for status, code in ((409, "idempotency_in_progress"), (422, "idempotency_key_reused")):
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_MEANINGS[status],
                    "content": {op.error_type: {"schema": error_schema}},
                },
            )
            responses[str(status)]["description"] += f"; {code}"
            if code == "idempotency_in_progress":
                responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER}
        # The key's record holds the body's hash, so the body is read (and may be refused) even
        # where the operation itself takes none.
        for status in (400, 413, 415):
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_MEANINGS[status],
                    "content": {op.error_type: {"schema": error_schema}},
                },
            )
        # Any answer but a 5xx is kept, and a retry gets it again, marked.
        for code, response in responses.items():
            if int(code) < 500:
                response["headers"] = {
                    **response.get("headers", {}),
                    "Idempotent-Replayed": REPLAYED,
                }
    described: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "security": SECURITY[op.auth],
        "parameters": parameters,
        "responses": responses,
    }
    if op.body is not None:
        described["requestBody"] = {
            # A body of none but optional fields may be left out: it reads as {} (``parse``).
            "required": not isinstance(op.body, type)
            or any(field.is_required() for field in op.body.model_fields.values()),
            "content": {op.body_type: {"schema": _schema_ref(op.body, "validation", refs)}},
        }
        if op.auth in NATIVE:
            # JSON Schema takes 5.0 for an integer, which the API does not.
            described["requestBody"]["description"] = JSON_TYPES
    return described


def documented_routes(app: web.Application) -> list[tuple[str, str, Operation | None]]:
    """Every (method, path) the router serves, with its declaration if it has one."""
    found = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue  # aiohttp adds HEAD beside every GET by itself
        found.append((route.method, route.resource.canonical, _OPERATIONS.get(route.handler)))
    return found


_DECISION_WEBHOOK: dict[str, Any] = {
    "post": {
        "summary": "A comment's state changed; sent to the site's callback URL by the worker",
        "description": "Signed with the site's current webhook secret in the Civility-Signature "
        "header, and within a rotation's grace with each previous one too (one v1 each, the "
        "current one's first: accept the request when any matches). Each attempt is signed when "
        "it is sent: refuse a t more than 300 s from your clock. "
        "Delivered at least once (drop duplicates by id) and, per comment, in order. "
        "Answer 2xx; anything else, a timeout or a refused connection is retried with "
        "exponential backoff and jitter, then kept as a failed delivery to redeliver.",
        "security": [{"signature": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": delivery.EVENT_SCHEMA}},
        },
        "responses": {"2XX": {"description": "Delivered"}},
    }
}


def build_document(app: web.Application, version: str) -> dict[str, Any]:
    routes = documented_routes(app)
    operations = [op for _, _, op in routes if op is not None]
    refs, definitions = models_json_schema(_schema_models(operations), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in routes:
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = _describe(path, op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "civility",
            "version": version,
            "description": "Comment moderation: signed intake, verdicts, a moderation queue, "
            "signed decision webhooks.",
        },
        "paths": paths,
        "webhooks": {"decision": _DECISION_WEBHOOK},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "Admin token"},
                "moderator": {"type": "http", "scheme": "bearer", "description": "Site token"},
                "metrics": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "CIVILITY_METRICS_TOKEN (required in production)",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Civility-Signature",
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
                },
                "api_key": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "key",
                    "description": "The site's api key (Perspective's ?key=)",
                },
                "akismet_key": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "api_key",
                    "description": "The site's api key, sent as the api_key (or key) form field",
                },
                "coral": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Coral-Signature",
                    "description": "sha256=<hex HMAC-SHA256 of the raw body with the site's "
                    "Coral signing secret>, one or more, comma-separated",
                },
            },
        },
    }
