"""Akismet's calls as civility carries them out: one method per endpoint, in Akismet's words.

``comment-check`` moderates the comment like intake and answers ``true`` for every state but
``approved``: Akismet's protocol knows only spam and ham, and a client publishes ham at once, so a
comment civility holds for a moderator must be answered as spam to stay unpublished (WordPress
then keeps it in its spam folder, where its moderators find it). Civility's own headers say which
it was. ``submit-ham`` and ``submit-spam`` of a comment civility stored decide it through the same
decision path as a moderator's decision (history, webhook, training label); of a comment it never
stored they only leave a training label. A ``contact-form``, ``message`` or ``signup`` is
published nowhere and moderated by nobody: its check answers only whether it is spam, by the site's
spam thresholds, and stores nothing, so a correction of it is a training label too.
"""

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from classifier.normalize import is_blank
from service import policy
from service.compat import akismet
from service.compat.akismet_usage import AkismetUsage, Counter, month_of
from service.domain import Action, Comment, Decision, Site, State
from service.errors import BadRequest, ClaimConflict, NotFound
from service.labels import LabelLog
from service.metrics import Metrics
from service.moderation import Moderation
from service.times import from_ms
from service.transitions import decided_state, event_for

log = logging.getLogger(__name__)

ACTOR = "akismet"
"""Who decided, in a comment's history, when a client's submit-ham or submit-spam did."""

STATE_HEADER = "X-Civility-State"
REASONS_HEADER = "X-Civility-Reasons"

_SUBMITS: dict[Action, tuple[str, int, Counter]] = {
    Action.APPROVE: ("akismet.submit-ham", 0, "false_positives"),
    Action.SPAM: ("akismet.submit-spam", 1, "missed_spam"),
}
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class Answer:
    """A plain-text answer and its headers."""

    text: str
    headers: Mapping[str, str] = field(default_factory=dict)


