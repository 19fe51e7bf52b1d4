"""Perspective's calls carried out on civility's model: scores for ``analyze``, labels for
``suggestscore``. Nothing here is stored in the moderation queue."""

import asyncio
from typing import Any

from service import language
from service.compat import perspective
from service.compat.ids import external_id
from service.labels import LabelLog
from service.scorer import Scorer

LABEL_SOURCE = "perspective.suggestscore"


async def analyze(scorer: Scorer, analysis: perspective.AnalyzeRequest) -> dict[str, Any]:
    """Perspective's AnalyzeCommentResponse: the text's language detected first, so a comment
    the model cannot read gets Google's language error instead of an English score."""
    text = perspective.checked_text(analysis.comment)
    attributes = perspective.checked_attributes(list(analysis.requested_attributes))
    detected = language.detect(text)
    languages = perspective.checked_languages(analysis.languages, attributes, detected)
    summary = perspective.label_scores(attributes, await scorer.score(text))
    spans = None
    if analysis.span_annotations:
        parts = perspective.segments(text)
        scored = await asyncio.gather(*(scorer.score(text[begin:end]) for begin, end in parts))
        spans = [
            (perspective.utf16_offset(text, begin), perspective.utf16_offset(text, end), scores)
            for (begin, end), scores in zip(parts, scored, strict=True)
        ]
    seen = [detected.language] if detected.language else []
    return perspective.analyze_response(analysis, attributes, summary, spans, languages, seen)


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
            comment_id=external_id(token, "token") if token else None,
        )
    return perspective.suggest_response(suggestion)
