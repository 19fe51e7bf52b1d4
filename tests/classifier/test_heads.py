"""Linear heads: each label learns from its own rows; outputs are calibrated probabilities."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from classifier import thresholds
from classifier.heads import HeadSettings, LinearFit, LinearHeads, log_count_ratio_scale


def _toy(rows: int = 600, seed: int = 1) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Feature 0 drives label a, feature 1 drives label b; b is unknown on the first half."""
    generator = np.random.default_rng(seed)
    dense = generator.random((rows, 4))
    targets = np.column_stack(
        [
            (dense[:, 0] + 0.3 * generator.random(rows) > 0.8).astype(float),
            (dense[:, 1] + 0.3 * generator.random(rows) > 0.8).astype(float),
        ]
    )
    targets[: rows // 2, 1] = np.nan
    return sparse.csr_matrix(dense), targets


def test_each_label_uses_its_own_feature_and_rows() -> None:
    features, targets = _toy()
    heads = LinearHeads(labels=("a", "b"), c=10.0).fit(features, targets)
    assert heads.coef_[0, 0] > abs(heads.coef_[1, 0])
    assert heads.coef_[1, 1] > abs(heads.coef_[0, 1])
    assert np.isnan(heads.out_of_fold_[: len(targets) // 2, 1]).all()


def test_probabilities_are_calibrated_to_the_observed_rate() -> None:
    features, targets = _toy(rows=2000)
    heads = LinearHeads(labels=("a", "b")).fit(features, targets)
    probability = heads.predict_proba(features)
    assert probability.shape == (2000, 2)
    assert ((probability >= 0) & (probability <= 1)).all()
    # Balanced class weights inflate raw scores; Platt scaling brings the mean back to the rate.
    assert abs(probability[:, 0].mean() - targets[:, 0].mean()) < 0.03


def test_targets_of_the_wrong_shape_are_refused() -> None:
    features, targets = _toy()
    with pytest.raises(ValueError, match="shape"):
        LinearHeads(labels=("a",)).fit(features, targets)


def test_a_label_without_positives_is_refused_by_name() -> None:
    features, targets = _toy()
    targets[:, 1] = np.where(np.isnan(targets[:, 1]), np.nan, 0.0)
    with pytest.raises(ValueError, match="'b' needs at least two positive"):
        LinearHeads(labels=("a", "b")).fit(features, targets)


def test_suggested_reject_threshold_keeps_the_wanted_precision() -> None:
    generator = np.random.default_rng(3)
    target = (generator.random(3000) < 0.3).astype(float)
    probability = np.clip(0.45 * target + 0.55 * generator.random(3000), 0, 1)
    levels = thresholds.suggest("toxicity", target, probability)
    assert thresholds.LOWEST_HOLD <= levels["hold"] <= levels["reject"]
    flagged = probability >= levels["reject"]
    assert target[flagged].mean() >= thresholds.DEFAULT_REJECT_PRECISION


def test_perfectly_separated_scores_reject_from_the_lowest_positive() -> None:
    target = np.array([0, 0, 0, 1, 1, 1], dtype=float)
    probability = np.array([0.1, 0.2, 0.35, 0.6, 0.8, 0.9])
    assert thresholds.suggest("spam", target, probability) == {"hold": 0.6, "reject": 0.6}


def test_a_real_world_rate_moves_probabilities_but_not_the_ranking() -> None:
    features, targets = _toy(rows=2000)
    mixed = LinearHeads(labels=("a", "b")).fit(features, targets)
    shifted = LinearHeads(labels=("a", "b"), target_rates={"a": 0.05}).fit(features, targets)
    before, after = mixed.predict_proba(features), shifted.predict_proba(features)
    assert after[:, 0].mean() < before[:, 0].mean()
    np.testing.assert_array_equal(np.argsort(before[:, 0]), np.argsort(after[:, 0]))
    np.testing.assert_allclose(before[:, 1], after[:, 1])
    # Rows reweighted to the real rate: the average probability is that rate again.
    weights = shifted.prior_weights(0, targets[:, 0])
    assert np.average(targets[:, 0], weights=weights) == pytest.approx(0.05)
    assert np.average(after[:, 0], weights=weights) == pytest.approx(0.05, abs=0.01)


def test_log_count_ratio_scaling_is_folded_into_the_coefficients() -> None:
    """Fitted on scaled features, scored on plain ones: the same raw scores either way."""
    features, targets = _toy(rows=1000)
    known = ~np.isnan(targets[:, 1])
    rows, target = features[known], targets[known, 1]
    weight = np.ones(target.shape[0])
    scale = log_count_ratio_scale(rows, target, weight)
    coef, intercept = LinearFit(c=1.0, log_count_ratio=True).fit(rows, target, weight)
    direct = LogisticRegression(C=1.0, solver="liblinear", class_weight="balanced")
    direct.fit(rows @ sparse.diags(scale), target)
    np.testing.assert_allclose(
        rows @ coef + intercept, direct.decision_function(rows @ sparse.diags(scale)), atol=1e-6
    )
    # Feature 1 drives label b: it separates the classes most and gets the largest scale.
    assert scale.argmax() == 1


def test_a_label_adds_its_share_of_its_partner() -> None:
    features, targets = _toy()
    plain = LinearHeads(labels=("a", "b")).fit(features, targets)
    borrower = HeadSettings(blend=(("a", 0.5),))
    blended = LinearHeads(labels=("a", "b"), settings={"b": borrower}).fit(features, targets)
    np.testing.assert_allclose(blended.coef_[:, 0], plain.coef_[:, 0])
    np.testing.assert_allclose(
        blended.coef_[:, 1], plain.coef_[:, 1] + 0.5 * plain.coef_[:, 0], rtol=1e-5
    )
    assert blended.intercept_[1] == pytest.approx(plain.intercept_[1] + 0.5 * plain.intercept_[0])
    # The probabilities stay calibrated on b's own rows.
    known = ~np.isnan(targets[:, 1])
    probability = blended.predict_proba(features)[known, 1]
    assert abs(probability.mean() - targets[known, 1].mean()) < 0.03


def test_a_partner_that_is_not_a_label_is_refused() -> None:
    features, targets = _toy()
    orphan = HeadSettings(blend=(("missing", 0.5),))
    with pytest.raises(ValueError, match="blends with 'missing'"):
        LinearHeads(labels=("a", "b"), settings={"b": orphan}).fit(features, targets)


def test_the_threat_hold_may_sit_below_the_other_labels_floor() -> None:
    """Scores where F1 is best at 0.12: a threat is held there, any other label at the floor."""
    target = np.array([0.0] * 90 + [1.0] * 10)
    probability = np.concatenate([np.linspace(0.0, 0.1, 90), np.full(10, 0.12)])
    assert thresholds.suggest("threat", target, probability)["hold"] == 0.12
    assert thresholds.suggest("insult", target, probability)["hold"] == thresholds.LOWEST_HOLD
    # Never below the threat's own floor.
    low = thresholds.suggest("threat", target, probability * 0.3)["hold"]
    assert low == thresholds.lowest_hold("threat") == 0.05


def test_the_threat_hold_favours_recall_where_the_other_labels_favour_precision() -> None:
    """Half the positives score 0.5 beside 2 negatives, half 0.08 beside 25: F1 is best at 0.5
    (0.63 against 0.60), F2 (recall counts twice) at 0.08, which holds every positive."""
    negatives = np.concatenate([np.linspace(0.0, 0.07, 75), np.full(25, 0.08), np.full(2, 0.5)])
    target = np.array([0.0] * 102 + [1.0] * 20)
    probability = np.concatenate([negatives, np.full(10, 0.5), np.full(10, 0.08)])
    assert thresholds.suggest("insult", target, probability)["hold"] == 0.5
    assert thresholds.suggest("threat", target, probability)["hold"] == 0.08
