"""The language of a comment, so text the model cannot read is never scored as if it were English.

``py3langid`` (a maintained fork of langid.py; its naive-Bayes model over byte n-grams, 97
languages, ships inside the package, so nothing downloads) names the most likely language with a
normalised probability. Short texts are where it errs, and a wrong "not English" would hold a
civil comment, so a text is judged only from ``MIN_LETTERS`` letters on and only a confident
answer counts; anything else is taken to be in a language the model covers. The thresholds are
the ones ``bench/language.py`` measured (README, "Languages").
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

MODEL_LANGUAGES = frozenset({"en"})
"""The languages the shipped model was trained on (every training set is English)."""

MIN_LETTERS = 20
"""Fewer letters than this say too little about a language to hold a comment for it."""

MIN_CONFIDENCE = 0.95
"""A language other than the model's counts only when the detector is at least this sure."""

NO_LANGUAGE = "zxx"
"""ISO 639's "no linguistic content", which the detector names for bare links and markup."""

# Links and markup say nothing about a language (a link-only comment is spam to score, not a
# foreign text to hold), so they are left out before detection.
_NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|<[^>]{0,500}>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Detected:
    language: str | None
    """The detected ISO 639-1 code; None when the text is too short to tell."""
    confidence: float

    @property
    def supported(self) -> bool:
        """Whether the model may score the text: a model language, or no confident other one."""
        return (
            self.language is None
            or self.language in MODEL_LANGUAGES
            or self.confidence < MIN_CONFIDENCE
        )


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> Detected:
    words = _NOT_WORDS.sub(" ", text)
    if sum(char.isalpha() for char in words) < MIN_LETTERS:
        return Detected(None, 0.0)
    language, confidence = _identifier().classify(words)
    if language == NO_LANGUAGE:
        return Detected(None, 0.0)
    return Detected(str(language), float(confidence))


def primary(code: str) -> str:
    """The primary subtag of a BCP 47 or locale code: ``en-US``, ``en_us`` and ``EN`` are ``en``."""
    return code.strip().replace("_", "-").split("-")[0].lower()


def model_reads(code: str) -> bool:
    return primary(code) in MODEL_LANGUAGES
