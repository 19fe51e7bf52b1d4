"""The model's shape: features computed once per text for every label, then linear heads.

``build_pipeline()`` is pure: it returns an unfitted scikit-learn ``Pipeline`` and touches no data.
Text is normalised once (NFKC, confusables, leetspeak, runs; see ``classifier.normalize``) and
shared by a word and an in-word character n-gram vectorizer (the latter counted with numpy, see
``classifier.char_ngrams``); cheap signals (links, capitals, repeats,
length, already scaled to [0, 1]) come from the raw text. Vocabularies are bounded so the artifact
stays small and loads fast.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from classifier.char_ngrams import HashedCharNgrams
from classifier.heads import HeadSettings, LinearHeads
from classifier.labels import HEADS, LABELS, REAL_WORLD_RATES
from classifier.normalize import normalize
from classifier.signals import SignalFeatures

FloatArray = npt.NDArray[np.float64]

# One-letter words count ("u", "f"): the default pattern would drop them.
WORD_TOKEN_PATTERN = r"(?u)\b\w+\b"
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)


# Terms never contain a line break: normalisation turns every whitespace run into one space.
_TERM_SEPARATOR = "\n"


class CompactTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """``TfidfVectorizer`` whose vocabulary pickles as one string.

    A dict of a few hundred thousand terms takes seconds through joblib's unpickler; one string
    and a dict rebuilt from it take a fraction of that, which keeps model loading fast.
    """

    def __getstate__(self) -> dict[str, Any]:
        # A copy: the inherited state may be the live ``__dict__``, which must keep its vocabulary.
        state: dict[str, Any] = dict(super().__getstate__())
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            state["_terms"] = _TERM_SEPARATOR.join(terms)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        terms = state.pop("_terms", None)
        super().__setstate__(state)
        if terms is not None:
            split = terms.split(_TERM_SEPARATOR) if terms else []
            self.vocabulary_ = {term: index for index, term in enumerate(split)}


def normalize_all(texts: Iterable[str]) -> list[str]:
    """Normalise a batch of texts (module-level so the fitted pipeline pickles by reference)."""
    return [normalize(text) for text in texts]


def build_pipeline(
    *,
    labels: tuple[str, ...] = LABELS,
    max_word_features: int = 150_000,
    max_char_features: int = 250_000,
    min_df: int = 3,
    c: float = 1.0,
    n_jobs: int = 1,
    head_settings: Mapping[str, HeadSettings] = HEADS,
) -> Pipeline:
    """An unfitted pipeline: raw texts in, one calibrated probability per label out."""
    ngrams = FeatureUnion(
        [
            (
                "words",
                CompactTfidfVectorizer(
                    analyzer="word",
                    token_pattern=WORD_TOKEN_PATTERN,
                    ngram_range=WORD_NGRAMS,
                    lowercase=False,
                    min_df=min_df,
                    max_features=max_word_features,
                    sublinear_tf=True,
                    dtype=np.float32,
                ),
            ),
            (
                "chars",
                HashedCharNgrams(
                    ngram_range=CHAR_NGRAMS,
                    min_df=min_df,
                    max_features=max_char_features,
                    sublinear_tf=True,
                ),
            ),
        ]
    )
    text_features = Pipeline(
        [("normalize", FunctionTransformer(normalize_all)), ("ngrams", ngrams)]
    )
    features = FeatureUnion([("text", text_features), ("signals", SignalFeatures())])
    rates = {label: rate for label, rate in REAL_WORLD_RATES.items() if label in labels}
    settings = {label: setting for label, setting in head_settings.items() if label in labels}
    heads = LinearHeads(labels=labels, c=c, target_rates=rates, n_jobs=n_jobs, settings=settings)
    return Pipeline([("features", features), ("heads", heads)])


class FittedParts:
    """The steps of a fitted ``build_pipeline()``, called directly.

    Scoring one comment through ``Pipeline`` and ``FeatureUnion`` costs more in dispatch than in
    arithmetic; calling the same fitted steps in the same order gives the same numbers faster.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        features: FeatureUnion = pipeline.named_steps["features"]
        steps = dict(features.transformer_list)
        text_features: Pipeline = steps["text"]
        vectorizers = dict(text_features.named_steps["ngrams"].transformer_list)
        self.words: TfidfVectorizer = vectorizers["words"]
        self.chars: HashedCharNgrams = vectorizers["chars"]
        self.signals: SignalFeatures = steps["signals"]
        self.heads: LinearHeads = pipeline.named_steps["heads"]
        self.labels: tuple[str, ...] = tuple(self.heads.labels)
        # Replaceable by exact, faster equivalents (``classifier.fast_features``).
        self.word_features: Callable[[list[str]], sparse.csr_matrix] = self.words.transform
        self.char_features: Callable[[list[str]], sparse.csr_matrix] = self.chars.transform

    def features(self, texts: list[str]) -> sparse.csr_matrix:
        normalised = normalize_all(texts)
        blocks = [
            self.word_features(normalised),
            self.char_features(normalised),
            self.signals.transform(texts),
        ]
        return sparse.hstack(blocks, format="csr")

    def predict_proba(self, texts: list[str]) -> FloatArray:
        return self.heads.predict_proba(self.features(texts))
