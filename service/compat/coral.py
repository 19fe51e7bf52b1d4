"""Coral Talk's external moderation phase: its signed request in, its phase result out.

Coral signs the raw body with each of the phase's active signing secrets and sends
``X-Coral-Signature: sha256=<hex>[,sha256=<hex>...]`` (no timestamp). The request names the
comment's story, author and parent with Coral's ids, but not the comment itself (unless a newer
Coral sends ``comment.id``): its id here is derived from those ids and the text, so a repeated
request finds the stored comment. The answer is Coral's ``ExternalModerationResponse``: nothing
(204) when the comment may be published, else a ``status`` and, for toxic or spam verdicts, a
``FLAG`` action with the reason Coral knows.
"""

import hashlib
import hmac
import html
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from classifier.normalize import is_blank
from service.compat.ids import digest, external_id
from service.domain import MAX_TEXT, MAX_URL, Comment, Reason, State, Submission
from service.errors import Unauthorized

SIGNATURE_HEADER = "X-Coral-Signature"
ACTOR = "coral"
"""Who decided, in a comment's history, when a moderator decided in Coral."""
SCHEME = "sha256"
PHASE_MAX_BODY_BYTES = 1024 * 1024
"""The phase reads bodies up to this (or ``CIVILITY_MAX_BODY_BYTES`` when larger): a comment
longer than intake takes must still be answered, held, once its signature is checked on every
byte, since Coral publishes a comment whose phase fails. Coral's own API reads a new comment's
request up to 100 KB (express's default), and its HTML at most five times that (``&amp;``);
a body past the bound cannot be verified without reading it all, so it is refused with 413."""

# Coral's COMMENT_STATUS values and the flag reasons its response schema accepts.
APPROVED = "APPROVED"
REJECTED = "REJECTED"
PREMOD = "PREMOD"
SYSTEM_WITHHELD = "SYSTEM_WITHHELD"
FLAG = "FLAG"
DETECTED_TOXIC = "COMMENT_DETECTED_TOXIC"
DETECTED_SPAM = "COMMENT_DETECTED_SPAM"

FLAGS: dict[Reason, str] = {
    Reason.TOXIC: DETECTED_TOXIC,
    Reason.BANNED_WORD: DETECTED_TOXIC,
    Reason.SUSPECT_WORD: DETECTED_TOXIC,
    Reason.SPAM: DETECTED_SPAM,
    Reason.LINKS: DETECTED_SPAM,
    Reason.DUPLICATE: DETECTED_SPAM,
    Reason.FLOOD: DETECTED_SPAM,
}
"""The flag each rule raises in Coral. Coral's phase accepts only these two flag reasons (any
other makes it drop the whole answer and publish), so each content rule names the nearer one;
the rules about the author or the article (pre-moderation, new or pre-moderated author,
language) are said by the status alone."""
# A hold for these reasons alone is pre-moderation; any other hold the system found a problem.
_PREMOD_REASONS = {Reason.PREMOD.value, Reason.NEW_AUTHOR.value, Reason.AUTHOR_PREMOD.value}

WEBHOOK_EVENTS = (
    "COMMENT_CREATED",
    "COMMENT_REPLY_CREATED",
    "COMMENT_ENTERED_MODERATION_QUEUE",
    "COMMENT_LEFT_MODERATION_QUEUE",
)
"""The webhook events that name a comment; Coral sends others (``STORY_CREATED``) too."""
LEFT_QUEUE = "COMMENT_LEFT_MODERATION_QUEUE"


class _Part(BaseModel):
    # Coral may add fields; a phase that refused them would silently stop moderating.
    model_config = ConfigDict(frozen=True, extra="ignore")


class CoralComment(_Part):
    # No length bound here: Coral publishes whatever a phase refuses to answer, so a comment too
    # long to moderate must still get an answer (see ``too_long``).
    body: str
    parent_id: str | None = Field(default=None, alias="parentID", max_length=1_024)
    id: str | None = Field(default=None, max_length=1_024)


class CoralAuthor(_Part):
    id: str = Field(min_length=1, max_length=1_024)
    role: str | None = Field(default=None, max_length=64)


class CoralStory(_Part):
    id: str = Field(min_length=1, max_length=1_024)
    url: str | None = None  # dropped below when it is no usable link


class CoralSite(_Part):
    id: str = Field(min_length=1, max_length=1_024)


