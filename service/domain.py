"""Domain models: the request bodies the API accepts and the objects it returns.

Inputs are frozen pydantic models with hard bounds and ``extra="forbid"``; the web layer validates
request bodies with them directly. Outputs are frozen models too, and ``Comment.to_json`` is the
one JSON shape of a comment everywhere in the API.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StringConstraints,
    model_validator,
)
from yarl import URL

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

SiteId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
"""Lower-case letters, digits, ``_`` and ``-``: it is part of URLs and of the Redis hash tag."""

ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=r"^[\x21-\x7e]+$")
]
"""An id chosen by the host site: printable ASCII without spaces."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL, pattern=r"^https?://[^\s]+$")]
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE)]
CommentText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ModeratorReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)
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


CreatedAt = Annotated[AwareDatetime, AfterValidator(_storable_moment)]


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


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SPAM = "spam"


class Queue(StrEnum):
    PENDING = "pending"
    REPORTED = "reported"


class Order(StrEnum):
    PRIORITY = "priority"
    OLDEST = "oldest"


class Action(StrEnum):
    """A moderator's decision; the state each leads to is in ``service.transitions``."""

    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    REOPEN = "reopen"


class Reason(StrEnum):
    """Machine-readable reason codes of automatic verdicts."""

    BANNED_WORD = "BANNED_WORD"
    ARTICLE_CLOSED = "ARTICLE_CLOSED"
    AUTHOR_BANNED = "AUTHOR_BANNED"
    SPAM = "SPAM"
    TOXIC = "TOXIC"
    DUPLICATE = "DUPLICATE"
    FLOOD = "FLOOD"
    SUSPECT_WORD = "SUSPECT_WORD"
    LINKS = "LINKS"
    NEW_AUTHOR = "NEW_AUTHOR"
    AUTHOR_PREMOD = "AUTHOR_PREMOD"
    PREMOD = "PREMOD"
    REPORTED = "REPORTED"
    LANGUAGE = "LANGUAGE"
    """Written in a language the model does not read: held for a person, never scored."""
    SECOND_LOOK = "SECOND_LOOK"
    """Published on the lexical verdict, then held when the semantic stage's blend crossed a
    hold or reject threshold (the reasons after it say which: ``TOXIC``, ``SPAM``)."""


class AuthorStatus(StrEnum):
    ACTIVE = "active"
    PREMOD = "premod"
    BANNED = "banned"
    TRUSTED = "trusted"


class ReportReason(StrEnum):
    """Why a reader flagged a published comment."""

    OFFENSIVE = "offensive"
    ABUSIVE = "abusive"
    SPAM = "spam"
    OTHER = "other"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- inputs


class ArticleRef(_Model):
    id: ExternalId
    url: Url | None = None
    title: Title | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_ARTICLE_TEXT)] | None = None


class Author(_Model):
    id: ExternalId
    name: Name | None = None
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    ip: IPvAnyAddress | None = None
    user_agent: Annotated[str, StringConstraints(max_length=512)] | None = None
    role: Annotated[str, StringConstraints(max_length=64)] | None = None


class Submission(_Model):
    """The intake body: one new or edited comment from the host site."""

    id: ExternalId
    article: ArticleRef
    parent_id: ExternalId | None = None
    author: Author
    text: CommentText
    created_at: CreatedAt | None = None
    # BCP 47 subtags may hold digits ("es-419", "pt-PT-ao90").
    lang: Annotated[str, StringConstraints(max_length=16, pattern=r"^[A-Za-z0-9-]+$")] | None = None


class Policy(_Model):
    """A site's moderation rules. Thresholds here override the model's suggested ones per label."""

    mode: Literal["post", "pre"] = "post"
    hold: dict[Label, Probability] = Field(default_factory=dict, max_length=32)
    reject: dict[Label, Probability] = Field(default_factory=dict, max_length=32)
    max_links: int = Field(default=2, ge=0, le=100)
    banned_words: tuple[Word, ...] = Field(default=(), max_length=MAX_WORDS)
    suspect_words: tuple[Word, ...] = Field(default=(), max_length=MAX_WORDS)
    flood_seconds_per_author: int = Field(default=10, ge=0, le=86_400)
    flood_seconds_per_ip: int = Field(default=0, ge=0, le=86_400)
    duplicate_window_seconds: int = Field(default=3_600, ge=0, le=30 * 86_400)
    new_author_min_approved: int = Field(default=0, ge=0, le=1_000)
    report_threshold: int = Field(default=3, ge=1, le=1_000)
    """Distinct readers' reports that send a published comment to the ``reported`` queue."""
    author_recent_days: int = Field(default=7, ge=1, le=90)
    """The window of an author's recent decisions (Coral Talk's "recent comment history")."""
    author_premod_rejection_rate: float = Field(default=0.3, ge=0.0, le=1.0)
    """Share of rejected (or spam) among an author's recent decisions that puts the author on
    pre-moderation (``AUTHOR_PREMOD``); 0 turns the rule off."""
    author_premod_min_decisions: int = Field(default=3, ge=1, le=1_000)
    """Recent decisions needed before the rejection rate counts, so one rejection is no verdict."""
    retention_days: int = Field(default=90, ge=1, le=3_650)
    """Days a decided comment and its history are kept after its last change."""
    other_languages: Literal["hold", "publish"] = "hold"
    """A comment in a language the model does not read is held (``LANGUAGE``) or published;
    either way it is not scored."""

    @model_validator(mode="after")
    def _hold_not_above_reject(self) -> Self:
        for label, hold in self.hold.items():
            reject = self.reject.get(label)
            if reject is not None and hold > reject:
                raise ValueError(f"hold threshold of {label!r} is above its reject threshold")
        return self


