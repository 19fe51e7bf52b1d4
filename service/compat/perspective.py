"""Perspective's ``comments:analyze`` and ``comments:suggestscore``, on civility's model.

Requests and answers follow Perspective's v1alpha1 JSON (camelCase, unknown fields refused, like
its proto parser). Attributes map onto the model's labels; every score is the model's calibrated
probability (``"type": "PROBABILITY"``). Errors use Google's error object
``{"error": {"code", "message", "status"}}``.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from service.domain import MAX_TEXT
from service.errors import BadRequest, CivilityError, Forbidden, ValidationFailed

ATTRIBUTES: dict[str, str] = {
    "TOXICITY": "toxicity",
    "SEVERE_TOXICITY": "severe_toxicity",
    "IDENTITY_ATTACK": "identity_attack",
    "INSULT": "insult",
    "PROFANITY": "profanity",
    "THREAT": "threat",
    "SPAM": "spam",
}
"""Perspective attribute -> the model's label."""

LANGUAGES = ("en",)
"""The languages the model was trained on."""

MAX_TEXT_BYTES = 20_480
"""Perspective's limit on ``comment.text`` (UTF-8 bytes)."""

MAX_SPANS = 64
"""At most this many span scores per attribute; longer texts are cut into this many parts."""

PROBABILITY = "PROBABILITY"

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
# Google answers a malformed, oversized or mistyped body with 400 INVALID_ARGUMENT.
_AS_INVALID_ARGUMENT = (413, 415, 422)

KEY_HEADER = "X-Goog-Api-Key"
MISSING_KEY = "The request is missing a valid API key."
INVALID_KEY = "API key not valid. Please pass a valid API key."

_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class TextEntry(_Message):
    text: str
    type: Literal["PLAIN_TEXT"] | None = None


class AttributeParameters(_Message):
    score_type: Literal["PROBABILITY"] | None = None
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class AnalyzeRequest(_Message):
    comment: TextEntry
    context: dict[str, Any] | None = None
    requested_attributes: dict[str, AttributeParameters] = Field(max_length=len(ATTRIBUTES) * 2)
    span_annotations: bool = False
    languages: list[str] | None = Field(default=None, max_length=16)
    do_not_store: bool = False
    client_token: str | None = Field(default=None, max_length=1_024)
    session_id: str | None = Field(default=None, max_length=1_024)
    community_id: str | None = Field(default=None, max_length=1_024)


class SummaryScore(_Message):
    value: float = Field(ge=0.0, le=1.0)
    type: Literal["PROBABILITY"] | None = None


class SuggestedScore(_Message):
    summary_score: SummaryScore
    span_scores: list[dict[str, Any]] | None = None


class SuggestScoreRequest(_Message):
    comment: TextEntry
    context: dict[str, Any] | None = None
    attribute_scores: dict[str, SuggestedScore] = Field(max_length=len(ATTRIBUTES) * 2)
    languages: list[str] | None = Field(default=None, max_length=16)
    community_id: str | None = Field(default=None, max_length=1_024)
    client_token: str | None = Field(default=None, max_length=1_024)
    session_id: str | None = Field(default=None, max_length=1_024)


