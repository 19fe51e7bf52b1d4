"""Perspective's ``comments:analyze`` and ``comments:suggestscore``, on civility's model.

Requests and answers follow Perspective's v1alpha1 JSON (camelCase, unknown fields refused, like
its proto parser). Attributes map onto the model's labels; every score is the model's calibrated
probability (``"type": "PROBABILITY"``). Errors use Google's error object
``{"error": {"code", "message", "status"}}``.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from classifier.normalize import is_blank
from service import language
from service.domain import MAX_TEXT
from service.errors import BadRequest, CivilityError, Forbidden, ValidationFailed
from service.language import Detected

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

EXPERIMENTAL = "_EXPERIMENTAL"
"""Google's experimental versions of an attribute (``TOXICITY_EXPERIMENTAL``) became its
production models; a request naming one is scored like the attribute and answered under the
name it asked for."""

GOOGLE_ONLY = frozenset(
    {
        "SEXUALLY_EXPLICIT",
        "FLIRTATION",
        "ATTACK_ON_AUTHOR",
        "ATTACK_ON_COMMENTER",
        "INCOHERENT",
        "INFLAMMATORY",
        "LIKELY_TO_REJECT",
        "OBSCENE",
        "UNSUBSTANTIAL",
        "AFFINITY_EXPERIMENTAL",
        "COMPASSION_EXPERIMENTAL",
        "CURIOSITY_EXPERIMENTAL",
        "NUANCE_EXPERIMENTAL",
        "PERSONAL_STORY_EXPERIMENTAL",
        "REASONING_EXPERIMENTAL",
        "RESPECT_EXPERIMENTAL",
    }
)
"""Attributes Google scores and civility's model has no label for. Google answers an attribute
it has no model for in the request's language with ``LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE``;
civility has none for these in any language, so it answers them the same way."""

MAX_ATTRIBUTES = 2 * len(ATTRIBUTES) + len(GOOGLE_ONLY)
"""Every name an attribute can be asked for by, once."""

LANGUAGE_ERROR_TYPE = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
LANGUAGE_NOT_SUPPORTED = "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"

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

# A run of stops and the closing quotes and brackets after it, or a line break.
_STOP = re.compile(
    "[.!?\u2026\u203c\u203d\u2047-\u2049]+[\"'\u2019\u201d\u00bb\u203a)\\]]*|[\n\r\u2028\u2029\x85]"
)
_LINE_BREAKS = "\n\r\u2028\u2029\x85"
_EXCLAIMS = "!?\u203c\u203d\u2047\u2048\u2049"
_CLOSING = "\"'\u2019\u201d\u00bb\u203a)]"
_QUOTES = "\"'\u2019\u201d\u00bb\u203a"
_OPENING = "\"'\u2018\u201c\u00ab\u2039(["
_NEVER_ENDS = frozenset(
    {"mr", "mrs", "ms", "mx", "dr", "prof", "rev", "hon", "st", "sgt", "capt", "col", "gen"}
    | {"lt", "gov", "sen", "rep", "e.g", "i.e", "cf", "viz", "vs", "approx", "fig", "vol"}
)
"""Words whose full stop is an abbreviation's: a title before a name, ``e.g.`` before an
example."""
_MAY_END = frozenset({"etc", "inc", "ltd", "co", "corp", "jr", "sr", "al"})
"""Abbreviations that often end a sentence too: they end one when a capital follows."""
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")
"""``B``, ``U.S``, ``a.m``: a lone letter, or letters each followed by a stop (the last stop is
the one being read)."""
_OPENERS = frozenset(
    {"i", "it", "he", "she", "we", "you", "they", "this", "that", "these", "those", "there"}
    | {"here", "its", "my", "our", "your", "his", "her", "their", "the", "a", "an", "some"}
    | {"many", "most", "all", "every", "each", "no", "any", "both", "and", "but", "or", "so"}
    | {"yet", "if", "when", "then", "now", "also", "because", "although", "though", "however"}
    | {"after", "before", "once", "while", "since", "maybe", "perhaps", "what", "why", "how"}
    | {"who", "where", "which", "in", "on", "at", "for", "with", "to", "from", "of", "by"}
    | {"is", "was", "are", "were", "do", "does", "did", "can", "could", "would", "should"}
    | {"has", "have", "had", "let", "please", "yes", "not", "nothing", "nobody", "everyone"}
    | {"someone", "none", "thanks", "oh", "ok", "okay"}
)
"""Words that start sentences and are not names: pronouns, articles, conjunctions, question
words, prepositions and auxiliaries."""
_WORD = re.compile(r"[^\W\d_]+")


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        # Protobuf's JSON mapping (Google's parser) reads null as the field's default value:
        # clients that send every field, unset ones as null, must not be refused.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class TextEntry(_Message):
    text: str
    # Each enum's zero value (``*_UNSPECIFIED``) means its default, as in Google's protos.
    type: Literal["PLAIN_TEXT", "TEXT_TYPE_UNSPECIFIED"] | None = None


class AttributeParameters(_Message):
    score_type: Literal["PROBABILITY", "SCORE_TYPE_UNSPECIFIED"] | None = None
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class AnalyzeRequest(_Message):
    comment: TextEntry
    context: dict[str, Any] | None = None
    requested_attributes: dict[str, AttributeParameters] = Field(max_length=MAX_ATTRIBUTES)
    span_annotations: bool = False
    languages: list[str] | None = Field(default=None, max_length=16)
    do_not_store: bool = False
    drop_unsupported_attributes: bool = False
    client_token: str | None = Field(default=None, max_length=1_024)
    session_id: str | None = Field(default=None, max_length=1_024)
    community_id: str | None = Field(default=None, max_length=1_024)


class SummaryScore(_Message):
    value: float = Field(ge=0.0, le=1.0)
    type: Literal["PROBABILITY", "SCORE_TYPE_UNSPECIFIED"] | None = None


class SpanScore(_Message):
    begin: int = Field(default=0, ge=0)
    end: int = Field(default=0, ge=0)
    score: SummaryScore


class SuggestedScore(_Message):
    summary_score: SummaryScore | None = None
    span_scores: list[SpanScore] | None = None

    @model_validator(mode="after")
    def _scored(self) -> "SuggestedScore":
        # Google takes a suggestion of the whole comment's score, of its parts' scores, or both.
        if self.summary_score is None and not self.span_scores:
            raise ValueError("a suggestion needs a summaryScore or spanScores")
        return self

    @property
    def value(self) -> float:
        """The suggested score of the whole comment: its summary score, else its highest span
        score (a comment is what its worst part is)."""
        if self.summary_score is not None:
            return self.summary_score.value
        return max(span.score.value for span in self.span_scores or ())


class SuggestScoreRequest(_Message):
    comment: TextEntry
    context: dict[str, Any] | None = None
    attribute_scores: dict[str, SuggestedScore] = Field(max_length=MAX_ATTRIBUTES)
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
    if is_blank(comment.text):
        raise BadRequest("Comment must be non-empty.")
    size = len(comment.text.encode("utf-8"))
    if size > MAX_TEXT_BYTES or len(comment.text) > MAX_TEXT:
        raise BadRequest(
            f"Comment text too long: {size} bytes; the limit is {MAX_TEXT_BYTES} bytes "
            f"and {MAX_TEXT} characters."
        )
    return comment.text


class LanguageNotSupported(BadRequest):
    """Google's answer for an attribute it has no model for in the comment's language."""

    def __init__(self, attribute: str, languages: Sequence[str], detected: Sequence[str]) -> None:
        super().__init__(
            f"Attribute {attribute} does not support request languages: {','.join(languages)}"
        )
        self.attribute = attribute
        self.detected = list(detected)


def label_of(name: str) -> str | None:
    """The model's label an attribute name asks for (its experimental name too), if any."""
    return ATTRIBUTES.get(name.removesuffix(EXPERIMENTAL))


