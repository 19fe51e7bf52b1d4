# The names follow HTTP status phrases (as the API contract spells them), not an "Error" suffix.
# ruff: noqa: N818
"""The domain's exception hierarchy.

Every failure a caller can act on is a ``CivilityError`` carrying its HTTP ``status``, a stable
machine-readable ``code``, a human ``message`` and optional structured ``details``. The web layer
turns any of them into ``{"error": {"code", "message", "details"}}`` in one place, so domain code
raises these and never builds responses. An error that knows when trying again makes sense sets
``retry_after_seconds``, which that one place sends as the ``Retry-After`` header.
"""

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import ValidationError


class CivilityError(Exception):
    """Base of every error the API reports to its callers."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "internal error"
    retry_after_seconds: int | None = None

    def __init__(self, message: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(CivilityError):
    """The request is malformed: invalid JSON, a bad cursor, an impossible combination."""

    status = 400
    code = "bad_request"
    default_message = "bad request"


class Unauthorized(CivilityError):
    """Missing, wrong or stale credentials (signature, api key, bearer token)."""

    status = 401
    code = "unauthorized"
    default_message = "missing or invalid credentials"


class Forbidden(CivilityError):
    """Valid credentials that do not allow this action."""

    status = 403
    code = "forbidden"
    default_message = "forbidden"


class NotFound(CivilityError):
    """The site, comment, article or moderator does not exist (or is not visible to the caller)."""

    status = 404
    code = "not_found"
    default_message = "not found"


class SiteNotFound(NotFound):
    """The site named in the path does not exist (or is not the caller's)."""

    def __init__(self, site_id: str) -> None:
        super().__init__(f"site {site_id!r} not found")


class Conflict(CivilityError):
    """The request conflicts with the current state of the resource."""

    status = 409
    code = "conflict"
    default_message = "conflict"


class AlreadyExists(Conflict):
    """A resource with this id already exists (for example a site)."""

    code = "already_exists"
    default_message = "already exists"


class SiteBeingDeleted(AlreadyExists):
    """A site of this id was deleted and its data is still being purged."""

    def __init__(self, site_id: str) -> None:
        super().__init__(f"site {site_id!r} is still being deleted; try again later")


class VersionConflict(Conflict):
    """An optimistic version check failed: someone changed the comment since it was read."""

    code = "version_conflict"
    default_message = "the comment was changed since this version"


class ClaimConflict(Conflict):
    """Another moderator holds the lease on this comment."""

    code = "claim_conflict"
    default_message = "the comment is claimed by another moderator"


class InvalidTransition(Conflict):
    """The comment's current state does not allow this change."""

    code = "invalid_transition"
    default_message = "this change is not allowed from the comment's current state"


class IdempotencyInProgress(Conflict):
    """A request with this Idempotency-Key is still running; retry once it has answered."""

    code = "idempotency_in_progress"
    default_message = "a request with this Idempotency-Key is still in progress, retry later"
    # Most requests answer within a second; a client told when tries again then, not at once.
    retry_after_seconds = 1


class PayloadTooLarge(CivilityError):
    status = 413
    code = "payload_too_large"
    default_message = "request body too large"


class UnsupportedMediaType(CivilityError):
    status = 415
    code = "unsupported_media_type"
    default_message = "request body must be application/json"


class ValidationFailed(CivilityError):
    """Field errors; ``details`` lists ``{"field", "message"}`` for every failing field."""

    status = 422
    code = "validation_failed"
    default_message = "request validation failed"

    def __init__(self, errors: Iterable[tuple[str, str]], message: str | None = None) -> None:
        details = [{"field": field, "message": text} for field, text in errors]
        super().__init__(message, details)

    @classmethod
    def from_pydantic(cls, error: ValidationError, prefix: str = "") -> "ValidationFailed":
        """Every failing field of a pydantic error, dotted paths (``author.id``, ``items.0.id``)."""
        fields = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) for part in item["loc"])
            field = f"{prefix}.{path}" if prefix and path else (prefix or path)
            fields.append((field or "body", item["msg"]))
        return cls(fields)


class IdempotencyKeyReused(CivilityError):
    """The Idempotency-Key was first sent with another body: a key names one request."""

    status = 422
    code = "idempotency_key_reused"
    default_message = "this Idempotency-Key was used with another request body"


class RateLimited(CivilityError):
    status = 429
    code = "rate_limited"
    default_message = "too many requests"


class StoreUnavailable(CivilityError):
    """Redis did not answer; nothing was written (each write is one script: whole or not at all)."""

    status = 503
    code = "store_unavailable"
    default_message = "the store is unavailable, retry later"
    # A restart or a failover ends in seconds, and the service's own processes try Redis again
    # after a second: a caller told so neither waits longer nor hammers at once.
    retry_after_seconds = 1

    def __init__(
        self, message: str | None = None, details: Any = None, *, said: str | None = None
    ) -> None:
        super().__init__(message, details)
        self.said = said

    @property
    def why(self) -> str:
        """What the Redis client met (down, full, unable to persist, failing over), for the log;
        the caller is told no more than the code. ``said``, when given, is Redis's whole reply
        (``service.store.scripts.store_unavailable``): the message of the error it caused
        lacks the reply's first word (``OOM``, ``READONLY``) where the client has a class of its
        own for it."""
        if self.said is not None:
            return self.said
        return str(self.__cause__) if self.__cause__ is not None else "no cause given"


class UpstreamUnavailable(CivilityError):
    """A service civility asks on the request's behalf (a site's Coral) did not answer; nothing
    was changed, and the sender should try again."""

    status = 503
    code = "upstream_unavailable"
    default_message = "a service this request needs did not answer, retry later"


class ErasureRunning(CivilityError):
    """The author's erasure is running, or ended less than a minute ago (its marker, which
    ``service/admin_store.py`` keeps): a comment or report of theirs stored now could land where
    the erasure has already looked and outlive it, so nothing is written. Sent again once the
    marker is gone, it is new data and kept."""

    status = 503
    code = "erasure_running"
    default_message = "the author's data is being erased; send this again after Retry-After"

    def __init__(self, remaining_ms: int) -> None:
        super().__init__()
        self.retry_after_seconds = max(1, -(-remaining_ms // 1000))


class StreamsBusy(CivilityError):
    """This API process holds as many event streams open as it may (CIVILITY_EVENT_STREAMS_MAX),
    as many for the stream's site as one site may (CIVILITY_EVENT_STREAMS_PER_SITE) or as many
    for its moderator as one moderator may (CIVILITY_EVENT_STREAMS_PER_MODERATOR): each keeps a
    Redis connection, and the rest are for every other request, site and moderator."""

    status = 503
    code = "streams_busy"
    default_message = "too many event streams are open on this server, retry later"
    # Places free as consoles close: soon enough to try again, not so soon that refused consoles
    # keep the process busy answering them.
    retry_after_seconds = 5
