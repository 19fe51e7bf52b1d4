"""Coral Talk, both ways, as civility carries it out.

The external moderation phase moderates a Coral comment like intake; an EDIT updates the
comment it edits (by Coral's id when a Coral sends one, else the author's one comment in the
thread still within Coral's edit window, never a guess among several), so it is moderated again
instead of queued twice or taken for flood. Coral's webhooks link Coral's comment id and
revision to civility's comment (Coral's GraphQL API says whose it is) and apply what Coral's
moderators decided through the same decision path as civility's own moderators. The way back,
civility's decisions into Coral, is the worker's (``coral_sync``).
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from classifier.normalize import is_blank
from service.compat import coral, coral_graphql, coral_sync
from service.compat.coral_links import CoralIds, CoralLink, CoralLinks, keep_seconds
from service.compat.ids import external_id
from service.domain import Action, Comment, Decision, State, Submission
from service.errors import (
    ClaimConflict,
    ErasureRunning,
    NotFound,
    UpstreamUnavailable,
    VersionConflict,
)
from service.metrics import Metrics
from service.moderation import Moderation
from service.store.records import SiteRecord
from service.times import to_ms

log = logging.getLogger(__name__)

DECISIONS = {coral.APPROVED: Action.APPROVE, coral.REJECTED: Action.REJECT}
# Coral has no spam status: civility's spam reaches it as a rejection and comes back as one.
_ALREADY = {Action.APPROVE: {State.APPROVED}, Action.REJECT: {State.REJECTED, State.SPAM}}
_SENT_STATES = {State.APPROVED, State.REJECTED, State.SPAM}
"""The states a decision made in civility is carried into Coral for."""
UNSURE = (
    "Coral's comment reads as none of the author's comments civility has in the thread (or as "
    "several): civility cannot tell which it is, and decides none"
)
REOPENED = "civility's own decision coming back from Coral: the comment was reopened since"
OVERTAKEN = (
    "civility's own decision coming back from Coral: a later one of Coral's came during its call, "
    "and goes back to Coral"
)
SUGGESTION_TOKEN = "comment:"
"""What Coral's Perspective client puts before its comment id in a suggestion's clientToken."""


class CoralDesk:
    def __init__(
        self,
        moderation: Moderation,
        links: CoralLinks,
        metrics: Metrics,
        http: Callable[[], aiohttp.ClientSession],
        clock: Callable[[], float] = time.time,
        edit_window_seconds: int = 300,
        lookup_timeout_seconds: float = coral_graphql.TIMEOUT_SECONDS,
    ) -> None:
        """``edit_window_seconds``: how long after its author wrote it a comment is taken to be
        still editable in Coral (``CIVILITY_CORAL_EDIT_WINDOW_SECONDS``);
        ``lookup_timeout_seconds``: how long a webhook from Coral waits for Coral's GraphQL API
        to describe its comment (``CIVILITY_DELIVERY_TIMEOUT_SECONDS``, as the worker's calls)."""
        self.moderation = moderation
        self.links = links
        self.metrics = metrics
        self._http = http
        self._clock = clock
        self._edit_window_ms = edit_window_seconds * 1000
        self._lookup_timeout_seconds = lookup_timeout_seconds

    async def verify_phase(self, site_id: str, header: str | None, raw: bytes) -> None:
        secret = (await self.moderation.site_record(site_id)).coral_signing_secret
        coral.verify(header, raw, secret)

    async def verify_webhook(self, site_id: str, header: str | None, raw: bytes) -> None:
        secret = (await self.moderation.site_record(site_id)).coral_webhook_secret
        coral.verify(header, raw, secret, "webhook_secret")

    async def suggested(self, site_id: str, client_token: str | None) -> Comment | None:
        """The comment a Perspective suggestion from Coral is about, when civility has it: Coral
        names its comment in the clientToken (``comment:<its id>``), which its webhooks linked
        to ours or its phase stored ours under."""
        if not client_token or not client_token.startswith(SUGGESTION_TOKEN):
            return None
        coral_id = client_token[len(SUGGESTION_TOKEN) :]
        if not coral_id:
            return None
        for candidate in (
            await self.links.comment_of(site_id, coral_id),
            external_id(coral_id, "coral"),
        ):
            if candidate is None:
                continue
            try:
                return await self.moderation.get_comment(site_id, candidate)
            except NotFound:
                continue
        return None

    async def moderate(
        self, site_id: str, request: coral.ModerationRequest
    ) -> dict[str, Any] | None:
        """Coral's phase result for the comment; None means "nothing to say" (204)."""
        thread = coral.thread_of(request)
        if (withheld := coral.too_long(request)) is not None:
            await self._unstored(site_id, request, thread)
            return withheld
        now_ms = int(self._clock() * 1000)
        known: str | None = None
        ambiguous: list[str] = []
        if request.action == "EDIT" and not request.comment.id:
            recent = await self.links.recent(site_id, *thread)
            known, ambiguous = _edited(recent, now_ms - self._edit_window_ms)
        submission = coral.submission(request, known)
        if submission is None:
            if blanked := await self._blanked(site_id, request, [known] if known else ambiguous):
                # An edit that leaves a stored comment without text: civility cannot store it,
                # and its verdict on the text it has does not hold for none. Coral applies a
                # REJECTED phase answer to the edit (the comment is not published), and no
                # decision made in civility on the text it has may reach the blank one there.
                log.info("Coral EDIT on %s leaves a comment without text: rejected", site_id)
                record = await self.moderation.site_record(site_id)
                await self.links.unsure(site_id, blanked, keep_seconds(record))
                return {"status": coral.REJECTED}
            # Nothing to read or store (only spaces or invisible characters): the rules that
            # read no text still apply, so a pre-moderated site does not publish it.
            verdict = await self.moderation.assess_without_text(
                site_id, coral.article_id(request), coral.author_id(request)
            )
            return coral.verdict_response(verdict.state, tuple(r.value for r in verdict.reasons))
        if ambiguous:
            # Coral's EDIT names no comment, and the author may edit any of these: updating the
            # wrong one would leave the other's text unmoderated and this one's replaced. Nor
            # may a decision on the text civility has go to the edited text in Coral.
            log.info("Coral EDIT on %s matches several recent comments: withheld", site_id)
            record = await self.moderation.site_record(site_id)
            await self.links.unsure(site_id, ambiguous, keep_seconds(record))
            return {"status": coral.SYSTEM_WITHHELD}
        submission = await self._as_stored(site_id, submission, request.comment.body)
        try:
            result = await self.moderation.ingest(site_id, submission)
        except ErasureRunning:
            # Nothing of the author is stored while their erasure runs, and Coral, which sends a
            # phase once, publishes a comment whose phase fails: it waits for Coral's moderators.
            await self._unstored(site_id, request, thread)
            return {"status": coral.SYSTEM_WITHHELD}
        if result.created:
            self.metrics.observe_verdict(result.comment.state.value)
        record = await self.moderation.site_record(site_id)
        edited = result.comment.version if result.edited else None
        await self.links.mark(
            site_id,
            result.comment.id,
            thread,
            keep_seconds(record),
            now_ms,
            request.comment.body,
            edited,
        )
        return coral.response(result.comment)

    async def _as_stored(self, site_id: str, submission: Submission, body: str) -> Submission:
        """A comment stored before civility read Coral's tags and entities as text has the body
        as the phase sent it: that body sent again is the same text, not an edit of it."""
        if submission.text == body:
            return submission
        try:
            stored = await self.moderation.get_comment(site_id, submission.id)
        except NotFound:
            return submission
        if stored.text != body:
            return submission
        return submission.model_copy(update={"text": body})

    async def _blanked(
        self, site_id: str, request: coral.ModerationRequest, matched: list[str]
    ) -> list[str]:
        """The stored comments an EDIT without text may change: the one it names, else those it
        was matched to; none for a new comment."""
        if request.action != "EDIT":
            return []
        stored: list[str] = []
        for candidate in [coral.comment_id(request)] if request.comment.id else matched:
            try:
                await self.moderation.get_comment(site_id, candidate)
            except NotFound:
                continue
            stored.append(candidate)
        return stored

    async def _unstored(
        self, site_id: str, request: coral.ModerationRequest, thread: tuple[str, str, str | None]
    ) -> None:
        """A new comment withheld in Coral without being stored is the author's latest in the
        thread now: the one before is no longer, so that a webhook about this one, which names
        no comment civility has, is not taken for it."""
        if request.action == "NEW":
            await self.links.forget_thread(site_id, *thread)

    async def webhook(self, site_id: str, event: coral.WebhookEvent) -> dict[str, Any]:
        """What the event changed: the comment it links, and the decision it applied."""
        if event.type not in coral.WEBHOOK_EVENTS or not event.data.comment_id:
            return {"event": event.id, "applied": False, "reason": "not about a comment"}
        record = await self.moderation.site_record(site_id)
        unknown = "not a comment civility has"
        ids: CoralIds | None = None
        before: CoralLink | None = None
        try:
            comment_id, found, unsure, ids, before = await self._linked(
                site_id, record, event.data.comment_id, event
            )
        except UpstreamUnavailable as error:
            # Coral never sends a webhook again for an error status (only when it could not
            # reach us), and disables an endpoint after ten error answers in a row: a comment
            # linked before is decided all the same, any other one cannot be, and says why.
            log.warning("Coral webhook %s on %s: %s", event.id, site_id, error.message)
            comment_id, found = await self.links.comment_of(site_id, event.data.comment_id), None
            unknown, unsure = error.message, False
        if comment_id is None:
            reason = UNSURE if unsure else unknown
            return {"event": event.id, "applied": False, "reason": reason}
        try:
            return await self._applied(site_id, event, comment_id, found, before)
        finally:
            if ids is not None:
                # Linked once Coral's decision is recorded, not before: the link makes a
                # decision of civility's waiting for these ids due at once, and that attempt
                # must find this one, which may replace it (``CoralLinks.current``).
                now_ms = int(self._clock() * 1000)
                await self.links.link(site_id, comment_id, ids, keep_seconds(record), now_ms)

    async def _applied(
        self,
        site_id: str,
        event: coral.WebhookEvent,
        comment_id: str,
        found: coral_graphql.CoralComment | None,
        before: CoralLink | None,
    ) -> dict[str, Any]:
        """What the event decided of civility's ``comment_id``, which ``found`` is in Coral;
        ``before`` is its link as it stood before Coral was read."""
        answer: dict[str, Any] = {"event": event.id, "comment_id": comment_id, "applied": False}
        action = DECISIONS.get(event.data.status or "")
        if event.type != coral.LEFT_QUEUE or action is None:
            return answer
        if found is not None and found.status != event.data.status:
            # Coral sends a webhook again when its attempt timed out: a retried decision may come
            # after a later one (civility's, already carried into Coral) and must not undo it.
            answer["reason"] = f"Coral's comment is {found.status} now: a later decision"
            return answer
        try:
            comment = await self.moderation.get_comment(site_id, comment_id)
        except NotFound:
            return answer
        if comment.state in _ALREADY[action]:
            return answer  # civility's own decision coming back from Coral
        link = await self.links.of(site_id, comment_id)
        created_ms = event.created_ms()
        if link is not None and _echo_of_overtaken(comment, link, event.data.status, created_ms):
            # Coral applied civility's call after its moderators' decision, which civility
            # keeps and carries back into Coral: the call's webhook must not undo it here.
            answer["reason"] = OVERTAKEN
            return answer
        if link is not None and _echo_of_reopened(comment, link, event.data.status, created_ms):
            # A reopen is not carried into Coral, which keeps civility's decision: its webhook
            # about that decision, arriving late, must not decide the comment again.
            answer["reason"] = REOPENED
            return answer
        unread = found is None or _answered_since(before, link)
        if unread and link and created_ms is not None and created_ms < link.reached_at:
            # Coral's status could not be read, or was read before a call of civility's that
            # Coral answered since: a decision Coral dates before civility's latest one went
            # there is older (the echo of an earlier one of civility's, or Coral's own overtaken
            # by civility's), and must not undo it.
            answer["reason"] = "civility's later decision reached Coral after this one"
            return answer
        if (
            link is not None
            and _on_its_way(comment, link)
            and not _made_during_call(comment, link, event.data.status, created_ms)
        ):
            # Coral does not have civility's latest decision yet: this one of Coral's (or the
            # echo of an earlier one of civility's) is older, and civility's replaces it there.
            answer["reason"] = "a later decision made in civility is on its way to Coral"
            return answer
        decided = await self._decide(site_id, comment, action, _call_during(before, link))
        if decided is not None:
            answer.update(applied=True, state=decided.state.value)
        return answer

    async def _linked(
        self, site_id: str, record: SiteRecord, coral_id: str, event: coral.WebhookEvent
    ) -> tuple[
        str | None, coral_graphql.CoralComment | None, bool, CoralIds | None, CoralLink | None
    ]:
        """Civility's comment for Coral's id, the comment as Coral's GraphQL API has it now
        (when the site has set it up), whether civility has comments it could be but cannot
        tell which (``_in_thread``), the ids (with the current revision) to link it to, and the
        link of a comment linked before as it stood before Coral was read."""
        endpoint = coral_graphql.endpoint_of(record, self._lookup_timeout_seconds)
        known = await self.links.comment_of(site_id, coral_id)
        if endpoint is None:
            return known, None, False, None, None
        # Read first: a call of civility's into Coral may be applied there, and end, while
        # Coral is read, and what Coral said is then older than that call.
        before = await self.links.of(site_id, known) if known else None
        found = await coral_graphql.comment(self._http(), endpoint, coral_id)
        if found is None:
            return known, None, False, None, before
        comment_id = known or await self._moderated(site_id, event, found)
        unsure = False
        if comment_id is None:
            comment_id, unsure = await self._in_thread(site_id, found)
        ids = None
        if comment_id is not None and found.revision_id:
            # Decisions go to the revision of the text civility moderated: after an edit, while
            # Coral still has another (its phase comes before Coral stores it), that one waits.
            link = await self.links.of(site_id, comment_id)
            same = link is None or not link.check_text or coral.reads_as(link.text, found.body)
            ids = CoralIds(found.id, found.revision_id if same else "")
        return comment_id, found, unsure, ids, before

    async def _in_thread(
        self, site_id: str, found: coral_graphql.CoralComment
    ) -> tuple[str | None, bool]:
        """The author's comment in the thread that ``found`` is, when no id named it: the only
        one civility has there whose text, as Coral's phase last sent it, Coral's reads as (an
        edit civility took changed it since its id was derived), or the only one when Coral's
        has no text (an edit that blanked it) to compare. Being the author's only or latest
        comment is no answer: Coral's may be another one, which civility never stored or whose
        edit it withheld, and a decision on it must not decide this one; the flag says civility
        has comments there and cannot tell."""
        recent = await self.links.recent(site_id, found.story_id, found.author_id, found.parent_id)
        if len(recent) == 1 and is_blank(coral.plain_text(found.body)):
            return recent[0][0], False
        reading = [
            comment_id
            for comment_id, _ in recent
            if (link := await self.links.of(site_id, comment_id)) is not None
            and coral.reads_as(link.text, found.body)
        ]
        if len(reading) == 1:
            return reading[0], False
        return None, bool(recent)

    async def _moderated(
        self, site_id: str, event: coral.WebhookEvent, found: coral_graphql.CoralComment
    ) -> str | None:
        """The comment Coral's phase sent here for ``found``: named by Coral's id when the phase
        carried it, else by what its id was derived from (any text Coral may have sent the phase
        for its HTML, as ``coral.phase_texts`` lists them). The author's latest
        comment in the thread alone linked a second comment instead, when its phase came before
        the first one's webhook."""
        candidates = [external_id(found.id, "coral")]
        if event.tenant_id and event.data.site_id:
            candidates.extend(
                coral.derived_comment_id(
                    event.tenant_id,
                    event.data.site_id,
                    found.story_id,
                    found.author_id,
                    found.parent_id,
                    body,
                )
                for body in coral.phase_texts(found.body)
            )
        for candidate in candidates:
            try:
                await self.moderation.get_comment(site_id, candidate)
            except NotFound:
                continue
            return candidate
        return None

    async def _decide(
        self,
        site_id: str,
        comment: Comment,
        action: Action,
        during: tuple[int, str] | None = None,
    ) -> Comment | None:
        # Coral's webhook says what was decided, not why: no reason, so a rejection teaches what
        # a moderator's rejection without one does.
        try:
            # On the version read: a decision made in civility meanwhile is the later one.
            decision = Decision(action=action, version=comment.version)
            return await self.moderation.decide(
                site_id, comment.id, decision, coral.ACTOR, coral_call=during
            )
        except ClaimConflict:
            log.info(
                "Coral's decision on %s/%s left to the moderator holding it", site_id, comment.id
            )
            return None
        except VersionConflict:
            log.info("Coral's decision on %s/%s came before a later one", site_id, comment.id)
            return None


def _edited(recent: list[tuple[str, int]], since: int) -> tuple[str | None, list[str]]:
    """The comment an id-less EDIT changes, of the author's ``recent`` ones in its thread
    (newest first, with when each was written): the only one, or the only one written since
    ``since`` (ms), within Coral's edit window; else none, and the comments it could be."""
    if len(recent) <= 1:
        return (recent[0][0] if recent else None), []
    editable = [comment_id for comment_id, at in recent if at >= since]
    if len(editable) == 1:
        return editable[0], []
    return None, editable or [comment_id for comment_id, _ in recent]


def _echo_of_reopened(
    comment: Comment, link: CoralLink, status: str | None, created_ms: int | None
) -> bool:
    """Coral's webhook is civility's own decision coming back to a comment a civility moderator
    has reopened since (late, or sent again after Coral's attempt timed out): it has the status
    civility's latest call set in Coral, dated no later than Coral answered that call or than
    the reopen, or the status of a call whose answer the worker has not noted yet (Coral sends
    its webhook as it applies the call, maybe before it answers). One Coral dates after both is
    its moderators' decision, made since, to keep the status civility set."""
    reopened = comment.state is State.PENDING and coral_sync.made_in_civility(comment.decided_by)
    if not reopened or not status:
        return False
    if link.calling_status == status:
        return True
    if link.sent_status != status:
        return False
    return created_ms is None or created_ms <= max(to_ms(comment.decided_at), link.answered_at)


def _echo_of_overtaken(
    comment: Comment, link: CoralLink, status: str | None, created_ms: int | None
) -> bool:
    """Coral's webhook is about a call of civility's that was in flight when the comment's latest
    decision, Coral's moderators', was recorded (Coral may have applied the call after it, and
    sends its webhook as it does): the status of the call while it is in flight, or failed (Coral
    may apply it whenever), or, until that decision is carried back into Coral, the status the
    call set, dated no later than Coral answered it. One Coral dates after is its moderators'
    decision, made since."""
    if comment.decided_by != coral.ACTOR or not status:
        return False
    if link.in_flight:
        # A decision recorded while a call is in flight is later than the one called for: one
        # recorded before would have replaced that decision, which is then not called for.
        return link.calling_status == status
    if link.resend_version != comment.version:
        return False
    if link.calling_status == status:
        return True
    return link.sent_status == status and (created_ms is None or created_ms <= link.answered_at)


def _made_during_call(
    comment: Comment, link: CoralLink, status: str | None, created_ms: int | None
) -> bool:
    """Coral's moderators decided otherwise while civility's call of the comment's latest
    decision is in flight: Coral dates it after that decision was made, and it is not the late
    echo of an earlier call of civility's. Coral may already have the call, their decision made
    on top of it; either way it is the later one, kept in civility and carried back into Coral
    once the call ends (``coral_answered.lua``, or ``decide.lua`` for a call that ended before
    the decision was recorded)."""
    if link.in_flight != to_ms(comment.decided_at) or status == link.calling_status:
        return False
    if created_ms is None or created_ms <= link.in_flight:
        return False
    return status != link.sent_status or created_ms > link.answered_at


def _answered_since(before: CoralLink | None, link: CoralLink | None) -> bool:
    """Coral answered a call of civility's since ``before`` was read (made before or since)."""
    return before is not None and link is not None and link.reached_at > before.reached_at


def _call_during(before: CoralLink | None, link: CoralLink | None) -> tuple[int, str] | None:
    """The call of civility's into Coral (when its decision was made, the status it sets) that
    may have been applied in Coral after a decision of Coral's moderators read since ``before``:
    in flight now, answered since, or in flight then and failed since. The end of a call in
    flight notes that decision to be carried back into Coral once recorded; for a call that has
    ended, the decision's own record notes it (``decide.lua``)."""
    if link is None:
        return None
    if link.in_flight:
        return link.in_flight, link.calling_status
    if _answered_since(before, link):
        return link.sent_at, link.sent_status
    if before is not None and before.in_flight:
        return before.in_flight, before.calling_status
    return None


def _on_its_way(comment: Comment, link: CoralLink) -> bool:
    """The comment's latest decision was made in civility and has not reached Coral yet."""
    if comment.state not in _SENT_STATES or not coral_sync.made_in_civility(comment.decided_by):
        return False
    if link.text is None and not link.sent_at:
        # Linked by a release that did not note what reached Coral: a decision delivered then
        # would otherwise seem to be on its way for ever, refusing every one of Coral's.
        return False
    return link.sent_at < to_ms(comment.decided_at)
