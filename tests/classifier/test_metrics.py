"""Identity subgroup AUCs, bootstrap intervals, and the paired comparison with the peer."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from classifier.metrics import (
    MIN_SUBGROUP_ROWS,
    auc_difference_interval,
    bias_aucs,
    bootstrap_auc_interval,
    resampled_auc,
    subgroup_aucs,
    term_members,
)


def test_subgroups_get_their_auc_and_an_interval_around_it() -> None:
    generator = np.random.default_rng(5)
    texts = [f"the gay {i}" if i % 2 else f"a muslim {i}" for i in range(200)]
    target = (generator.random(200) < 0.3).astype(float)
    # Separable among "gay" rows, noisy among "muslim" rows.
    noise = generator.random(200)
    probability = np.where(np.arange(200) % 2 == 1, target, noise * 0.5 + target * 0.3)
    groups = subgroup_aucs(texts, target, probability)
    assert set(groups) == {"gay", "muslim"}
    assert groups["gay"]["roc_auc"] == 1.0
    assert groups["gay"]["interval"] == [1.0, 1.0]
    low, high = groups["muslim"]["interval"]
    assert low < groups["muslim"]["roc_auc"] < high
    assert groups["muslim"]["rows"] == 100
    assert groups["muslim"]["positives"] == int(target[::2].sum())


def test_a_term_with_too_few_rows_is_left_out() -> None:
    texts = ["a jewish view"] * (MIN_SUBGROUP_ROWS - 1) + ["other"] * 50
    target = np.array([1.0, 0.0] * 34 + [1.0])
    probability = np.linspace(0, 1, target.size)
    assert subgroup_aucs(texts, target, probability) == {}


def test_the_interval_is_repeatable_and_narrows_with_more_rows() -> None:
    generator = np.random.default_rng(9)

    def sample(rows: int) -> tuple[np.ndarray, np.ndarray]:
        target = (generator.random(rows) < 0.4).astype(float)
        return target, target * 0.4 + generator.random(rows)

    small_target, small_probability = sample(40)
    large_target, large_probability = sample(1500)
    small = bootstrap_auc_interval(small_target, small_probability)
    assert small == bootstrap_auc_interval(small_target, small_probability)
    large = bootstrap_auc_interval(large_target, large_probability)
    assert large[1] - large[0] < small[1] - small[0]


def test_a_scorer_compared_with_itself_differs_by_exactly_nothing() -> None:
    generator = np.random.default_rng(3)
    target = (generator.random(300) < 0.3).astype(float)
    probability = target * 0.2 + generator.random(300)
    assert auc_difference_interval(target, probability, probability) == (0.0, 0.0)


def _two_scorers(
    seed: int, first_signal: float, second_signal: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two noisy scorers that carry the given share of signal each."""
    generator = np.random.default_rng(seed)
    target = (generator.random(400) < 0.4).astype(float)
    first = target * first_signal + generator.random(400)
    second = target * second_signal + generator.random(400)
    return target, first, second


def test_a_clearly_better_scorer_has_an_interval_above_zero_and_the_swap_mirrors_it() -> None:
    target, sharp, blunt = _two_scorers(4, 0.8, 0.1)
    low, high = auc_difference_interval(target, sharp, blunt)
    assert 0.0 < low < high
    assert auc_difference_interval(target, blunt, sharp) == (-high, -low)


def test_two_scorers_of_equal_skill_get_an_interval_that_holds_zero() -> None:
    target, first, second = _two_scorers(6, 0.5, 0.5)
    low, high = auc_difference_interval(target, first, second)
    assert low < 0.0 < high


def _bias_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eight rows, the first four naming the identity; scores built so each AUC is known.

    Background: negatives 0.1, 0.2; positives 0.8, 0.9 (perfectly ranked).
    Subgroup: negatives 0.85, 0.3; positives 0.95, 0.4.
    """
    members = np.array([True, True, True, True, False, False, False, False])
    target = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    probability = np.array([0.85, 0.3, 0.95, 0.4, 0.1, 0.2, 0.8, 0.9])
    return target, probability, members


def test_bias_aucs_match_pairs_counted_by_hand() -> None:
    target, probability, members = _bias_case()
    aucs = bias_aucs(target, probability, members)
    # Subgroup: positives {0.95, 0.4} over negatives {0.85, 0.3}: 3 of 4 pairs in order.
    assert aucs["subgroup_auc"] == 0.75
    # BPSN: background positives {0.8, 0.9} over subgroup negatives {0.85, 0.3}: 3 of 4.
    assert aucs["bpsn_auc"] == 0.75
    # BNSP: subgroup positives {0.95, 0.4} over background negatives {0.1, 0.2}: 4 of 4.
    assert aucs["bnsp_auc"] == 1.0


def test_a_model_that_reads_the_term_as_toxic_fails_bpsn_only() -> None:
    """Scores = a perfect ranking plus a constant for naming the term: the subgroup's own
    ranking is perfect, civil mentions outrank toxic background rows, toxic mentions stay high."""
    generator = np.random.default_rng(3)
    members = np.arange(400) % 4 == 0
    target = (generator.random(400) < 0.5).astype(float)
    probability = 0.1 + 0.4 * target + 0.5 * members
    aucs = bias_aucs(target, probability, members)
    assert aucs == {"subgroup_auc": 1.0, "bpsn_auc": 0.0, "bnsp_auc": 1.0}
    # Taking the term's share away gives every measure back.
    fair = bias_aucs(target, probability - 0.5 * members, members)
    assert fair == {"subgroup_auc": 1.0, "bpsn_auc": 1.0, "bnsp_auc": 1.0}


def test_a_bias_auc_without_both_classes_is_none() -> None:
    target = np.array([1.0, 1.0, 0.0, 1.0])
    members = np.array([True, True, False, False])
    aucs = bias_aucs(target, np.array([0.9, 0.8, 0.1, 0.7]), members)
    assert aucs["subgroup_auc"] is None
    assert aucs["bpsn_auc"] is None  # no civil row names the identity
    assert aucs["bnsp_auc"] == 1.0


def test_terms_match_whole_words_and_phrases_in_any_case() -> None:
    texts = ["Trans people", "transgender", "an African American", "african", "middle-aged"]
    assert term_members(texts, "trans").tolist() == [True, False, False, False, False]
    assert term_members(texts, "african").tolist() == [False, False, True, True, False]
    assert term_members(texts, "african american").tolist() == [False, False, True, False, False]
    assert not term_members(texts, "middle aged").any()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_a_resampled_auc_is_sklearns_on_the_resampled_rows(
    rows_and_scores: list[tuple[int, int]], seed: int
) -> None:
    # Few distinct scores, so ties within and across the classes are common.
    target = np.array([label for label, _ in rows_and_scores], dtype=np.float64)
    score = np.array([value / 6 for _, value in rows_and_scores])
    rows = np.random.default_rng(seed).integers(0, target.size, target.size)
    assume(0 < target[rows].sum() < rows.size)
    expected = roc_auc_score(target[rows], score[rows])
    assert resampled_auc(target, score)(rows) == pytest.approx(expected, abs=1e-12)
