"""Perspective's calls carried out on civility's model: scores for ``analyze``, labels for
``suggestscore``. Nothing here is stored in the moderation queue."""

import asyncio
from typing import Any

from service import language
from service.compat import perspective
from service.compat.ids import digest, external_id
from service.labels import LabelLog
from service.language import Detected
from service.scorer import DetectingScorer, Scored, Scorer

LABEL_SOURCE = "perspective.suggestscore"


async def analyze(scorer: Scorer, analysis: perspective.AnalyzeRequest) -> dict[str, Any]:
    """Perspective's AnalyzeCommentResponse: the text's language detected first, so a comment
    the model cannot read gets Google's language error instead of an English score."""
    text = perspective.checked_text(analysis.comment)
    attributes = perspective.checked_attributes(list(analysis.requested_attributes))
    detected, scored = await _detected_and_scored(scorer, text)
    drop = analysis.drop_unsupported_attributes
    languages, attributes = perspective.checked_languages(
        analysis.languages, attributes, detected, drop=drop
    )
    seen = [detected.language] if detected.language else []
    if not attributes:
        return perspective.analyze_response(analysis, {}, None, languages, seen)
    # Unscored when detected in a language the model does not read: a request naming one it
    # does has it scored all the same, as Perspective scores in the languages a request names.
    scores = scored.scores if scored is not None else await scorer.score(text)
    summary = perspective.label_scores(attributes, scores, drop=drop)
    spans = None
    if analysis.span_annotations and summary:
        parts = perspective.segments(text)
        by_part = await asyncio.gather(*(scorer.score(text[begin:end]) for begin, end in parts))
        spans = [
            (perspective.utf16_offset(text, begin), perspective.utf16_offset(text, end), part)
            for (begin, end), part in zip(parts, by_part, strict=True)
        ]
    return perspective.analyze_response(analysis, summary, spans, languages, seen)


async def _detected_and_scored(scorer: Scorer, text: str) -> tuple[Detected, Scored | None]:
    """The text's language and, when the model reads it, its scores. A scorer that detects in its
    worker processes does both in one call, and this process never loads the detector (~110 MB
    of memory in each API process)."""
    if isinstance(scorer, DetectingScorer):
        return await scorer.detect_and_score(text)
    return language.detect(text), None


async def suggest(
    labels: LabelLog, model_version: str, site_id: str, suggestion: perspective.SuggestScoreRequest
) -> dict[str, Any]:
    """A client's suggested scores become a training label of the site (attributes civility has
    no label for teach nothing and are left out)."""
    text = perspective.checked_text(suggestion.comment)
    suggested = perspective.suggested_labels(suggestion)
    token = suggestion.client_token
    if suggested:
        await labels.record(
            site_id,
            text,
            suggested,
            LABEL_SOURCE,
            model_version,
            # One label per token and text: a later suggestion for the same comment (Coral's
            # moderator changing their mind) replaces the earlier, while a client that sends one
            # token for every comment does not have each new suggestion replace the last.
            comment_id=external_id(f"{token}#{digest(text)[:12]}", "token") if token else None,
        )
    return perspective.suggest_response(suggestion)
