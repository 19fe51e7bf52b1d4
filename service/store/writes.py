"""The store's state changes of comments: intake, decisions, reports, claims."""

import json
from collections.abc import Mapping, Sequence

from service.domain import (
    Article,
    ArticleSpec,
    AuthorStatus,
    Comment,
    CommentArticle,
    Order,
    Queue,
    ReportOutcome,
    State,
)
from service.errors import (
    ClaimConflict,
    ErasureRunning,
    InvalidTransition,
    NotFound,
    SiteNotFound,
    Unauthorized,
    ValidationFailed,
    VersionConflict,
)
from service.store.records import (
    DecisionWrite,
    IntakeWrite,
    Observation,
    ReportWrite,
    StaleContextError,
)
from service.store.rows import (
    comment_from_fields,
    encode_evidence,
    encode_scores,
    flatten,
    pairs,
)
from service.store.scripts import ScriptedStore
from service.times import from_ms, hour_bucket, iso_from_ms

REVOKED = "revoked"
"""A claim script's answer for a moderator revoked since its token was checked: nothing leased."""
REVOKED_MESSAGE = "invalid moderator token"
"""What the token check answers it: the revocation is what a later request would meet."""

_IMMUTABLE = {
    "article.id": "an existing comment cannot move to another article",
    "author.id": "an existing comment cannot change its author",
    "parent_id": "an existing comment cannot answer another comment",
}


