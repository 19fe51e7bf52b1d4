"""The bounds and field types the models are built from, and the frozen base they share."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    Strict,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from yarl import URL

from classifier.normalize import is_blank

MAX_ID = 128
MAX_TEXT = 20_000
MAX_NAME = 200
MAX_URL = 2_048
MAX_TITLE = 500
MAX_ARTICLE_TEXT = 100_000
MAX_NOTE = 2_000
MAX_BULK = 100
MAX_PAGE = 100
MAX_CLAIM = 100
MAX_LEASE_SECONDS = 3_600
MAX_WORDS = 1_000

ADMIN_ACTOR = "admin"
"""The actor recorded for what the admin token does (it is also the admin's name)."""

# The request bodies take JSON's own types, as the OpenAPI document names them: left lax, pydantic
# would read "5" or 5.0 as an integer and "true", "yes" or 1 as a boolean, which a client checking
# its requests against the document never sends, so one sending them has a bug to be told of (422).
# A number may be written as an integer (JSON does not tell 1 from 1.0). The adapters' own models
# (Perspective, Coral) keep their platforms' lenience and do not use these.
Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Boolean = Annotated[bool, Strict()]

_DIGITS = re.compile(r"[+-]?[0-9]+")


def _written_in_digits(value: object) -> object:
    # A query string is text, so its integers cannot be strict; left lax, pydantic reads "5.0"
    # as 5, which the bodies' strict integers refuse: a client sending it has a bug to be told of.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing",
            "Input should be an integer written in digits, such as 20: a query string's "
            "integer takes no fraction, exponent or spaces",
        )
    return value


QueryInteger = Annotated[int, BeforeValidator(_written_in_digits)]
"""An integer of a query string: its text, digits with an optional sign, read as a number."""


def _written_as_text(value: object) -> object:
    # Pydantic reads a JSON integer as an IPv4 address (16909060 is 1.2.3.4), where the document
    # names a string.
    if isinstance(value, int):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


IpAddress = Annotated[IPvAnyAddress, BeforeValidator(_written_as_text)]

SiteId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
"""Lower-case letters, digits, ``_`` and ``-``: it is part of URLs and of the Redis hash tag."""

ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=r"^[\x21-\x7e]+$")
]
"""An id chosen by the host site: printable ASCII without spaces."""

Url = Annotated[str, StringConstraints(max_length=MAX_URL, pattern=r"^https?://[^\s]+$")]
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE)]


def _something_to_read(text: str) -> str:
    # Spaces and invisible characters alone would be published as an empty comment, scored as
    # nothing the model has ever read.
    if is_blank(text):
        raise ValueError(
            "must hold a visible character, not only spaces, invisible ones or combining marks"
        )
    return text


# A text of spaces alone is refused (after stripping them, or as nothing to read): the schema
# says so with a pattern asking for one character that is not a space.
VISIBLE = r"\S"

CommentText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT),
    AfterValidator(_something_to_read),
    Field(json_schema_extra={"pattern": VISIBLE}),
]
STORED = {"stored": True}
"""The validation context of what the store gives back: a rule added since it was written does
not make it unreadable."""


def _visible_name(name: str, info: ValidationInfo) -> str:
    # A name of invisible characters would be shown as nobody, where no name shows the id.
    if info.context != STORED:
        _something_to_read(name)
    return name


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME, pattern=VISIBLE),
    AfterValidator(_visible_name),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Probability = Annotated[Number, Field(ge=0.0, le=1.0)]
Word = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=VISIBLE)
]
ModeratorReason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME, pattern=VISIBLE),
]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=1_024)]

# Times are stored as epoch milliseconds and read back as UTC datetimes, which end at year 9999;
# a comment written before 1970 is a client's bug, not history.
EARLIEST_CREATED_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_CREATED_AT = datetime(9999, 1, 1, tzinfo=UTC)


def _storable_moment(moment: datetime) -> datetime:
    if not EARLIEST_CREATED_AT <= moment < LATEST_CREATED_AT:
        raise ValueError(
            f"must be from {EARLIEST_CREATED_AT.date()} to before {LATEST_CREATED_AT.date()} (UTC)"
        )
    return moment


