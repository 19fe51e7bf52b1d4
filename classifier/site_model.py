"""A site's own model: small heads on the global model's features, blended with its score.

Moderators of one site hold and reject by their own standard. A site head is a logistic regression
fitted on that site's labelled comments, one per feature kind (the global model's lexical
features; sentence embeddings when the model has them), its logit calibrated on the site's
labels. The adapted score of a label is the sigmoid of a weighted sum of the global logit and
each head's calibrated logit, the weights chosen on a grid by out-of-fold ROC-AUC on the site's
labels. The heads go into use only with enough labels and positives, and only when out-of-fold
they rank the site's labels better than the global model alone; once in use, a head stays in use
while it does not rank worse (hysteresis), so a refit on labels a moderator keeps undoing does not
switch the site back and forth.
"""

import base64
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

FloatArray = npt.NDArray[np.float64]
Features: TypeAlias = sparse.csr_matrix | FloatArray

ADAPTED_LABELS: tuple[str, ...] = ("toxicity", "spam")
"""The labels a site's moderators decide on: kept, rejected (toxic by the site's standard), spam."""

LEXICAL = "lexical"
"""The global model's word, character and signal features, the kind every model has."""

_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class FitSettings:
    """When a site head may go into use, and how it is fitted."""

    min_labels: int = 500
    min_positives: int = 40
    # Out-of-fold ROC-AUC a head must add over the global model to go into use, and to stay.
    switch_on_gain: float = 0.005
    keep_gain: float = 0.0
    folds: int = 5
    c: float = 1.0
    weight_step: float = 0.1
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Head:
    """One feature kind's logistic regression, its weights kept only where they are not zero."""

    kind: str
    columns: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float32]
    intercept: float
    width: int
    # Platt scaling of the head's logit on the site's out-of-fold logits.
    scale: float
    offset: float
    # All the weights, zeros included: a product with a sparse row then costs its non-zeros.
    vector: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        vector = np.zeros(self.width)
        vector[self.columns] = self.weights
        object.__setattr__(self, "vector", vector)

    def logit(self, features: Features) -> FloatArray:
        raw = np.asarray(features @ self.vector, dtype=np.float64).ravel()
        return self.scale * (raw + self.intercept) + self.offset


@dataclass(frozen=True, slots=True)
class LabelModel:
    """The adapted score of one label: global logit and head logits, weighted."""

    label: str
    global_weight: float
    heads: tuple[tuple[Head, float], ...]

    def adapt(self, global_probability: FloatArray, features: Mapping[str, Features]) -> FloatArray:
        logit = self.global_weight * _logit(global_probability)
        for head, weight in self.heads:
            if weight:
                logit = logit + weight * head.logit(features[head.kind])
        return _sigmoid(logit)


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    """What one label's fit found: used or not, why, and the figures that decided it."""

    label: str
    used: bool
    why: str
    labels: int
    positives: int
    auc_global: float | None = None
    auc_adapted: float | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    model: LabelModel | None = None

    def card(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "why": self.why,
            "labels": self.labels,
            "positives": self.positives,
            "auc_global": _rounded(self.auc_global),
            "auc_adapted": _rounded(self.auc_adapted),
            "weights": {kind: round(weight, 3) for kind, weight in self.weights.items()},
        }


def adapt_matrix(
    matrix: FloatArray,
    labels: Sequence[str],
    site: Mapping[str, LabelModel],
    features: Mapping[str, Features],
) -> FloatArray:
    """The global (texts x labels) probabilities with the site's adapted labels put in."""
    adapted = matrix.copy()
    for column, label in enumerate(labels):
        model = site.get(label)
        if model is not None:
            adapted[:, column] = model.adapt(matrix[:, column], features)
    return adapted


