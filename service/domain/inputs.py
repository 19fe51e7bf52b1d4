"""The request bodies and queries the API accepts, validated with hard bounds."""

import re
from collections import Counter
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from service.domain.enums import Action, AuthorStatus, Order, Queue, Reason, ReportReason, State
from service.domain.fields import (
    MAX_AHEAD,
    MAX_ARTICLE_TEXT,
    MAX_BULK,
    MAX_CLAIM,
    MAX_LEASE_SECONDS,
    MAX_PAGE,
    MAX_WORDS,
    NOT_A_DATE_TIME,
    Boolean,
    CallbackUrl,
    CommentText,
    CoralToken,
    CreatedAt,
    Cursor,
    ExternalId,
    FrozenModel,
    Integer,
    IpAddress,
    Label,
    ModeratorReason,
    Name,
    Note,
    Number,
    Probability,
    QueryInteger,
    SigningSecret,
    SiteId,
    Title,
    Url,
    Word,
)
from service.times import iso


class ArticleRef(FrozenModel):
    id: ExternalId
    url: Url | None = None
    title: Title | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_ARTICLE_TEXT)] | None = None


class Author(FrozenModel):
    id: ExternalId
    name: Name | None = None
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    ip: IpAddress | None = None
    user_agent: Annotated[str, StringConstraints(max_length=512)] | None = None
    role: Annotated[str, StringConstraints(max_length=64)] | None = None


EDITED_BEFORE_CREATED = (
    "is before the comment's created_at ({created_at}): a text is edited after it is written"
)
"""Why an edit time is refused, naming the creation time it precedes."""


