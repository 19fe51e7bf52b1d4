"""Akismet's REST API (1.1): form fields in, ``true``/``false``/``valid``/``invalid`` text out.

A ``comment-check`` becomes an intake ``Submission``: Akismet sends no comment, article or author
ids, so they are derived from what it does send (the same call always gives the same ids, so a
retried or re-checked comment is the stored one, not a second one). The answer is ``false`` only
when the site's policy publishes the comment: Akismet's answer has no "held", and a client
publishes a ``false`` at once, so a held comment is answered ``true`` like a rejected or spam one.
"""

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from service.compat.ids import digest, external_id
from service.domain import MAX_TEXT, State, Submission
from service.errors import BadRequest, CivilityError, Unauthorized, ValidationFailed
from service.policy import SPAM_LABEL

SPAM = "true"
HAM = "false"
VALID = "valid"
INVALID = "invalid"
THANKS = "Thanks for making the web a better place."
MAX_FORM_BYTES = 512 * 1024
"""Akismet's routes read forms up to this (or ``CIVILITY_MAX_BODY_BYTES`` when larger): WordPress
sends the comment twice (``comment_content`` and ``POST_comment``) and its server variables, each
byte of a letter outside ASCII written as ``%XX``, so a comment as long as intake takes (20,000
characters, up to four bytes each) needs up to 480,000 bytes and the rest a few thousand."""

DEBUG_HELP = "X-akismet-debug-help"
TOO_LONG = f"comment_content is longer than {MAX_TEXT} characters"
PRO_TIP = "X-akismet-pro-tip"
GUID = "X-akismet-guid"
DISCARD = "discard"

SPAM_TRIGGER_AUTHOR = "akismet-guaranteed-spam"
SPAM_TRIGGER_EMAIL = "akismet-guaranteed-spam@example.com"
HAM_TRIGGER_ROLE = "administrator"
DOCUMENTED_HONEYPOT = "hidden_honeypot_field"
WORDPRESS_HONEYPOT = "POST_ak_hp_textarea"

BLATANT_SPAM_SCORE = 0.98
"""A ``spam`` verdict at least this sure is answered with ``X-akismet-pro-tip: discard``."""

PUBLISHING_NOTHING = frozenset({"signup", "contact-form", "message"})
"""Akismet's ``comment_type`` values of what a site does not publish: the comment policy is not
about them, so a check of one only asks whether it is spam (one without text, as a signup has
none, is not)."""

_MAX_FIELD = 65_536
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_TRUTHY = ("1", "true", "yes")
_NO_PARENT = ("", "0")
# A form's ASCII as a charset must read it, a byte for each character: names, "=", "&",
# percent escapes, and backslashes (no escape codec), in a run longer than a domain's label.
_ASCII_FORM = "blog_charset=%E9&comment_content=a+b&path=C%3A%5C" + "\\u0041\\x41\\" + "x" * 64
UNKNOWN_ARTICLE = "unknown"
# Fields that describe a comment without being needed to moderate it.
_DESCRIPTIVE = frozenset(
    {
        "article.url",
        "author.name",
        "author.ip",
        "author.user_agent",
        "author.role",
        "created_at",
        "lang",
    }
)


class InvalidKey(Unauthorized):
    """Akismet answers a bad key with the body ``invalid`` and the reason in a header."""


@dataclass(frozen=True, slots=True)
class Call:
    """One comment-check, submit-spam or submit-ham request, its required fields checked."""

    api_key: str
    blog: str
    user_ip: str
    fields: Mapping[str, str]

    @property
    def is_test(self) -> bool:
        return self.fields.get("is_test", "").strip().lower() in _TRUTHY

    @property
    def publishes_nothing(self) -> bool:
        return self.fields.get("comment_type", "").strip().lower() in PUBLISHING_NOTHING

    @property
    def content(self) -> str:
        return self.fields.get("comment_content", "")


def form_charset(body: bytes) -> str | None:
    """The charset a form's ``blog_charset`` names, which Akismet reads its fields in, when it
    is not UTF-8; None for UTF-8, none named, one Python does not know (left out, as any detail
    that cannot be used), a codec that is no charset, or one that does not write ASCII as ASCII
    (the form's names, ``=``, ``&`` and percent escapes would not read)."""
    # Latin-1 maps every byte to one character, so the names read whatever the charset.
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    named = next((value.strip() for name, value in pairs if name == "blog_charset"), "")
    try:
        charset = codecs.lookup(named).name if named else "utf-8"
        # A codec of another kind (rot13, hex, unicode_escape, idna) is no charset either.
        ascii_as_ascii = (
            _ASCII_FORM.encode(charset) == _ASCII_FORM.encode()
            and _ASCII_FORM.encode().decode(charset) == _ASCII_FORM
        )
    except (LookupError, ValueError):
        return None
    if charset == "utf-8" or not ascii_as_ascii:
        return None
    return charset


