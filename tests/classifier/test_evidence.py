"""Evidence spans are exact shares of the linear score, mapped to valid offsets of the original."""

import itertools
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.evidence import ExplainablePipeline
from classifier.model import Model
from classifier.normalize import normalize
from classifier.pipeline import FittedParts


def _assert_valid(spans: list[tuple[int, int]], text: str, max_spans: int) -> None:
    assert len(spans) <= max_spans
    for start, end in spans:
        assert 0 <= start < end <= len(text)
    assert all(left[1] <= right[0] for left, right in itertools.pairwise(spans))


@pytest.mark.parametrize(
    "text",
    [
        "You are a stupid idiot and everyone knows it.",
        "Ｙｏｕ ａｒｅ ａｎ ｉｄｉｏｔ",
        "you are an i.d.i.o.t!!!",
        "sh!t  \u200bhead, go away 😡",
        "Check out my channel http://bit.ly/abc and subscribe!!!",
    ],
)
def test_spans_are_valid_offsets_of_the_original_text(tiny_model: Model, text: str) -> None:
    evidence = tiny_model.explain(text, max_spans=3)
    assert set(evidence) == set(tiny_model.labels)
    for spans in evidence.values():
        _assert_valid(spans, text, 3)


def test_obfuscated_insult_is_highlighted_where_it_was_written(tiny_model: Model) -> None:
    text = "Honestly, you are a 1d10t."
    spans = tiny_model.explain(text, labels=["toxicity"])["toxicity"]
    assert any(text[start:end] == "1d10t" for start, end in spans)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("you are an idiotttttt", "idiotttttt"),  # the run cut to "tt" is highlighted whole
        ("you are an i\u0337d\u0337i\u0337o\u0337t\u0337", "i\u0337d\u0337i\u0337o\u0337t\u0337"),
        ("you are an idiot\u0301 ok", "idiot\u0301"),  # a mark on the last letter stays with it
    ],
)
def test_a_highlight_covers_the_whole_written_word(tiny_model: Model, text: str, word: str) -> None:
    spans = tiny_model.explain(text, labels=["toxicity"])["toxicity"]
    assert (text.index(word), text.index(word) + len(word)) in spans


def test_civil_text_words_only_highlight_positive_pushes(tiny_model: Model) -> None:
    # Whatever is returned must be a real push up: a label with nothing pushing it has no spans.
    evidence = tiny_model.explain("", max_spans=5)
    assert all(spans == [] for spans in evidence.values())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=120))
def test_spans_are_valid_for_any_text(tiny_model: Model, text: str) -> None:
    for spans in tiny_model.explain(text, max_spans=4).values():
        _assert_valid(spans, text, 4)


def test_character_shares_add_up_to_the_ngram_part_of_the_score(tiny_model_path: Path) -> None:
    pipeline = joblib.load(tiny_model_path)
    explainable = ExplainablePipeline(FittedParts(pipeline))
    text = "What a stupid, STUPID idea. You people are idiots!! Visit www.example.com"
    normalised = normalize(text)
    columns = list(range(len(explainable.labels)))
    shares = explainable.character_scores(normalised, columns).sum(axis=0)

    features = pipeline.named_steps["features"].transform([text]).tocsr()
    ngram_columns = explainable.word_coef.shape[0] + explainable.char_coef.shape[0]
    coef = np.asarray(pipeline.named_steps["heads"].coef_, dtype=np.float64)
    expected = np.asarray(features[:, :ngram_columns] @ coef[:ngram_columns]).ravel()
    np.testing.assert_allclose(shares, expected, rtol=1e-4, atol=1e-6)
