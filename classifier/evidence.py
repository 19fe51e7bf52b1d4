"""Why a comment scored high: the spans of the original text that pushed a label up most.

A label's raw score is a sum over n-gram features of coefficient times TF-IDF value. Each feature
value is split evenly over its occurrences, each occurrence over the characters it covers, so every
character of the normalised text gets its share of the score; words add up their characters' shares.
The strongest positive words are mapped back to the original text through the offsets that
``normalize_with_offsets`` returns, and neighbours are merged into spans.
"""

import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.char_ngrams import HashedCharNgrams, Windows
from classifier.normalize import normalize_with_offsets
from classifier.pipeline import FittedParts

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Span = tuple[int, int]

_WORD = re.compile(r"\w+")
# A word is evidence only if it carries at least this share of the strongest word's push, so the
# highlight stays on what mattered. Chosen on the toxic-spans training posts (character F1 0.63 at
# 0.35, 0.66 at 0.65); the trial posts that the report measures played no part.
MIN_SHARE_OF_STRONGEST = 0.65
# Word pushes are raw score units (tenths to units); rounding far below that only merges ties.
PUSH_DECIMALS = 9


@dataclass(frozen=True, slots=True)
class Occurrences:
    """Where each known n-gram of a text occurs: feature index, start and end (exclusive)."""

    features: IntArray
    starts: IntArray
    ends: IntArray


_NO_OCCURRENCES = Occurrences(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


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
        return self.character_scores_many([normalised], columns)[0]

    def character_scores_many(
        self, normalised: Sequence[str], columns: Sequence[int]
    ) -> list[FloatArray]:
        """``character_scores`` of a batch: the vectorisers run once for all texts."""
        texts = list(normalised)
        word_values = self.word_features(texts).tocsr()
        char_values = self.char_features(texts).tocsr()
        char_occurrences = self._char_occurrences(texts)
        result = []
        for row, text in enumerate(texts):
            # A difference array: each occurrence adds its share where it starts and takes it
            # back where it ends, so one cumulative sum gives every character's total.
            changes = np.zeros((len(text) + 1, len(columns)))
            _spread(
                changes, self._word_occurrences(text), word_values[row], self.word_coef, columns
            )
            _spread(changes, char_occurrences[row], char_values[row], self.char_coef, columns)
            result.append(np.cumsum(changes, axis=0)[:-1])
        return result

    def _word_occurrences(self, text: str) -> Occurrences:
        """Known word n-grams as (feature index, start, end) in ``text``."""
        vocabulary: dict[str, int] = self.words.vocabulary_
        matches = list(self.word_pattern.finditer(text))
        tokens = [match.group() for match in matches]
        starts = [match.start() for match in matches]
        ends = [match.end() for match in matches]
        low, high = self.words.ngram_range
        found: list[tuple[int, int, int]] = []
        for n in range(low, high + 1):
            grams = (
                tokens
                if n == 1
                else map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False))
            )
            for first, gram in enumerate(grams):
                index = vocabulary.get(gram)
                if index is not None:
                    found.append((index, starts[first], ends[first + n - 1]))
        if not found:
            return _NO_OCCURRENCES
        columns = np.array(found, dtype=np.int64)
        return Occurrences(columns[:, 0], columns[:, 1], columns[:, 2])

    def _char_occurrences(self, texts: list[str]) -> list[Occurrences]:
        """Per text, known character n-grams as (feature index, start, end), padding left out."""
        windows = Windows(texts, self.chars.ngram_range)
        index, known = self.chars.feature_indices(windows.hashes)
        owners = windows.texts[known]
        lengths = np.array([len(text) for text in texts], dtype=np.int64)
        starts = np.maximum(windows.starts[known], 0)
        ends = np.minimum(windows.starts[known] + windows.sizes[known], lengths[owners])
        # Windows come grouped by n-gram size, not by text: a stable sort groups them by text.
        order = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[order], np.arange(len(texts) + 1))
        features, starts, ends = index[known][order], starts[order], ends[order]
        return [
            Occurrences(features[low:high], starts[low:high], ends[low:high])
            for low, high in itertools.pairwise(bounds.tolist())
        ]