def checked_attributes(names: Sequence[str], field: str = "requestedAttributes") -> list[str]:
    """The attribute names of ``field``; refuses none, or a name Google does not know either."""
    if not names:
        raise BadRequest(f"{field} must name at least one attribute.")
    for name in names:
        if label_of(name) is None and name not in GOOGLE_ONLY:
            raise BadRequest(
                f"Unknown attribute: {name}. Supported attributes: {', '.join(ATTRIBUTES)}."
            )
    return list(names)


def checked_languages(
    requested: Sequence[str] | None,
    attributes: Sequence[str],
    detected: Detected,
    *,
    drop: bool = False,
) -> tuple[list[str], list[str]]:
    """The languages the comment is scored in, as the answer reports them, and the attributes
    scored in them.

    Those requested (``en-US`` counts as ``en``), else the detected one. A request naming only
    languages the model does not read is still scored when the text is confidently in one it
    does (Coral sends its site's locale, not the comment's); an attribute civility has no label
    for is refused in every language, or left out when the request says
    ``dropUnsupportedAttributes``."""
    seen = [detected.language] if detected.language else []
    languages = [language.primary(code) for code in requested or ()]
    if not languages:
        languages = [detected.language if detected.language and not detected.supported else "en"]
    languages = list(dict.fromkeys(languages))
    readable = any(language.model_reads(code) for code in languages) or (
        detected.language is not None and detected.language in language.MODEL_LANGUAGES
    )
    supported = [name for name in attributes if readable and label_of(name) is not None]
    if not drop:
        for name in attributes:
            if name not in supported:
                raise LanguageNotSupported(name, languages, seen)
    if not readable:
        return languages, supported
    return [code for code in languages if language.model_reads(code)] or ["en"], supported