class CommentWrites(ScriptedStore):
    """Each state change one script call: articles, intake, decisions, reports, author
    statuses and claims."""

    # ------------------------------------------------------------------ articles

    async def put_article(
        self, site_id: str, article_id: str, spec: ArticleSpec, now_ms: int
    ) -> Article:
        fields: dict[str, str | int] = {"id": article_id}
        if spec.url is not None:
            fields["url"] = spec.url
        if spec.title is not None:
            fields["title"] = spec.title
        fields |= {"closed": int(spec.closed), "premod": int(spec.premod), "updated_at": now_ms}
        keys = [self.keys.article(site_id, article_id), self.keys.site(site_id)]
        if not await self._run("put_article", keys, flatten(fields)):
            raise SiteNotFound(site_id)
        return Article(
            id=article_id,
            url=spec.url,
            title=spec.title,
            closed=spec.closed,
            premod=spec.premod,
            updated_at=from_ms(now_ms),
        )

    # ------------------------------------------------------------------ intake

    async def write_intake(self, site_id: str, write: IntakeWrite) -> tuple[str, Comment]:
        """Run the ingest script; the outcome is ``created``, ``edited`` or ``unchanged``.

        Raises ``StaleContextError`` (nothing written) when the comment, author, article or windows
        are not as ``write.assumed`` says, ``ErasureRunning`` (nothing written) for a new comment
        of an author being erased."""
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.author(site_id, write.author.id),
            self.keys.article(site_id, write.article_id),
            self.keys.stats(site_id),
            self.keys.hourly_stats(site_id, hour_bucket(write.now_ms)),
            self.keys.lease(site_id, write.comment_id),
            *(window.key for window in write.windows),
        ]
        args: list[str | int | float] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.text_hash,
            write.article_id,
            write.parent_id or "",
            write.author.id,
            write.author.model_dump_json(exclude_none=True),
            write.text,
            write.lang or "",
            write.state.value,
            # Most comments are published without a reason: their list needs no encoder.
            json.dumps(list(write.reasons)) if write.reasons else "[]",
            encode_scores(write.scores),
            encode_evidence(write.evidence),
            write.model,
            repr(write.priority),
            write.created_at_ms,
            write.now_ms,
            write.event_id,
            write.event_type,
            write.edit_sources,
            write.assumed.signature(write.min_approved),
            write.min_approved,
            "".join("n" if window.new_only else "a" for window in write.windows),
            write.rules.retention_ms,
            write.rules.recent_window_ms,
            repr(write.rules.premod_rejection_rate),
            write.rules.premod_min_decisions,
            "1" if write.second_look else "0",
            write.article_title or "",
            write.article_url or "",
            "" if write.edited_at_ms is None else write.edited_at_ms,
            *(window.ttl_ms for window in write.windows),
        ]
        reply = await self._run("ingest", keys, args)
        outcome = reply[0]
        if outcome == "gone":
            raise SiteNotFound(site_id)
        if outcome == "immutable":
            raise ValidationFailed((field, _IMMUTABLE[field]) for field in reply[1:])
        if outcome == "erasing":
            raise ErasureRunning(int(reply[1]))
        if outcome == "invalid_transition":
            raise InvalidTransition(f"a comment in state {reply[1]} cannot be edited")
        if outcome == "context":
            raise StaleContextError(Observation.observed(reply[1], reply[2]))
        if outcome == "unchanged":
            return outcome, comment_from_fields(pairs(reply[1]))
        now = from_ms(write.now_ms)
        return outcome, Comment(
            id=write.comment_id,
            article_id=write.article_id,
            article=CommentArticle(
                id=write.article_id, title=reply[3] or None, url=reply[4] or None
            ),
            parent_id=write.parent_id,
            author=write.author,
            text=write.text,
            state=write.state,
            reasons=tuple(write.reasons),
            scores=dict(write.scores),
            evidence={label: tuple(spans) for label, spans in write.evidence.items()},
            model=write.model,
            version=int(reply[1]),
            decided_by=f"auto:{write.model}",
            decided_at=now,
            created_at=from_ms(reply[2]),
            updated_at=now,
            edited_at=None if write.edited_at_ms is None else from_ms(write.edited_at_ms),
            lang=write.lang,
            priority=write.priority,
            queued_at=from_ms(float(reply[5])) if reply[5] else None,
        )

    async def attach_evidence(
        self,
        site_id: str,
        comment_id: str,
        text_hash: str,
        evidence: Mapping[str, Sequence[tuple[int, int]]],
        now_ms: int,
    ) -> bool:
        """Store evidence worked out after the verdict on the text of sha256 ``text_hash``,
        and tell the site's live events when it changes what the comment had; False (nothing
        written) when the comment no longer holds that text or its site was deleted. A decision
        made meanwhile leaves the text, so the evidence is stored."""
        keys = [
            self.keys.comment(site_id, comment_id),
            self.keys.audit(site_id),
            self.keys.site(site_id),
        ]
        args: list[str | int | float] = [text_hash, encode_evidence(evidence), comment_id, now_ms]
        return bool(await self._run("attach_evidence", keys, args))

    # ------------------------------------------------------------------ moderation

    async def decide(self, site_id: str, write: DecisionWrite) -> Comment:
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.lease(site_id, write.comment_id),
            self.keys.stats(site_id),
            self.keys.hourly_stats(site_id, hour_bucket(write.now_ms)),
            self.keys.claims(site_id, write.actor),
        ]
        if write.ban_of is not None:
            keys.append(self.keys.ban_rejections(site_id, write.ban_of))
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.target.value,
            write.action,
            write.actor,
            "" if write.expected_version is None else write.expected_version,
            json.dumps(list(write.reasons)),
            json.dumps(write.note),
            write.now_ms,
            write.event_id,
            write.event_type,
            write.sources,
            write.rules.retention_ms,
            write.rules.recent_window_ms,
            write.remember_ms,
        ]
        args += ["", ""] if write.coral_call is None else list(write.coral_call)
        reply = await self._run("decide", keys, args)
        outcome = reply[0]
        if outcome == "gone":
            raise SiteNotFound(site_id)
        if outcome == "not_found":
            raise NotFound(f"comment {write.comment_id!r} not found")
        if outcome == "version_conflict":
            raise VersionConflict(
                f"comment {write.comment_id!r} changed since version {write.expected_version}: "
                f"it is at version {reply[1]}, now {reply[2]}; read it again, and send version "
                f"{reply[1]} to decide it as it stands",
                {"current_version": int(reply[1]), "state": reply[2]},
            )
        if outcome == "claim_conflict":
            raise _claim_conflict(write.comment_id, reply[1], write.now_ms + int(reply[2]))
        if outcome == "invalid_transition":
            raise InvalidTransition(f"cannot {write.action} a comment in state {reply[1]}")
        return comment_from_fields(pairs(reply[1]))

    async def report(self, site_id: str, write: ReportWrite) -> ReportOutcome:
        """Store a reader's report; the report reaching the threshold queues the comment.
        Raises ``ErasureRunning`` (nothing written) while the reader's erasure runs."""
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.reports(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.queue_index(site_id, Queue.REPORTED, Order.OLDEST),
            self.keys.site(site_id),
        ]
        stored = write.report.model_dump_json(include={"reason", "note", "at"})
        assert write.report.reporter_id is not None, "a new report names its reader"
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.report.reporter_id,
            stored,
            write.threshold,
            write.now_ms,
            write.event_id,
            write.event_type,
            write.sources,
        ]
        reply = await self._run("report", keys, args)
        outcome = reply[0]
        if outcome == "gone":
            raise SiteNotFound(site_id)
        if outcome == "erasing":
            raise ErasureRunning(int(reply[1]))
        if outcome == "not_found":
            raise NotFound(f"comment {write.comment_id!r} not found")
        if outcome == "invalid_transition":
            raise InvalidTransition(
                f"only published comments can be reported; this one is {reply[1]}",
                {"state": reply[1]},
            )
        return ReportOutcome(
            comment_id=write.comment_id,
            state=State(reply[1]),
            reports=int(reply[2]),
            threshold=write.threshold,
            reported=reply[3] == 1,
            counted=outcome == "counted",
        )

    # ------------------------------------------------------------------ authors

    async def set_author_status(
        self,
        site_id: str,
        author_id: str,
        status: AuthorStatus,
        reason: str | None,
        actor: str,
        now_ms: int,
    ) -> bool:
        """Set the author's status; False (nothing written) when they already had it, with the
        same reason."""
        keys = [
            self.keys.author(site_id, author_id),
            self.keys.audit(site_id),
            self.keys.site(site_id),
            self.keys.ban_rejections(site_id, author_id),
        ]
        args = [author_id, status.value, reason or "", actor, now_ms]
        reply = await self._run("author_status", keys, args)
        if reply is None:
            raise SiteNotFound(site_id)
        return bool(reply[1])

    # ------------------------------------------------------------------ claims

    async def claim(
        self,
        site_id: str,
        moderator_id: str,
        queue: Queue,
        order: Order,
        limit: int,
        lease_ms: int,
        now_ms: int,
        *,
        article: str | None = None,
        author: str | None = None,
        reason: str | None = None,
        batch_id: str = "",
        remember_ms: int = 0,
    ) -> list[Comment]:
        """Up to ``limit`` unclaimed comments of the queue's index, narrowed to one article, one
        author or both, and to one reason, as the listing's is, leased to the moderator.

        With a ``batch_id`` the ids leased are remembered under it for ``remember_ms``, and a
        call with the same id leases nothing more: it answers the comments of that batch the
        moderator still holds, each with its own lease end."""
        walked, *other = self.keys.queue_scope(
            site_id, queue, order, article=article, author=author, reason=reason
        )
        keys = [walked, self.keys.claims(site_id, moderator_id), self.keys.audit(site_id), *other]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            moderator_id,
            limit,
            lease_ms,
            now_ms,
            int(order is Order.PRIORITY),
            batch_id,
            remember_ms,
        ]
        reply = await self._run("claim", keys, args)
        if reply is None:
            raise SiteNotFound(site_id)
        if reply == REVOKED:
            raise Unauthorized(REVOKED_MESSAGE)
        return [
            comment_from_fields(
                pairs(fields), claimed_by=moderator_id, lease_until=from_ms(now_ms + int(left))
            )
            for _, fields, left in reply
            if fields
        ]

    async def claim_comment(
        self, site_id: str, moderator_id: str, comment_id: str, lease_ms: int, now_ms: int
    ) -> Comment:
        """Lease one queued comment to the moderator (renewing a lease it holds); raises
        NotFound, ClaimConflict, or InvalidTransition for a comment in no queue."""
        keys = [
            self.keys.comment(site_id, comment_id),
            self.keys.lease(site_id, comment_id),
            self.keys.claims(site_id, moderator_id),
            self.keys.audit(site_id),
            self.keys.queue_index(site_id, Queue.PENDING, Order.OLDEST),
            self.keys.queue_index(site_id, Queue.REPORTED, Order.OLDEST),
        ]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            moderator_id,
            comment_id,
            lease_ms,
            now_ms,
        ]
        reply = await self._run("claim_comment", keys, args)
        outcome = reply[0]
        if outcome == "gone":
            raise SiteNotFound(site_id)
        if outcome == REVOKED:
            raise Unauthorized(REVOKED_MESSAGE)
        if outcome == "not_found":
            raise NotFound(f"comment {comment_id!r} not found")
        if outcome == "not_queued":
            raise InvalidTransition(
                f"comment {comment_id!r} is {reply[1]} and in no queue: only a queued comment "
                "can be claimed"
            )
        if outcome == "claim_conflict":
            raise _claim_conflict(comment_id, reply[1], now_ms + int(reply[2]))
        return comment_from_fields(
            pairs(reply[1]), claimed_by=moderator_id, lease_until=from_ms(now_ms + lease_ms)
        )

    async def release(
        self, site_id: str, moderator_id: str, ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        keys = [self.keys.claims(site_id, moderator_id), self.keys.audit(site_id)]
        args: list[str | int] = [self.keys.site_prefix(site_id), moderator_id, now_ms, *(ids or ())]
        if ids is not None and not ids:
            return []
        released: list[str] | None = await self._run("release", keys, args)
        if released is None:
            raise SiteNotFound(site_id)
        return released


def _claim_conflict(comment_id: str, holder: str, lease_until_ms: int) -> ClaimConflict:
    """Who holds the comment, and until when: what the caller waits for before deciding it."""
    lease_until = iso_from_ms(lease_until_ms)
    return ClaimConflict(
        f"comment {comment_id!r} is claimed by another moderator until {lease_until}: it can be "
        "decided once they release it or their lease ends",
        {"claimed_by": holder, "lease_until": lease_until},
    )
