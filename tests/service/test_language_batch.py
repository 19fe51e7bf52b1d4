"""Detecting a batch of texts at once (what a scoring worker does) gives each text exactly what
detecting it alone gives: the same language and the same confidence, bit for bit."""

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.datasets import load_source
from service import language
from tests.service.test_language_walk import EDGE_CASES

BATCH = 7
"""Texts per batch: the scoring workers' mean batch at the intake benchmark is 6-7."""

GERMAN = (
    "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt."
)
RUSSIAN = (
    "Правительство должно наконец отремонтировать мост через реку до начала зимы, потому что"
    " иначе его закроют и людям придётся ездить в объезд."
)
ENGLISH = "The council should finally repair the bridge over the river before winter comes."


NEWS_SOURCES = ("c3-constructive-comments-corpus", "civil-comments-sample")
"""The news comments the intake benchmark sends."""


def news_texts(datasets_dir: Path) -> list[str]:
    return [
        record.text
        for name in NEWS_SOURCES
        for split in load_source(datasets_dir, name).splits.values()
        for record in split
    ]


def singly(texts: list[str]) -> list[language.Detected]:
    return [language.detect(text) for text in texts]


def test_every_dataset_text_is_detected_in_a_batch_as_alone(datasets_dir: Path) -> None:
    texts = news_texts(datasets_dir)
    batched: list[language.Detected] = []
    for start in range(0, len(texts), BATCH):
        batched += language.detect_many(texts[start : start + BATCH])
    alone = singly(texts)
    assert [index for index, (a, b) in enumerate(zip(alone, batched, strict=True)) if a != b] == []
    # Not a comparison of texts nobody judged: most are judged, and some in other languages.
    assert sum(found.language is not None for found in alone) > 0.9 * len(texts)
    assert any(not found.supported for found in alone)


def test_edge_cases_are_detected_in_a_batch_as_alone() -> None:
    long = (ENGLISH + " ") * (20_000 // len(ENGLISH))
    texts = [
        *EDGE_CASES,
        "",
        "ok",
        "https://example.com/a https://example.org/b?c=d www.example.net",
        "<a href='https://example.com'>https://example.com</a>",
        GERMAN,
        RUSSIAN,
        "これは日本語で書かれたかなり長いコメントで、橋の修理について述べています。",
        "Η κυβέρνηση πρέπει επιτέλους να επισκευάσει τη γέφυρα πριν από τον χειμώνα.",
        long[:20_000],
        ENGLISH.upper(),
    ]
    assert language.detect_many(texts) == singly(texts)
    # Each one alone, and in the reverse order, where other texts precede it.
    for text in texts:
        assert language.detect_many([text]) == singly([text])
    assert language.detect_many(texts[::-1]) == singly(texts[::-1])
    assert language.detect_many([]) == []
    detected = language.detect_many([GERMAN, ENGLISH, "", RUSSIAN])
    assert [found.language for found in detected] == ["de", "en", None, "ru"]
    assert [found.supported for found in detected] == [False, True, True, False]


def test_a_batch_of_raw_bytes_scores_each_text_as_the_walk_of_it_alone() -> None:
    """Texts shorter than the longest n-gram, empty ones and ones without any feature: no byte
    of one text moves the walk of the next."""
    generator = np.random.default_rng(14)
    detector = language._identifier()
    texts = [
        generator.integers(0, 256, size, dtype=np.uint8).tobytes()
        for size in (0, 1, 2, 5, 6, 7, 0, 50, 3, 400, 5000, 1)
    ]
    # A sentence cut in pieces: a walk that ran on into the next piece would find the
    # sentence's n-grams, which no piece alone holds.
    sentence = ENGLISH.encode()
    cuts = [0, 1, 3, 6, 10, 15, 21, 28, 36, len(sentence)]
    texts += [sentence[begin:end] for begin, end in itertools.pairwise(cuts)]
    batched = detector._raw_scores(texts)
    for text, row in zip(texts, batched, strict=True):
        assert np.array_equal(row, detector._raw_score(text)), text[:20]


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(
                list("abcdefghijklmnopqrstuvwxyz  éüßçАБВГДабвгдеж日本語αβγ.,!?")
            ),
            max_size=300,
        ),
        min_size=1,
        max_size=BATCH + 2,
    )
)
@settings(max_examples=100, deadline=None)  # the machine is shared; timing says nothing here
def test_any_batch_is_detected_as_its_texts_alone(texts: list[str]) -> None:
    assert language.detect_many(texts) == singly(texts)
