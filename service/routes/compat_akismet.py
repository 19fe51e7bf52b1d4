"""Akismet's ``/1.1`` and ``/1.2`` routes: form fields in, Akismet's answers out.

What each call does is ``AkismetDesk``'s (service/compat/akismet_desk.py); these parse the form
and shape the answer.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from service.appkeys import AKISMET, SETTINGS
from service.compat import akismet
from service.compat.akismet_desk import Answer as AkismetAnswer
from service.domain import Action
from service.error_shapes import error_shape
from service.errors import BadRequest, CivilityError, PayloadTooLarge
from service.openapi import Handler, operation

routes = web.RouteTableDef()

FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"
FIELDS = {
    "type": "object",
    "required": ["api_key", "blog", "user_ip"],
    "properties": {
        name: {"type": "string"}
        for name in (
            "api_key",
            "blog",
            "user_ip",
            "user_agent",
            "referrer",
            "permalink",
            "comment_type",
            "comment_author",
            "comment_author_email",
            "comment_author_url",
            "comment_content",
            "comment_date_gmt",
            "comment_post_modified_gmt",
            "comment_post_ID",
            "comment_parent",
            "blog_lang",
            "blog_charset",
            "user_role",
            "is_test",
            "recheck_reason",
            "honeypot_field_name",
            "hidden_honeypot_field",
        )
    },
}
VERIFY_FIELDS = {
    "type": "object",
    "required": ["key", "blog"],
    "properties": {"key": {"type": "string"}, "blog": {"type": "string"}},
}
KEY_FIELDS = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in ("api_key", "key", "blog", "month", "filter", "format", "order", "limit")
    },
}
PLAIN = {"type": "string"}
USAGE = {
    "type": "object",
    "required": ["limit", "usage", "percentage", "throttled"],
    "properties": {
        "limit": {"const": "none"},
        "usage": {"type": "integer"},
        "percentage": {"type": "string"},
        "throttled": {"type": "boolean"},
    },
}
KEY_SITES = {
    "type": "object",
    "required": ["limit", "offset", "total"],
    "additionalProperties": {"type": ["array", "integer"]},
}
STATS = {
    "type": "object",
    "required": ["spam", "ham", "missed_spam", "false_positives", "accuracy"],
    "properties": {
        name: {"type": "number"}
        for name in ("spam", "ham", "missed_spam", "false_positives", "accuracy")
    },
}
SUBSCRIPTION = {
    "type": "object",
    "required": ["status", "account_name", "limit"],
    "properties": {
        "status": {"const": "active"},
        "account_name": {"type": "string"},
        "limit": {"const": "none"},
    },
}


def _akismet_operation(
    summary: str, body: Mapping[str, Any] = FIELDS
) -> Callable[[Handler], Handler]:
    """Every Akismet call: a form in, plain text out (errors too), authorised by the api key."""
    return operation(
        summary=summary,
        tag="compatibility",
        auth="akismet_key",
        body=body,
        body_type=FORM,
        response=PLAIN,
        response_type=TEXT,
        errors=(413, 503),
        error_schema=PLAIN,
        error_type=TEXT,
    )


# aiohttp refuses to send a header value holding one, and drops the connection instead.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def akismet_error(error: CivilityError) -> web.Response:
    status, text = akismet.error_text(error)
    return _text(text, {akismet.DEBUG_HELP: error.message}, status=status)


def _text(body: str, headers: Mapping[str, str] | None = None, status: int = 200) -> web.Response:
    """A plain-text answer; control characters in its headers (a moderator's reason may hold a
    line break, an error message a field's name) become spaces."""
    safe = {name: _CONTROL_CHARACTERS.sub(" ", value) for name, value in (headers or {}).items()}
    return web.Response(text=body, status=status, content_type=TEXT, headers=safe)


async def _fields(request: web.Request) -> dict[str, str]:
    """The form's fields (query parameters too, as Akismet reads both; the form wins), read up
    to ``akismet.MAX_FORM_BYTES``: WordPress sends the comment twice. A form is read in the
    charset its Content-Type names, else in the one its ``blog_charset`` names (Akismet's
    clients send the blog's own), else in UTF-8; bytes that are not valid in it are refused,
    never read as replacement characters."""
    limit = max(request.app[SETTINGS].max_body_bytes, akismet.MAX_FORM_BYTES)
    try:
        query = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
        if request.content_type == FORM:
            body = await request.clone(client_max_size=limit).read()
            charset = request.charset or akismet.form_charset(body + b"&" + query) or "utf-8"
            form: Mapping[str, Any] = _decoded(body.rstrip(), charset)
        else:
            form = await request.clone(client_max_size=limit).post()
            charset = akismet.form_charset(query) or "utf-8"
        fields = _decoded(query, charset)
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes") from None
    except UnicodeError:
        raise BadRequest("the form is not valid UTF-8 (or the charset it names)") from None
    except LookupError:
        raise BadRequest(f"the form names an unknown charset: {request.charset}") from None
    except ValueError as error:
        # aiohttp's answer to a multipart body without a boundary, among other broken forms.
        raise BadRequest(f"the form cannot be read: {error}") from None
    fields.update({name: value for name, value in form.items() if isinstance(value, str)})
    return fields


def _decoded(raw: bytes, charset: str) -> dict[str, str]:
    """A urlencoded form's fields, its raw bytes and its percent escapes read in ``charset``
    (a ``UnicodeDecodeError`` where they are not valid in it)."""
    return dict(
        parse_qsl(raw.decode(charset), keep_blank_values=True, encoding=charset, errors="strict")
    )


def _answer(answer: AkismetAnswer) -> web.Response:
    return _text(answer.text, answer.headers)


@routes.post("/1.1/verify-key")
@_akismet_operation(
    "Akismet's verify-key: `valid` when the key is a site's api key, else `invalid`",
    body=VERIFY_FIELDS,
)
@error_shape(akismet_error)
async def verify_key(request: web.Request) -> web.Response:
    return _answer(await request.app[AKISMET].verify_key(await _fields(request)))


@routes.post("/1.1/comment-check")
@_akismet_operation(
    "Akismet's comment-check: `false` when the site's policy publishes the comment, else "
    "`true` (held comments too, so the client does not publish them; X-Civility-State and "
    "X-Civility-Reasons say which); moderated and stored like intake unless is_test=1; a "
    "contact-form, message or signup is only judged spam or not and stored nowhere"
)
@error_shape(akismet_error)
async def comment_check(request: web.Request) -> web.Response:
    return _answer(await request.app[AKISMET].comment_check(await _fields(request)))


@routes.post("/1.1/submit-spam")
@_akismet_operation(
    "Akismet's submit-spam: a stored comment is decided as spam (history, webhook, training "
    "label); another becomes a spam training label"
)
@error_shape(akismet_error)
async def submit_spam(request: web.Request) -> web.Response:
    return _answer(await request.app[AKISMET].submit(await _fields(request), Action.SPAM))


@routes.post("/1.1/submit-ham")
@_akismet_operation(
    "Akismet's submit-ham: a stored comment is approved (history, webhook, training label); "
    "another becomes a not-spam training label"
)
@error_shape(akismet_error)
async def submit_ham(request: web.Request) -> web.Response:
    return _answer(await request.app[AKISMET].submit(await _fields(request), Action.APPROVE))


def _json_operation(
    summary: str,
    response: Mapping[str, Any],
    *,
    form: bool = True,
    also_types: Mapping[str, Any] | None = None,
) -> Callable[[Handler], Handler]:
    """Akismet's JSON calls: a form (or only the query string) in, JSON out, errors as text
    (a bad key or request answers 200 with the text, as Akismet does)."""
    return operation(
        summary=summary,
        tag="compatibility",
        auth="akismet_key",
        body=KEY_FIELDS if form else None,
        body_type=FORM,
        response=response,
        errors=(413, 503),
        error_schema=PLAIN,
        error_type=TEXT,
        also_types={TEXT: PLAIN, **(also_types or {})},
    )


@routes.get("/1.2/usage-limit")
@_json_operation(
    "Akismet's usage-limit (api_key in the query): this month's calls; civility has no limit",
    USAGE,
    form=False,
)
@error_shape(akismet_error)
async def usage_limit(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AKISMET].usage_limit(await _fields(request)))


@routes.get("/1.2/key-sites")
@_json_operation(
    "Akismet's key-sites (api_key, month, filter, format in the query): the key's one site "
    "with the month's calls and corrections; format=csv for CSV",
    KEY_SITES,
    form=False,
    also_types={"text/csv": {"type": "string"}},
)
@error_shape(akismet_error)
async def key_sites(request: web.Request) -> web.Response:
    answer = await request.app[AKISMET].key_sites(await _fields(request))
    if isinstance(answer, str):
        return web.Response(text=answer, content_type="text/csv")
    return web.json_response(answer)


@routes.post("/1.1/get-stats")
@_json_operation("Akismet's get-stats: this month's spam, ham and corrections", STATS)
@error_shape(akismet_error)
async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AKISMET].get_stats(await _fields(request)))


@routes.post("/1.1/get-subscription")
@_json_operation("Akismet's get-subscription: always active, without limits", SUBSCRIPTION)
@error_shape(akismet_error)
async def get_subscription(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AKISMET].get_subscription(await _fields(request)))