class PolicyPatch(_Model):
    """A partial policy: only the fields given replace the site's current ones."""

    mode: Literal["post", "pre"] | None = None
    hold: dict[Label, Probability] | None = Field(default=None, max_length=32)
    reject: dict[Label, Probability] | None = Field(default=None, max_length=32)
    max_links: int | None = Field(default=None, ge=0, le=100)
    banned_words: tuple[Word, ...] | None = Field(default=None, max_length=MAX_WORDS)
    suspect_words: tuple[Word, ...] | None = Field(default=None, max_length=MAX_WORDS)
    flood_seconds_per_author: int | None = Field(default=None, ge=0, le=86_400)
    flood_seconds_per_ip: int | None = Field(default=None, ge=0, le=86_400)
    duplicate_window_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400)
    new_author_min_approved: int | None = Field(default=None, ge=0, le=1_000)
    report_threshold: int | None = Field(default=None, ge=1, le=1_000)
    author_recent_days: int | None = Field(default=None, ge=1, le=90)
    author_premod_rejection_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    author_premod_min_decisions: int | None = Field(default=None, ge=1, le=1_000)
    retention_days: int | None = Field(default=None, ge=1, le=3_650)
    other_languages: Literal["hold", "publish"] | None = None

    def apply(self, policy: Policy) -> Policy:
        """The merged policy, validated as a whole (raises pydantic's ValidationError)."""
        changes = self.model_dump(exclude_unset=True, exclude_none=True)
        return Policy.model_validate({**policy.model_dump(), **changes})


class SiteSpec(_Model):
    id: SiteId
    name: Name
    callback_url: CallbackUrl | None = None
    policy: Policy = Field(default_factory=Policy)


class CoralSettings(_Model):
    """Coral Talk, both ways: the secrets Coral signs its phase requests and its webhooks with,
    and the GraphQL endpoint and access token civility applies its moderators' decisions with.

    Write-only: none is ever shown again. Fields given replace the stored ones; ``null``
    removes one (a phase or webhook request is then refused, decisions stay in civility)."""

    signing_secret: SigningSecret | None = None
    webhook_secret: SigningSecret | None = None
    graphql_url: CallbackUrl | None = None
    access_token: CoralToken | None = None


class SitePatch(_Model):
    """Fields given replace the site's; ``callback_url: null`` removes the callback."""

    name: Name | None = None
    callback_url: CallbackUrl | None = None
    policy: PolicyPatch | None = None
    coral: CoralSettings | None = None


class ArticleSpec(_Model):
    """Article metadata and per-article settings (``PUT`` replaces them all)."""

    id: ExternalId = Field(description="The article of the path: a signed body names its target")
    url: Url | None = None
    title: Title | None = None
    closed: bool = False
    premod: bool = False


class Decision(_Model):
    action: Action
    reason: ModeratorReason | None = None
    note: Note | None = None
    version: int | None = Field(default=None, ge=1)


class ReportSpec(_Model):
    """A reader's report of a published comment, sent by the host site (signed like intake)."""

    comment_id: ExternalId = Field(
        description="The comment of the path: a signed body names its target"
    )
    reporter_id: ExternalId
    reason: ReportReason
    note: Note | None = None


class AuthorStatusChange(_Model):
    """A moderator sets an author's standing; banning may reject the author's held comments."""

    status: AuthorStatus
    reason: ModeratorReason | None = None
    reject_pending: bool = False


class BulkDecisionItem(Decision):
    id: ExternalId


class BulkDecision(_Model):
    decisions: tuple[BulkDecisionItem, ...] = Field(min_length=1, max_length=MAX_BULK)


class ClaimRequest(_Model):
    limit: int = Field(default=10, ge=1, le=MAX_CLAIM)
    lease_seconds: int = Field(default=300, ge=1, le=MAX_LEASE_SECONDS)
    queue: Queue = Queue.PENDING
    order: Order = Order.PRIORITY


