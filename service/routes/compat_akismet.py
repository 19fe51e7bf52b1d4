"""Akismet's ``/1.1`` routes: form fields in, Akismet's plain-text answers out.

A checked comment is moderated by ``Moderation.ingest`` like an intake comment (the site's policy
decides its queue) unless ``is_test`` is set; submit-spam and submit-ham store training labels.
"""

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from service import policy
from service.appkeys import LABELS, METRICS, MODERATION, SETTINGS
from service.compat import akismet
from service.domain import Site, State
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
        )
    },
}
VERIFY_FIELDS = {
    "type": "object",
    "required": ["key", "blog"],
    "properties": {"key": {"type": "string"}, "blog": {"type": "string"}},
}
PLAIN = {"type": "string"}


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


def akismet_error(error: CivilityError) -> web.Response:
    status, text = akismet.error_text(error)
    response = web.Response(text=text, status=status, content_type=TEXT)
    response.headers[akismet.DEBUG_HELP] = error.message
    return response


def _text(body: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=body, content_type=TEXT, headers=headers)


async def _fields(request: web.Request) -> dict[str, str]:
    """The form's fields (query parameters too, as Akismet reads both; the form wins)."""
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        raise PayloadTooLarge(f"request body is larger than {limit} bytes") from None
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8 (or the charset it names)") from None
    except ValueError as error:
        # aiohttp's answer to a multipart body without a boundary, among other broken forms.
        raise BadRequest(f"the form cannot be read: {error}") from None
    fields = dict(request.query)
    fields.update({name: value for name, value in form.items() if isinstance(value, str)})
    return fields


async def _site(request: web.Request, key: str) -> Site:
    site = await request.app[MODERATION].site_for_api_key(key)
    if site is None:
        raise akismet.InvalidKey("Invalid key")
    return site


@routes.post("/1.1/verify-key")
@_akismet_operation(
    "Akismet's verify-key: `valid` when the key is a site's api key, else `invalid`",
    body=VERIFY_FIELDS,
)
@error_shape(akismet_error)
async def verify_key(request: web.Request) -> web.Response:
    key = akismet.verify_key_fields(await _fields(request))
    await _site(request, key)
    return _text(akismet.VALID)


@routes.post("/1.1/comment-check")
@_akismet_operation(
    "Akismet's comment-check: `true` when the site's policy stops the comment, else "
    "`false`; the comment is moderated and stored like an intake comment unless is_test=1"
)
@error_shape(akismet_error)
async def comment_check(request: web.Request) -> web.Response:
    checked = akismet.call(await _fields(request))
    site = await _site(request, checked.api_key)
    guid = akismet.comment_id(checked)
    trigger = akismet.test_trigger(checked)
    if trigger is not None:
        return _text(trigger, {akismet.GUID: guid})
    if akismet.honeypot_filled(checked):
        return _text(akismet.SPAM, {akismet.GUID: guid, akismet.PRO_TIP: akismet.DISCARD})
    if not checked.content.strip():
        return _text(akismet.HAM, {akismet.GUID: guid})  # no text, nothing the model can judge
    submission = akismet.submission(checked)
    moderation = request.app[MODERATION]
    if checked.is_test:
        verdict, scored = await moderation.assess(site.id, submission.text)
        return _answer(verdict.state, scored.scores, guid)
    result = await moderation.ingest(site.id, submission)
    if result.created:
        request.app[METRICS].observe_verdict(result.comment.state.value)
    comment = result.comment
    return _answer(comment.state, comment.scores, comment.id)


def _answer(state: State, scores: Mapping[str, float], guid: str) -> web.Response:
    headers = {akismet.GUID: guid}
    if akismet.is_blatant(state, scores):
        headers[akismet.PRO_TIP] = akismet.DISCARD
    return _text(akismet.answer(state), headers)


async def _submit(request: web.Request, label: int, source: str) -> web.Response:
    checked = akismet.call(await _fields(request))
    site = await _site(request, checked.api_key)
    if not checked.is_test and checked.content.strip():
        submission = akismet.submission(checked)
        await request.app[LABELS].record(
            site.id,
            submission.text,
            {policy.SPAM_LABEL: label},
            source,
            request.app[MODERATION].scorer.model_version,
            comment_id=submission.id,
        )
    return _text(akismet.THANKS)


@routes.post("/1.1/submit-spam")
@_akismet_operation("Akismet's submit-spam: the comment is stored as a spam training label")
@error_shape(akismet_error)
async def submit_spam(request: web.Request) -> web.Response:
    return await _submit(request, 1, "akismet.submit-spam")


@routes.post("/1.1/submit-ham")
@_akismet_operation("Akismet's submit-ham: the comment is stored as a not-spam training label")
@error_shape(akismet_error)
async def submit_ham(request: web.Request) -> web.Response:
    return await _submit(request, 0, "akismet.submit-ham")
