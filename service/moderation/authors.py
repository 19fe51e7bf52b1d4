"""Authors: their counts, status and standing, and a ban that rejects their held comments."""

from typing import Literal

from service.domain import (
    Action,
    AuthorCounts,
    AuthorStatus,
    AuthorStatusChange,
    AuthorStatusOutcome,
    AuthorView,
    Decision,
    DecisionOutcome,
    Policy,
    RecentDecisions,
)
from service.errors import (
    CivilityError,
    InvalidTransition,
    NotFound,
    SiteNotFound,
    ValidationFailed,
)
from service.moderation.decisions import Decisions, unavailable
from service.path_ids import checked_id
from service.store.records import SiteRules
from service.times import from_ms
from service.transitions import Event

MAX_BAN_REJECTIONS = 1_000
"""Held comments one ban rejects at most; more (a flood) are left for the queue's bulk actions."""


class Authors(Decisions):
    """An author's view and status changes (a ban's rejections go through ``decide``)."""

    async def author(self, site_id: str, author_id: str) -> AuthorView:
        """Counts, status and standing of an author the site has seen (or set a status for)."""
        policy = (await self._site_record(site_id)).site.policy
        now = self._now_ms()
        stored = await self.store.author(site_id, author_id, now, SiteRules.of(policy))
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
            trust=_trust(stored.standing, counts, policy),
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
        changed = await self.store.set_author_status(
            site_id, author_id, change.status, change.reason, actor, self._now_ms()
        )
        failed: list[DecisionOutcome] = []
        rejected_now: list[str] = []
        remaining = 0
        if change.reject_pending:
            held = await self.store.pending_of_author(site_id, author_id)
            remaining = max(0, len(held) - MAX_BAN_REJECTIONS)
            decision = Decision(action=Action.REJECT, reason=change.reason or "AUTHOR_BANNED")
            for comment_id in held[:MAX_BAN_REJECTIONS]:
                try:
                    await self.decide(
                        site_id,
                        comment_id,
                        decision,
                        actor,
                        learn=False,
                        transition=Event.BAN,
                        ban_of=author_id,
                    )
                    rejected_now.append(comment_id)
                except InvalidTransition:
                    continue  # decided since it was listed: no longer the ban's to reject
                except CivilityError as error:
                    # Redis unavailable fails the ban (503, its key given back): its retry
                    # rejects the comments still held, instead of replaying this one failed.
                    # So does the site deleted meanwhile (404, its answer not kept): every
                    # later comment would meet it.
                    if unavailable(error) or isinstance(error, SiteNotFound):
                        raise
                    failed.append(
                        DecisionOutcome(id=comment_id, ok=False, error=error.to_json()["error"])
                    )
        # Every comment the standing ban rejected, not only this call's: a retry after a lost
        # answer finds the author banned and their held comments already rejected, and its
        # client must still learn which.
        rejected: list[str] = []
        if change.status is AuthorStatus.BANNED:
            rejected = await self.store.ban_rejections(site_id, author_id)
        return AuthorStatusOutcome(
            author=await self.author(site_id, author_id),
            already_set=not changed,
            rejected=tuple(rejected),
            rejected_now=tuple(rejected_now),
            failed=tuple(failed),
            remaining=remaining,
        )


_SET_OR_EARNED: dict[AuthorStatus, Literal["banned", "trusted", "premod"]] = {
    AuthorStatus.BANNED: "banned",
    AuthorStatus.TRUSTED: "trusted",
    AuthorStatus.PREMOD: "premod",
}


def _trust(
    standing: AuthorStatus, counts: AuthorCounts, policy: Policy
) -> Literal["banned", "trusted", "premod", "new", "regular"]:
    """The rule the author's next comment meets, in the order the policy applies them: its
    standing (decided by the store's script, as intake decides it), then the new-author rule."""
    if standing is not AuthorStatus.ACTIVE:
        return _SET_OR_EARNED[standing]
    if counts.approved < policy.new_author_min_approved:
        return "new"
    return "regular"