class CommentClaimRequest(_Model):
    """The lease of one chosen comment (the body may be empty)."""

    lease_seconds: int = Field(default=300, ge=1, le=MAX_LEASE_SECONDS)


class ReleaseRequest(_Model):
    """Ids to release; none means every lease the caller holds."""

    ids: tuple[ExternalId, ...] | None = Field(default=None, max_length=MAX_CLAIM)


class ModeratorSpec(_Model):
    name: Name


class QueueQuery(_Model):
    """The queue listing's query string (values arrive as strings; pydantic coerces them)."""

    queue: Queue = Queue.PENDING
    order: Order = Order.PRIORITY
    article: ExternalId | None = None
    author: ExternalId | None = None
    reason: Reason | None = Field(
        default=None, description="Only comments held or reported with this reason code"
    )
    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _one_filter(self) -> Self:
        # Each filter is its own index; silently applying one of two would list wrong comments.
        given = [self.article, self.author, self.reason]
        if sum(value is not None for value in given) > 1:
            raise ValueError("filter by one of article, author or reason, not several")
        return self


class CommentQuery(_Model):
    """The comment listing's query string: one state, newest decision first, optionally one
    article or one author and a range of decision times (``since`` inclusive, ``until``
    exclusive)."""

    state: State
    article: ExternalId | None = None
    author: ExternalId | None = None
    since: CreatedAt | None = None
    until: CreatedAt | None = None
    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _one_filter_and_a_range(self) -> Self:
        if self.article is not None and self.author is not None:
            raise ValueError("filter by article or by author, not both")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


# ---------------------------------------------------------------- outputs


class SecondLookState(StrEnum):
    """Where a published comment stands with the semantic stage's second look."""

    QUEUED = "queued"
    DONE = "done"
    """Looked at: the blend kept it published."""
    HELD = "held"
    """Looked at: the blend moved it to pending (reason ``SECOND_LOOK``)."""
    SKIPPED = "skipped"
    """Not looked at: a moderator decided it first."""


class SecondLook(_Model):
    state: SecondLookState
    queued_at: datetime | None
    looked_at: datetime | None = None
    scores: dict[str, float] | None = None
    """The blended (lexical and semantic) scores the look decided on."""
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "queued_at": _iso(self.queued_at) if self.queued_at else None,
            "looked_at": _iso(self.looked_at) if self.looked_at else None,
            "scores": self.scores,
            "model": self.model,
        }


class HistoryEntry(_Model):
    """One change of a comment; a comment's history keeps every one, undo included."""

    version: int
    at: datetime
    actor: str
    action: str
    from_state: State | None
    to_state: State
    reasons: tuple[str, ...]
    note: str | None = None
    model: str | None = None
    previous_text: str | None = None
    """The text an edit replaced (edits only)."""
    actor_name: str | None = None
    """The moderator's name beside ``actor`` (``admin`` for the admin; none for automatic)."""


class Report(_Model):
    """One reader's report of a comment."""

    reporter_id: str
    reason: ReportReason
    note: str | None = None
    at: datetime


class CommentArticle(_Model):
    """The article a comment belongs to, as the host last described it (title and url only when
    an intake or ``PUT`` gave them)."""

    id: str
    title: str | None = None
    url: str | None = None