def key_of(fields: Mapping[str, str], *names: str) -> str:
    for name in names:
        if value := fields.get(name, "").strip():
            return value
    raise InvalidKey(f'Empty "{names[0]}" value')


def verify_key_fields(fields: Mapping[str, str]) -> str:
    """The key of a verify-key call (``key``, or ``api_key`` as the 1.1 docs also allow)."""
    key = key_of(fields, "key", "api_key")
    if not fields.get("blog", "").strip():
        raise InvalidKey('Empty "blog" value')
    return key


def call(fields: Mapping[str, str]) -> Call:
    """A comment-check or submit call; a missing field is named as Akismet names it."""
    key = key_of(fields, "api_key", "key")
    for name in ("blog", "user_ip"):
        if not fields.get(name, "").strip():
            raise BadRequest(f"Missing required field: {name}.")
    for name, value in fields.items():
        if len(value) > _MAX_FIELD:
            raise BadRequest(f"Field {name} is longer than {_MAX_FIELD} characters.")
    return Call(key, fields["blog"].strip(), fields["user_ip"].strip(), fields)


def test_trigger(checked: Call) -> str | None:
    """Akismet's documented test answers: ``true`` for the guaranteed-spam author or e-mail,
    ``false`` for an administrator; None for every other comment."""
    author = checked.fields.get("comment_author", "").strip().lower()
    email = checked.fields.get("comment_author_email", "").strip().lower()
    if author == SPAM_TRIGGER_AUTHOR or email == SPAM_TRIGGER_EMAIL:
        return SPAM
    # WordPress sends all of the user's roles, comma-separated ("administrator,super_admin").
    roles = checked.fields.get("user_role", "").lower().split(",")
    if HAM_TRIGGER_ROLE in (role.strip() for role in roles):
        return HAM
    return None


def honeypot_filled(checked: Call) -> bool:
    """The form's hidden field has a value: only bots fill it. Its value comes under the name
    ``honeypot_field_name`` gives, or under ``hidden_honeypot_field`` (the name in Akismet's
    documented example, which many clients send whatever their field is called); WordPress's
    comment form sends its own hidden textarea as ``POST_ak_hp_textarea``."""
    fields = checked.fields
    names = [WORDPRESS_HONEYPOT]
    if name := fields.get("honeypot_field_name", "").strip():
        names += [name, DOCUMENTED_HONEYPOT]
    return any(fields.get(name, "").strip() for name in names)


def comment_id(checked: Call) -> str:
    """The same comment from the same person on the same page, answering the same comment,
    always gets the same id.

    Not the date: WordPress leaves it out of the first check and sends it on a recheck of the
    stored comment, which must find the same comment rather than a duplicate of it. The parent
    only when there is one, so a top-level comment keeps the id it had before replies had theirs:
    the same words answering two comments are two comments (one cannot change its parent)."""
    fields = checked.fields
    parts = [
        checked.blog,
        fields.get("comment_post_ID", ""),
        fields.get("permalink", ""),
        fields.get("comment_author", ""),
        fields.get("comment_author_email", "").lower(),
        checked.user_ip,
        checked.content,
    ]
    parent = fields.get("comment_parent", "").strip()
    if parent not in _NO_PARENT:
        parts.append(parent)
    return f"akismet-{digest(*parts)[:32]}"


def article_id(checked: Call) -> str:
    """The article's id: from the post's id, else its permalink (``unknown`` without either)."""
    fields = checked.fields
    article = fields.get("comment_post_ID", "").strip() or fields.get("permalink", "").strip()
    return external_id(article, "article") if article else UNKNOWN_ARTICLE


def author_id(checked: Call) -> str:
    """The author's id on the blog: by e-mail, else name, else address."""
    fields = checked.fields
    identity = (
        fields.get("comment_author_email", "").strip().lower()
        or fields.get("comment_author", "").strip()
        or checked.user_ip
    )
    return f"akismet-{digest(checked.blog, identity)[:32]}"


