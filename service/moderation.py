"""The domain functions the routes call, one per route.

``Moderation`` ties the pieces together: it scores with the ``Scorer``, asks the pure policy for
a verdict, and writes through the store's scripts. Secrets are generated here, shown once and
stored so that nothing readable leaks: api keys and moderator tokens only as sha256 hashes, the
webhook secret in the site's hash because verifying an HMAC needs the secret itself.
"""

import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from service import language, reasons
from service import policy as rules
from service.domain import (
    ADMIN_ACTOR,
    Action,
    Article,
    ArticleSpec,
    AuthorCounts,
    AuthorStatus,
    AuthorStatusChange,
    AuthorStatusOutcome,
    AuthorView,
    BulkDecision,
    ClaimRequest,
    Comment,
    CommentClaimRequest,
    CommentQuery,
    Decision,
    DecisionOutcome,
    IngestResult,
    Moderator,
    Policy,
    QueuePage,
    QueueQuery,
    RecentDecisions,
    Report,
    ReportOutcome,
    ReportSpec,
    SecretRotation,
    Site,
    SiteCredentials,
    SitePatch,
    SiteSpec,
    SiteStats,
    State,
    Submission,
)
from service.errors import (
    CivilityError,
    ClaimConflict,
    Conflict,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
)
from service.events import LiveEvent, live_event
from service.idempotency import event_id
from service.labels import LabelLog
from service.path_ids import checked_id, same_target
from service.scorer import ReloadableScorer, Scored, Scorer, SiteRef, Spans
from service.site_models import ActiveVersions
from service.store import Store
from service.store.records import (
    DAY_MS,
    ApiKeyTakenError,
    DecisionWrite,
    IntakeWrite,
    Observation,
    ReportWrite,
    SiteRecord,
    SiteRules,
    StaleContextError,
    Window,
)
from service.times import from_ms, to_ms
from service.transitions import (
    EVENT_TYPES,
    REPORTED_EVENT_TYPE,
    Event,
    decided_state,
    event_for,
    sources_argument,
)

log = logging.getLogger(__name__)

WindowKind = Literal["author_flood", "ip_flood", "duplicate"]

MAX_INTAKE_ATTEMPTS = 3
"""Decide-and-write rounds before intake gives up on a context that keeps changing."""

_SPACES = re.compile(r"\s+")


MAX_BAN_REJECTIONS = 1_000
"""Held comments one ban rejects at most; more (a flood) are left for the queue's bulk actions."""


API_KEY_DRAWS = 3
"""New keys tried when a drawn one is already another site's."""
# Each round of racing patches lets at least one write, so this bounds the patches in flight.
MAX_SITE_UPDATE_ATTEMPTS = 32


def new_api_key() -> str:
    # Akismet's key format, 12 lowercase hex digits: WordPress's Akismet plugin strips anything
    # else from a key and refuses one of another length. Keys are checked by hash, never listed,
    # and a guess has one chance in 2**48 per request.
    return secrets.token_hex(6)


def sha256_hex(value: str) -> str:
    # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes: a key sent that way
    # hashes to its raw bytes and matches nothing, instead of failing to encode.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


@dataclass(slots=True)
class _CachedSite:
    record: SiteRecord
    expires: float


