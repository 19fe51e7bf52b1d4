"""Cheap signals: what one comment carries, and the transformer that scales them for a model."""

import io

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from classifier.signals import (
    SIGNAL_NAMES,
    SignalFeatures,
    Signals,
    _count_letters_capitals_digits,
    extract_signals,
    is_link_shortener,
)


def column(name: str) -> int:
    return SIGNAL_NAMES.index(name)


def test_finds_links_shorteners_emails_and_phones() -> None:
    signals = extract_signals(
        "FREE prizes at bit.ly/win and https://tinyurl.com/x, see www.example.org/about."
        " Mail Win@Example.com or call +44 20 7946 0958!"
    )
    assert signals.urls == ("bit.ly/win", "https://tinyurl.com/x", "www.example.org/about")
    assert signals.shortener_count == 2
    assert signals.emails == ("win@example.com",)
    assert signals.phones == ("+44 20 7946 0958",)


def test_finds_links_written_in_look_alike_characters() -> None:
    assert extract_signals("go to ｂｉｔ．ｌｙ/free now").shortener_count == 1
    assert extract_signals("go to g\u200boo.gl/x").urls == ("goo.gl/x",)


def test_civil_text_carries_no_entities() -> None:
    signals = extract_signals("The U.S. and Russia agreed on 3.5 points in 2019 2020, e.g. trade.")
    assert (signals.urls, signals.emails, signals.phones) == ((), (), ())
    assert signals.shortener_count == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("bit.ly/abc", True),
        ("https://t.co/xyz", True),
        ("http://www.tinyurl.com/a", True),
        ("youtu.be/dQw4w9WgXcQ", True),
        ("https://example.com/bit.ly", False),
        ("notbit.ly", False),
        ("www.nytimes.com", False),
    ],
)
def test_recognises_link_shorteners_by_host(url: str, expected: bool) -> None:
    assert is_link_shortener(url) is expected


def test_typographic_signals() -> None:
    signals = extract_signals("STOP IT NOW!!!!! sooo bad 123")
    assert signals.length == len("STOP IT NOW!!!!! sooo bad 123")
    assert signals.capitals_ratio == pytest.approx(9 / 16)  # 9 capitals among 16 letters
    assert signals.repeated_runs == 2  # "!!!!!" and "ooo"
    assert signals.longest_run == 5
    assert signals.exclamation_density == pytest.approx(5 / signals.length)
    assert signals.digits_ratio == pytest.approx(3 / signals.length)


def test_empty_text_has_zero_signals() -> None:
    assert extract_signals("").as_features() == (0.0,) * len(SIGNAL_NAMES)


@given(st.text(max_size=300))
@settings(deadline=None)  # the CI machine is shared; timing says nothing here
def test_scaled_signals_stay_within_unit_interval(text: str) -> None:
    features = extract_signals(text).as_features()
    assert len(features) == len(SIGNAL_NAMES)
    assert all(0.0 <= value <= 1.0 for value in features)


def test_transformer_returns_one_sparse_row_per_text() -> None:
    texts = ["hello there", "CLICK bit.ly/x NOW!!!", ""]
    matrix = SignalFeatures().fit(texts).transform(texts)
    assert sp.issparse(matrix)
    assert matrix.shape == (3, len(SIGNAL_NAMES))
    dense = matrix.toarray()
    assert dense[1, column("link_shorteners")] > 0
    assert dense[0, column("links")] == 0
    assert dense[1, column("capitals_ratio")] > dense[0, column("capitals_ratio")]
    np.testing.assert_allclose(dense[1], extract_signals(texts[1]).as_features())


def test_transformer_handles_an_empty_batch() -> None:
    assert SignalFeatures().transform([]).shape == (0, len(SIGNAL_NAMES))


def test_feature_names_match_columns() -> None:
    names = SignalFeatures().fit(["x"]).get_feature_names_out()
    assert list(names) == [f"signal_{name}" for name in SIGNAL_NAMES]


def test_transformer_survives_joblib_inside_a_pipeline() -> None:
    texts = ["great point, thanks", "WIN $$$ at bit.ly/free!!!"] * 5
    labels = [0, 1] * 5
    pipeline = make_pipeline(
        make_union(TfidfVectorizer(), SignalFeatures()), LogisticRegression(max_iter=200)
    )
    pipeline.fit(texts, labels)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    np.testing.assert_allclose(restored.predict_proba(texts), pipeline.predict_proba(texts))


def test_signals_are_immutable() -> None:
    signals = extract_signals("x")
    assert isinstance(signals, Signals)
    with pytest.raises(AttributeError):
        signals.length = 3  # type: ignore[misc]


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
@settings(deadline=None)
def test_ascii_text_counts_letters_capitals_and_digits_as_unicode_text_does(text: str) -> None:
    expected = (
        sum(map(str.isalpha, text)),
        sum(map(str.isupper, text)),
        sum(map(str.isdigit, text)),
    )
    assert _count_letters_capitals_digits(text) == expected