def fit_label(
    label: str,
    targets: npt.NDArray[np.int8],
    global_probability: FloatArray,
    features: Mapping[str, Features],
    settings: FitSettings,
    *,
    in_use: bool = False,
) -> LabelOutcome:
    """Fit the site heads of ``label`` and decide whether they go into use.

    ``targets`` are the site's 0/1 labels, ``global_probability`` the global model's score of the
    same rows and ``features`` each kind's rows; ``in_use`` says whether the label's previous fit
    was in use (it then stays with a smaller gain)."""
    count, positives = int(targets.size), int(targets.sum())
    if count < settings.min_labels:
        why = f"{count} labels, needs {settings.min_labels}"
        return LabelOutcome(label, False, why, count, positives)
    if positives < settings.min_positives or count - positives < settings.min_positives:
        why = (
            f"{positives} positive and {count - positives} negative labels, "
            f"needs {settings.min_positives} of each"
        )
        return LabelOutcome(label, False, why, count, positives)
    global_logit = _logit(global_probability)
    auc_global = float(roc_auc_score(targets, global_logit))
    folds = StratifiedKFold(settings.folds, shuffle=True, random_state=settings.seed)
    splits = list(folds.split(np.zeros(count), targets))
    kinds = sorted(features)
    out_of_fold = {kind: _out_of_fold(features[kind], targets, splits, settings) for kind in kinds}
    calibrations = {kind: _platt(out_of_fold[kind], targets) for kind in kinds}
    calibrated = {
        kind: calibrations[kind][0] * out_of_fold[kind] + calibrations[kind][1] for kind in kinds
    }
    best_auc, best = auc_global, (1.0,) + (0.0,) * len(kinds)
    for weights in _simplex(len(kinds) + 1, settings.weight_step):
        if weights[0] == 1.0:
            continue
        blended = weights[0] * global_logit
        for kind, weight in zip(kinds, weights[1:], strict=True):
            blended = blended + weight * calibrated[kind]
        auc = float(roc_auc_score(targets, blended))
        if auc > best_auc + 1e-9:
            best_auc, best = auc, weights
    gain = best_auc - auc_global
    needed = settings.keep_gain if in_use else settings.switch_on_gain
    named = dict(zip(kinds, best[1:], strict=True))
    if best[0] == 1.0 or gain <= needed:
        why = f"out of fold the site model adds {gain:+.4f} ROC-AUC, needs more than {needed:+.4f}"
        return LabelOutcome(label, False, why, count, positives, auc_global, best_auc, named)
    heads = tuple(
        (_head(kind, features[kind], targets, calibrations[kind], settings), named[kind])
        for kind in kinds
    )
    model = LabelModel(label=label, global_weight=best[0], heads=heads)
    why = f"out of fold the site model adds {gain:+.4f} ROC-AUC"
    return LabelOutcome(label, True, why, count, positives, auc_global, best_auc, named, model)


def _classifier(settings: FitSettings) -> LogisticRegression:
    # Balanced: a site's rejections are rare, and the rank of the few matters most.
    return LogisticRegression(
        C=settings.c, class_weight="balanced", max_iter=300, tol=1e-3, solver="liblinear"
    )


def _out_of_fold(
    features: Features,
    targets: npt.NDArray[np.int8],
    splits: Sequence[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    settings: FitSettings,
) -> FloatArray:
    logits = np.zeros(targets.size)
    for train, held in splits:
        fitted = _classifier(settings).fit(features[train], targets[train])
        logits[held] = fitted.decision_function(features[held])
    return logits


def _platt(logits: FloatArray, targets: npt.NDArray[np.int8]) -> tuple[float, float]:
    fitted = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), targets)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def _head(
    kind: str,
    features: Features,
    targets: npt.NDArray[np.int8],
    calibration: tuple[float, float],
    settings: FitSettings,
) -> Head:
    fitted = _classifier(settings).fit(features, targets)
    coefficients = np.asarray(fitted.coef_[0], dtype=np.float32)
    columns = np.flatnonzero(coefficients).astype(np.int32)
    return Head(
        kind=kind,
        columns=columns,
        weights=coefficients[columns],
        intercept=float(fitted.intercept_[0]),
        width=int(features.shape[1]),
        scale=calibration[0],
        offset=calibration[1],
    )


def _simplex(size: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``size`` non-negative multiples of ``step`` that sum to 1."""
    units = round(1 / step)
    return [
        tuple(part / units for part in (*parts, units - sum(parts)))
        for parts in itertools.product(range(units + 1), repeat=size - 1)
        if sum(parts) <= units
    ]


def _logit(probability: FloatArray) -> FloatArray:
    clipped = np.clip(np.asarray(probability, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    result: FloatArray = np.log(clipped) - np.log1p(-clipped)
    return result


def _sigmoid(logit: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-logit))
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def encode(models: Mapping[str, LabelModel]) -> str:
    """The label models as one JSON text (arrays in base64), for a store that keeps text."""
    return json.dumps(
        {
            label: {
                "global_weight": model.global_weight,
                "heads": [
                    {
                        "kind": head.kind,
                        "columns": _pack(head.columns),
                        "weights": _pack(head.weights),
                        "intercept": head.intercept,
                        "width": head.width,
                        "scale": head.scale,
                        "offset": head.offset,
                        "weight": weight,
                    }
                    for head, weight in model.heads
                ],
            }
            for label, model in models.items()
        },
        sort_keys=True,
    )


def decode(text: str) -> dict[str, LabelModel]:
    """The label models ``encode`` wrote; raises ``ValueError`` for anything else."""
    try:
        stored = json.loads(text)
        return {
            label: LabelModel(
                label=label,
                global_weight=float(entry["global_weight"]),
                heads=tuple(
                    (
                        Head(
                            kind=str(head["kind"]),
                            columns=_unpack(head["columns"], np.int32),
                            weights=_unpack(head["weights"], np.float32),
                            intercept=float(head["intercept"]),
                            width=int(head["width"]),
                            scale=float(head["scale"]),
                            offset=float(head["offset"]),
                        ),
                        float(head["weight"]),
                    )
                    for head in entry["heads"]
                ),
            )
            for label, entry in stored.items()
        }
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"not a site model: {error}") from None


def _pack(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    ).decode("ascii")


def _unpack(text: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    return np.frombuffer(
        base64.b64decode(text, validate=True), dtype=np.dtype(dtype).newbyteorder("<")
    ).astype(dtype)