class Moderation:
    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        thresholds: Mapping[str, Mapping[str, float]],
        *,
        site_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        labels: LabelLog | None = None,
        site_models: ActiveVersions | None = None,
        second_look: bool = False,
    ) -> None:
        """``thresholds`` are the model's suggested ones; a site's policy may override them.

        Intake reads the site (secrets and policy) on every webhook, so it is cached in this
        process for ``site_cache_seconds``; changes made through this object apply at once.
        With ``labels``, every moderator decision is kept there as a training label; with
        ``site_models``, each site's texts are scored with its active site model. With
        ``second_look``, a comment published on the lexical verdict is queued for the semantic
        stage when the model that scored it has one."""
        self.store = store
        self.scorer = scorer
        self.thresholds = thresholds
        self.labels = labels
        self.site_models = site_models
        self.second_look = second_look
        self._clock = clock
        self._site_cache_seconds = site_cache_seconds
        self._sites: dict[str, _CachedSite] = {}
        # Decided once: a Protocol isinstance check costs ~0.09 ms, on every comment.
        self._score: Callable[[str, SiteRef | None], Awaitable[Scored]] = (
            scorer.score_with_model
            if isinstance(scorer, ReloadableScorer)
            else self._score_naming_active_model
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------ sites

    async def _site_record(self, site_id: str) -> SiteRecord:
        cached = self._sites.get(site_id)
        if cached is not None and cached.expires > time.monotonic():
            return cached.record
        record = await self.store.load_site(site_id)
        if record is None:
            raise NotFound(f"site {site_id!r} not found")
        self._remember(record)
        return record

    def _remember(self, record: SiteRecord) -> None:
        if self._site_cache_seconds > 0:
            expires = time.monotonic() + self._site_cache_seconds
            self._sites[record.site.id] = _CachedSite(record, expires)

    async def create_site(self, spec: SiteSpec) -> tuple[Site, SiteCredentials]:
        """The new site and its credentials, which are shown only in this answer."""
        for _ in range(API_KEY_DRAWS - 1):
            try:
                return await self._create_site(spec, new_api_key())
            except ApiKeyTakenError:
                continue
        return await self._create_site(spec, new_api_key())

    async def _create_site(self, spec: SiteSpec, api_key: str) -> tuple[Site, SiteCredentials]:
        now = from_ms(self._now_ms())
        credentials = SiteCredentials(
            webhook_secret=f"whsec_{secrets.token_urlsafe(32)}", api_key=api_key
        )
        site = Site(
            id=spec.id,
            name=spec.name,
            callback_url=spec.callback_url,
            policy=spec.policy,
            created_at=now,
            updated_at=now,
        )
        record = SiteRecord(
            site=site,
            webhook_secret=credentials.webhook_secret,
            previous_secret=None,
            previous_valid_until_ms=0,
            api_key_hash=sha256_hex(credentials.api_key),
        )
        await self.store.create_site(record)
        self._remember(record)
        return site, credentials

    async def get_site(self, site_id: str) -> Site:
        return (await self._site_record(site_id)).site

    async def update_site(self, site_id: str, patch: SitePatch) -> Site:
        # The policy is merged here, so a concurrent patch may land between read and write; the
        # write then refuses and the patch is merged again onto what that one wrote.
        for _ in range(MAX_SITE_UPDATE_ATTEMPTS):
            record = await self.store.load_site(site_id)
            if record is None:
                raise NotFound(f"site {site_id!r} not found")
            updated = self._patched(record.site, patch)
            if await self.store.update_site(updated, read_policy=record.stored_policy):
                break
        else:
            raise Conflict(f"site {site_id!r} kept changing; send the patch again")
        if patch.coral is not None and patch.coral.model_fields_set:
            settings = patch.coral.model_dump(include=patch.coral.model_fields_set)
            await self.store.set_coral_settings(site_id, settings)
        self._sites.pop(site_id, None)
        return updated

    def _patched(self, site: Site, patch: SitePatch) -> Site:
        changes: dict[str, object] = {"updated_at": from_ms(self._now_ms())}
        if patch.name is not None:
            changes["name"] = patch.name
        if "callback_url" in patch.model_fields_set:
            changes["callback_url"] = patch.callback_url
        if patch.policy is not None:
            try:
                changes["policy"] = patch.policy.apply(site.policy)
            except ValueError as error:  # pydantic's ValidationError of the merged policy
                raise _policy_error(error) from None
        return site.model_copy(update=changes)

    async def rotate_secret(self, site_id: str, grace_seconds: int) -> SecretRotation:
        now = self._now_ms()
        rotation = SecretRotation(
            webhook_secret=f"whsec_{secrets.token_urlsafe(32)}",
            previous_valid_until=from_ms(now + grace_seconds * 1000),
        )
        valid_until = to_ms(rotation.previous_valid_until)
        await self.store.rotate_secret(site_id, rotation.webhook_secret, now, valid_until)
        self._sites.pop(site_id, None)
        return rotation

    async def webhook_secrets(self, site_id: str) -> list[str]:
        """The secrets a signature may currently be made with; ``NotFound`` for no such site."""
        return (await self._site_record(site_id)).valid_secrets(self._now_ms())

    async def site_record(self, site_id: str) -> SiteRecord:
        """The site with its secrets (for the integrations that sign or call out); ``NotFound``
        for no such site."""
        return await self._site_record(site_id)

    async def site_for_api_key(self, api_key: str) -> Site | None:
        key_hash = sha256_hex(api_key)
        site_id = await self.store.site_id_for_api_key(key_hash)
        if site_id is None:
            return None
        record = await self.store.load_site(site_id)
        # The index is written before the site; only a key the site itself names counts.
        if record is None or not record.api_key_matches(key_hash, self._now_ms()):
            return None
        return record.site

    async def create_moderator(self, site_id: str, name: str) -> tuple[Moderator, str]:
        """The moderator and its bearer token (shown only here; stored as a sha256 hash)."""
        token = f"cmt_{secrets.token_urlsafe(32)}"
        moderator = Moderator(
            id=f"mod_{secrets.token_hex(8)}",
            site_id=site_id,
            name=name,
            created_at=from_ms(self._now_ms()),
        )
        await self.store.add_moderator(moderator, sha256_hex(token))
        return moderator, token

    async def moderator_for_token(self, token: str) -> Moderator | None:
        return await self.store.moderator_by_token_hash(sha256_hex(token), self._now_ms())

    def forget_site(self, site_id: str) -> None:
        """Drop this process's cached copy of the site (after a change made elsewhere)."""
        self._sites.pop(site_id, None)

    # ------------------------------------------------------------------ intake

    async def ingest(self, site_id: str, submission: Submission) -> IngestResult:
        """Moderate a new or edited comment; a redelivery returns the stored one unchanged.

        The verdict is decided for the likeliest context (a new comment, an author in good
        standing, an open article, no flood or duplicate) and written by one script call that
        checks that context; when it differs, the script writes nothing and reports what it
        found, and the verdict is decided again for that. The scorer runs once, and is asked
        for evidence only when the comment is not published."""
        record = await self._site_record(site_id)
        policy = record.site.policy
        windows = self._windows(site_id, submission, policy)
        detected = language.detect(submission.text)
        scored = await self._score_if_readable(submission.text, detected, site_id)
        scores = scored.scores
        text_hash = sha256_hex(submission.text)
        observation = Observation(windows_taken=tuple(False for _ in windows))
        explained: Spans | None = None
        for _ in range(MAX_INTAKE_ATTEMPTS):
            verdict = rules.decide(
                scores,
                _policy_context(submission.text, observation, windows, detected),
                policy,
                scored.thresholds,
            )
            evidence: Spans = {name: list(spans) for name, spans in verdict.evidence.items()}
            if verdict.state is not State.APPROVED and detected.supported:
                if explained is None:
                    explained = await self.scorer.explain(submission.text)
                evidence = {**explained, **evidence}
            now = self._now_ms()
            write = IntakeWrite(
                comment_id=submission.id,
                text_hash=text_hash,
                article_id=submission.article.id,
                parent_id=submission.parent_id,
                author=submission.author,
                text=submission.text,
                lang=submission.lang or detected.language,
                state=verdict.state,
                reasons=[reason.value for reason in verdict.reasons],
                scores=scores,
                evidence=evidence,
                model=scored.model_version,
                priority=rules.priority(scores),
                created_at_ms=to_ms(submission.created_at) if submission.created_at else now,
                now_ms=now,
                event_id=new_event_id(),
                event_type=EVENT_TYPES[verdict.state],
                edit_sources=sources_argument(Event.EDIT),
                windows=[window for _, window in windows],
                assumed=observation,
                min_approved=policy.new_author_min_approved,
                rules=SiteRules.of(policy),
                # A text in a language the model does not read is not scored by either stage.
                second_look=self.second_look and scored.semantic and detected.supported,
                article_title=submission.article.title,
                article_url=submission.article.url,
            )
            try:
                outcome, comment = await self.store.write_intake(site_id, write)
            except StaleContextError as stale:
                observation = stale.observed
                continue
            return IngestResult(
                comment=comment, created=outcome != "unchanged", edited=outcome == "edited"
            )
        raise Conflict("the comment's context kept changing while it was moderated; retry")

    async def assess(self, site_id: str, text: str) -> tuple[rules.Verdict, Scored]:
        """The verdict the site's policy would give ``text`` as a new comment of an author in
        good standing, scored like intake but written nowhere (Akismet's ``is_test`` checks)."""
        policy = (await self._site_record(site_id)).site.policy
        detected = language.detect(text)
        scored = await self._score_if_readable(text, detected, site_id)
        context = rules.PolicyContext(text=text, language_supported=detected.supported)
        return rules.decide(scored.scores, context, policy, scored.thresholds), scored

    async def _score_if_readable(
        self, text: str, detected: language.Detected, site_id: str
    ) -> Scored:
        """The model's scores, or none for a text in a language it does not read: scoring
        German as English gives confident nonsense (0.69 toxicity for a civil remark)."""
        if detected.supported:
            return await self._score(text, await self._site_model(site_id))
        return Scored({}, self.scorer.model_version, self.thresholds)

    async def _site_model(self, site_id: str) -> SiteRef | None:
        if self.site_models is None:
            return None
        return site_id, await self.site_models.of(site_id)

    async def _score_naming_active_model(self, text: str, site: SiteRef | None) -> Scored:
        scores = await self.scorer.score(text)
        return Scored(scores, self.scorer.model_version, self.thresholds)

    def _windows(
        self, site_id: str, submission: Submission, policy: Policy
    ) -> list[tuple[WindowKind, Window]]:
        """The flood and duplicate windows the site's policy turns on, each with its key."""
        keys = self.store.keys
        author_id = submission.author.id
        windows: list[tuple[WindowKind, Window]] = []
        if policy.flood_seconds_per_author:
            key = keys.author_flood(site_id, author_id)
            windows.append(
                ("author_flood", Window(key, policy.flood_seconds_per_author * 1000, True))
            )
        if submission.author.ip is not None and policy.flood_seconds_per_ip:
            key = keys.ip_flood(site_id, str(submission.author.ip))
            windows.append(("ip_flood", Window(key, policy.flood_seconds_per_ip * 1000, True)))
        if policy.duplicate_window_seconds:
            text_key = sha256_hex(_duplicate_form(submission.text))
            key = keys.duplicate(site_id, author_id, text_key)
            windows.append(
                ("duplicate", Window(key, policy.duplicate_window_seconds * 1000, False))
            )
        return windows

    async def put_article(self, site_id: str, article_id: str, spec: ArticleSpec) -> Article:
        same_target(article_id, "article", spec.id, "id")
        await self._site_record(site_id)
        return await self.store.put_article(site_id, article_id, spec, self._now_ms())

    # ------------------------------------------------------------------ moderators

    async def list_queue(self, site_id: str, query: QueueQuery) -> QueuePage:
        await self._site_record(site_id)
        page = await self.store.page(site_id, query, self._now_ms())
        return page.model_copy(update={"items": await self._named(site_id, page.items)})

    async def list_comments(self, site_id: str, query: CommentQuery) -> QueuePage:
        """Comments in one state, the latest decided first (the console's browse view)."""
        policy = (await self._site_record(site_id)).site.policy
        page = await self.store.comments(
            site_id, query, self._now_ms(), retention_ms=policy.retention_days * DAY_MS
        )
        return page.model_copy(update={"items": await self._named(site_id, page.items)})

    async def _named(self, site_id: str, comments: Sequence[Comment]) -> tuple[Comment, ...]:
        """The comments with the names of the people who decided, claimed and changed them."""
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        return tuple(
            comment.model_copy(
                update={
                    "decided_by_name": names.get(comment.decided_by),
                    "claimed_by_name": names.get(comment.claimed_by or ""),
                    "history": None
                    if comment.history is None
                    else tuple(
                        entry.model_copy(update={"actor_name": names.get(entry.actor)})
                        for entry in comment.history
                    ),
                }
            )
            for comment in comments
        )

    async def latest_event_id(self, site_id: str) -> str:
        """Where a new event stream of the site starts: after everything already recorded."""
        await self._site_record(site_id)
        return await self.store.latest_event_id(site_id)

    async def events_after(
        self, site_id: str, after_id: str, *, block_ms: int
    ) -> tuple[str, list[LiveEvent]]:
        """The site's changes and claims after ``after_id``, waiting up to ``block_ms`` (more
        than 0) for one; and the id to continue from."""
        entries = await self.store.events_after(site_id, after_id, block_ms=block_ms)
        if not entries:
            return after_id, []
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        return entries[-1][0], [live_event(entry_id, fields, names) for entry_id, fields in entries]

    async def claim(self, site_id: str, moderator_id: str, request: ClaimRequest) -> list[Comment]:
        """Up to ``request.limit`` unclaimed comments in queue order, leased to the caller."""
        await self._site_record(site_id)
        claimed = await self.store.claim(
            site_id,
            moderator_id,
            request.queue,
            request.order,
            request.limit,
            request.lease_seconds * 1000,
            self._now_ms(),
        )
        return list(await self._named(site_id, claimed))

    async def claim_comment(
        self, site_id: str, moderator_id: str, comment_id: str, request: CommentClaimRequest
    ) -> Comment:
        """Lease one chosen queued comment to the caller; ClaimConflict names who holds it."""
        await self._site_record(site_id)
        try:
            claimed = await self.store.claim_comment(
                site_id, moderator_id, comment_id, request.lease_seconds * 1000, self._now_ms()
            )
        except ClaimConflict as conflict:
            await self._name_holder(site_id, conflict)
            raise
        [named] = await self._named(site_id, [claimed])
        return named

    async def _name_holder(self, site_id: str, conflict: ClaimConflict) -> None:
        # Whoever meets the conflict should read who holds the comment, not an id.
        holder = conflict.details["claimed_by"]
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        conflict.details = {**conflict.details, "claimed_by_name": names.get(holder)}

    async def release(self, site_id: str, moderator_id: str, ids: list[str] | None) -> list[str]:
        await self._site_record(site_id)
        return await self.store.release(site_id, moderator_id, ids, self._now_ms())

    async def decide(
        self,
        site_id: str,
        comment_id: str,
        decision: Decision,
        actor: str,
        *,
        learn: bool = True,
        event_seed: str | None = None,
    ) -> Comment:
        """Apply a moderator's decision; raises VersionConflict, ClaimConflict or NotFound.

        The decision is then kept as a training label (when this object has a label log and
        ``learn``: a ban's rejections judge the author, not each text). ``event_seed`` (a
        request's idempotency seed) makes the event id the same on every retry of the request,
        so a retry after an unknown outcome finds its change made and sends no second event."""
        policy = (await self._site_record(site_id)).site.policy
        event = event_for(decision.action)
        target = decided_state(event)
        write = DecisionWrite(
            comment_id=comment_id,
            target=target,
            action=decision.action.value,
            actor=actor,
            expected_version=decision.version,
            reasons=[decision.reason] if decision.reason else [],
            note=decision.note,
            now_ms=self._now_ms(),
            event_id=new_event_id() if event_seed is None else event_id(event_seed, comment_id),
            event_type=EVENT_TYPES[target],
            sources=sources_argument(event),
            rules=SiteRules.of(policy),
        )
        try:
            comment = await self.store.decide(site_id, write)
        except ClaimConflict as conflict:
            await self._name_holder(site_id, conflict)
            raise
        if learn:
            await self._record_label(site_id, comment, decision, policy)
        [named] = await self._named(site_id, [comment])
        return named

    async def _record_label(
        self, site_id: str, comment: Comment, decision: Decision, policy: Policy
    ) -> None:
        if self.labels is None:
            return
        # Kept even when it teaches nothing: an undo must withdraw what the first decision taught.
        labels = reasons.teaches(decision.action, decision.reason)
        confirmed = all(
            rules.flagged(comment.scores, self.thresholds, policy, spam=label == rules.SPAM_LABEL)
            == bool(value)
            for label, value in labels.items()
        )
        try:
            await self.labels.record(
                site_id,
                comment.text,
                labels,
                "moderator.confirmed" if confirmed else "moderator.corrected",
                comment.model,
                comment_id=comment.id,
                reason=decision.reason,
                author_id=comment.author.id,
                at=comment.decided_at,
            )
        except StoreUnavailable:
            # The decision is stored and must be answered as such: a 503 would invite a retry
            # that decides again. A lost label costs one training row.
            log.warning("decision on %s/%s kept, its training label lost", site_id, comment.id)

    async def decide_many(
        self, site_id: str, decisions: BulkDecision, actor: str, *, event_seed: str | None = None
    ) -> list[DecisionOutcome]:
        """Each decision on its own: one failing item (conflict, unknown id) spares the others."""
        await self._site_record(site_id)
        outcomes = []
        for item in decisions.decisions:
            decision = Decision(
                action=item.action, reason=item.reason, note=item.note, version=item.version
            )
            try:
                comment = await self.decide(
                    site_id, item.id, decision, actor, event_seed=event_seed
                )
            except CivilityError as error:
                outcomes.append(
                    DecisionOutcome(id=item.id, ok=False, error=error.to_json()["error"])
                )
            else:
                outcomes.append(DecisionOutcome(id=item.id, ok=True, comment=comment))
        return outcomes

    # ------------------------------------------------------------------ readers

    async def report(self, site_id: str, comment_id: str, spec: ReportSpec) -> ReportOutcome:
        """Count a reader's report (once per reader); at the site's threshold the published
        comment enters the ``reported`` queue and a ``comment.reported`` event goes out."""
        same_target(comment_id, "comment", spec.comment_id, "comment_id")
        policy = (await self._site_record(site_id)).site.policy
        now = self._now_ms()
        write = ReportWrite(
            comment_id=comment_id,
            report=Report(
                reporter_id=spec.reporter_id, reason=spec.reason, note=spec.note, at=from_ms(now)
            ),
            threshold=policy.report_threshold,
            now_ms=now,
            event_id=new_event_id(),
            event_type=REPORTED_EVENT_TYPE,
            sources=sources_argument(Event.REPORT),
        )
        return await self.store.report(site_id, write)

    # ------------------------------------------------------------------ authors

    async def author(self, site_id: str, author_id: str) -> AuthorView:
        """Counts, status and standing of an author the site has seen (or set a status for)."""
        policy = (await self._site_record(site_id)).site.policy
        now = self._now_ms()
        stored = await self.store.author(
            site_id, author_id, now - policy.author_recent_days * DAY_MS
        )
        fields = stored.fields
        if not fields:
            raise NotFound(f"author {author_id!r} not found")
        status = AuthorStatus(fields.get("status") or AuthorStatus.ACTIVE)
        counts = AuthorCounts(
            approved=int(fields.get("approved", 0)),
            rejected=int(fields.get("rejected", 0)),
            spam=int(fields.get("spam", 0)),
            pending=int(fields.get("pending", 0)),
        )
        decided, rejected = stored.recent_decided, stored.recent_rejected
        recent = RecentDecisions(
            days=policy.author_recent_days,
            decided=decided,
            rejected=rejected,
            rejection_rate=rejected / decided if decided else None,
        )
        return AuthorView(
            id=author_id,
            site_id=site_id,
            status=status,
            status_reason=fields.get("status_reason") or None,
            status_by=fields.get("status_by") or None,
            status_at=from_ms(fields["status_at"]) if fields.get("status_at") else None,
            trust=_trust(status, counts, recent, policy),
            counts=counts,
            recent=recent,
            first_seen=from_ms(fields["first_seen"]) if fields.get("first_seen") else None,
            last_seen=from_ms(fields["last_seen"]) if fields.get("last_seen") else None,
        )

    async def set_author_status(
        self, site_id: str, author_id: str, change: AuthorStatusChange, actor: str
    ) -> AuthorStatusOutcome:
        """Set the author's status; with ``reject_pending``, a ban also rejects each of the
        author's held comments through the decision path (history, outbox, counters, label)."""
        await self._site_record(site_id)
        checked_id(author_id, "author")
        if change.reject_pending and change.status is not AuthorStatus.BANNED:
            raise ValidationFailed(
                [("reject_pending", "only a ban can reject the author's held comments")]
            )
        await self.store.set_author_status(
            site_id, author_id, change.status, change.reason, actor, self._now_ms()
        )
        rejected: list[str] = []
        failed: list[DecisionOutcome] = []
        remaining = 0
        if change.reject_pending:
            held = await self.store.pending_of_author(site_id, author_id)
            remaining = max(0, len(held) - MAX_BAN_REJECTIONS)
            decision = Decision(action=Action.REJECT, reason=change.reason or "AUTHOR_BANNED")
            for comment_id in held[:MAX_BAN_REJECTIONS]:
                try:
                    await self.decide(site_id, comment_id, decision, actor, learn=False)
                except CivilityError as error:
                    failed.append(
                        DecisionOutcome(id=comment_id, ok=False, error=error.to_json()["error"])
                    )
                else:
                    rejected.append(comment_id)
        return AuthorStatusOutcome(
            author=await self.author(site_id, author_id),
            rejected=tuple(rejected),
            failed=tuple(failed),
            remaining=remaining,
        )

    async def get_comment(self, site_id: str, comment_id: str) -> Comment:
        await self._site_record(site_id)
        [comment] = await self._named(
            site_id, [await self.store.comment(site_id, comment_id, self._now_ms())]
        )
        return comment

    async def stats(self, site_id: str) -> SiteStats:
        await self._site_record(site_id)
        return await self.store.stats(site_id, self._now_ms())


def _policy_context(
    text: str,
    observation: Observation,
    windows: list[tuple[WindowKind, Window]],
    detected: language.Detected,
) -> rules.PolicyContext:
    taken = {
        kind for (kind, _), flag in zip(windows, observation.windows_taken, strict=True) if flag
    }
    # Flood intervals count postings; an edit is not another posting.
    flood = not observation.edit
    return rules.PolicyContext(
        text=text,
        author_status=observation.author_status,
        author_approved=observation.author_approved,
        article_closed=observation.article_closed,
        article_premod=observation.article_premod,
        duplicate="duplicate" in taken,
        author_flood=flood and "author_flood" in taken,
        ip_flood=flood and "ip_flood" in taken,
        language_supported=detected.supported,
    )


def _trust(
    status: AuthorStatus, counts: AuthorCounts, recent: RecentDecisions, policy: Policy
) -> Literal["banned", "trusted", "premod", "new", "regular"]:
    """The rule the author's next comment meets, in the order the policy applies them."""
    if status is AuthorStatus.BANNED:
        return "banned"
    if status is AuthorStatus.TRUSTED:
        return "trusted"
    if status is AuthorStatus.PREMOD:
        return "premod"
    rate = policy.author_premod_rejection_rate
    if (
        rate > 0
        and recent.rejection_rate is not None
        and recent.decided >= policy.author_premod_min_decisions
        and recent.rejection_rate >= rate
    ):
        return "premod"
    if counts.approved < policy.new_author_min_approved:
        return "new"
    return "regular"


def _duplicate_form(text: str) -> str:
    """Texts that differ only in case or spacing count as the same text."""
    return _SPACES.sub(" ", text).strip().casefold()


def _policy_error(error: ValueError) -> ValidationFailed:
    if isinstance(error, ValidationError):
        return ValidationFailed.from_pydantic(error, prefix="policy")
    return ValidationFailed([("policy", str(error))])
