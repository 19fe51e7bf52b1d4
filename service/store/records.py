"""The store's own records: a site with its secrets, the rules its scripts apply, the writes."""

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.domain import Author, AuthorStatus, Policy, Report, Site, State

DAY_MS = 86_400_000
_DEFAULT_POLICY = Policy()


class ApiKeyTakenError(Exception):
    """A new site's api key is already another site's (a new key must be drawn)."""


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """A site as stored, secrets included; only the domain layer sees this."""

    site: Site
    webhook_secret: str
    previous_secret: str | None
    previous_valid_until_ms: int
    api_key_hash: str
    coral_signing_secret: str | None = None
    coral_webhook_secret: str | None = None
    coral_graphql_url: str | None = None
    coral_access_token: str | None = None
    stored_policy: str = ""
    """The policy exactly as stored, which a policy update must still find to write."""
    previous_api_key_hash: str | None = None
    previous_api_key_valid_until_ms: int = 0
    previous_secrets: tuple[tuple[str, int], ...] = ()
    """Every rotated-out secret still in its grace period, oldest first, with its deadline."""
    previous_api_keys: tuple[tuple[str, int], ...] = ()
    """Every rotated-out api key's sha256 still in its grace period, oldest first, with its
    deadline."""
    created_by_request: str | None = None
    """The digest of the keyed request that created the site: its kept answer (which holds the
    site's first credentials) ends with the site."""

    def api_key_matches(self, key_hash: str, now_ms: int) -> bool:
        """``key_hash`` is the site's api key, or one it replaced while that one's own grace
        lasts."""
        previous = self.previous_api_keys or (
            ((self.previous_api_key_hash, self.previous_api_key_valid_until_ms),)
            if self.previous_api_key_hash
            else ()
        )
        # Every candidate is compared, so the time taken says nothing of which one matched.
        matches = [secrets.compare_digest(self.api_key_hash, key_hash)] + [
            secrets.compare_digest(old_hash, key_hash) and now_ms < until_ms
            for old_hash, until_ms in previous
        ]
        return any(matches)

    def valid_secrets(self, now_ms: int) -> list[str]:
        """The current secret, then the previous ones whose own grace has not ended, newest
        first."""
        previous = self.previous_secrets or (
            ((self.previous_secret, self.previous_valid_until_ms),) if self.previous_secret else ()
        )
        return [self.webhook_secret] + [
            secret for secret, until_ms in reversed(previous) if now_ms < until_ms
        ]


@dataclass(frozen=True, slots=True)
class SiteRules:
    """The parts of a site's policy the state-change scripts apply themselves: how long decided
    comments are kept, and the recent-rejection rule for authors."""

    retention_ms: int = _DEFAULT_POLICY.retention_days * DAY_MS
    recent_window_ms: int = _DEFAULT_POLICY.author_recent_days * DAY_MS
    premod_rejection_rate: float = _DEFAULT_POLICY.author_premod_rejection_rate
    premod_min_decisions: int = _DEFAULT_POLICY.author_premod_min_decisions

    @classmethod
    def of(cls, policy: Policy) -> "SiteRules":
        return cls(
            retention_ms=policy.retention_days * DAY_MS,
            recent_window_ms=policy.author_recent_days * DAY_MS,
            premod_rejection_rate=policy.author_premod_rejection_rate,
            premod_min_decisions=policy.author_premod_min_decisions,
        )


@dataclass(frozen=True, slots=True)
class AuthorRecord:
    """An author's stored counters and status, its decisions within the recent window, and the
    standing its next comment meets (the status, or premod by the recent-rejection rule)."""

    fields: Mapping[str, str]
    recent_decided: int
    recent_rejected: int
    standing: AuthorStatus


@dataclass(frozen=True, slots=True)
class Observation:
    """The context a verdict is decided for: the ingest script checks it before it writes.

    ``windows_taken`` has one flag per window key of the write, in order: whether another
    comment holds it (the author or address posted within the flood interval, or the same text
    within the duplicate window)."""

    edit: bool = False
    author_status: AuthorStatus = AuthorStatus.ACTIVE
    author_approved: int = 0
    article_closed: bool = False
    article_premod: bool = False
    windows_taken: tuple[bool, ...] = ()

    def signature(self, min_approved: int) -> str:
        """The form the ingest script observes; the new-author rule only needs the threshold."""
        flags = [self.author_approved >= min_approved, self.article_closed, self.article_premod]
        flags += self.windows_taken
        kind = "edit" if self.edit else "new"
        return ",".join([kind, self.author_status.value, *("1" if flag else "0" for flag in flags)])

    @classmethod
    def observed(cls, signature: str, approved: str) -> "Observation":
        kind, status, _, closed, premod, *windows = signature.split(",")
        return cls(
            edit=kind == "edit",
            author_status=AuthorStatus(status),
            author_approved=int(approved),
            article_closed=closed == "1",
            article_premod=premod == "1",
            windows_taken=tuple(flag == "1" for flag in windows),
        )


class StaleContextError(Exception):
    """The ingest script found another context than the verdict assumed, and wrote nothing."""

    def __init__(self, observed: Observation) -> None:
        super().__init__("intake context changed")
        self.observed = observed


@dataclass(frozen=True, slots=True)
class Window:
    """A key set to the comment id for ``ttl_ms`` (flood intervals, duplicate windows).

    ``new_only`` windows are set for a new comment but not for an edit."""

    key: str
    ttl_ms: int
    new_only: bool


@dataclass(frozen=True, slots=True)
class IntakeWrite:
    comment_id: str
    text_hash: str
    article_id: str
    parent_id: str | None
    author: Author
    text: str
    lang: str | None
    state: State
    reasons: Sequence[str]
    scores: Mapping[str, float]
    evidence: Mapping[str, Sequence[tuple[int, int]]]
    model: str
    priority: float
    created_at_ms: int
    now_ms: int
    event_id: str
    event_type: str
    edit_sources: str
    windows: Sequence[Window]
    assumed: Observation
    min_approved: int
    rules: SiteRules = SiteRules()
    second_look: bool = False
    """Queue the comment for the semantic stage if the verdict publishes it."""
    article_title: str | None = None
    article_url: str | None = None
    """The article's title and url as this intake gives them (none: keep the stored ones)."""
    edited_at_ms: int | None = None
    """When the host last edited the text (none: not dated)."""


@dataclass(frozen=True, slots=True)
class DecisionWrite:
    comment_id: str
    target: State
    action: str
    actor: str
    expected_version: int | None
    reasons: Sequence[str]
    note: str | None
    now_ms: int
    event_id: str
    event_type: str
    sources: str
    rules: SiteRules = SiteRules()
    remember_ms: int = 0
    """How long the script remembers ``event_id`` as made: the idempotency window when the id
    came from an Idempotency-Key (a retry finds the decision made after the comment moved on),
    0 for a fresh id."""
    ban_of: str | None = None
    """The banned author, when a ban rejects their held comment: listed among the ban's
    rejections with it."""
    coral_call: tuple[int, str] | None = None
    """A decision of Coral's moderators whose webhook found a call of civility's into Coral in
    flight: that call (the link's ``in_flight`` as read, and the status it sets). Recorded once
    the call has ended, with another status, it is noted in the same step to be carried back
    into Coral (see ``CoralLink.resend_version``)."""


@dataclass(frozen=True, slots=True)
class ReportWrite:
    comment_id: str
    report: Report
    threshold: int
    now_ms: int
    event_id: str
    event_type: str
    sources: str