class Comment(_Model):
    id: str
    article_id: str
    parent_id: str | None
    author: Author
    text: str
    state: State
    reasons: tuple[str, ...]
    scores: dict[str, float]
    evidence: dict[str, tuple[tuple[int, int], ...]]
    model: str | None
    version: int
    decided_by: str
    decided_at: datetime
    created_at: datetime
    updated_at: datetime
    lang: str | None = None
    priority: float = 0.0
    history: tuple[HistoryEntry, ...] | None = None
    reports: tuple[Report, ...] | None = None
    report_count: int = 0
    """Readers who reported the comment (since a moderator last kept it)."""
    claimed_by: str | None = None
    lease_until: datetime | None = None
    decided_by_name: str | None = None
    """Who ``decided_by`` is, for people to read: a moderator's name, ``admin``; none for the
    model's own verdicts."""
    claimed_by_name: str | None = None
    second_look: SecondLook | None = None
    """The semantic stage's look at a comment the lexical verdict published (none: never
    queued for one)."""
    article: CommentArticle | None = None
    """The article's id with its title and url (always set on answers; ``article_id`` stays
    for callers that read only the id)."""

    def to_json(self) -> dict[str, Any]:
        """The one comment shape; history only in the single view, lease fields when claimed."""
        body: dict[str, Any] = {
            "id": self.id,
            "article_id": self.article_id,
            "article": (self.article or CommentArticle(id=self.article_id)).model_dump(
                mode="json", exclude_none=True
            ),
            "parent_id": self.parent_id,
            "author": self.author.model_dump(mode="json", exclude_none=True),
            "text": self.text,
            "state": self.state.value,
            "reasons": list(self.reasons),
            "scores": dict(self.scores),
            "evidence": {
                label: [list(span) for span in spans] for label, spans in self.evidence.items()
            },
            "model": self.model,
            "version": self.version,
            "decided_by": self.decided_by,
            "decided_by_name": self.decided_by_name,
            "decided_at": _iso(self.decided_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if self.history is not None:
            body["history"] = [
                entry.model_dump(
                    mode="json", exclude=set() if entry.previous_text else {"previous_text"}
                )
                for entry in self.history
            ]
        if self.reports is not None:
            body["reports"] = [report.model_dump(mode="json") for report in self.reports]
        if self.report_count:
            body["report_count"] = self.report_count
        if self.second_look is not None:
            body["second_look"] = self.second_look.to_json()
        if self.claimed_by is not None and self.lease_until is not None:
            body["claimed_by"] = self.claimed_by
            body["claimed_by_name"] = self.claimed_by_name
            body["lease_until"] = _iso(self.lease_until)
        return body


class IngestResult(_Model):
    """``created``: this delivery changed the comment (new or edited), 202; else 200."""

    comment: Comment
    created: bool
    edited: bool = False


class ReportOutcome(_Model):
    """The comment's standing after a report; ``counted`` is false for a reader's repeat."""

    comment_id: str
    state: State
    reports: int
    threshold: int
    reported: bool
    """The comment is in the ``reported`` queue."""
    counted: bool

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AuthorCounts(_Model):
    approved: int = 0
    rejected: int = 0
    spam: int = 0
    pending: int = 0


class RecentDecisions(_Model):
    """The author's decided comments within the site's recent window."""

    days: int
    decided: int
    rejected: int
    rejection_rate: float | None
    """Rejected (or spam) over decided; ``None`` while nothing was decided."""


class AuthorView(_Model):
    """An author as moderators see it: counts, standing and what the next comment would meet.

    ``trust`` is the rule the author's next comment meets: ``banned``, ``trusted``, ``premod``
    (set by a moderator or earned by a high recent rejection rate), ``new`` (fewer approved
    comments than the site's new-author rule asks) or ``regular``."""

    id: str
    site_id: str
    status: AuthorStatus
    status_reason: str | None
    status_by: str | None
    status_at: datetime | None
    trust: Literal["banned", "trusted", "premod", "new", "regular"]
    counts: AuthorCounts
    recent: RecentDecisions
    first_seen: datetime | None
    last_seen: datetime | None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Site(_Model):
    id: str
    name: str
    callback_url: str | None
    policy: Policy
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SiteCredentials(_Model):
    """Shown once, at creation: the webhook signing secret and the api key."""

    webhook_secret: str
    api_key: str


class CreatedSite(Site, SiteCredentials):
    """A new site with its credentials: the one answer that shows them."""


class SecretRotation(_Model):
    """The new webhook secret (shown once) and until when the previous one still verifies."""

    webhook_secret: str
    previous_valid_until: datetime


class Moderator(_Model):
    id: str
    site_id: str
    name: str
    created_at: datetime


class Article(_Model):
    id: str
    url: str | None
    title: str | None
    closed: bool
    premod: bool
    updated_at: datetime | None


class QueuePage(_Model):
    """One page of a queue or of a comment listing; ``total`` counts every match, all pages."""

    items: tuple[Comment, ...]
    next_cursor: str | None
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [item.to_json() for item in self.items],
            "next_cursor": self.next_cursor,
            "total": self.total,
        }


class HourlyDecisions(_Model):
    hour: datetime
    auto: int
    moderator: int


class SiteStats(_Model):
    queue_depths: dict[str, int]
    oldest_pending_age_seconds: float | None
    oldest_ages_seconds: dict[str, float | None]
    """Per queue, how long its oldest comment has waited (by its creation time)."""
    decisions: dict[str, int]
    decisions_per_hour: tuple[HourlyDecisions, ...]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DecisionOutcome(_Model):
    """One item of a bulk decision: the updated comment, or the error that item met."""

    id: str
    ok: bool
    comment: Comment | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "ok": self.ok}
        if self.comment is not None:
            body["comment"] = self.comment.to_json()
        if self.error is not None:
            body["error"] = self.error
        return body


class AuthorStatusOutcome(_Model):
    """The author after a status change, and the held comments a ban rejected (or could not)."""

    author: AuthorView
    rejected: tuple[str, ...] = ()
    failed: tuple[DecisionOutcome, ...] = ()
    remaining: int = 0
    """Held comments beyond what one ban rejects; the queue's bulk decisions take them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "author": self.author.to_json(),
            "rejected": list(self.rejected),
            "failed": [outcome.to_json() for outcome in self.failed],
            "remaining": self.remaining,
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
