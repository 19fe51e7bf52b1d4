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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.char_ngrams import HashedCharNgrams, Windows
from classifier.fast_features import CompiledTfidf, compile_tfidf
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
    """Where the known n-grams of a batch occur: text (row), feature index, start and end
    (exclusive) in that text."""

    rows: IntArray
    features: IntArray
    starts: IntArray
    ends: IntArray


class ExplainablePipeline:
    """The parts of a fitted pipeline that explanations need, looked up once."""

    def __init__(self, parts: FittedParts) -> None:
        self.words: TfidfVectorizer = parts.words
        self.chars: HashedCharNgrams = parts.chars
        self.labels = parts.labels
        self.word_tfidf = _compiled(parts.word_features, parts.words)
        self.char_tfidf = _compiled(parts.char_features, parts.chars)
        word_count = len(self.words.vocabulary_)
        char_count = self.chars.hashes_.size
        coef = np.asarray(parts.heads.coef_, dtype=np.float64)
        self.word_coef = coef[:word_count]
        self.char_coef = coef[word_count : word_count + char_count]

    def character_scores(self, normalised: str, columns: Sequence[int]) -> FloatArray:
        """Each normalised character's share of each label's raw score (chars x columns)."""
        return self.character_scores_many([normalised], columns)[0]

    def character_scores_many(
        self, normalised: Sequence[str], columns: Sequence[int]
    ) -> list[FloatArray]:
        """``character_scores`` of a batch, worked out for all its texts at once."""
        texts = list(normalised)
        # Every text's characters in one array, each followed by a row where its occurrences
        # may end. It holds changes of the running score: each occurrence adds its share where
        # it starts and takes it back where it ends, so a cumulative sum gives every total.
        bounds = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(text) + 1 for text in texts], out=bounds[1:])
        chosen = np.asarray(columns, dtype=np.int64)
        width = chosen.size
        lanes = np.arange(width)
        cells: list[IntArray] = []
        weights: list[FloatArray] = []
        kinds = (
            (self._word_occurrences(texts), self.word_tfidf, self.word_coef),
            (self._char_occurrences(texts), self.char_tfidf, self.char_coef),
        )
        for occurrences, tfidf, coef in kinds:
            shares = _shares(occurrences, tfidf, len(texts))
            weight = shares[:, None] * coef[np.ix_(occurrences.features, chosen)]
            first = bounds[occurrences.rows]
            cells += [first + occurrences.starts, first + occurrences.ends]
            weights += [weight, -weight]
        # One bincount for every column at once: bin (position, column) of the flattened array.
        positions = np.concatenate(cells)[:, None] * width + lanes
        changes = np.bincount(
            positions.ravel(), np.concatenate(weights).ravel(), int(bounds[-1]) * width
        ).reshape(int(bounds[-1]), width)
        return [
            np.cumsum(changes[low:high], axis=0, dtype=np.float64)[:-1]
            for low, high in itertools.pairwise(bounds)
        ]

    def _word_occurrences(self, texts: list[str]) -> Occurrences:
        return Occurrences(*self.word_tfidf.word_occurrences(texts))

    def _char_occurrences(self, texts: list[str]) -> Occurrences:
        """Known character n-grams; a window's padding spaces lie outside the text."""
        windows = Windows(texts, self.chars.ngram_range)
        index, known = self.chars.feature_indices(windows.hashes)
        rows = windows.texts[known]
        lengths = np.array([len(text) for text in texts], dtype=np.int64)
        starts = windows.starts[known]
        ends = np.minimum(starts + windows.sizes[known], lengths[rows])
        return Occurrences(rows, index[known], np.maximum(starts, 0), ends)


def _compiled(
    transform: Callable[[list[str]], sparse.csr_matrix],
    vectorizer: TfidfVectorizer | HashedCharNgrams,
) -> CompiledTfidf:
    """The fast form of a fitted vectorizer, whose n-gram occurrences evidence is made of."""
    if isinstance(transform, CompiledTfidf):
        return transform
    compiled = compile_tfidf(vectorizer)
    if not isinstance(compiled, CompiledTfidf):
        raise ValueError(f"evidence cannot be worked out for this {type(vectorizer).__name__}")
    return compiled


def _shares(occurrences: Occurrences, tfidf: CompiledTfidf, height: int) -> FloatArray:
    """Each occurrence's share per character: its feature's TF-IDF value split evenly over the
    feature's occurrences in that text and over the characters the occurrence covers."""
    keys, inverse, counts = np.unique(
        occurrences.rows * tfidf.width + occurrences.features,
        return_inverse=True,
        return_counts=True,
    )
    values, _, _ = tfidf.counted(keys, counts, height)
    spread: FloatArray = (
        values.astype(np.float64)[inverse]
        / counts[inverse]
        / np.maximum(occurrences.ends - occurrences.starts, 1)
    )
    return spread


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
