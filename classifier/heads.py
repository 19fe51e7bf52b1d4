"""One linear model per label over shared features, scored together as one matrix product.

Sources carry different labels, so the target matrix has a column per label with NaN where a row
says nothing about that label; each label is fitted on its own rows. Every label's raw score is
then calibrated with Platt scaling fitted on out-of-fold scores, so the outputs are probabilities
rather than margins of a model that has seen the rows. The sources are enriched with abuse far
beyond what a comment section sees, so where ``target_rates`` gives a label's real-world rate the
calibration is moved from the training mix's rate to that one (a prior-shift correction of the
intercept); rankings do not change, probabilities stop overstating how likely abuse is.

Two per-label options (``HeadSettings``) change how a label is fitted but not how it is scored:
- log-count-ratio scaling (the "NB" of NB-SVM, Wang and Manning 2012): each feature is scaled by
  how much more often it occurs with the label than without it before the fit, so the penalty
  falls on uninformative terms first. The scale is folded into the coefficients afterwards.
- blends with related labels: a narrow label (threat, severe toxicity) is known on few rows;
  adding a share of toxicity's raw score (fitted on many more rows) lends it that breadth.
  Toxicity in turn borrows from profanity, which Wikipedia's annotators counted as toxic, and
  from insult. Shares are of each partner's own fit, before any blending, and the result is one
  more linear combination of the same features, so scoring stays one matrix product.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

FloatArray = npt.NDArray[np.float64]

CALIBRATION_FOLDS = 3
# Smoothing and damping of the log-count ratio: a square root keeps rare terms' ratios from
# dominating (a full ratio scored worse on validation rows).
LOG_COUNT_RATIO_ALPHA = 0.1
LOG_COUNT_RATIO_POWER = 0.5


@dataclass(frozen=True)
class HeadSettings:
    """How one label's linear model is fitted."""

    c: float | None = None
    """Inverse regularisation strength; ``None`` takes the heads' default."""
    log_count_ratio: bool = False
    blend: tuple[tuple[str, float], ...] = ()
    """(label, share) pairs: that share of each label's raw score is added to this one's."""


def _sigmoid(values: FloatArray) -> FloatArray:
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * values))
    return result


def _logistic(c: float, seed: int) -> LogisticRegression:
    # Balanced classes: rare labels (threat, severe toxicity) still get a usable margin; the
    # calibration step puts the probabilities back on the real scale.
    return LogisticRegression(
        C=c, solver="liblinear", class_weight="balanced", max_iter=300, random_state=seed
    )


def log_count_ratio_scale(
    features: sparse.csr_matrix, target: FloatArray, weight: FloatArray
) -> FloatArray:
    """Per-feature scale: the damped size of the log ratio of its weighted rate in each class."""
    positive = target == 1
    in_positives = LOG_COUNT_RATIO_ALPHA + features[positive].T @ weight[positive]
    in_negatives = LOG_COUNT_RATIO_ALPHA + features[~positive].T @ weight[~positive]
    ratio = np.log((in_positives / in_positives.sum()) / (in_negatives / in_negatives.sum()))
    scale: FloatArray = np.abs(np.asarray(ratio, dtype=np.float64).ravel()) ** LOG_COUNT_RATIO_POWER
    return scale


@dataclass(frozen=True)
class LinearFit:
    """How one logistic model is fitted: regularisation, log-count-ratio scaling, seed."""

    c: float
    log_count_ratio: bool
    seed: int = 0

    def fit(
        self, features: sparse.csr_matrix, target: FloatArray, weight: FloatArray
    ) -> tuple[FloatArray, float]:
        """Coefficients (in the unscaled feature space) and intercept."""
        ratio = self.log_count_ratio
        scale = log_count_ratio_scale(features, target, weight) if ratio else None
        fitted = features if scale is None else features @ sparse.diags(scale)
        model = _logistic(self.c, self.seed).fit(fitted, target, sample_weight=weight)
        coef = model.coef_.ravel().astype(np.float64)
        return (coef if scale is None else coef * scale), float(model.intercept_[0])


