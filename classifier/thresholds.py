"""Suggested hold and reject thresholds per label, from out-of-fold probabilities.

"reject" is the lowest probability at which automatic rejection is precise enough (what an
automatic decision may get wrong is a published comment taken down); "hold" is where sending a
comment to a moderator pays off best (highest F1), never above "reject" and never so low that
ordinary civil comments queue up.
"""

import math

import numpy as np
import numpy.typing as npt

REJECT_PRECISION = {"spam": 0.98}
DEFAULT_REJECT_PRECISION = 0.9
LOWEST_HOLD = 0.3
HIGHEST_REJECT = 0.99


def suggest(
    label: str,
    target: npt.NDArray[np.float64],
    probability: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64] | None = None,
) -> dict[str, float]:
    """Thresholds for one label from its known rows (targets 0/1, optional row weights)."""
    order = np.argsort(-probability, kind="stable")
    ranked_weight = np.ones(target.size) if weight is None else weight[order]
    ranked_positive = target[order] * ranked_weight
    ranked_probability = probability[order]
    true_positives = np.cumsum(ranked_positive)
    flagged = np.cumsum(ranked_weight)
    precision = true_positives / flagged
    recall = true_positives / max(float(ranked_positive.sum()), 1e-12)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)

    wanted = REJECT_PRECISION.get(label, DEFAULT_REJECT_PRECISION)
    precise_enough = np.flatnonzero(precision >= wanted)
    # Lowest threshold that keeps the precision: the deepest cut still at or above the target.
    reject = (
        float(ranked_probability[precise_enough[-1]]) if precise_enough.size else HIGHEST_REJECT
    )
    reject = min(max(reject, LOWEST_HOLD), HIGHEST_REJECT)
    hold = float(ranked_probability[int(np.argmax(f1))]) if f1.size else LOWEST_HOLD
    hold = min(max(hold, LOWEST_HOLD), reject)
    return {"hold": round(hold, 4), "reject": _round_up(reject)}


def _round_up(threshold: float) -> float:
    """Four decimals, rounded up: rounding down would flag rows below the precise cut."""
    return math.ceil(round(threshold * 10_000, 6)) / 10_000
