"""Why a comment scored high: the spans of the original text that pushed a label up most.

A label's raw score is a sum over n-gram features of coefficient times TF-IDF value. Each feature
value is split evenly over its occurrences, each occurrence over the characters it covers, so every
character of the normalised text gets its share of the score; words add up their characters' shares.
The strongest positive words are mapped back to the original text through the offsets that
``normalize_with_offsets`` returns, and neighbours are merged into spans.
"""

import re
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.char_ngrams import HashedCharNgrams, Windows
from classifier.normalize import normalize_with_offsets
from classifier.pipeline import FittedParts

FloatArray = npt.NDArray[np.float64]
Span = tuple[int, int]

_WORD = re.compile(r"\w+")
# A word is evidence only if it carries at least this share of the strongest word's push, so the
# highlight stays on what mattered. Chosen on the toxic-spans training posts (character F1 0.63 at
# 0.35, 0.66 at 0.65); the trial posts that the report measures played no part.
MIN_SHARE_OF_STRONGEST = 0.65


class ExplainablePipeline:
    """The parts of a fitted pipeline that explanations need, looked up once."""

    def __init__(self, parts: FittedParts) -> None:
        self.words: TfidfVectorizer = parts.words
        self.chars: HashedCharNgrams = parts.chars
        self.labels = parts.labels
        self.word_features = parts.word_features
        self.char_features = parts.char_features
        word_count = len(self.words.vocabulary_)
        char_count = self.chars.hashes_.size
        coef = np.asarray(parts.heads.coef_, dtype=np.float64)
        self.word_coef = coef[:word_count]
        self.char_coef = coef[word_count : word_count + char_count]
        self.word_pattern = re.compile(self.words.token_pattern)

    def character_scores(self, normalised: str, columns: Sequence[int]) -> FloatArray:
        """Each normalised character's share of each label's raw score (chars x columns)."""
        scores = np.zeros((len(normalised), len(columns)))
        word_values = self.word_features([normalised])
        self._spread(
            scores, self._word_occurrences(normalised), word_values, self.word_coef, columns
        )
        char_values = self.char_features([normalised])
        self._spread(
            scores, self._char_occurrences(normalised), char_values, self.char_coef, columns
        )
        return scores

    @staticmethod
    def _spread(
        scores: FloatArray,
        occurrences: list[tuple[int, int, int]],
        values: object,
        coef: FloatArray,
        columns: Sequence[int],
    ) -> None:
        """Share each feature's value evenly over its occurrences and their characters."""
        row = values.tocsr()  # type: ignore[attr-defined]
        value_of = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        counts: dict[int, int] = {}
        for index, _, _ in occurrences:
            counts[index] = counts.get(index, 0) + 1
        for index, start, end in occurrences:
            share = value_of.get(index, 0.0) / counts[index] / max(end - start, 1)
            scores[start:end] += share * coef[index, columns]

    def _word_occurrences(self, text: str) -> list[tuple[int, int, int]]:
        """Known word n-grams as (feature index, start, end) in ``text``."""
        vocabulary: dict[str, int] = self.words.vocabulary_
        tokens = [
            (match.group(), match.start(), match.end())
            for match in self.word_pattern.finditer(text)
        ]
        low, high = self.words.ngram_range
        occurrences = []
        for n in range(low, high + 1):
            for first in range(len(tokens) - n + 1):
                window = tokens[first : first + n]
                gram = " ".join(token for token, _, _ in window)
                if gram in vocabulary:
                    occurrences.append((vocabulary[gram], window[0][1], window[-1][2]))
        return occurrences

    def _char_occurrences(self, text: str) -> list[tuple[int, int, int]]:
        """Known character n-grams as (feature index, start, end), padding spaces left out."""
        windows = Windows([text], self.chars.ngram_range)
        index, known = self.chars.feature_indices(windows.hashes)
        starts = np.maximum(windows.starts[known], 0)
        ends = np.minimum(windows.starts[known] + windows.sizes[known], len(text))
        return list(zip(index[known].tolist(), starts.tolist(), ends.tolist(), strict=True))


def _words(text: str) -> Iterator[Span]:
    for match in _WORD.finditer(text):
        yield match.start(), match.end()


def evidence_spans(
    explainable: ExplainablePipeline,
    text: str,
    labels: Sequence[str],
    max_spans: int,
) -> dict[str, list[Span]]:
    """For each label, up to ``max_spans`` spans [start, end) of ``text`` that raised it most."""
    columns = [explainable.labels.index(label) for label in labels]
    normalised, offsets = normalize_with_offsets(text)
    result: dict[str, list[Span]] = {label: [] for label in labels}
    if not normalised or max_spans <= 0:
        return result
    scores = explainable.character_scores(normalised, columns)
    words = list(_words(normalised))
    if not words:
        return result
    word_scores = np.array([scores[start:end].sum(axis=0) for start, end in words])
    for position, label in enumerate(labels):
        pushes = word_scores[:, position]
        strongest = float(pushes.max())
        if strongest <= 0.0:
            continue
        chosen = [
            index
            for index in np.argsort(-pushes)
            if pushes[index] >= MIN_SHARE_OF_STRONGEST * strongest
        ]
        original = sorted(_original_span(words[index], offsets, text) for index in chosen)
        result[label] = _strongest_merged(original, text, pushes, chosen, offsets, words, max_spans)
    return result


def _original_span(word: Span, offsets: list[int], text: str) -> Span:
    """The original characters of a normalised word, with the marks that combine with its last
    letter (normalisation drops them, a highlight must not split them off)."""
    end = offsets[word[1] - 1] + 1
    while end < len(text) and unicodedata.category(text[end]).startswith("M"):
        end += 1
    return offsets[word[0]], end


def _strongest_merged(
    spans: list[Span],
    text: str,
    pushes: FloatArray,
    chosen: list[int],
    offsets: list[int],
    words: list[Span],
    max_spans: int,
) -> list[Span]:
    """Merge spans separated only by spaces; keep the ``max_spans`` with the largest push."""
    push_at = {
        _original_span(words[index], offsets, text): float(pushes[index]) for index in chosen
    }
    merged: list[tuple[int, int, float]] = []
    for start, end in spans:
        push = push_at.get((start, end), 0.0)
        if merged and start >= merged[-1][1] and not text[merged[-1][1] : start].strip():
            first, _, total = merged[-1]
            merged[-1] = (first, max(end, merged[-1][1]), total + push)
        elif merged and start < merged[-1][1]:
            first, last, total = merged[-1]
            merged[-1] = (first, max(end, last), total + push)
        else:
            merged.append((start, end, push))
    strongest = sorted(merged, key=lambda span: -span[2])[:max_spans]
    return sorted((start, end) for start, end, _ in strongest)