def _fit_label(
    features: sparse.csr_matrix, target: FloatArray, weight: FloatArray, linear: LinearFit
) -> tuple[FloatArray, float, FloatArray]:
    """Fit one label; return its coefficients, intercept and out-of-fold raw scores."""
    out_of_fold = np.zeros(target.shape[0])
    # A rare label on a small slice may have fewer positives than folds; each fold needs one.
    smallest_class = int(min(target.sum(), target.size - target.sum()))
    folds = StratifiedKFold(
        min(CALIBRATION_FOLDS, smallest_class), shuffle=True, random_state=linear.seed
    )
    for fit_rows, held_rows in folds.split(np.zeros(target.shape[0]), target):
        coef, intercept = linear.fit(features[fit_rows], target[fit_rows], weight[fit_rows])
        out_of_fold[held_rows] = features[held_rows] @ coef + intercept
    coef, intercept = linear.fit(features, target, weight)
    return coef, intercept, out_of_fold


def _logit(rate: float) -> float:
    return float(np.log(rate / (1.0 - rate)))


def _fit_platt(raw: FloatArray, target: FloatArray, weight: FloatArray) -> tuple[float, float]:
    platt = LogisticRegression(C=1e4, solver="lbfgs").fit(
        raw.reshape(-1, 1), target, sample_weight=weight
    )
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