# An RFC 3339 date-time, the form the OpenAPI document names (``format: date-time``) and its
# validators check: "T" (or "t"), seconds and an offset with its colon; pydantic checks the values.
# RFC 3339 (section 5.6) lets an application take a space for the "T", as Python's str(datetime)
# and SQL write it: one space is taken, nothing else loosened.
# A leap second (second 60, which RFC 3339 allows and pydantic does not) is read as the last
# millisecond the store keeps of the second before it, so it sorts after that second and
# before the next minute.
_RFC_3339 = re.compile(
    r"^(?P<minute>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}):(?P<second>\d{2})(\.\d+)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)

# The document's ``format: date-time`` refuses the space and second 60: the forms it takes beside
# it are a pattern exact to the day (Feb 29 only in leap years), so it refuses what the API does.
_DAY = (
    r"(\d{4}-(0[13578]|1[02])-(0[1-9]|[12]\d|3[01])"
    r"|\d{4}-(0[469]|11)-(0[1-9]|[12]\d|30)"
    r"|\d{4}-02-(0[1-9]|1\d|2[0-8])"
    r"|(\d{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)"
)
_OFFSET = r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
_HOUR_MINUTE = r"([01]\d|2[0-3]):[0-5]\d"
_READABLE = rf"^{_DAY}( {_HOUR_MINUTE}:([0-5]\d|60)|[Tt]{_HOUR_MINUTE}:60)(\.\d+)?{_OFFSET}$"
DATE_TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "anyOf": [{"format": "date-time"}, {"pattern": _READABLE}],
    "description": (
        "An RFC 3339 date-time with seconds and the offset with its colon "
        "(2026-11-27T09:00:00Z, 2026-11-27T10:00:00.250+01:00); a single space may stand for "
        "the T (2026-11-27 09:00:00+00:00), as RFC 3339 section 5.6 allows; a leap second "
        "(2016-12-31T23:59:60Z) is read as the last millisecond before the next minute "
        "(2016-12-31T23:59:59.999Z)."
    ),
}
"""The JSON schema of every time the API reads (``CreatedAt``)."""


def _iso_8601(value: object) -> object:
    # Pydantic would read a number, or a string of digits, as seconds or milliseconds since
    # 1970 (a host sending one most likely meant another unit, or another field), and would take
    # a time without seconds, which a client checking the document refuses.
    if isinstance(value, datetime):
        return value
    parts = _RFC_3339.match(value) if isinstance(value, str) else None
    if parts and parts["second"] == "60":
        return f"{parts['minute']}:59.999{parts['offset']}"
    if parts:
        return value
    raise ValueError(NOT_A_DATE_TIME)


NOT_A_DATE_TIME = (
    "must be an ISO 8601 date and time in RFC 3339's form, with seconds and its offset, "
    "like 2026-12-07T09:30:00Z (or a space for the T)"
)


CreatedAt = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_8601),
    AfterValidator(_storable_moment),
    WithJsonSchema(DATE_TIME_SCHEMA, mode="validation"),
]

# Hosts import old comments, so any storable past is theirs to give; a comment or an edit dated
# ahead of the server's clock by more than any clock drift or time zone mistake is a host's bug
# (dated next year, it would sort as the newest for a year, and an edit time there would make
# every later edit look older than it).
MAX_AHEAD = timedelta(days=1)


def _reachable_host(url: str) -> str:
    # Checked here so a typo fails when the site is configured, not at every delivery attempt.
    parsed = URL(url)
    host = parsed.raw_host
    if not host:
        raise ValueError("has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        # They would be sent with every webhook and shown to whoever reads the site.
        raise ValueError("must not carry a user name or password")
    try:
        host.encode("idna")
    except UnicodeError:
        raise ValueError(f"host {host!r} is not a valid host name") from None
    return url


CallbackUrl = Annotated[Url, AfterValidator(_reachable_host)]
SigningSecret = Annotated[
    str, StringConstraints(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")
]
CoralToken = Annotated[
    str, StringConstraints(min_length=16, max_length=4_096, pattern=r"^[\x21-\x7e]+$")
]


class FrozenModel(BaseModel):
    """Every model: immutable, and a field it does not know is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
