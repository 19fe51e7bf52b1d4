"""Perspective's calls carried out on civility's model: scores for ``analyze``, labels for
``suggestscore``. Nothing here is stored in the moderation queue."""

import asyncio
from typing import Any

from service.compat import perspective
from service.compat.ids import digest, external_id
from service.domain import Comment
from service.labels import LabelLog
from service.moderation import Moderation

LABEL_SOURCE = "perspective.suggestscore"


async def analyze(
    moderation: Moderation, site_id: str, analysis: perspective.AnalyzeRequest
) -> dict[str, Any]:
    """Perspective's AnalyzeCommentResponse: the text's language detected first, so a comment
    the model cannot read gets Google's language error instead of an English score; scored as
    intake scores the site's comments, by its own model when one is in use."""
    text = perspective.checked_text(analysis.comment)
    attributes = perspective.checked_attributes(list(analysis.requested_attributes))
    detected, scored = await moderation.read(site_id, text)
    drop = analysis.drop_unsupported_attributes
    languages, attributes = perspective.checked_languages(
        analysis.languages, attributes, detected, drop=drop
    )
    seen = [detected.language] if detected.language else []
    if not attributes:
        return perspective.analyze_response(analysis, {}, None, languages, seen)
    # Unscored when detected in a language the model does not read: a request naming one it
    # does has it scored all the same, as Perspective scores in the languages a request names.
    if scored is None:
        scored = await moderation.score_for(site_id, text)
    summary = perspective.label_scores(attributes, scored.scores, drop=drop)
    spans = None
    if analysis.span_annotations and summary:
        parts = perspective.segments(text)
        by_part = await asyncio.gather(
            *(moderation.score_for(site_id, text[begin:end]) for begin, end in parts)
        )
        spans = [
            (
                perspective.utf16_offset(text, begin),
                perspective.utf16_offset(text, end),
                part.scores,
            )
            for (begin, end), part in zip(parts, by_part, strict=True)
        ]
    return perspective.analyze_response(analysis, summary, spans, languages, seen)


async def suggest(
    moderation: Moderation,
    labels: LabelLog,
    site_id: str,
    suggestion: perspective.SuggestScoreRequest,
    about: Comment | None = None,
) -> dict[str, Any]:
    """A client's suggested scores become a training label of the site (attributes civility has
    no label for teach nothing and are left out). ``about`` is the stored comment the suggestion
    names: the label carries its author, so that erasing the author erases it too, and an erased
    author's comment teaches nothing. The answer names the comment's detected language, as
    Google's does."""
    text = perspective.checked_text(suggestion.comment)
    suggested = perspective.suggested_labels(suggestion)
    detected, _ = await moderation.read(site_id, text)
    seen = [detected.language] if detected.language else []
    token = suggestion.client_token
    erased = about is not None and not about.text
    if suggested and not erased:
        await labels.record(
            site_id,
            text,
            suggested,
            LABEL_SOURCE,
            moderation.scorer.model_version,
            # One label per token and text: a later suggestion for the same comment (Coral's
            # moderator changing their mind) replaces the earlier, while a client that sends one
            # token for every comment does not have each new suggestion replace the last.
            comment_id=external_id(f"{token}#{digest(text)[:12]}", "token") if token else None,
            author_id=about.author.id if about is not None else None,
        )
    return perspective.suggest_response(suggestion, seen)