class Submission(FrozenModel):
    """The intake body: one new or edited comment from the host site."""

    id: ExternalId
    article: ArticleRef
    parent_id: ExternalId | None = None
    author: Author
    text: CommentText
    created_at: CreatedAt | None = None
    edited_at: CreatedAt | None = None
    """When the host last edited the text: a delivery dated no later than the stored text is a
    late retry and changes nothing (none: the text as first written)."""
    # BCP 47 subtags may hold digits ("es-419", "pt-PT-ao90").
    lang: Annotated[str, StringConstraints(max_length=16, pattern=r"^[A-Za-z0-9-]+$")] | None = None

    @field_validator("edited_at")
    @classmethod
    def _not_edited_before_created(
        cls, edited_at: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        # Stored, such a pair would date the text before the comment existed, and every later
        # edit of it would be compared with a time that never was.
        created_at = info.data.get("created_at")
        if edited_at is not None and created_at is not None and edited_at < created_at:
            raise ValueError(EDITED_BEFORE_CREATED.format(created_at=iso(created_at)))
        return edited_at

    def dated_ahead(self, now: datetime) -> list[tuple[str, str]]:
        """Each time given (``created_at``, ``edited_at``) more than ``MAX_AHEAD`` after ``now``,
        the server's clock, with what is wrong with it: intake refuses such a comment (422),
        Akismet's check leaves the time out."""
        latest = now + MAX_AHEAD
        return [
            (name, f"is more than a day ahead of the server's clock ({iso(now)})")
            for name, moment in (("created_at", self.created_at), ("edited_at", self.edited_at))
            if moment is not None and moment > latest
        ]


class Policy(FrozenModel):
    """A site's moderation rules. Thresholds here override the model's suggested ones per label."""

    mode: Literal["post", "pre"] = "post"
    hold: dict[Label, Probability] = Field(default_factory=dict, max_length=32)
    reject: dict[Label, Probability] = Field(default_factory=dict, max_length=32)
    max_links: Integer = Field(default=2, ge=0, le=100)
    banned_words: tuple[Word, ...] = Field(default=(), max_length=MAX_WORDS)
    suspect_words: tuple[Word, ...] = Field(default=(), max_length=MAX_WORDS)
    flood_seconds_per_author: Integer = Field(default=10, ge=0, le=86_400)
    flood_seconds_per_ip: Integer = Field(default=0, ge=0, le=86_400)
    duplicate_window_seconds: Integer = Field(default=3_600, ge=0, le=30 * 86_400)
    new_author_min_approved: Integer = Field(default=0, ge=0, le=1_000)
    report_threshold: Integer = Field(default=3, ge=1, le=1_000)
    """Distinct readers' reports that send a published comment to the ``reported`` queue."""
    author_recent_days: Integer = Field(default=7, ge=1, le=90)
    """The window of an author's recent decisions (Coral Talk's "recent comment history")."""
    author_premod_rejection_rate: Number = Field(default=0.3, ge=0.0, le=1.0)
    """Share of rejected (or spam) among an author's recent decisions that puts the author on
    pre-moderation (``AUTHOR_PREMOD``); 0 turns the rule off."""
    author_premod_min_decisions: Integer = Field(default=3, ge=1, le=1_000)
    """Recent decisions needed before the rejection rate counts, so one rejection is no verdict."""
    retention_days: Integer = Field(default=90, ge=1, le=3_650)
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


class PolicyPatch(FrozenModel):
    """A partial policy: only the fields given replace the site's current ones."""

    mode: Literal["post", "pre"] | None = None
    hold: dict[Label, Probability] | None = Field(default=None, max_length=32)
    reject: dict[Label, Probability] | None = Field(default=None, max_length=32)
    max_links: Integer | None = Field(default=None, ge=0, le=100)
    banned_words: tuple[Word, ...] | None = Field(default=None, max_length=MAX_WORDS)
    suspect_words: tuple[Word, ...] | None = Field(default=None, max_length=MAX_WORDS)
    flood_seconds_per_author: Integer | None = Field(default=None, ge=0, le=86_400)
    flood_seconds_per_ip: Integer | None = Field(default=None, ge=0, le=86_400)
    duplicate_window_seconds: Integer | None = Field(default=None, ge=0, le=30 * 86_400)
    new_author_min_approved: Integer | None = Field(default=None, ge=0, le=1_000)
    report_threshold: Integer | None = Field(default=None, ge=1, le=1_000)
    author_recent_days: Integer | None = Field(default=None, ge=1, le=90)
    author_premod_rejection_rate: Number | None = Field(default=None, ge=0.0, le=1.0)
    author_premod_min_decisions: Integer | None = Field(default=None, ge=1, le=1_000)
    retention_days: Integer | None = Field(default=None, ge=1, le=3_650)
    other_languages: Literal["hold", "publish"] | None = None

    def apply(self, policy: Policy) -> Policy:
        """The merged policy, validated as a whole (raises pydantic's ValidationError)."""
        changes = self.model_dump(exclude_unset=True, exclude_none=True)
        return Policy.model_validate({**policy.model_dump(), **changes})


class SiteSpec(FrozenModel):
    id: SiteId
    name: Name
    callback_url: CallbackUrl | None = None
    policy: Policy = Field(default_factory=Policy)


class CoralSettings(FrozenModel):
    """Coral Talk, both ways: the secrets Coral signs its phase requests and its webhooks with,
    and the GraphQL endpoint and access token civility applies its moderators' decisions with.

    Write-only: none is ever shown again. Fields given replace the stored ones; ``null``
    removes one (a phase or webhook request is then refused, decisions stay in civility). The
    GraphQL URL and access token go together: a patch that would leave a site with one but not
    the other is refused (400) and changes nothing."""

    signing_secret: SigningSecret | None = None
    webhook_secret: SigningSecret | None = None
    graphql_url: CallbackUrl | None = None
    access_token: CoralToken | None = None


class SitePatch(FrozenModel):
    """Fields given replace the site's; ``callback_url: null`` removes the callback."""

    name: Name | None = None
    callback_url: CallbackUrl | None = None
    policy: PolicyPatch | None = None
    coral: CoralSettings | None = None


class ArticleSpec(FrozenModel):
    """Article metadata and per-article settings (``PUT`` replaces them all)."""

    id: ExternalId = Field(description="The article of the path: a signed body names its target")
    url: Url | None = None
    title: Title | None = None
    closed: Boolean = False
    premod: Boolean = False


class Decision(FrozenModel):
    action: Action
    reason: ModeratorReason | None = None
    note: Note | None = None
    version: Integer | None = Field(default=None, ge=1)


class ReportSpec(FrozenModel):
    """A reader's report of a published comment, sent by the host site (signed like intake)."""

    comment_id: ExternalId = Field(
        description="The comment of the path: a signed body names its target"
    )
    reporter_id: ExternalId
    reason: ReportReason
    note: Note | None = None


class AuthorStatusChange(FrozenModel):
    """A moderator sets an author's standing; banning may reject the author's held comments."""

    status: AuthorStatus
    reason: ModeratorReason | None = None
    reject_pending: Boolean = False


class BulkDecisionItem(Decision):
    id: ExternalId


class BulkDecision(FrozenModel):
    decisions: tuple[BulkDecisionItem, ...] = Field(
        max_length=MAX_BULK, json_schema_extra={"minItems": 1}
    )

    @field_validator("decisions")
    @classmethod
    def _at_least_one(cls, decisions: tuple[BulkDecisionItem, ...]) -> tuple[BulkDecisionItem, ...]:
        # Checked once every item is read: pydantic's own minimum counts only the items that
        # passed, so a request of one refused item would also be told it holds none.
        if not decisions:
            raise ValueError("a request decides at least one comment")
        return decisions

    @model_validator(mode="after")
    def _each_comment_once(self) -> Self:
        # A decision's event is named by its request and its comment: a second decision on one
        # comment in a request would be taken for a retry of the first, and silently dropped.
        counts = Counter(item.id for item in self.decisions)
        repeated = sorted(comment_id for comment_id, count in counts.items() if count > 1)
        if repeated:
            raise ValueError(f"a request decides each comment once; repeated: {repeated}")
        return self


class CommentClaimRequest(FrozenModel):
    """The lease of one chosen comment (the body may be empty)."""

    lease_seconds: Integer = Field(default=300, ge=1, le=MAX_LEASE_SECONDS)


class ReleaseRequest(FrozenModel):
    """Ids to release; none means every lease the caller holds."""

    ids: tuple[ExternalId, ...] | None = Field(default=None, max_length=MAX_CLAIM)


class ModeratorSpec(FrozenModel):
    name: Name


class QueueFilter(FrozenModel):
    """One queue, in one order, optionally narrowed to one article, one author or both (the
    author's comments in that article), and to one reason: what the listing shows and what a
    claim takes from."""

    queue: Queue = Queue.PENDING
    order: Order = Order.PRIORITY
    article: ExternalId | None = Field(
        default=None, description="Only comments of this article (of this author too, if given)"
    )
    author: ExternalId | None = Field(
        default=None, description="Only comments of this author (in this article too, if given)"
    )
    reason: Reason | None = Field(
        default=None, description="Only comments held or reported with this reason code"
    )


class QueueQuery(QueueFilter):
    """The queue listing's query string (values arrive as strings; pydantic coerces them)."""

    limit: QueryInteger = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None


class ClaimRequest(QueueFilter):
    """The next ``limit`` unclaimed comments of the queue as the same filter lists it."""

    limit: Integer = Field(default=10, ge=1, le=MAX_CLAIM)
    lease_seconds: Integer = Field(default=300, ge=1, le=MAX_LEASE_SECONDS)


_OFFSET_SIGN_AS_SPACE = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)? \d{2}:\d{2}$")
"""A time whose offset's "+" a URL's query turned into a space."""