class ModerationRequest(_Part):
    """Coral's ``ExternalModerationRequest``."""

    action: Literal["NEW", "EDIT"]
    comment: CoralComment
    author: CoralAuthor
    story: CoralStory
    site: CoralSite
    tenant_id: str = Field(alias="tenantID", min_length=1, max_length=1_024)
    tenant_domain: str = Field(alias="tenantDomain", max_length=1_024)


def verify(
    header: str | None, raw_body: bytes, secret: str | None, setting: str = "signing_secret"
) -> None:
    """Accept the request when any ``sha256=`` signature in the header is the body's HMAC-SHA256
    with the site's secret (Coral sends several while it rotates its own); ``setting`` names the
    site setting that holds that secret."""
    if secret is None:
        what = "signing secret" if setting == "signing_secret" else "webhook secret"
        raise Unauthorized(
            f"no Coral {what} is set for this site: set coral.{setting} "
            "with PATCH /v1/sites/{site}"
        )
    if not header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header")
    offered = [
        value.strip()
        for scheme, _, value in (item.strip().partition("=") for item in header.split(","))
        if scheme == SCHEME
    ]
    if not offered:
        raise Unauthorized(f"{SIGNATURE_HEADER} has no {SCHEME}= signature")
    expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    # Every offered value is compared, so the time taken does not depend on which one matched.
    matched = [
        hmac.compare_digest(expected.encode(), value.encode("utf-8", "surrogateescape"))
        for value in offered
    ]
    if not any(matched):
        raise Unauthorized(f"{SIGNATURE_HEADER} does not match the body")


_FLAG_CODES = {reason.value for reason in FLAGS}


class WebhookData(_Part):
    comment_id: str | None = Field(default=None, alias="commentID", max_length=1_024)
    site_id: str | None = Field(default=None, alias="siteID", max_length=1_024)
    status: str | None = Field(default=None, max_length=64)
    queue: str | None = Field(default=None, max_length=64)


class WebhookEvent(_Part):
    """Coral's webhook body: ``{id, type, data, createdAt, tenantID, tenantDomain}``."""

    id: str = Field(min_length=1, max_length=1_024)
    type: str = Field(min_length=1, max_length=128)
    data: WebhookData
    tenant_id: str | None = Field(default=None, alias="tenantID", max_length=1_024)
    created_at: str | None = Field(default=None, alias="createdAt", max_length=64)

    def created_ms(self) -> int | None:
        """When Coral made the change (by Coral's clock); None when it does not say."""
        if not self.created_at:
            return None
        try:
            moment = datetime.fromisoformat(self.created_at)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)


def thread_of(request: ModerationRequest) -> tuple[str, str, str | None]:
    """Story, author and parent: where an author's EDIT without ids finds the comment."""
    return request.story.id, request.author.id, request.comment.parent_id


def comment_id(request: ModerationRequest) -> str:
    """Coral's comment id when it sends one, else one derived from its other ids and the text."""
    if request.comment.id:
        return external_id(request.comment.id, "coral")
    return derived_comment_id(
        request.tenant_id,
        request.site.id,
        request.story.id,
        request.author.id,
        request.comment.parent_id,
        request.comment.body,
    )


def derived_comment_id(
    tenant: str, site: str, story: str, author: str, parent: str | None, body: str
) -> str:
    """The id of a comment whose phase request named no id of its own: from where it was
    written, by whom, and its text (which a webhook's event and Coral's GraphQL also give)."""
    return f"coral-{digest(tenant, site, story, author, parent or '', body)[:40]}"


# Coral's getHTMLPlainText: a line break before each closing list item, list or quote, before a
# closing paragraph or division another element follows, and before a <br> that does not end one.
_LINE_BREAK_BEFORE = re.compile(
    r"(</(?:ul|li|blockquote)>|</(?:div|p)>\s*<[^/]|<br>(?!\s*</(?:div|p|li|blockquote)))"
)
# A tag opens as HTML opens one (a "<" before a letter, "/", "!" or "?"; any other "<" is text)
# and ends at the first ">" outside a quoted attribute value, which Coral's serializer leaves
# unescaped, as browsers and Coral's striptags read it; one left open runs to the end, as there.
# Possessive, and matching wherever it starts, it reads a text once: a long run of "<" too.
_TAG = re.compile(r"""<[a-zA-Z/!?](?:[^>"']++|"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))*+(?:>|\Z)""")


def _without_tags(text: str) -> str:
    """``text`` with its tags dropped, its entities left as they are."""
    return _TAG.sub("", text)


