"""The vectorised, batched evidence gives what the plain per-occurrence loop gives, on real texts.

The reference below is the definition written out one n-gram occurrence at a time: each feature's
value split evenly over its occurrences, each occurrence over its characters, words summing their
characters. The fast path must give the same per-character scores and the same spans.
"""

import random
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.char_ngrams import Windows
from classifier.datasets import load_source
from classifier.evidence import (
    MIN_SHARE_OF_STRONGEST,
    PUSH_DECIMALS,
    ExplainablePipeline,
    FloatArray,
    Span,
    _original_span,
    _strongest_merged,
    _words,
)
from classifier.model import Model
from classifier.normalize import normalize_with_offsets

SAMPLE_PER_SOURCE = 150


def _reference_scores(
    explainable: ExplainablePipeline, normalised: str, columns: Sequence[int]
) -> FloatArray:
    scores = np.zeros((len(normalised), len(columns)))
    parts = [
        (
            explainable.words.transform([normalised]).tocsr(),
            _reference_word_occurrences(explainable, normalised),
            explainable.word_coef,
        ),
        (
            explainable.chars.transform([normalised]).tocsr(),
            _reference_char_occurrences(explainable, normalised),
            explainable.char_coef,
        ),
    ]
    for row, occurrences, coef in parts:
        value_of = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        counts: dict[int, int] = {}
        for index, _, _ in occurrences:
            counts[index] = counts.get(index, 0) + 1
        for index, start, end in occurrences:
            share = value_of.get(index, 0.0) / counts[index] / max(end - start, 1)
            scores[start:end] += share * coef[index, columns]
    return scores


def _reference_word_occurrences(
    explainable: ExplainablePipeline, text: str
) -> list[tuple[int, int, int]]:
    vocabulary = explainable.words.vocabulary_
    pattern = re.compile(explainable.words.token_pattern)
    tokens = [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]
    low, high = explainable.words.ngram_range
    found = []
    for n in range(low, high + 1):
        for first in range(len(tokens) - n + 1):
            window = tokens[first : first + n]
            gram = " ".join(token for token, _, _ in window)
            if gram in vocabulary:
                found.append((vocabulary[gram], window[0][1], window[-1][2]))
    return found


def _reference_char_occurrences(
    explainable: ExplainablePipeline, text: str
) -> list[tuple[int, int, int]]:
    windows = Windows([text], explainable.chars.ngram_range)
    index, known = explainable.chars.feature_indices(windows.hashes)
    starts = np.maximum(windows.starts[known], 0)
    ends = np.minimum(windows.starts[known] + windows.sizes[known], len(text))
    return list(zip(index[known].tolist(), starts.tolist(), ends.tolist(), strict=True))


def _reference_spans(
    explainable: ExplainablePipeline, text: str, labels: Sequence[str], max_spans: int
) -> dict[str, list[Span]]:
    columns = [explainable.labels.index(label) for label in labels]
    normalised, offsets = normalize_with_offsets(text)
    result: dict[str, list[Span]] = {label: [] for label in labels}
    words = list(_words(normalised))
    if not normalised or not words:
        return result
    scores = _reference_scores(explainable, normalised, columns)
    word_scores = np.array([scores[start:end].sum(axis=0) for start, end in words])
    word_scores = np.round(word_scores, PUSH_DECIMALS)
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


def _dataset_texts(datasets_dir: Path) -> list[str]:
    """Real comments of every length: news comments, toxic-span posts, and the longest ones."""
    chooser = random.Random(14)
    texts: list[str] = []
    for name in ("c3-constructive-comments-corpus", "toxic-spans-civil-comments"):
        records = [r for split in load_source(datasets_dir, name).splits.values() for r in split]
        texts += [r.text for r in chooser.sample(records, SAMPLE_PER_SOURCE)]
        texts += sorted((r.text for r in records), key=len)[-3:]
    return texts


@pytest.fixture(scope="module")
def dataset_texts(datasets_dir: Path) -> list[str]:
    return _dataset_texts(datasets_dir)


def test_character_scores_equal_the_reference_on_dataset_texts(
    tiny_model: Model, dataset_texts: list[str]
) -> None:
    explainable = tiny_model._explainable
    columns = list(range(len(explainable.labels)))
    normalised = [normalize_with_offsets(text)[0] for text in dataset_texts]
    fast = explainable.character_scores_many(normalised, columns)
    for text, scores in zip(normalised, fast, strict=True):
        expected = _reference_scores(explainable, text, columns)
        assert scores.shape == expected.shape
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


def test_batched_spans_equal_the_reference_on_dataset_texts(
    tiny_model: Model, dataset_texts: list[str]
) -> None:
    batched = tiny_model.explain_many(dataset_texts, max_spans=5)
    for text, spans in zip(dataset_texts, batched, strict=True):
        assert spans == _reference_spans(tiny_model._explainable, text, tiny_model.labels, 5)
        assert tiny_model.explain(text) == spans


def test_a_batch_explains_each_text_as_if_alone(tiny_model: Model) -> None:
    texts = ["", "you are an idiot", "   ", "buy cheap watches http://x.example now"]
    assert tiny_model.explain_many(texts) == [tiny_model.explain(text) for text in texts]
    assert tiny_model.explain_many([]) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.text(alphabet=st.sampled_from("abcdeilostu !.$1@ \u0301\u00e9\t"), max_size=80),
        min_size=1,
        max_size=6,
    )
)
def test_a_text_gets_the_same_character_scores_in_any_batch(
    tiny_model: Model, texts: list[str]
) -> None:
    """Each character's total sums the same occurrences in the same order alone or batched."""
    explainable = tiny_model._explainable
    columns = list(range(len(explainable.labels)))
    batched = explainable.character_scores_many(texts, columns)
    for text, scores in zip(texts, batched, strict=True):
        assert np.array_equal(scores, explainable.character_scores(text, columns))
