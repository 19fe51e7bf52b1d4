"""Coral Talk's GraphQL API, the few operations civility needs, with one answer type.

A moderator's decision in civility reaches Coral as ``approveComment`` or ``rejectComment``
(both take the comment's id and the revision being decided); a webhook that names only a
comment id is completed with the ``comment`` query. Requests carry the site's Coral access
token as a bearer token. A GraphQL error comes back with HTTP 200 and an ``errors`` list: that
is a failed attempt like a 5xx, so the worker retries it and finally dead-letters it.
"""

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from service.delivery import (
    ERROR_TEXT_LIMIT,
    USER_AGENT,
    Outcome,
    failure_text,
    status_text,
)
from service.errors import UpstreamUnavailable
from service.store.records import SiteRecord

TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 1 << 20
"""Coral answers these operations in a few hundred bytes. Read whole, an answer that never ends
would fill the worker's memory for as long as the timeout lets it run."""
TOO_LONG = "the answer is longer than 1 MiB"
NOT_JSON = "the answer is not JSON"
NO_DATA = "the answer is neither GraphQL data nor GraphQL errors"

COMMENT_QUERY = (
    "query CivilityComment($id: ID!) { comment(id: $id) { id body status "
    "revision { id } author { id } story { id } parent { id } } }"
)
APPROVE = (
    "mutation CivilityApprove($input: ApproveCommentInput!) { approveComment(input: $input) "
    "{ comment { id status } clientMutationId } }"
)
REJECT = (
    "mutation CivilityReject($input: RejectCommentInput!) { rejectComment(input: $input) "
    "{ comment { id status } clientMutationId } }"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    token: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class CoralComment:
    """What the ``comment`` query tells about one comment."""

    id: str
    body: str
    revision_id: str
    author_id: str
    story_id: str
    parent_id: str | None
    status: str
    """Coral's status of the comment now (``APPROVED``, ``REJECTED``, ``PREMOD``, ...)."""


async def execute(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    query: str,
    variables: dict[str, Any],
) -> tuple[Outcome, dict[str, Any] | None]:
    """Run one operation; the outcome says whether it succeeded, with its ``data`` if it did."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {endpoint.token}",
    }
    timeout = aiohttp.ClientTimeout(total=endpoint.timeout_seconds)
    try:
        async with session.post(
            endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            if not 200 <= response.status < 300:
                return Outcome(
                    delivered=False,
                    status=response.status,
                    error=status_text(response.status),
                    retry_after=response.headers.get("Retry-After"),
                ), None
            raw = await _bounded_body(response)
            if raw is None:
                return Outcome(delivered=False, status=response.status, error=TOO_LONG), None
    except TimeoutError:
        return Outcome(
            delivered=False, error=f"timed out after {endpoint.timeout_seconds:g} s"
        ), None
    except (aiohttp.ClientError, ValueError) as error:
        return Outcome(delivered=False, error=failure_text(error)), None
    try:
        answer = json.loads(raw)
    except ValueError:
        return Outcome(False, response.status, NOT_JSON), None
    if not isinstance(answer, dict) or answer.get("errors") or not answer.get("data"):
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if not isinstance(errors, list):
            # Whatever else the URL answered is not shown: only GraphQL's own error messages.
            return Outcome(False, response.status, NO_DATA), None
        messages = "; ".join(
            str(item.get("message", item)) if isinstance(item, dict) else str(item)
            for item in errors
        )
        return Outcome(False, response.status, f"GraphQL: {messages}"[:ERROR_TEXT_LIMIT]), None
    return Outcome(delivered=True, status=response.status), answer["data"]


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The answer's body; None once it passes ``MAX_ANSWER_BYTES`` (the rest is never read)."""
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            return None
    return bytes(body)


async def decide(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    approve: bool,
    comment_id: str,
    revision_id: str,
    mutation_id: str,
) -> Outcome:
    """``approveComment`` or ``rejectComment`` of one revision; ``mutation_id`` (the event id)
    lets Coral's logs tie a retry to its first attempt."""
    variables = {
        "input": {
            "commentID": comment_id,
            "commentRevisionID": revision_id,
            "clientMutationId": mutation_id,
        }
    }
    outcome, _ = await execute(session, endpoint, APPROVE if approve else REJECT, variables)
    return outcome


async def comment(
    session: aiohttp.ClientSession, endpoint: Endpoint, comment_id: str
) -> CoralComment | None:
    """The comment as Coral has it; None when Coral does not know it. Raises
    ``UpstreamUnavailable`` when Coral did not answer (unreachable, refused, an error)."""
    outcome, data = await execute(session, endpoint, COMMENT_QUERY, {"id": comment_id})
    if not outcome.delivered:
        raise UpstreamUnavailable(f"Coral's GraphQL API did not answer: {outcome.error}")
    found = (data or {}).get("comment")
    if not isinstance(found, dict):
        return None
    parent = found.get("parent") or {}
    return CoralComment(
        id=str(found["id"]),
        body=str(found.get("body") or ""),
        revision_id=str((found.get("revision") or {}).get("id") or ""),
        author_id=str((found.get("author") or {}).get("id") or ""),
        story_id=str((found.get("story") or {}).get("id") or ""),
        parent_id=str(parent["id"]) if parent.get("id") else None,
        status=str(found.get("status") or ""),
    )


def endpoint_of(record: SiteRecord, timeout_seconds: float = TIMEOUT_SECONDS) -> Endpoint | None:
    """The site's Coral GraphQL endpoint, when both its URL and access token are set."""
    if record.coral_graphql_url is None or record.coral_access_token is None:
        return None
    return Endpoint(record.coral_graphql_url, record.coral_access_token, timeout_seconds)
