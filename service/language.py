"""The language of a comment, so text the model cannot read is never scored as if it were English.

``py3langid`` (a maintained fork of langid.py; its naive-Bayes model over byte n-grams, 97
languages, ships inside the package, so nothing downloads) names the most likely language with a
normalised probability. Short texts are where it errs, and a wrong "not English" would hold a
civil comment, so a text is judged only from ``MIN_LETTERS`` letters on and only a confident
answer counts; anything else is taken to be in a language the model covers. The thresholds are
the ones ``bench/language.py`` measured (README, "Languages").
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt
from py3langid.langid import MODEL_FILE, LanguageIdentifier

MODEL_LANGUAGES = frozenset({"en"})
"""The languages the shipped model was trained on (every training set is English)."""

MIN_LETTERS = 20
"""Fewer letters than this say too little about a language to hold a comment for it."""

DETECT_MAX_CHARS = 2_000
"""Only a comment's first characters are read: they tell its language as well as the rest (99 % of
the benchmark's real comments are shorter), and a 20,000-character comment cost ~30 ms of the
event loop read whole."""

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


LONGEST_NGRAM_BYTES = 6
"""The deepest state of the shipped model's n-gram automaton (a test walks it to check)."""


class _VectorisedIdentifier(LanguageIdentifier):  # type: ignore[misc]
    """py3langid's identifier with its byte-by-byte Python walk of the n-gram automaton done
    by numpy over every byte at once: the same features in the same order, so the same scores.

    The automaton (Aho-Corasick) is in the state of the longest n-gram prefix that ends at the
    current byte, which the last ``LONGEST_NGRAM_BYTES`` bytes alone decide; so each byte's state
    is found by walking from the start state over just those bytes, for all bytes together.
    The Python walk cost ~0.2 ms of API CPU per comment at real lengths, a fifth of intake's."""

    __slots__ = ("_moves", "_outputs", "_row_offsets")

    def __init__(self, nb_ptc: npt.ArrayLike, *args: Any, **kwargs: Any) -> None:
        # The model's weights are float16, and numpy widened the rows a comment selects to
        # float32 on every product, in software: 54 µs of a real comment's 67 µs product. Widened
        # once (exactly; 28 MB more), the same float32 product gives the same bits.
        super().__init__(np.asarray(nb_ptc, dtype=np.float32), *args, **kwargs)
        # A view of the library's table (~40 MB), not a copy.
        self._moves = np.frombuffer(self.tk_nextmove, dtype=np.uint32)
        self._row_offsets = np.asarray(self.tk_row, dtype=np.intp) << 8
        self._outputs = np.asarray(self.tk_output, dtype=np.intp)

    def _raw_score(self, text: bytes) -> npt.NDArray[np.float32]:
        codes = np.frombuffer(text, dtype=np.uint8).astype(np.intp)
        states = np.zeros(codes.size, dtype=np.intp)
        moves, rows = self._moves, self._row_offsets
        for back in range(min(LONGEST_NGRAM_BYTES, codes.size) - 1, -1, -1):
            # Byte i - back moves the walk that ends at byte i; walks that would start before
            # the text start later, in the start state, which is the same.
            states[back:] = moves[rows[states[back:]] + codes[: codes.size - back]]
        found = self._outputs[states]
        found = found[found >= 0]
        if found.size == 0:
            # The library's answer for a text without features.
            empty: npt.NDArray[np.float32] = super()._raw_score(b"")
            return empty
        features, first, counts = np.unique(found, return_index=True, return_counts=True)
        # The library sums features in the order they first occur; float32 sums in another
        # order could differ in the last bit.
        order = np.argsort(first, kind="stable")
        weights = np.log1p(counts[order].astype(np.float32))
        scores: npt.NDArray[np.float32] = weights @ self.nb_ptc[features[order]] + self.nb_pc
        return scores

    def classify_many(self, texts: Sequence[bytes]) -> list[tuple[str, float]]:
        """``classify`` of each encoded text, with one numpy pass over the whole batch: numpy's
        per-call overhead is paid once per batch, not once per comment (a scoring batch holds
        6-7; in batches of 7 real comments, 0.73x the CPU per comment of one at a time, the
        rest the automaton's and the weights' table lookups). The language and confidence are
        ``classify``'s own, bit for bit (a test compares them on every dataset text)."""
        scores = self._raw_scores(texts)
        # As ``_decide``: scaled by each text's length (a float32 factor, as numpy casts the
        # library's Python float), then normalised row by row.
        scores *= np.array([1.0 / math.sqrt(len(text) or 1) for text in texts], np.float32)[:, None]
        np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        for first, alias in self._alias_pairs:
            scores[:, first] += scores[:, alias]
            scores[:, alias] = 0.0
        best = scores.argmax(axis=1)
        confidences = scores[np.arange(len(texts)), best].tolist()
        classes = self.nb_classes
        return [
            (classes[index], confidence)
            for index, confidence in zip(best.tolist(), confidences, strict=True)
        ]

    def _raw_scores(self, texts: Sequence[bytes]) -> npt.NDArray[np.float32]:
        """``_raw_score`` of each text, one row each: the walk runs over the texts' bytes end to
        end, each byte's walk stopped at its own text's start."""
        sizes = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
        codes = np.frombuffer(b"".join(texts), dtype=np.uint8).astype(np.intp)
        owners = np.repeat(np.arange(len(texts)), sizes)
        offsets = np.arange(codes.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        near_start = np.flatnonzero(offsets < LONGEST_NGRAM_BYTES - 1)
        states = np.zeros(codes.size, dtype=np.intp)
        moves, rows = self._moves, self._row_offsets
        for back in range(min(LONGEST_NGRAM_BYTES, codes.size) - 1, -1, -1):
            states[back:] = moves[rows[states[back:]] + codes[: codes.size - back]]
            # A walk that would start before its text does starts later, in the start state,
            # as in the text alone: the bytes of the text before it do not move it.
            states[near_start[offsets[near_start] < back]] = 0
        found = self._outputs[states]
        kept = found >= 0
        features_count = self.nb_ptc.shape[0]
        keys, first, counts = np.unique(
            owners[kept] * features_count + found[kept], return_index=True, return_counts=True
        )
        # Each text's features in the order they first occur, as the library sums them; the
        # texts stay in their order, since a text's bytes all come before the next one's.
        order = np.argsort(first, kind="stable")
        keys = keys[order]
        owned, features = np.divmod(keys, features_count)
        weights = np.log1p(counts[order].astype(np.float32))
        selected = self.nb_ptc[features]
        ends = np.searchsorted(owned, np.arange(len(texts)), side="right").tolist()
        # A text without features scores as the library scores one: zeros before normalising.
        scores = np.zeros((len(texts), self.nb_pc.shape[0]), dtype=np.float32)
        start = 0
        for index, end in enumerate(ends):
            if end > start:
                # One product per text, as the library's: a product over the whole batch would
                # sum in another order and could differ in the last bit.
                scores[index] = weights[start:end] @ selected[start:end] + self.nb_pc
            start = end
        return scores


@lru_cache(maxsize=1)
def _identifier() -> _VectorisedIdentifier:
    return _VectorisedIdentifier.from_model_file(MODEL_FILE, norm_probs=True)  # type: ignore[no-any-return]


def load() -> None:
    """Load the detector now (~0.5 s), so the first comment does not wait for it."""
    _identifier()


def detect(text: str) -> Detected:
    words = _words(text)
    if words is None:
        return Detected(None, 0.0)
    return _detected(*_identifier().classify(words))


def detect_many(texts: Sequence[str]) -> list[Detected]:
    """``detect`` of each text, the detector's numpy work done once for them all (what a
    scoring worker does with its batch)."""
    found = [Detected(None, 0.0)] * len(texts)
    judged: list[int] = []
    encoded: list[bytes] = []
    encode = _identifier()._encode
    for index, text in enumerate(texts):
        words = _words(text)
        if words is not None:
            judged.append(index)
            encoded.append(encode(words))
    if encoded:
        classified = _identifier().classify_many(encoded)
        for index, (language, confidence) in zip(judged, classified, strict=True):
            found[index] = _detected(language, confidence)
    return found


def _words(text: str) -> str | None:
    """The words of ``text`` the detector reads, or None when too few letters to judge."""
    words = _NOT_WORDS.sub(" ", text[:DETECT_MAX_CHARS])
    return words if _has_letters(words, MIN_LETTERS) else None


def _detected(language: str, confidence: float) -> Detected:
    if language == NO_LANGUAGE:
        return Detected(None, 0.0)
    return Detected(str(language), float(confidence))


def _has_letters(words: str, count: int) -> bool:
    """Whether ``words`` holds at least ``count`` letters: it stops at the last one needed,
    where counting every letter in Python cost ~8 µs of a real comment."""
    return next(islice(filter(str.isalpha, words), count - 1, None), None) is not None


def primary(code: str) -> str:
    """The primary subtag of a BCP 47 or locale code: ``en-US``, ``en_us`` and ``EN`` are ``en``."""
    return code.strip().replace("_", "-").split("-")[0].lower()


def model_reads(code: str) -> bool:
    return primary(code) in MODEL_LANGUAGES
