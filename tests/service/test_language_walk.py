"""The vectorised walk of the language detector's automaton gives py3langid's own scores, and
detection reads a comment's first DETECT_MAX_CHARS characters."""

import csv
import sys
from pathlib import Path

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from service import language

# Comments as sites send them, at their real lengths (the intake benchmark's texts).
COMMENT_SOURCES = (
    ("c3-constructive-comments-corpus/C3_anonymized.dedup.csv", "comment_text"),
    ("civil-comments-sample/civil_comments_10k.csv", "text"),
)

EDGE_CASES = (
    "",
    "a",
    "ab",
    "ÄÖÜ straße",
    "日本語のテキストです、かなり長い文章になります。",
    "\ud800 a lone surrogate",
    "😀" * 30,
    "SHOUTING IN CAPITALS ABOUT THE COUNCIL",
    "Ceci est une phrase en français, assez longue pour être jugée.",
    "Das ist ein ganz normaler deutscher Satz über die neue Brücke.",
    "https://example.com/only-a-link",
)


def _comments(datasets: Path) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    texts: list[str] = []
    for name, column in COMMENT_SOURCES:
        with (datasets / name).open(encoding="utf-8", newline="") as handle:
            texts.extend(row[column] for row in csv.DictReader(handle))
    return texts


def _library() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def test_every_dataset_text_scores_exactly_as_the_library(datasets_dir: Path) -> None:
    library, vectorised = _library(), language._identifier()
    for text in [*_comments(datasets_dir)[::3], *EDGE_CASES]:
        # Bit for bit: the detector's confidence decides whether a comment is held.
        assert np.array_equal(vectorised._decide(text), library._decide(text)), text[:80]


def test_random_bytes_score_exactly_as_the_library() -> None:
    library, vectorised = _library(), language._identifier()
    generator = np.random.default_rng(14)
    for size in (1, 2, 5, 6, 7, 50, 400, 5000):
        data = generator.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert np.array_equal(vectorised._raw_score(data), library._raw_score(data))


def test_no_state_of_the_automaton_is_deeper_than_the_walk_reads() -> None:
    """The walk reads the last LONGEST_NGRAM_BYTES bytes of each position: the deepest state
    of the shipped automaton (its distance from the start state) must be within that."""
    detector = language._identifier()
    moves = np.frombuffer(detector.tk_nextmove, dtype=np.uint32).astype(np.intp)
    rows = np.asarray(detector.tk_row, dtype=np.intp) << 8
    depth = np.full(rows.size, -1)
    depth[0] = 0
    frontier = np.array([0])
    level = 0
    while frontier.size:
        level += 1
        reached = np.unique(moves[(rows[frontier][:, None] + np.arange(256)).ravel()])
        frontier = reached[depth[reached] < 0]
        depth[frontier] = level
    assert depth.min() == 0
    assert depth.max() == language.LONGEST_NGRAM_BYTES


def test_a_long_comment_is_judged_by_its_first_characters() -> None:
    english = "The council approved the new bridge after a long debate about its cost. "
    french = "Le conseil a approuvé le nouveau pont après un long débat sur son coût. "
    text = english * (language.DETECT_MAX_CHARS // len(english) + 1) + french * 300

    assert _library().classify(text)[0] == "fr"
    assert language.detect(text).language == "en"


def test_a_text_is_judged_from_exactly_min_letters_letters_on() -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    short = " 1 2 ".join(letters[: language.MIN_LETTERS - 1])
    enough = " 1 2 ".join(letters[: language.MIN_LETTERS])
    assert language.detect(short) == language.Detected(None, 0.0)
    assert language.detect(enough).language is not None
    assert language.detect("é" * (language.MIN_LETTERS - 1) + "42" * 30).language is None


def test_the_letter_check_counts_as_a_full_count_does(datasets_dir: Path) -> None:
    for text in [*_comments(datasets_dir)[::5], *EDGE_CASES]:
        for count in (1, language.MIN_LETTERS, 200):
            full = sum(char.isalpha() for char in text) >= count
            assert language._has_letters(text, count) == full, text[:80]