class AkismetDesk:
    def __init__(
        self,
        moderation: Moderation,
        labels: LabelLog,
        usage: AkismetUsage,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.moderation = moderation
        self.labels = labels
        self.usage = usage
        self.metrics = metrics
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def site(self, key: str) -> Site:
        site = await self.moderation.site_for_api_key(key)
        if site is None:
            raise akismet.InvalidKey("Invalid key")
        return site

    async def verify_key(self, fields: Mapping[str, str]) -> Answer:
        await self.site(akismet.verify_key_fields(fields))
        return Answer(akismet.VALID)

    async def comment_check(self, fields: Mapping[str, str]) -> Answer:
        checked = akismet.call(fields)
        site = await self.site(checked.api_key)
        return await self._check(site, checked)

    async def _check(self, site: Site, checked: akismet.Call) -> Answer:
        guid = akismet.comment_id(checked)
        trigger = akismet.test_trigger(checked)
        if trigger is not None:
            return Answer(trigger, {akismet.GUID: guid})
        if akismet.honeypot_filled(checked):
            return Answer(akismet.SPAM, {akismet.GUID: guid, akismet.PRO_TIP: akismet.DISCARD})
        if is_blank(checked.content):
            if checked.publishes_nothing:
                return Answer(akismet.HAM, {akismet.GUID: guid})  # a signup: nothing to judge
            # Nothing to read or store (only spaces or invisible characters): the rules that
            # read no text still apply, so a pre-moderated site does not publish it.
            verdict = await self.moderation.assess_without_text(
                site.id, akismet.article_id(checked), akismet.author_id(checked)
            )
            return _answer(verdict.state, _codes(verdict), {}, guid)
        if akismet.too_long(checked):
            # Not stored, so not published unread: the client's moderators see it as spam.
            why = f"{akismet.TOO_LONG}: not checked, held for review"
            return Answer(akismet.SPAM, {akismet.GUID: guid, akismet.DEBUG_HELP: why})
        submission = akismet.submission(checked)
        if checked.publishes_nothing:
            return await self._check_message(
                site.id, submission.text, guid, count=not checked.is_test
            )
        # Akismet refuses no comment for its date: a date the intake would refuse is left out.
        ahead = submission.dated_ahead(from_ms(self._now_ms()))
        if ahead:
            submission = submission.model_copy(update={name: None for name, _ in ahead})
        if checked.is_test:
            verdict, scored = await self.moderation.assess(site.id, submission.text)
            return _answer(verdict.state, _codes(verdict), scored.scores, guid)
        result = await self.moderation.ingest(site.id, submission)
        if result.created:
            self.metrics.observe_verdict(result.comment.state.value)
        comment = result.comment
        answer = _answer(comment.state, comment.reasons, comment.scores, comment.id)
        await self._count(site.id, answer)
        return answer

    async def _check_message(self, site_id: str, text: str, guid: str, *, count: bool) -> Answer:
        """A contact form's (or signup's) text: nobody moderates it, so the answer says only
        whether it is spam, and nothing is stored (no comment, queue entry or webhook); counted
        as Akismet counts every check, unless it is a test."""
        verdict, scored = await self.moderation.assess_spam(site_id, text)
        answer = _answer(verdict.state, _codes(verdict), scored.scores, guid)
        if count:
            await self._count(site_id, answer)
        return answer

    async def _count(self, site_id: str, answer: Answer) -> None:
        """A check civility judged, and its outcome; test calls and triggers count nowhere."""
        outcome: Counter = "spam" if answer.text == akismet.SPAM else "ham"
        await self.usage.count(site_id, self._now_ms(), "api_calls", outcome)

    async def submit(self, fields: Mapping[str, str], action: Action) -> Answer:
        """A client's correction: the stored comment is decided (unless a moderator holds its
        claim: then only the label is kept and the moderator decides); an unknown one is kept as
        a training label."""
        checked = akismet.call(fields)
        site = await self.site(checked.api_key)
        if checked.is_test or is_blank(checked.content):
            return Answer(akismet.THANKS)
        if akismet.too_long(checked):
            # Never stored, and no text a label may hold: nothing to decide or keep.
            return Answer(akismet.THANKS, {akismet.DEBUG_HELP: f"{akismet.TOO_LONG}: not kept"})
        source, label, counter = _SUBMITS[action]
        submission = akismet.submission(checked)
        await self.usage.count(site.id, self._now_ms(), counter)
        decided = await self._decide(site.id, submission.id, action, source)
        if decided is None:
            await self.labels.record(
                site.id,
                submission.text,
                {policy.SPAM_LABEL: label},
                source,
                self.moderation.scorer.model_version,
                comment_id=submission.id,
                # So that erasing the author erases the label too.
                author_id=submission.author.id,
            )
        return Answer(akismet.THANKS)

    async def _decide(
        self, site_id: str, comment_id: str, action: Action, source: str
    ) -> Comment | None:
        try:
            comment = await self.moderation.get_comment(site_id, comment_id)
        except NotFound:
            return None
        if comment.state is decided_state(event_for(action)):
            return comment
        try:
            return await self.moderation.decide(
                site_id, comment_id, Decision(action=action, reason=source), ACTOR
            )
        except ClaimConflict:
            log.info("%s of %s/%s left to the moderator holding it", source, site_id, comment_id)
            return None

    async def usage_limit(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """Akismet's usage-limit: civility has no plan limit, so ``limit`` is ``none``."""
        site = await self.site(akismet.key_of(fields, "api_key", "key"))
        calls = (await self.usage.month(site.id, month_of(self._now_ms())))["api_calls"]
        return {"limit": "none", "usage": calls, "percentage": "0.00", "throttled": False}

    async def key_sites(self, fields: Mapping[str, str]) -> dict[str, Any] | str:
        """Akismet's key-sites: the one site of this key, with the month's counts."""
        site = await self.site(akismet.key_of(fields, "api_key", "key"))
        month = fields.get("month", "").strip() or month_of(self._now_ms())
        if not _MONTH.match(month):
            raise BadRequest(f"month must be YYYY-MM, not {month!r}")
        counts = await self.usage.month(site.id, month)
        row = {
            "site": site.name,
            "api_calls": str(counts["api_calls"]),
            "spam": str(counts["spam"]),
            "ham": str(counts["ham"]),
            "missed_spam": str(counts["missed_spam"]),
            "false_positives": str(counts["false_positives"]),
            "is_revoked": False,
        }
        url_filter = fields.get("filter", "").strip().lower()
        rows = [row] if url_filter in site.name.lower() or url_filter in site.id else []
        if fields.get("format", "").strip().lower() == "csv":
            return akismet.key_sites_csv(month, rows)
        return {month: rows, "limit": 500, "offset": 0, "total": len(rows)}

    async def get_stats(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """Akismet's get-stats (WordPress's stats page): this month's counts of the site."""
        site = await self.site(akismet.key_of(fields, "key", "api_key"))
        counts = await self.usage.month(site.id, month_of(self._now_ms()))
        return akismet.stats(counts)

    async def get_subscription(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """Akismet's get-subscription: an active subscription without limits."""
        site = await self.site(akismet.key_of(fields, "key", "api_key"))
        return {"status": "active", "account_name": site.name, "limit": "none"}


def _codes(verdict: policy.Verdict) -> tuple[str, ...]:
    return tuple(reason.value for reason in verdict.reasons)


def _answer(
    state: State, reasons: tuple[str, ...], scores: Mapping[str, float], guid: str
) -> Answer:
    headers = {akismet.GUID: guid, STATE_HEADER: state.value}
    if reasons:
        headers[REASONS_HEADER] = ",".join(reasons)
    if akismet.is_blatant(state, scores):
        headers[akismet.PRO_TIP] = akismet.DISCARD
    return Answer(akismet.answer(state), headers)
