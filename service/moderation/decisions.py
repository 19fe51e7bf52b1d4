"""Decisions of moderators (each kept as a training label) and readers' reports."""

import logging

from service import policy as rules
from service import reasons
from service.domain import (
    BulkDecision,
    Comment,
    Decision,
    DecisionOutcome,
    Policy,
    Report,
    ReportOutcome,
    ReportSpec,
)
from service.errors import CivilityError, ClaimConflict, SiteNotFound, StoreUnavailable
from service.idempotency import KEEP_MS, event_id
from service.moderation.base import ModerationBase
from service.moderation.tokens import new_event_id
from service.path_ids import same_target
from service.store.records import DecisionWrite, ReportWrite, SiteRules
from service.times import from_ms
from service.transitions import (
    EVENT_TYPES,
    REPORTED_EVENT_TYPE,
    Event,
    decided_state,
    event_for,
    sources_argument,
)

log = logging.getLogger(__name__)


class Decisions(ModerationBase):
    """A decision or a report is one script call; a decision's label is kept after it."""

    async def decide(
        self,
        site_id: str,
        comment_id: str,
        decision: Decision,
        actor: str,
        *,
        learn: bool = True,
        event_seed: str | None = None,
        transition: Event | None = None,
        ban_of: str | None = None,
        coral_call: tuple[int, str] | None = None,
    ) -> Comment:
        """Apply a moderator's decision; raises VersionConflict, ClaimConflict or NotFound.

        The decision is then kept as a training label (when this object has a label log and
        ``learn``: a ban's rejections judge the author, not each text). ``event_seed`` (a
        request's idempotency seed) makes the event id the same on every retry of the request,
        so a retry after an unknown outcome finds its change made, even once the comment changed
        again (decided by another, edited), and neither applies it again nor sends a second
        event. ``transition`` narrows the states the decision may start from (a ban's), and
        ``ban_of`` names the banned author whose ban's rejections list the comment.
        ``coral_call`` is the call into Coral a decision of Coral's moderators found in flight
        (see ``DecisionWrite``)."""
        policy = (await self._site_record(site_id)).site.policy
        event = transition or event_for(decision.action)
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
            remember_ms=0 if event_seed is None else KEEP_MS,
            ban_of=ban_of,
            coral_call=coral_call,
        )
        try:
            comment = await self.store.decide(site_id, write)
        except ClaimConflict as conflict:
            await self._name_holder(site_id, conflict)
            raise
        # A retry that finds its decision standing teaches again: the first call's label may
        # have been lost with its answer (a write an outage hid), and training counts a comment
        # once, by its latest label. One that finds the comment moved on since (another
        # moderator's decision, the host's edit) teaches nothing: the label would undo the later
        # one's, or judge a text the moderator never saw.
        if learn and _carries(comment, write):
            await self._record_label(site_id, comment, decision, policy)
        [named] = await self._named(site_id, [comment])
        return named

    async def _record_label(
        self, site_id: str, comment: Comment, decision: Decision, policy: Policy
    ) -> None:
        # An erased author's comment has no text left: nothing to learn from, and nothing of
        # theirs may go back into the training data.
        if self.labels is None or not comment.text:
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
        """Each decision on its own: one failing item (conflict, unknown id) spares the others.

        Redis unavailable fails the whole request (503) instead: an item's outcome is then
        unknown, and an answer naming it failed would be kept for the request's Idempotency-Key
        and replayed to every retry. The retry runs each item again, and finds made (by its
        event id) those that were. So does the site deleted meanwhile (404, as a single decision
        answers): every later item would meet it, and its answer is not kept."""
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
                if unavailable(error) or isinstance(error, SiteNotFound):
                    raise
                outcomes.append(
                    DecisionOutcome(id=item.id, ok=False, error=error.to_json()["error"])
                )
            else:
                outcomes.append(DecisionOutcome(id=item.id, ok=True, comment=comment))
        return outcomes

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


def unavailable(error: CivilityError) -> bool:
    """A failure of the service (Redis unavailable), not of the item: whether the item was
    written is unknown, so the whole request fails and its retry runs it again."""
    return error.status >= 500


def _carries(comment: Comment, write: DecisionWrite) -> bool:
    """The comment stands as ``write`` decides it: same state, moderator and reasons."""
    return (
        comment.state is write.target
        and comment.decided_by == write.actor
        and comment.reasons == tuple(write.reasons)
    )