def _spread(
    changes: FloatArray,
    occurrences: Occurrences,
    values: sparse.csr_matrix,
    coef: FloatArray,
    columns: Sequence[int],
) -> None:
    """Share each feature's value evenly over its occurrences and their characters, written as
    changes of the running per-character score (``changes`` has one row more than the text)."""
    if occurrences.features.size == 0 or values.nnz == 0:
        return
    order = np.argsort(values.indices)
    present, present_values = values.indices[order], values.data[order].astype(np.float64)
    position = np.minimum(np.searchsorted(present, occurrences.features), present.size - 1)
    known = present[position] == occurrences.features
    features = occurrences.features[known]
    starts, ends = occurrences.starts[known], occurrences.ends[known]
    _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
    shares = present_values[position[known]] / counts[inverse] / np.maximum(ends - starts, 1)
    weights = shares[:, None] * coef[np.ix_(features, columns)]
    # One bincount for every column at once: bin (position, column) of the flattened array gets
    # the same weights in the same order as a bincount per column would, so the same sums.
    width = changes.shape[1]
    cells = changes.size
    lanes = np.arange(width)
    weights = weights.ravel()
    changes += np.bincount((starts[:, None] * width + lanes).ravel(), weights, cells).reshape(
        changes.shape
    )
    changes -= np.bincount((ends[:, None] * width + lanes).ravel(), weights, cells).reshape(
        changes.shape
    )


def _words(text: str) -> Iterator[Span]:
    for match in _WORD.finditer(text):
        yield match.start(), match.end()


def evidence_spans_many(
    explainable: ExplainablePipeline,
    texts: Sequence[str],
    labels: Sequence[str],
    max_spans: int,
) -> list[dict[str, list[Span]]]:
    """For each text and label, up to ``max_spans`` spans [start, end) of the text that raised
    the label most; the features of the whole batch are computed in one pass."""
    columns = [explainable.labels.index(label) for label in labels]
    normalised = [normalize_with_offsets(text) for text in texts]
    results: list[dict[str, list[Span]]] = [{label: [] for label in labels} for _ in texts]
    explained = [row for row, (form, _) in enumerate(normalised) if form and max_spans > 0]
    scores = explainable.character_scores_many([normalised[row][0] for row in explained], columns)
    for row, character_scores in zip(explained, scores, strict=True):
        form, offsets = normalised[row]
        results[row] = _label_spans(texts[row], form, offsets, character_scores, labels, max_spans)
    return results


def _label_spans(
    text: str,
    normalised: str,
    offsets: list[int],
    scores: FloatArray,
    labels: Sequence[str],
    max_spans: int,
) -> dict[str, list[Span]]:
    result: dict[str, list[Span]] = {label: [] for label in labels}
    words = list(_words(normalised))
    if not words:
        return result
    # Words never touch (\w+ runs are maximal), so their bounds interleave in increasing order
    # and every other sum of ``reduceat`` is a word's; the zero row lets the last word end there.
    bounds = np.array(words, dtype=np.int64).ravel()
    padded = np.vstack([scores, np.zeros((1, scores.shape[1]))])
    # Pushes that differ only by float rounding are equal: a word repeated in the same context
    # ranks by position, whatever order its characters' shares were summed in.
    sums: FloatArray = np.add.reduceat(padded, bounds, axis=0)[::2]
    word_scores = sums.round(PUSH_DECIMALS)
    for position, label in enumerate(labels):
        pushes = word_scores[:, position]
        strongest = float(pushes.max())
        if strongest <= 0.0:
            continue
        chosen = np.flatnonzero(pushes >= MIN_SHARE_OF_STRONGEST * strongest).tolist()
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