def plain_text(body: str) -> str:
    """A comment's stored HTML (what Coral's GraphQL API gives) as a browser's getHTMLPlainText
    reads it: tags dropped, entities decoded, trimmed."""
    marked = _LINE_BREAK_BEFORE.sub(lambda found: "\n" + found.group(1), body)
    return html.unescape(_without_tags(marked)).strip()


def text_of(request: ModerationRequest) -> str:
    """The comment's text as civility stores and scores it: what Coral's phase sent read as the
    HTML it is or was stripped from (its tags, left in HTML format, dropped with their line
    breaks; its entities, left in Text format too, decoded once), as ``plain_text`` reads
    Coral's HTML. Its id and its link keep the body as sent, which is what a webhook's text
    is compared with."""
    return plain_text(request.comment.body)


def phase_texts(body: str) -> list[str]:
    """The texts a phase may have been sent for a comment whose stored HTML is ``body``, each
    once: in Text format, Coral's server strips the tags with striptags, which leaves the
    entities as they are, after getHTMLPlainText's line breaks and with the end trimmed (or, in
    Coral versions before getHTMLPlainText, alone); in HTML format, the HTML itself; and the
    text with its entities decoded."""
    marked = _LINE_BREAK_BEFORE.sub(lambda found: "\n" + found.group(1), body)
    stripped = (_without_tags(marked).rstrip(), _without_tags(body), body, plain_text(body))
    return list(dict.fromkeys(stripped))


def text_digest(text: str) -> str:
    """What a link keeps of the text Coral's phase sent: enough to know its revision again."""
    return digest(text)[:40]


def reads_as(text: str | None, body: str) -> bool:
    """Whether Coral's stored HTML ``body`` is the text whose digest is ``text`` (any text a
    phase may have been sent for it, ``phase_texts``); an unknown text matches any."""
    return text is None or text in {text_digest(sent) for sent in phase_texts(body)}


def too_long(request: ModerationRequest) -> dict[str, Any] | None:
    """Coral's answer for a comment longer than civility moderates: withheld for a human."""
    # The text is never longer than the body it is read from: most bodies need no reading here.
    if len(request.comment.body) > MAX_TEXT and len(text_of(request)) > MAX_TEXT:
        return {"status": SYSTEM_WITHHELD}
    return None


def submission(request: ModerationRequest, known_id: str | None = None) -> Submission | None:
    """The intake body for Coral's comment (``known_id``: the comment an EDIT changes); None
    when there is no text to moderate."""
    text = text_of(request)
    if is_blank(text):
        return None
    url = request.story.url
    body: dict[str, Any] = {
        "id": known_id or comment_id(request),
        "article": {
            "id": article_id(request),
            "url": url
            if url and len(url) <= MAX_URL and url.startswith(("http://", "https://"))
            else None,
        },
        "parent_id": (
            external_id(request.comment.parent_id, "coral") if request.comment.parent_id else None
        ),
        "author": {"id": author_id(request), "role": request.author.role},
        "text": text,
    }
    try:
        return Submission.model_validate(body)
    except ValidationError:
        # Only the story url can still fail (bad characters): drop it rather than the comment.
        body["article"]["url"] = None
        return Submission.model_validate(body)


def article_id(request: ModerationRequest) -> str:
    return external_id(request.story.id, "story")


def author_id(request: ModerationRequest) -> str:
    return external_id(request.author.id, "user")


def response(comment: Comment) -> dict[str, Any] | None:
    """Coral's ExternalModerationResponse for our verdict; None means answer 204."""
    return verdict_response(comment.state, comment.reasons)


def verdict_response(state: State, reasons: tuple[str, ...]) -> dict[str, Any] | None:
    """Coral's ExternalModerationResponse for a state and its reasons; None means answer 204."""
    if state is State.APPROVED:
        return None
    flagged = {FLAGS[Reason(code)] for code in reasons if code in _FLAG_CODES}
    actions = [
        {"actionType": FLAG, "reason": reason}
        for reason in (DETECTED_TOXIC, DETECTED_SPAM)
        if reason in flagged
    ]
    if state is State.PENDING:
        status = PREMOD if set(reasons) <= _PREMOD_REASONS else SYSTEM_WITHHELD
    else:
        status = REJECTED
    body: dict[str, Any] = {"status": status}
    if actions:
        body["actions"] = actions
    return body
