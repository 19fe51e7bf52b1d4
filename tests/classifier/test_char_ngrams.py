"""Hashed in-word character n-grams give the very TF-IDF values of scikit-learn's char_wb."""

from pathlib import Path

import joblib
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.char_ngrams import HashedCharNgrams, Windows
from classifier.normalize import normalize

SAMPLE = [
    "you are an idiot",
    "a b c",
    "",
    "x",
    "I disagree with the minister, respectfully.",
    "😡😡 what?! ok",
    "naïve café — ｆｕｌｌｗｉｄｔｈ",
]


def _reference(texts: list[str]) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), lowercase=False, sublinear_tf=True
    ).fit(texts)


def _rows_match(left: object, right: object, count: int) -> bool:
    for row in range(count):
        expected = np.sort(left[row].data)  # type: ignore[index]
        actual = np.sort(right[row].data)  # type: ignore[index]
        if expected.shape != actual.shape or not np.allclose(expected, actual):
            return False
    return True


def test_values_equal_char_wb_tfidf_on_a_sample() -> None:
    texts = [normalize(text) for text in SAMPLE]
    hashed = HashedCharNgrams(min_df=1).fit(texts)
    reference = _reference(texts)
    assert hashed.hashes_.size == len(reference.vocabulary_)
    assert _rows_match(reference.transform(texts), hashed.transform(texts), len(texts))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_values_equal_char_wb_tfidf_for_any_texts(raw: list[str]) -> None:
    texts = [normalize(text) for text in raw]
    if not any(texts):
        return  # scikit-learn refuses an empty vocabulary; covered below
    hashed = HashedCharNgrams(min_df=1).fit(texts)
    assert _rows_match(_reference(texts).transform(texts), hashed.transform(texts), len(texts))


def test_unknown_ngrams_and_empty_texts_give_empty_rows() -> None:
    hashed = HashedCharNgrams(min_df=1).fit(["hello world"])
    matrix = hashed.transform(["", "zzzz qqqq"])
    assert matrix.shape == (2, hashed.hashes_.size)
    assert matrix.nnz == 0


def test_min_df_and_max_features_bound_the_vocabulary() -> None:
    texts = ["spam spam", "spam eggs", "ham"]
    assert HashedCharNgrams(min_df=2).fit(texts).hashes_.size < (
        HashedCharNgrams(min_df=1).fit(texts).hashes_.size
    )
    assert HashedCharNgrams(min_df=1, max_features=5).fit(texts).hashes_.size == 5


def test_windows_know_where_each_ngram_sits() -> None:
    windows = Windows(["ab cd"], (2, 2))
    spans = sorted(zip(windows.starts.tolist(), windows.sizes.tolist(), strict=True))
    # " a", "ab", "b " then " c", "cd", "d " (start -1 is the padding before the first word)
    assert spans == [(-1, 2), (0, 2), (1, 2), (2, 2), (3, 2), (4, 2)]


def test_pickled_vectorizer_rebuilds_its_lookup_and_gives_the_same_values(tmp_path: Path) -> None:
    texts = [normalize(text) for text in SAMPLE]
    hashed = HashedCharNgrams(min_df=1).fit(texts)
    joblib.dump(hashed, tmp_path / "chars.joblib")
    loaded = joblib.load(tmp_path / "chars.joblib")
    assert hasattr(hashed, "bucket_starts_"), "pickling leaves the live object whole"
    assert (loaded.transform(texts) != hashed.transform(texts)).nnz == 0