def label_scores(
    attributes: Sequence[str], scores: Mapping[str, float], *, drop: bool = False
) -> dict[str, float]:
    """Per attribute, the model's score; an attribute the active model lacks is refused (left
    out with ``drop``)."""
    found = {}
    for name in attributes:
        label = label_of(name)
        if label is None or label not in scores:
            if drop:
                continue
            raise BadRequest(f"Attribute {name} is not scored by the active model.")
        found[name] = scores[label]
    return found


def segments(text: str) -> list[tuple[int, int]]:
    """Sentence-like parts of ``text`` as ``[begin, end)`` offsets, the spaces and line breaks
    around each left out, and the invisible characters before it (after it they may end an
    emoji's sequence); at most ``MAX_SPANS`` (neighbours merged evenly beyond that). A line
    break always ends one; a stop only where ``_ends_sentence`` says it does."""
    parts = []
    begin = 0
    for end in [*_sentence_ends(text), len(text)]:
        start, stop = begin, end
        begin = end
        while start < stop and is_blank(text[start]):
            start += 1
        while start < stop and text[stop - 1].isspace():
            stop -= 1
        if not is_blank(text[start:stop]):
            parts.append((start, stop))
    if len(parts) <= MAX_SPANS:
        return parts
    size = -(-len(parts) // MAX_SPANS)
    return [(group[0][0], group[-1][1]) for group in _chunks(parts, size)]


def _sentence_ends(text: str) -> list[int]:
    ends: list[int] = []
    for match in _STOP.finditer(text):
        start = ends[-1] if ends else 0
        if match.group() in _LINE_BREAKS or _ends_sentence(text, start, match):
            ends.append(match.end())
    return ends


def _ends_sentence(text: str, start: int, match: re.Match[str]) -> bool:
    """Whether the stops of ``match``, in the sentence begun at ``start``, end it.

    Only before a space or the end: ``3.5``, ``e.g.x`` and ``example.com`` go on. ``!`` and
    ``?`` end one, and so does a full stop, except after a title (``Mr.``), ``e.g.`` or a list's
    number (``1.``), after ``etc.`` unless a capital follows, after a lone letter (``B.``) or an
    initialism (``U.S.``) unless a word of ``_OPENERS`` follows, and an ellipsis that a small
    letter follows; nor does a quote closed by any of them that a
    small letter follows (``"Stop!" she said``)."""
    after = match.end()
    while after < len(text) and is_blank(text[after]) and not text[after].isspace():
        after += 1  # invisible characters (a zero-width space) between the stop and the space
    if after < len(text) and not text[after].isspace():
        return False
    following = _next_visible(text, after)
    small = following.islower()
    stops = match.group().rstrip(_CLOSING)
    if small and any(char in _QUOTES for char in match.group()[len(stops) :]):
        return False
    if any(char in _EXCLAIMS for char in stops):
        return True
    if len(stops) > 1 or "\u2026" in stops:
        return not small
    first = match.start()
    while first > start and not is_blank(text[first - 1]):
        first -= 1
    word = text[first : match.start()].lstrip(_OPENING).lower()
    if word in _NEVER_ENDS:
        return False
    if word.isascii() and word.isdigit() and is_blank(text[start:first]):
        return False  # a numbered list's "1."
    if word in _MAY_END:
        return following.isupper()
    if _INITIALS.fullmatch(word):
        # A lone letter or an initialism is as often inside a name (J. R. R. Tolkien, the U.S.
        # Army) as at a sentence's end (Plan B, the U.S.), and a capital after it says nothing;
        # the word after it does: a name goes on, one that cannot be a name opens a sentence.
        return _opens_sentence(text, after)
    return True


def _opens_sentence(text: str, index: int) -> bool:
    """Whether the first word from ``index`` on is a capitalised one of ``_OPENERS`` (``A.`` and
    ``I.`` there are initials, not words)."""
    while index < len(text) and (is_blank(text[index]) or text[index] in _OPENING):
        index += 1
    match = _WORD.match(text, index)
    if match is None or not match.group()[0].isupper():
        return False
    if len(match.group()) == 1 and text[match.end() : match.end() + 1] == ".":
        return False
    return match.group().lower() in _OPENERS


def _next_visible(text: str, index: int) -> str:
    """The first character from ``index`` on that is not blank or an opening quote or bracket
    ("" at the end)."""
    for char in text[index : index + 64]:
        if not is_blank(char) and char not in _OPENING:
            return char
    return ""


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
    summary: Mapping[str, float],
    spans: Sequence[tuple[int, int, Mapping[str, float]]] | None,
    languages: Sequence[str],
    detected: Sequence[str],
) -> dict[str, Any]:
    """Perspective's AnalyzeCommentResponse for the attributes of ``summary``; ``spans`` are
    ``(begin, end, label scores)``.

    An attribute whose ``scoreThreshold`` its score does not reach is left out, as Perspective
    does, and so is each span score below it ("Don't return scores for this attribute that are
    below this threshold")."""
    scores: dict[str, Any] = {}
    for name in summary:
        threshold = request.requested_attributes[name].score_threshold
        if threshold is not None and summary[name] < threshold:
            continue
        entry: dict[str, Any] = {"summaryScore": _score(summary[name])}
        if spans is not None:
            label = ATTRIBUTES[name.removesuffix(EXPERIMENTAL)]
            kept = [
                {"begin": begin, "end": end, "score": _score(part[label])}
                for begin, end, part in spans
                if threshold is None or part[label] >= threshold
            ]
            # Protobuf's JSON leaves an empty list out.
            if kept:
                entry["spanScores"] = kept
        scores[name] = entry
    body: dict[str, Any] = {
        "attributeScores": scores,
        "languages": list(languages),
        "detectedLanguages": list(detected),
    }
    if request.client_token is not None:
        body["clientToken"] = request.client_token
    return body


