"""Intake: a new or edited comment scored, decided by the policy and written by one script."""

from typing import Literal

from service import language
from service import policy as rules
from service.domain import Article, ArticleSpec, IngestResult, Policy, State, Submission
from service.errors import Conflict, ValidationFailed
from service.moderation.base import ModerationBase
from service.moderation.tokens import new_event_id, sha256_hex
from service.path_ids import same_target
from service.scorer import Scored, SiteRef, Spans
from service.store.records import IntakeWrite, Observation, SiteRules, StaleContextError, Window
from service.times import from_ms, to_ms
from service.transitions import EVENT_TYPES, Event, sources_argument

WindowKind = Literal["author_flood", "ip_flood", "duplicate"]

MAX_INTAKE_ATTEMPTS = 3
"""Decide-and-write rounds before intake gives up on a context that keeps changing."""


class Intake(ModerationBase):
    """Scoring and deciding comments as they arrive, and the articles they belong to."""

    async def ingest(self, site_id: str, submission: Submission) -> IngestResult:
        """Moderate a new or edited comment; a redelivery returns the stored one unchanged.

        The verdict is decided for the likeliest context (a new comment, an author in good
        standing, an open article, no flood or duplicate) and written by one script call that
        checks that context; when it differs, the script writes nothing and reports what it
        found, and the verdict is decided again for that. The scorer runs once; a comment not
        published is explained after the answer (``LateEvidence``), not before. A time more
        than a day ahead of the clock is refused (``Submission.dated_ahead``)."""
        dated_ahead = submission.dated_ahead(from_ms(self._now_ms()))
        if dated_ahead:
            raise ValidationFailed(dated_ahead)
        record = await self._site_record(site_id)
        policy = record.site.policy
        windows = self._windows(site_id, submission, policy)
        detected, scored = await self._detect_and_score(submission.text, site_id)
        scores = scored.scores
        text_hash = sha256_hex(submission.text)
        observation = Observation(windows_taken=tuple(False for _ in windows))
        for _ in range(MAX_INTAKE_ATTEMPTS):
            verdict = rules.decide(
                scores,
                _policy_context(submission.text, observation, windows, detected),
                policy,
                scored.thresholds,
            )
            evidence: Spans = {name: list(spans) for name, spans in verdict.evidence.items()}
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
                created_at_ms=_created_at_ms(submission, now),
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
                edited_at_ms=to_ms(submission.edited_at) if submission.edited_at else None,
            )
            try:
                outcome, comment = await self.store.write_intake(site_id, write)
            except StaleContextError as stale:
                observation = stale.observed
                continue
            if (
                outcome != "unchanged"
                and verdict.state is not State.APPROVED
                and detected.supported
                and (flagged := rules.flagged_labels(scores, scored.thresholds, policy))
            ):
                self.evidence.explain(
                    site_id, comment.id, submission.text, text_hash, evidence, flagged
                )
            return IngestResult(
                comment=comment, created=outcome != "unchanged", edited=outcome == "edited"
            )
        raise Conflict("the comment's context kept changing while it was moderated; retry")

    async def assess(self, site_id: str, text: str) -> tuple[rules.Verdict, Scored]:
        """The verdict the site's policy would give ``text`` as a new comment of an author in
        good standing, scored like intake but written nowhere (Akismet's ``is_test`` checks)."""
        policy = (await self._site_record(site_id)).site.policy
        detected, scored = await self._detect_and_score(text, site_id)
        context = rules.PolicyContext(text=text, language_supported=detected.supported)
        return rules.decide(scored.scores, context, policy, scored.thresholds), scored

    async def assess_spam(self, site_id: str, text: str) -> tuple[rules.Verdict, Scored]:
        """Whether ``text`` is spam by the site's spam thresholds alone, scored like intake and
        written nowhere (Akismet's checks of a message the site does not publish)."""
        policy = (await self._site_record(site_id)).site.policy
        _, scored = await self._detect_and_score(text, site_id)
        return rules.decide_spam(scored.scores, policy, scored.thresholds), scored

    async def assess_without_text(
        self, site_id: str, article_id: str, author_id: str
    ) -> rules.Verdict:
        """The verdict the site's policy gives a comment with nothing to read (only spaces or
        invisible characters), which intake refuses and the platforms' protocols cannot: by the
        rules that do not read a text (the site's or the article's pre-moderation, a closed
        article, the author's standing), written nowhere."""
        policy = (await self._site_record(site_id)).site.policy
        author = await self.store.author(site_id, author_id, self._now_ms(), SiteRules.of(policy))
        closed, premod = await self.store.article_rules(site_id, article_id)
        context = rules.PolicyContext(
            text="",
            author_status=author.standing,
            author_approved=int(author.fields.get("approved", 0)),
            article_closed=closed,
            article_premod=premod,
        )
        return rules.decide({}, context, policy, self.thresholds)

    async def read(self, site_id: str, text: str) -> tuple[language.Detected, Scored | None]:
        """The text's language and, when the model reads it, its scores as intake has them for
        the site (by its own model when one is in use); nothing is written."""
        return await self._read(text, await self._site_model(site_id))

    async def score_for(self, site_id: str, text: str) -> Scored:
        """The text's scores as intake has them for the site, whatever its language."""
        return await self._score(text, await self._site_model(site_id))

    async def _detect_and_score(self, text: str, site_id: str) -> tuple[language.Detected, Scored]:
        """The text's language and the model's scores, or none for a text in a language it does
        not read: scoring German as English gives confident nonsense (0.69 toxicity for a civil
        remark)."""
        detected, scored = await self._read(text, await self._site_model(site_id))
        if scored is None:
            return detected, Scored({}, self.scorer.model_version, self.thresholds)
        return detected, scored

    async def _detect_then_score(
        self, text: str, site: SiteRef | None
    ) -> tuple[language.Detected, Scored | None]:
        """For a scorer that does not detect languages: detected here, then scored if readable."""
        detected = language.detect(text)
        if not detected.supported:
            return detected, None
        return detected, await self._score(text, site)

    async def _site_model(self, site_id: str) -> SiteRef:
        if self.site_models is None:
            return site_id, 0  # the global model; the site still names whose turn it is
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


def _duplicate_form(text: str) -> str:
    """Texts that differ only in case, spacing, invisible or look-alike characters count as
    the same text (the form the policy's words are compared in)."""
    # str.split() splits on what \s matches, as one call: a fifth of the regex's time.
    return " ".join(rules.folded(text).split())


def _created_at_ms(submission: Submission, now_ms: int) -> int:
    """The creation time a new comment is stored with: the host's, else the server's clock, but
    never after the edit time the host gave (a comment first delivered already edited was
    written by then)."""
    if submission.created_at is not None:
        return to_ms(submission.created_at)
    if submission.edited_at is not None:
        return min(now_ms, to_ms(submission.edited_at))
    return now_ms
