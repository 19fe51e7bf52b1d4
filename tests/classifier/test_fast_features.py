"""The compiled text features equal the vectorizers' own to the last bit, on any text and models."""

from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from classifier.char_ngrams import HashedCharNgrams
from classifier.datasets import load_source
from classifier.fast_features import (
    MAX_CACHED_WORD_CHARS,
    CompiledParts,
    CompiledTfidf,
    compile_tfidf,
)
from classifier.model import Model, load_active
from classifier.pipeline import (
    CHAR_NGRAMS,
    WORD_NGRAMS,
    WORD_TOKEN_PATTERN,
    CompactTfidfVectorizer,
    FittedParts,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_SOURCES = ("kaggle-insults-social-commentary", "youtube-spam-collection")
REAL_TEXTS_PER_SOURCE = 1500

# Words, look-alikes, scripts and whitespace of several kinds, so generated text hits the
# vocabulary often and also misses it.
CORPUS = [
    "you are an idiot and a fool",
    "what an idiot , really",
    "great article , thank you for writing it",
    "check out my channel http : / / bit . ly",
    "the council voted   on tuesday\tagain",
    "café naïve résumé ßtraße Ångström",
    "дурак и идиот , правда",
    "笨蛋 你好 世界",
    "a b c d e f g aa bb cc",
    "idiot idiot idiot idiot",
]
ALPHABET = "abcdefgiortuyADIé ßд你 \t\n\u00a0\u2003\u3000\x1c.,!?_0123456789"

texts = st.one_of(
    st.text(),
    st.text(alphabet=ALPHABET),
    st.lists(st.sampled_from(" ".join(CORPUS).split()), max_size=30).map(" ".join),
    st.text(alphabet="idot", min_size=50, max_size=3000),  # very long words
    st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1d\x85\u00a0\u2028\u3000", max_size=20),
    st.just(""),
)
batches = st.lists(texts, min_size=1, max_size=8)


def _vectorizer(
    *,
    sublinear_tf: bool,
    dtype: type,
    ngram_range: tuple[int, int] = WORD_NGRAMS,
    token_pattern: str = WORD_TOKEN_PATTERN,
) -> TfidfVectorizer:
    vectorizer = TfidfVectorizer(
        analyzer="word",
        token_pattern=token_pattern,
        ngram_range=ngram_range,
        lowercase=False,
        sublinear_tf=sublinear_tf,
        dtype=dtype,
    )
    return vectorizer.fit(CORPUS)


VECTORIZERS: list[TfidfVectorizer | HashedCharNgrams] = (
    [
        _vectorizer(sublinear_tf=sublinear, dtype=dtype)
        for sublinear in (True, False)
        for dtype in (np.float32, np.float64)
    ]
    + [
        # Other n-gram sizes and scikit-learn's default tokens (n-grams looked up by token ids).
        _vectorizer(sublinear_tf=True, dtype=np.float32, ngram_range=(1, 3)),
        _vectorizer(sublinear_tf=True, dtype=np.float64, ngram_range=(2, 3)),
        _vectorizer(sublinear_tf=True, dtype=np.float32, token_pattern=r"(?u)\b\w\w+\b"),
    ]
    + [
        HashedCharNgrams(ngram_range=CHAR_NGRAMS, min_df=1, sublinear_tf=sublinear).fit(CORPUS)
        for sublinear in (True, False)
    ]
)
CHARACTER_VECTORIZERS = VECTORIZERS[-2:]


def assert_same_matrix(expected: sparse.csr_matrix, actual: sparse.csr_matrix) -> None:
    expected, actual = sparse.csr_matrix(expected), sparse.csr_matrix(actual)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual.indptr, expected.indptr)
    np.testing.assert_array_equal(actual.indices, expected.indices)
    assert np.abs(actual.data.astype(np.float64) - expected.data).max(initial=0.0) <= 1e-9


@pytest.mark.parametrize("vectorizer", VECTORIZERS, ids=repr)
@settings(max_examples=150, deadline=None)  # the CI machine is shared; timing says nothing here
@given(batch=batches)
def test_compiled_transform_equals_the_vectorizers_own_on_any_text(
    vectorizer: TfidfVectorizer | HashedCharNgrams, batch: list[str]
) -> None:
    compiled = compile_tfidf(vectorizer)
    assert isinstance(compiled, CompiledTfidf)
    assert_same_matrix(vectorizer.transform(batch), compiled(batch))
    # Once more from a warm cache, one text at a time: the same rows.
    for text in batch:
        assert_same_matrix(vectorizer.transform([text]), compiled([text]))


@pytest.mark.parametrize("vectorizer", CHARACTER_VECTORIZERS, ids=repr)
@given(batch=batches)
@example(batch=["a b c", "a d", "b c d", "e"])  # a full cache meets known and new words at once
@settings(max_examples=100, deadline=None)
def test_a_tiny_word_cache_changes_nothing_and_stays_bounded(
    vectorizer: TfidfVectorizer | HashedCharNgrams, batch: list[str]
) -> None:
    compiled = CompiledTfidf(vectorizer, cache_size=3)
    for part in [batch, *([text] for text in batch), batch[::-1]]:
        assert_same_matrix(vectorizer.transform(part), compiled(part))
        assert compiled.cached_words <= 3