def suggested_labels(request: SuggestScoreRequest) -> dict[str, int]:
    """The labels a suggestion states: a suggested probability of at least 0.5 means "it is"."""
    names = checked_attributes(list(request.attribute_scores), "attributeScores")
    return {
        label: int(request.attribute_scores[name].value >= 0.5)
        for name in names
        if (label := label_of(name)) is not None
    }


def suggest_response(request: SuggestScoreRequest, detected: Sequence[str]) -> dict[str, Any]:
    """Perspective's SuggestCommentScoreResponse: the languages detected in the comment, those
    the request named (as it named them), and its ``clientToken``."""
    body: dict[str, Any] = {
        "detectedLanguages": list(detected),
        "requestedLanguages": list(request.languages or ()),
    }
    if request.client_token is not None:
        body["clientToken"] = request.client_token
    return body


def error_body(error: CivilityError) -> tuple[int, dict[str, Any]]:
    """Google's error object and HTTP status for ``error``."""
    status = 400 if error.status in _AS_INVALID_ARGUMENT else error.status
    message = error.message
    if isinstance(error, ValidationFailed) and error.details:
        problems = "; ".join(f"at '{item['field']}': {item['message']}" for item in error.details)
        message = f"Invalid JSON payload received. {problems}"
    google_status = GOOGLE_STATUS.get(status, "UNKNOWN")
    body: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if isinstance(error, LanguageNotSupported):
        body["details"] = [
            {
                "@type": LANGUAGE_ERROR_TYPE,
                "errorType": LANGUAGE_NOT_SUPPORTED,
                "languageNotSupportedByAttributeError": {
                    "detectedLanguages": error.detected,
                    "attribute": error.attribute,
                },
            }
        ]
    return status, {"error": body}
