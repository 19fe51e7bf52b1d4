"""The objects the API returns, each with the one JSON shape it is answered in."""

from typing import Any, Literal

from pydantic import Field

from service.domain.enums import AuthorStatus, ReportReason, SecondLookState, State
from service.domain.fields import FrozenModel
from service.domain.inputs import Author, Policy
from service.times import Moment, iso


class SecondLook(FrozenModel):
    state: SecondLookState
    queued_at: Moment | None
    looked_at: Moment | None = None
    scores: dict[str, float] | None = None
    """The blended (lexical and semantic) scores the look decided on."""
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "queued_at": iso(self.queued_at) if self.queued_at else None,
            "looked_at": iso(self.looked_at) if self.looked_at else None,
            "scores": self.scores,
            "model": self.model,
        }


class HistoryEntry(FrozenModel):
    """One change of a comment; a comment's history keeps every one, undo included."""

    version: int
    at: Moment
    actor: str
    action: str
    from_state: State | None
    to_state: State
    reasons: tuple[str, ...]
    note: str | None = None
    model: str | None = None
    previous_text: str | None = None
    """The text an edit replaced (edits only)."""
    edited_at: Moment | None = None
    """When the host dated the edit (edits delivered with ``edited_at`` only)."""
    actor_name: str | None = None
    """The moderator's name beside ``actor`` (``admin`` for the admin; none for automatic)."""


class Report(FrozenModel):
    """One reader's report of a comment."""

    reporter_id: str | None = Field(
        description="null once the reader's data was erased (the report still counts)"
    )
    reason: ReportReason
    note: str | None = None
    at: Moment


class CommentArticle(FrozenModel):
    """The article a comment belongs to, as the host last described it (title and url only when
    an intake or ``PUT`` gave them)."""

    id: str
    title: str | None = None
    url: str | None = None


class Comment(FrozenModel):
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
    decided_at: Moment
    created_at: Moment
    updated_at: Moment
    edited_at: Moment | None = None
    """When the host last edited the text, as it dated the edit (none: never dated)."""
    lang: str | None = Field(
        default=None,
        description="The text's language: the tag the host gave at intake, else the ISO 639-1 "
        "code detected in the text; null when neither (a text too short to tell).",
    )
    priority: float = Field(
        default=0.0,
        description="The risk `order=priority` sorts by (the highest label score), given with "
        "`queued_at` while the comment waits in a queue.",
    )
    queued_at: Moment | None = Field(
        default=None,
        description="When the comment entered the pending or reported queue it waits in (the "
        "time `order=oldest` sorts by); absent for a comment in no queue.",
    )
    history: tuple[HistoryEntry, ...] | None = None
    reports: tuple[Report, ...] | None = None
    report_count: int = 0
    """Readers who reported the comment (since a moderator last kept it)."""
    claimed_by: str | None = None
    lease_until: Moment | None = None
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
            "decided_at": iso(self.decided_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "edited_at": iso(self.edited_at) if self.edited_at else None,
            "lang": self.lang,
        }
        if self.history is not None:
            body["history"] = [
                entry.model_dump(
                    mode="json",
                    exclude={
                        name
                        for name in ("previous_text", "edited_at")
                        if getattr(entry, name) is None
                    },
                )
                for entry in self.history
            ]
        if self.reports is not None:
            body["reports"] = [report.model_dump(mode="json") for report in self.reports]
        if self.queued_at is not None:
            body["queued_at"] = iso(self.queued_at)
            body["priority"] = self.priority
        if self.report_count:
            body["report_count"] = self.report_count
        if self.second_look is not None:
            body["second_look"] = self.second_look.to_json()
        if self.claimed_by is not None and self.lease_until is not None:
            body["claimed_by"] = self.claimed_by
            body["claimed_by_name"] = self.claimed_by_name
            body["lease_until"] = iso(self.lease_until)
        return body


class IngestResult(FrozenModel):
    """``created``: this delivery changed the comment (new or edited), 202; else 200."""

    comment: Comment
    created: bool
    edited: bool = False


class ReportOutcome(FrozenModel):
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


class AuthorCounts(FrozenModel):
    approved: int = 0
    rejected: int = 0
    spam: int = 0
    pending: int = 0


class RecentDecisions(FrozenModel):
    """The author's decided comments within the site's recent window."""

    days: int
    decided: int
    rejected: int
    rejection_rate: float | None
    """Rejected (or spam) over decided; ``None`` while nothing was decided."""


class AuthorView(FrozenModel):
    """An author as moderators see it: counts, standing and what the next comment would meet.

    ``trust`` is the rule the author's next comment meets: ``banned``, ``trusted``, ``premod``
    (set by a moderator or earned by a high recent rejection rate), ``new`` (fewer approved
    comments than the site's new-author rule asks) or ``regular``."""

    id: str
    site_id: str
    status: AuthorStatus
    status_reason: str | None
    status_by: str | None
    status_at: Moment | None
    trust: Literal["banned", "trusted", "premod", "new", "regular"]
    counts: AuthorCounts
    recent: RecentDecisions
    first_seen: Moment | None
    last_seen: Moment | None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Site(FrozenModel):
    id: str
    name: str
    callback_url: str | None
    policy: Policy
    created_at: Moment
    updated_at: Moment

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SiteCredentials(FrozenModel):
    """Shown once, at creation: the webhook signing secret and the api key."""

    webhook_secret: str
    api_key: str


class CreatedSite(Site, SiteCredentials):
    """A new site with its credentials: the one answer that shows them."""


class SecretRotation(FrozenModel):
    """The new webhook secret (shown once) and until when the previous one still verifies."""

    webhook_secret: str
    previous_valid_until: Moment


class Moderator(FrozenModel):
    id: str
    site_id: str
    name: str
    created_at: Moment


class Article(FrozenModel):
    id: str
    url: str | None
    title: str | None
    closed: bool
    premod: bool
    updated_at: Moment | None


class QueuePage(FrozenModel):
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


class HourlyDecisions(FrozenModel):
    hour: Moment
    auto: int
    moderator: int


class SiteStats(FrozenModel):
    queue_depths: dict[str, int]
    oldest_pending_age_seconds: float | None
    oldest_ages_seconds: dict[str, float | None]
    """Per queue, how long its longest waiting comment has waited: since it entered the queue
    (held, reopened, edited into it, reported), not since it was written."""
    decisions: dict[str, int]
    decisions_per_hour: tuple[HourlyDecisions, ...]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DecisionOutcome(FrozenModel):
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


class AuthorStatusOutcome(FrozenModel):
    """The author after a status change, and the held comments a ban rejected (or could not)."""

    author: AuthorView
    already_set: bool = False
    """The author already had this status with this reason: nothing was set again (a retry,
    or another moderator's same change), and the standing is as first set."""
    rejected: tuple[str, ...] = ()
    """A ban's: every held comment the standing ban rejected, by this call or an earlier one
    that set or repeated it (a retry after a lost answer gets the first call's too)."""
    rejected_now: tuple[str, ...] = ()
    """Those of ``rejected`` that this call rejected."""
    failed: tuple[DecisionOutcome, ...] = ()
    remaining: int = 0
    """Held comments beyond what one ban rejects; the queue's bulk decisions take them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "author": self.author.to_json(),
            "already_set": self.already_set,
            "rejected": list(self.rejected),
            "rejected_now": list(self.rejected_now),
            "failed": [outcome.to_json() for outcome in self.failed],
            "remaining": self.remaining,
        }