def submission(checked: Call) -> Submission:
    """The intake body a comment-check stands for; bad fields are a ``BadRequest`` naming them."""
    fields = checked.fields
    text = checked.content
    permalink = fields.get("permalink", "").strip()
    parent = fields.get("comment_parent", "").strip()
    body: dict[str, Any] = {
        "id": comment_id(checked),
        "article": {
            "id": article_id(checked),
            "url": permalink if permalink.startswith(("http://", "https://")) else None,
        },
        "parent_id": None if parent in _NO_PARENT else external_id(parent, "comment"),
        "author": {
            "id": author_id(checked),
            "name": fields.get("comment_author", "").strip()[:200] or None,
            "email": _email(fields.get("comment_author_email", "")),
            "ip": checked.user_ip,
            "user_agent": fields.get("user_agent", "")[:512] or None,
            "role": fields.get("user_role", "").strip()[:64] or None,
        },
        "text": text,
        "created_at": _created_at(fields.get("comment_date_gmt", "")),
        "lang": _language(fields.get("blog_lang", "")),
    }
    try:
        return Submission.model_validate(body)
    except ValidationError as error:
        failed = [item["field"] for item in ValidationFailed.from_pydantic(error).details]
    if not all(field in _DESCRIPTIVE for field in failed):
        names = ", ".join(_field_name(field) for field in failed)
        raise BadRequest(f"Invalid field(s): {names}.")
    # Akismet never refuses a comment for what a form sent about it ("unknown" as the IP, a
    # permalink with a space, WordPress's zero date): such a detail is left out instead.
    for field in failed:
        *parents, last = field.split(".")
        node = body
        for parent in parents:
            node = node[parent]
        node[last] = None
    return Submission.model_validate(body)


def too_long(checked: Call) -> bool:
    """Whether the comment is longer than intake takes: Akismet refuses none for its length,
    and a client answered anything but its protocol's words asks again, failing the same way."""
    return len(checked.content) > MAX_TEXT


def answer(state: State) -> str:
    """``false`` (publish) only for a published comment; held, rejected and spam stay out."""
    return HAM if state is State.APPROVED else SPAM


def is_blatant(state: State, scores: Mapping[str, float]) -> bool:
    return state is State.SPAM and scores.get(SPAM_LABEL, 0.0) >= BLATANT_SPAM_SCORE


KEY_SITES_COLUMNS = (
    ("site", "Site"),
    ("api_calls", "Total API Calls"),
    ("spam", "Spam"),
    ("ham", "Ham"),
    ("missed_spam", "Missed Spam"),
    ("false_positives", "False Positives"),
    ("is_revoked", "Is Revoked"),
)


def key_sites_csv(month: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """key-sites in its CSV form: a title line, the header, one line per site."""
    lines = [
        f"Active sites for this key during {month} (limit:500, offset: 0, total: {len(rows)})",
        ",".join(title for _, title in KEY_SITES_COLUMNS),
    ]
    for row in rows:
        cells = (
            str(row[name]).lower() if name == "is_revoked" else str(row[name])
            for name, _ in KEY_SITES_COLUMNS
        )
        lines.append(",".join(_csv_cell(cell) for cell in cells))
    return "\n".join(lines) + "\n"


def _csv_cell(value: str) -> str:
    if any(char in value for char in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def stats(counts: Mapping[str, int]) -> dict[str, Any]:
    """get-stats' figures for one month: spam caught, ham passed, and the corrections."""
    checked = counts["spam"] + counts["ham"]
    mistakes = counts["missed_spam"] + counts["false_positives"]
    accuracy = 100.0 if not checked else round(100.0 * max(0, checked - mistakes) / checked, 2)
    return {
        "spam": counts["spam"],
        "ham": counts["ham"],
        "missed_spam": counts["missed_spam"],
        "false_positives": counts["false_positives"],
        "accuracy": accuracy,
    }


def error_text(error: CivilityError) -> tuple[int, str]:
    """Akismet's answer to a failure: a bad key is ``invalid``, a bad request its message, both
    with HTTP 200 as Akismet sends them; an outage keeps its status so clients retry."""
    if isinstance(error, Unauthorized):
        return 200, INVALID
    if error.status < 500 and error.status != 413:
        return 200, error.message
    return error.status, error.message


_FORM_NAMES = {
    "text": "comment_content",
    "author.ip": "user_ip",
    "author.name": "comment_author",
    "created_at": "comment_date_gmt",
    "lang": "blog_lang",
    "parent_id": "comment_parent",
}


def _field_name(field: str) -> str:
    return _FORM_NAMES.get(field, field)


def _created_at(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # WordPress sends "0000-00-00 00:00:00" for no date
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the field is GMT by definition
    return moment.isoformat()


def _email(value: str) -> str | None:
    """The address when it looks like one; Akismet clients send whatever the form held."""
    value = value.strip()
    return value if len(value) <= 254 and _EMAIL.match(value) else None


def _language(value: str) -> str | None:
    first = value.split(",")[0].strip().replace("_", "-")
    return first[:16] or None
