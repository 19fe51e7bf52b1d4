"""Counterfactual identity swaps: same label, another identity of the same kind, weight shared."""

import math

from classifier.counterfactual import SWAP_GROUPS, swap_identities, with_identity_swaps
from classifier.training_data import LabeledRows

LABELS = ("spam", "toxicity")
RELIGIONS = next(group for group in SWAP_GROUPS if "muslim" in group)
ORIENTATIONS = next(group for group in SWAP_GROUPS if "gay" in group)


def test_a_term_is_swapped_for_another_of_its_group_keeping_case_and_plural() -> None:
    swapped = swap_identities("Muslims are welcome here, said the muslim mayor.")
    assert swapped is not None
    first, second = swapped.removesuffix(" mayor.").split(" are welcome here, said the ")
    assert first.endswith("s")
    assert first[0].isupper()
    assert first[:-1].lower() in RELIGIONS
    assert second in RELIGIONS
    assert "muslim" not in swapped.lower()


def test_phrases_swap_whole_and_other_words_stay() -> None:
    swapped = swap_identities("an African American family and a transparent process")
    assert swapped is not None
    replaced = swapped.removeprefix("an ").removesuffix(" family and a transparent process")
    # The phrase is one term, replaced once by one other term of its group.
    ethnicities = next(group for group in SWAP_GROUPS if "african american" in group)
    assert replaced.lower() in ethnicities
    assert replaced.lower() != "african american"
    assert replaced[0].isupper()
    assert swap_identities("a transparent process, nothing more") is None


def test_the_choice_is_fixed_by_the_text() -> None:
    text = "the gay couple next door"
    assert swap_identities(text) == swap_identities(text)
    choices = {swap_identities(f"the gay couple next door, day {day}") for day in range(40)}
    # Spread over the group rather than always the same replacement.
    assert len(choices) > 5
    for choice in choices:
        assert choice is not None
        assert choice.split()[1] in ORIENTATIONS


def test_rows_naming_an_identity_get_a_copy_with_the_same_label_and_half_the_weight() -> None:
    rows = LabeledRows(
        texts=["you stupid gay idiot", "thanks for the article", "buy cheap muslim prayer mats"],
        targets=[[math.nan, 1.0], [0.0, 0.0], [1.0, math.nan]],
        weights=[[0.3, 2.0], [1.0, 1.0], [4.0, 4.0]],
        sources=["a", "b", "c"],
        groups=["", "", "video"],
    )
    augmented, copies = with_identity_swaps(rows, LABELS)
    assert copies == 1
    assert augmented.texts[0] == "you stupid gay idiot"
    copy = augmented.texts[1]
    assert copy.startswith("you stupid ")
    assert copy.endswith(" idiot")
    assert copy.split()[2] in ORIENTATIONS
    assert copy.split()[2] != "gay"
    assert augmented.weights[:2] == [[0.15, 1.0], [0.15, 1.0]]
    assert [t[1] for t in augmented.targets[:2]] == [1.0, 1.0]
    assert augmented.sources[:2] == ["a", "a"]
    # Rows naming no identity, and spam-only rows, are left as they were.
    assert augmented.texts[2:] == rows.texts[1:]
    assert augmented.weights[2:] == rows.weights[1:]
    assert augmented.groups[3] == "video"


def test_replacements_follow_how_often_each_identity_is_named() -> None:
    """A rarely named identity receives few copies: the commonest would swamp its contexts."""
    counts = {"gay": 1000, "lesbian": 100}
    chosen = [
        swap_identities(f"a bisexual person wrote comment {day}", counts) for day in range(300)
    ]
    named = [text.split()[1] for text in chosen if text is not None]
    assert len(named) == 300
    assert named.count("gay") > 200
    assert named.count("lesbian") > named.count("queer")
    assert "bisexual" not in named