class LinearHeads(BaseEstimator):  # type: ignore[misc]
    """Calibrated logistic models for several labels that may each be known on different rows."""

    def __init__(
        self,
        labels: tuple[str, ...] = (),
        c: float = 1.0,
        target_rates: dict[str, float] | None = None,
        n_jobs: int = 1,
        seed: int = 0,
        settings: Mapping[str, HeadSettings] | None = None,
    ) -> None:
        self.labels = labels
        self.c = c
        self.settings = settings
        self.target_rates = target_rates
        self.n_jobs = n_jobs
        self.seed = seed

    def fit(self, features: Any, targets: Any, sample_weight: Any = None) -> Self:
        """``targets`` is (rows, labels) with 1, 0, or NaN where the row does not know a label."""
        matrix = sparse.csr_matrix(features)
        # Workers receive the rows memory-mapped read-only: canonical form must be reached here.
        matrix.sum_duplicates()
        y = np.asarray(targets, dtype=np.float64)
        if y.ndim != 2 or y.shape != (matrix.shape[0], len(self.labels)):
            raise ValueError(f"targets must have shape (rows, {len(self.labels)}), got {y.shape}")
        weights = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
        if weights.ndim == 1:
            weights = np.repeat(weights[:, None], y.shape[1], axis=1)
        jobs = []
        for column, label in enumerate(self.labels):
            rows = np.flatnonzero(~np.isnan(y[:, column]))
            positives = int(y[rows, column].sum())
            if min(positives, rows.size - positives) < 2:
                raise ValueError(
                    f"label {label!r} needs at least two positive and two negative rows to train"
                )
            setting = self.setting(label)
            jobs.append(
                delayed(_fit_label)(
                    matrix[rows],
                    y[rows, column],
                    weights[rows, column],
                    LinearFit(
                        self.c if setting.c is None else setting.c,
                        setting.log_count_ratio,
                        self.seed,
                    ),
                )
            )
        fitted = self._blend(matrix, y, Parallel(n_jobs=self.n_jobs)(jobs))
        self.coef_ = np.zeros((matrix.shape[1], len(self.labels)), dtype=np.float32)
        self.intercept_ = np.zeros(len(self.labels))
        self.platt_ = np.zeros((len(self.labels), 2))
        self.mix_rates_ = np.zeros(len(self.labels))
        self.out_of_fold_ = np.full(y.shape, np.nan, dtype=np.float32)
        rates = self.target_rates or {}
        for column, (coef, intercept, raw) in enumerate(fitted):
            rows = np.flatnonzero(~np.isnan(y[:, column]))
            target, weight = y[rows, column], weights[rows, column]
            self.coef_[:, column] = coef
            self.intercept_[column] = intercept
            self.mix_rates_[column] = float(np.average(target, weights=weight))
            self.platt_[column] = _fit_platt(raw, target, weight)
            if label_rate := rates.get(self.labels[column]):
                # Weighted Platt scaling matches the mix's weighted rate; move it to the real one.
                self.platt_[column, 1] += _logit(label_rate) - _logit(self.mix_rates_[column])
            self.out_of_fold_[rows, column] = self.calibrate(raw[:, None], [column]).ravel()
        return self

    def setting(self, label: str) -> HeadSettings:
        return (self.settings or {}).get(label, HeadSettings())

    def _blend(
        self,
        matrix: sparse.csr_matrix,
        y: FloatArray,
        fitted: list[tuple[FloatArray, float, FloatArray]],
    ) -> list[tuple[FloatArray, float, FloatArray]]:
        """Add each label's share of its partner's own fit to coefficients, intercept and scores.

        Out-of-fold partner scores exist only on rows the partner knows; on the others the
        partner's final model, which was not fitted on them either, gives the score.
        """
        blended = list(fitted)
        for column, label in enumerate(self.labels):
            for partner_label, share in self.setting(label).blend:
                if partner_label not in self.labels:
                    raise ValueError(
                        f"label {label!r} blends with {partner_label!r}, which is not a label"
                    )
                partner = self.labels.index(partner_label)
                partner_coef, partner_intercept, partner_raw = fitted[partner]
                rows = np.flatnonzero(~np.isnan(y[:, column]))
                partner_rows = np.flatnonzero(~np.isnan(y[:, partner]))
                position = np.clip(np.searchsorted(partner_rows, rows), 0, partner_rows.size - 1)
                known = partner_rows[position] == rows
                partner_scores = np.asarray(matrix[rows] @ partner_coef).ravel() + partner_intercept
                partner_scores[known] = partner_raw[position[known]]
                coef, intercept, raw = blended[column]
                blended[column] = (
                    coef + share * partner_coef,
                    intercept + share * partner_intercept,
                    raw + share * partner_scores,
                )
        return blended

    def prior_weights(self, column: int, target: FloatArray) -> FloatArray:
        """Importance weights that give training rows a label's real-world rate (else all 1)."""
        rate = (self.target_rates or {}).get(self.labels[column])
        if rate is None:
            return np.ones(target.shape[0])
        mix = self.mix_rates_[column]
        weights: FloatArray = np.where(target == 1, rate / mix, (1.0 - rate) / (1.0 - mix))
        return weights

    def decision_function(self, features: Any) -> FloatArray:
        """Raw linear scores, one column per label."""
        # Same dtype as the coefficients, or scipy would copy them to float64 on every call. A
        # matrix already in that form is used as it is: wrapping it again costs a format check.
        if not (sparse.isspmatrix_csr(features) and features.dtype == self.coef_.dtype):
            features = sparse.csr_matrix(features, dtype=self.coef_.dtype)
        product = features @ self.coef_
        scores: FloatArray = np.asarray(product, dtype=np.float64) + self.intercept_
        return scores

    def calibrate(self, raw: FloatArray, columns: list[int] | None = None) -> FloatArray:
        """Probabilities from raw scores (of all labels, or of the given label columns)."""
        platt = self.platt_ if columns is None else self.platt_[columns]
        return _sigmoid(raw * platt[:, 0] + platt[:, 1])

    def predict_proba(self, features: Any) -> FloatArray:
        """Calibrated probabilities, one column per label."""
        return self.calibrate(self.decision_function(features))