class CommentQuery(FrozenModel):
    """The comment listing's query string: one state, newest decision first, optionally one
    article, one author or both (the author's comments in that article) and a range of decision
    times (``since`` inclusive, ``until`` exclusive)."""

    state: State
    article: ExternalId | None = Field(
        default=None, description="Only comments of this article (of this author too, if given)"
    )
    author: ExternalId | None = Field(
        default=None, description="Only comments of this author (in this article too, if given)"
    )
    since: CreatedAt | None = None
    until: CreatedAt | None = None
    limit: QueryInteger = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None

    @field_validator("since", "until", mode="before")
    @classmethod
    def _plus_read_as_space(cls, value: object) -> object:
        # A URL's query reads an unencoded "+" as a space, so a bound written with its offset
        # ("+01:00") as a client's code or a person types it arrives as " 01:00" and fails.
        if isinstance(value, str) and _OFFSET_SIGN_AS_SPACE.search(value):
            moment, _, offset = value.rpartition(" ")
            raise ValueError(
                f"{NOT_A_DATE_TIME}: a URL's query reads + as a space, so write the + of its "
                f"offset as %2B ({moment}%2B{offset})"
            )
        return value

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        # On the field, so the error names the parameter: a whole-model error has no field to
        # name, and a query string has no body.
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise ValueError(
                f"must be after since ({iso(since)}): the listing takes decision times from "
                "since up to, not including, until"
            )
        return until
