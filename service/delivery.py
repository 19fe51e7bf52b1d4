"""One webhook delivery over HTTP: the signed request, and what its outcome means.

Only a 2xx answer counts as delivered. Any other status (redirects are not followed), a timeout
or a connection error is a failure the caller may retry; nothing here raises for those.
"""

import email.utils
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from typing import Any

import aiohttp

from service import signatures
from service.times import iso_from_ms
from service.transitions import EVENT_TYPES, REPORTED_EVENT_TYPE

USER_AGENT = "civility-webhooks/1"
# Enough of a connection error to tell an operator what went wrong, no more.
ERROR_TEXT_LIMIT = 200
# ASCII digits only: str.isdigit() also accepts "²", which float() refuses.
_SECONDS = re.compile(r"[0-9]{1,9}")


# The body of every webhook, as ``payload`` builds it; served in the OpenAPI document.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "site", "comment", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "Event id: the same on every retry"},
        "type": {"type": "string", "enum": [*EVENT_TYPES.values(), REPORTED_EVENT_TYPE]},
        "site": {"type": "string"},
        "comment": {
            "type": "object",
            "required": ["id", "article_id", "state", "reasons", "decided_by", "version"],
            "properties": {
                "id": {"type": "string"},
                "article_id": {"type": "string"},
                "state": {"type": "string"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "decided_by": {
                    "type": "string",
                    "description": "Who made the change: auto:<model>, a moderator's id, admin, "
                    "or readers (comment.reported)",
                },
                "version": {"type": "integer", "description": "Higher is newer"},
            },
        },
        "created_at": {"type": "string", "format": "date-time"},
    },
}


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    """The answer's ``Retry-After`` as sent: ``retry_after_seconds`` reads it by the caller's
    clock."""
    final: bool = False
    """Not delivered, and no later attempt can be: dead-lettered at once with ``error``, rather
    than retried for a day to the same end, and holding back none of the comment's later
    events, which would otherwise wait behind it for ever."""


def payload(site: str, record: Mapping[str, str]) -> bytes:
    """The event's JSON body, built from its delivery record (the same bytes on every attempt)."""
    body = {
        "id": record["id"],
        "type": record["type"],
        "site": site,
        "comment": {
            "id": record["comment_id"],
            "article_id": record["article_id"],
            "state": record["comment_state"],
            "reasons": json.loads(record["reasons"]),
            "decided_by": record["decided_by"],
            "version": int(record["version"]),
        },
        "created_at": iso_from_ms(int(record["created_at"])),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def failure_text(error: Exception) -> str:
    """What ``last_error`` says of a request that got no HTTP answer."""
    if isinstance(error, aiohttp.ClientResponseError):
        # What aiohttp could not parse is quoted in its message: the receiver's bytes, which
        # last_error never shows (as for a body).
        return f"{type(error).__name__}: not a valid HTTP response"
    return f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT]


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from ``now`` (seconds since the epoch): its seconds form, or
    its HTTP-date form (RFC 9110 section 10.2.3, any of the three date formats) counted from
    ``now``. None when there is none to honour: absent, unreadable, or a date not after ``now``."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime's form, and -0000: both are GMT in HTTP
        when = when.replace(tzinfo=UTC)
    ahead = when.timestamp() - now
    return ahead if ahead > 0 else None


def status_text(status: int) -> str:
    """What ``last_error`` says of a non-2xx answer: the status and its standard phrase only.
    The body of whatever the URL points at is no business of the moderators who read it."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {status} {phrase}".strip()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    secrets: Sequence[str],
    body: bytes,
    timeout_seconds: float,
    now: float,
) -> Outcome:
    """POST ``body`` to ``url`` signed with each of ``secrets`` at ``now`` (seconds since the
    epoch, by the caller's clock); classify what happened."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signatures.HEADER: signatures.sign(secrets, body, int(now)),
    }
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                return Outcome(delivered=True, status=response.status)
            return Outcome(
                delivered=False,
                status=response.status,
                error=status_text(response.status),
                retry_after=response.headers.get("Retry-After"),
            )
    except TimeoutError:
        return Outcome(delivered=False, error=f"timed out after {timeout_seconds:g} s")
    except (aiohttp.ClientError, ValueError) as error:
        # ValueError: a URL or header aiohttp cannot encode fails like a refused connection, so
        # the attempt is counted and backs off instead of being retried at every lease expiry.
        return Outcome(delivered=False, error=failure_text(error))