def api_key(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The ``?key=`` of the request, or Google's ``X-Goog-Api-Key`` header; Google answers a
    missing one with 403."""
    key = query.get("key", "").strip() or headers.get(KEY_HEADER, "").strip()
    if not key:
        raise Forbidden(MISSING_KEY)
    return key


def checked_text(comment: TextEntry) -> str:
    if not comment.text.strip():
        raise BadRequest("Comment must be non-empty.")
    size = len(comment.text.encode("utf-8"))
    if size > MAX_TEXT_BYTES or len(comment.text) > MAX_TEXT:
        raise BadRequest(
            f"Comment text too long: {size} bytes; the limit is {MAX_TEXT_BYTES} bytes "
            f"and {MAX_TEXT} characters."
        )
    return comment.text


def checked_attributes(names: Sequence[str], field: str = "requestedAttributes") -> list[str]:
    """The attribute names of ``field``, each one we score; refuses none or an unknown one."""
    if not names:
        raise BadRequest(f"{field} must name at least one attribute.")
    for name in names:
        if name not in ATTRIBUTES:
            raise BadRequest(
                f"Unknown attribute: {name}. Supported attributes: {', '.join(ATTRIBUTES)}."
            )
    return list(names)


def checked_languages(requested: Sequence[str] | None, attributes: Sequence[str]) -> list[str]:
    """The languages the answer reports: those requested (``en-US`` counts as ``en``), else
    English, the only one the model reads."""
    if not requested:
        return list(LANGUAGES)
    languages = []
    for code in requested:
        primary = code.strip().replace("_", "-").split("-")[0].lower()
        if primary not in LANGUAGES:
            raise BadRequest(
                f"Attribute {attributes[0]} does not support request languages: {code}"
            )
        if primary not in languages:
            languages.append(primary)
    return languages


def label_scores(attributes: Sequence[str], scores: Mapping[str, float]) -> dict[str, float]:
    """Per attribute, the model's score; an attribute the active model lacks is refused."""
    found = {}
    for name in attributes:
        label = ATTRIBUTES[name]
        if label not in scores:
            raise BadRequest(f"Attribute {name} is not scored by the active model.")
        found[name] = scores[label]
    return found


def segments(text: str) -> list[tuple[int, int]]:
    """Sentence-like parts of ``text`` as ``[begin, end)`` offsets, leading space left out; at
    most ``MAX_SPANS`` (neighbours merged evenly beyond that)."""
    parts = []
    for match in _SENTENCE.finditer(text):
        begin, end = match.span()
        while begin < end and text[begin].isspace():
            begin += 1
        if begin < end:
            parts.append((begin, end))
    if len(parts) <= MAX_SPANS:
        return parts
    size = -(-len(parts) // MAX_SPANS)
    return [(group[0][0], group[-1][1]) for group in _chunks(parts, size)]


def utf16_offset(text: str, index: int) -> int:
    """Where code point ``index`` of ``text`` starts in UTF-16 code units, which is how Perspective
    counts ``begin`` and ``end`` (JavaScript and Java clients slice strings that way)."""
    return len(text[:index].encode("utf-16-le", "surrogatepass")) // 2


def _chunks(parts: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    return [parts[start : start + size] for start in range(0, len(parts), size)]


def _score(value: float) -> dict[str, Any]:
    return {"value": value, "type": PROBABILITY}


def analyze_response(
    request: AnalyzeRequest,
    attributes: Sequence[str],
    summary: Mapping[str, float],
    spans: Sequence[tuple[int, int, Mapping[str, float]]] | None,
    languages: Sequence[str],
) -> dict[str, Any]:
    """Perspective's AnalyzeCommentResponse; ``spans`` are ``(begin, end, label scores)``.

    An attribute whose ``scoreThreshold`` its score does not reach is left out, as Perspective
    does."""
    scores: dict[str, Any] = {}
    for name in attributes:
        threshold = request.requested_attributes[name].score_threshold
        if threshold is not None and summary[name] < threshold:
            continue
        entry: dict[str, Any] = {"summaryScore": _score(summary[name])}
        if spans is not None:
            label = ATTRIBUTES[name]
            entry["spanScores"] = [
                {"begin": begin, "end": end, "score": _score(part[label])}
                for begin, end, part in spans
            ]
        scores[name] = entry
    body: dict[str, Any] = {"attributeScores": scores, "languages": list(languages)}
    if request.client_token is not None:
        body["clientToken"] = request.client_token
    return body


def suggested_labels(request: SuggestScoreRequest) -> dict[str, int]:
    """The labels a suggestion states: a suggested probability of at least 0.5 means "it is"."""
    names = checked_attributes(list(request.attribute_scores), "attributeScores")
    return {
        ATTRIBUTES[name]: int(request.attribute_scores[name].summary_score.value >= 0.5)
        for name in names
    }


def suggest_response(request: SuggestScoreRequest) -> dict[str, Any]:
    return {"clientToken": request.client_token} if request.client_token is not None else {}


def error_body(error: CivilityError) -> tuple[int, dict[str, Any]]:
    """Google's error object and HTTP status for ``error``."""
    status = 400 if error.status in _AS_INVALID_ARGUMENT else error.status
    message = error.message
    if isinstance(error, ValidationFailed) and error.details:
        problems = "; ".join(f"at '{item['field']}': {item['message']}" for item in error.details)
        message = f"Invalid JSON payload received. {problems}"
    google_status = GOOGLE_STATUS.get(status, "UNKNOWN")
    return status, {"error": {"code": status, "message": message, "status": google_status}}
