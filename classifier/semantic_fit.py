"""Fit the semantic stage on training rows and choose each label's blend weight.

Heads are fitted on the rows that ``classifier.tune`` keeps for fitting; the weights are chosen on
its validation rows (a fixed fifth of every source, by a hash of the text), which no reported
figure uses. There the semantic score comes from the head that never saw those rows and the
lexical score is the lexical heads' out-of-fold score, so neither side is scored on rows it was
fitted on. A weight is scored like ``civility tune`` scores a head: ROC-AUC within each source
that knows the label, averaged with the sources' training weights; AUCs equal to three decimals
are decided by the lower log-loss, so the weight only moves from 0 when meaning helps.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from classifier.encoder import DIMENSION, Encoder, FloatMatrix
from classifier.labels import SOURCES
from classifier.semantic import SemanticStage, logit
from classifier.training_data import LabeledRows
from classifier.tune import validation_mask

FloatArray = npt.NDArray[np.float64]

BLEND_GRID: tuple[float, ...] = tuple(step / 10 for step in range(10))
# Inverse regularisation of the heads on the 384 dimensions.
SEMANTIC_C = 1.0
CALIBRATION_FOLDS = 3
AUC_DECIMALS = 3
SEED = 0


def stage_rows(rows: LabeledRows, per_source: int | None) -> npt.NDArray[np.intp]:
    """Indices of the rows the stage trains on: every n-th row of each source, at most
    ``per_source`` of each (several files are sorted by label)."""
    sources = np.asarray(rows.sources)
    chosen: list[npt.NDArray[np.intp]] = []
    for name in dict.fromkeys(rows.sources):
        indices = np.flatnonzero(sources == name)
        if per_source is not None and indices.size > per_source:
            step = indices.size / per_source
            indices = indices[(np.arange(per_source) * step).astype(np.intp)]
        chosen.append(indices)
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.intp)


def _logistic(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=1000, random_state=SEED)


def _fit_platt(raw: FloatArray, target: FloatArray, weight: FloatArray) -> tuple[float, float]:
    platt = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), target, sample_weight=weight)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _scalar_logit(rate: float) -> float:
    return float(np.log(rate / (1.0 - rate)))


class _Head:
    """One label's head: coefficients, intercept and calibration (Platt + prior shift)."""

    def __init__(self) -> None:
        self.coef = np.zeros(DIMENSION)
        self.intercept = 0.0
        self.platt = (1.0, 0.0)

    def fit(
        self, vectors: FloatMatrix, target: FloatArray, weight: FloatArray, rate: float | None
    ) -> "_Head":
        smallest = int(min(target.sum(), target.size - target.sum()))
        raw = np.zeros(target.size)
        folds = StratifiedKFold(min(CALIBRATION_FOLDS, smallest), shuffle=True, random_state=SEED)
        for fit_rows, held_rows in folds.split(vectors, target):
            model = _logistic(SEMANTIC_C).fit(
                vectors[fit_rows], target[fit_rows], sample_weight=weight[fit_rows]
            )
            raw[held_rows] = model.decision_function(vectors[held_rows])
        model = _logistic(SEMANTIC_C).fit(vectors, target, sample_weight=weight)
        self.coef = model.coef_.ravel().astype(np.float64)
        self.intercept = float(model.intercept_[0])
        slope, offset = _fit_platt(raw, target, weight)
        if rate is not None:
            # As the lexical heads do: from the training mix's rate to the real-world one.
            offset += _scalar_logit(rate) - _scalar_logit(float(np.average(target, weights=weight)))
        self.platt = (slope, offset)
        return self

    def logits(self, vectors: FloatMatrix) -> FloatArray:
        raw = np.asarray(vectors, dtype=np.float64) @ self.coef + self.intercept
        result: FloatArray = raw * self.platt[0] + self.platt[1]
        return result


def _weighted_source_auc(
    label: str, target: FloatArray, scores: FloatArray, sources: npt.NDArray[np.str_]
) -> float | None:
    """ROC-AUC within each source with both classes, averaged with the training weights."""
    aucs, weights = [], []
    for source in sorted(set(sources)):
        rows = sources == source
        if len(np.unique(target[rows])) == 2:
            aucs.append(float(roc_auc_score(target[rows], scores[rows])))
            weights.append(SOURCES[source].weight_for(label) if source in SOURCES else 1.0)
    if not aucs:
        return None
    return float(np.average(aucs, weights=weights))


def choose_weight(
    label: str,
    target: FloatArray,
    weight: FloatArray,
    sources: npt.NDArray[np.str_],
    lexical_logit: FloatArray,
    semantic_logit: FloatArray,
) -> tuple[float, dict[str, Any]]:
    """The grid weight with the best validation ROC-AUC (log-loss breaks ties), and the table."""
    table: dict[str, dict[str, float]] = {}
    best: tuple[float, float, float] | None = None
    for w in BLEND_GRID:
        blended = (1.0 - w) * lexical_logit + w * semantic_logit
        auc = _weighted_source_auc(label, target, blended, sources)
        if auc is None:
            return 0.0, {"note": "no validation source has both classes"}
        loss = float(log_loss(target, 1.0 / (1.0 + np.exp(-blended)), sample_weight=weight))
        table[f"{w:.1f}"] = {"roc_auc": round(auc, 4), "log_loss": round(loss, 4)}
        key = (round(auc, AUC_DECIMALS), -loss, -w)
        if best is None or key > best:
            best = key
            chosen = w
    return chosen, {"grid": table}


def fit_semantic_stage(
    rows: LabeledRows,
    lexical_out_of_fold: FloatArray,
    vectors: FloatMatrix,
    labels: Sequence[str],
    target_rates: Mapping[str, float],
    encoder: Encoder,
) -> tuple[SemanticStage, dict[str, Any]]:
    """Heads and blend weights from ``rows`` (their embeddings ``vectors`` and the lexical heads'
    out-of-fold probabilities on them); the stage and what the card records of its choice."""
    targets = rows.target_matrix()
    weights = rows.weight_matrix()
    sources = np.asarray(rows.sources)
    validation = validation_mask(rows.texts)
    heads: list[_Head] = []
    blend: dict[str, float] = {}
    report: dict[str, Any] = {}
    for column, label in enumerate(labels):
        known = ~np.isnan(targets[:, column])
        fit = np.flatnonzero(known & ~validation)
        held = np.flatnonzero(known & validation)
        target = targets[:, column]
        positives = int(target[fit].sum())
        if min(positives, fit.size - positives) < 2 or len(np.unique(target[held])) < 2:
            heads.append(_Head())
            blend[label] = 0.0
            report[label] = {"weight": 0.0, "note": "too few rows of a class to fit or choose"}
            continue
        head = _Head().fit(vectors[fit], target[fit], weights[fit, column], target_rates.get(label))
        heads.append(head)
        lexical_logit = logit(lexical_out_of_fold[held, column].astype(np.float64))
        chosen, table = choose_weight(
            label,
            target[held],
            weights[held, column],
            sources[held],
            lexical_logit,
            head.logits(vectors[held]),
        )
        blend[label] = chosen
        report[label] = {
            "weight": chosen,
            "fit_rows": int(fit.size),
            "validation_rows": int(held.size),
            **table,
        }
    stage = SemanticStage(
        labels=labels,
        coef=np.stack([head.coef for head in heads]),
        intercept=np.array([head.intercept for head in heads]),
        platt=np.array([head.platt for head in heads]),
        weights=blend,
        encoder=encoder,
    )
    return stage, report