@pytest.mark.parametrize("vectorizer", CHARACTER_VECTORIZERS, ids=repr)
def test_long_words_are_worked_out_each_time_and_never_cached(
    vectorizer: TfidfVectorizer | HashedCharNgrams,
) -> None:
    compiled = CompiledTfidf(vectorizer, cache_size=100)
    letters = "idiot" * MAX_CACHED_WORD_CHARS
    longest_kept = letters[:MAX_CACHED_WORD_CHARS]
    # Comments of distinct long words, as anyone may post: a word's cached columns grow with its
    # length, so caching them would grow the process by gigabytes.
    for length in range(MAX_CACHED_WORD_CHARS + 1, MAX_CACHED_WORD_CHARS + 21):
        long_word = letters[:length]
        for batch in ([f"you {long_word} {longest_kept}"], [long_word], [f"{long_word} you"]):
            assert_same_matrix(vectorizer.transform(batch), compiled(batch))
    assert compiled.cached_words == len({"you", longest_kept})


def test_an_empty_batch_gives_an_empty_matrix() -> None:
    for vectorizer in VECTORIZERS:
        matrix = compile_tfidf(vectorizer)([])
        assert matrix.shape == (0, vectorizer.transform(["idiot"]).shape[1])


def test_settings_it_does_not_reproduce_keep_scikit_learns_transform() -> None:
    lowercasing = TfidfVectorizer(analyzer="char_wb", lowercase=True).fit(CORPUS)
    plain_chars = TfidfVectorizer(analyzer="char").fit(CORPUS)
    # Tokens that may hold a space cannot be told apart from the n-grams joined by one.
    spaced_tokens = TfidfVectorizer(
        token_pattern=r"\w+(?: \w+)?", ngram_range=(1, 2), lowercase=False
    ).fit(CORPUS)
    for vectorizer in (lowercasing, plain_chars, spaced_tokens):
        assert compile_tfidf(vectorizer) == vectorizer.transform


def test_compact_vectorizers_compile_after_a_pickle_round_trip(tmp_path: Path) -> None:
    vectorizer = CompactTfidfVectorizer(
        token_pattern=WORD_TOKEN_PATTERN, ngram_range=WORD_NGRAMS, lowercase=False
    ).fit(CORPUS)
    joblib.dump(vectorizer, tmp_path / "words.joblib")
    loaded = joblib.load(tmp_path / "words.joblib")
    assert_same_matrix(vectorizer.transform(CORPUS), compile_tfidf(loaded)(CORPUS))


def _real_texts(datasets_dir: Path) -> list[str]:
    texts: list[str] = []
    for name in REAL_SOURCES:
        records = [
            record for split in load_source(datasets_dir, name).splits.values() for record in split
        ]
        texts.extend(record.text for record in records[:REAL_TEXTS_PER_SOURCE])
    return texts


def _assert_fast_path_is_exact(pipeline: Pipeline, model: Model, texts: list[str]) -> None:
    reference, compiled = FittedParts(pipeline), CompiledParts(pipeline)
    for first in range(0, len(texts), 512):
        batch = texts[first : first + 512]
        assert_same_matrix(reference.features(batch), compiled.features(batch))
        np.testing.assert_array_equal(model.predict_matrix(batch), reference.predict_proba(batch))
    for text in texts[:200]:
        assert model.score([text]) == [
            dict(zip(model.labels, map(float, row), strict=True))
            for row in reference.predict_proba([text])
        ]


def test_tiny_model_scores_the_same_with_and_without_the_fast_path(
    tiny_model_path: Path, datasets_dir: Path
) -> None:
    model = Model.load(tiny_model_path)
    _assert_fast_path_is_exact(joblib.load(tiny_model_path), model, _real_texts(datasets_dir))


def test_committed_model_scores_the_same_with_and_without_the_fast_path(
    datasets_dir: Path,
) -> None:
    model = load_active(PROJECT_ROOT / "models")
    _assert_fast_path_is_exact(joblib.load(model.artifact), model, _real_texts(datasets_dir))


@pytest.fixture(scope="module")
def committed_parts() -> tuple[FittedParts, CompiledParts]:
    pipeline = joblib.load(load_active(PROJECT_ROOT / "models").artifact)
    return FittedParts(pipeline), CompiledParts(pipeline)


@settings(max_examples=100, deadline=None)
@given(batch=batches)
def test_committed_model_features_are_equal_on_any_text(
    committed_parts: tuple[FittedParts, CompiledParts], batch: list[str]
) -> None:
    reference, compiled = committed_parts
    assert_same_matrix(reference.features(batch), compiled.features(batch))
