"""Suggested hold and reject thresholds per label, from out-of-fold probabilities.

"reject" is the lowest probability at which automatic rejection is precise enough (what an
automatic decision may get wrong is a published comment taken down); "hold" is where sending a
comment to a moderator pays off best (highest F1; for threats F2, see ``HOLD_BETA_BY_LABEL``),
never above "reject" and never so low that ordinary civil comments queue up (a lower floor for
threats, see ``LOWEST_HOLD_BY_LABEL``).
"""

import math

import numpy as np
import numpy.typing as npt

REJECT_PRECISION = {"spam": 0.98}
DEFAULT_REJECT_PRECISION = 0.9
LOWEST_HOLD = 0.3
# Threats are rare, and one missed costs more than a moderator's glance: their hold may sit lower.
# civility-1.4.0 at a threat hold of 0.3 held 14 of the 65 threat-labelled held-out rows (jigsaw,
# Gab, YouTube); at 0.1 it holds 24, while the C3 news comments no other label holds gain 0.03 %
# held, the seed comments stay below 0.002 and the hand-written civil ones below 0.03.
LOWEST_HOLD_BY_LABEL = {"threat": 0.05}
# Threats' hold is where F-beta with beta 2 is highest (recall counts twice as much as precision)
# instead of F1. On civility-1.5.0's out-of-fold rows F1 put it at 0.176 (recall 0.30, precision
# 0.46 of the threat-labelled rows); F2 puts it at 0.073 (recall 0.40, precision 0.27), and on the
# held-out sets it holds 27 of the 65 threats instead of 18, 1 of 500 C3 news comments, and no
# hand-written civil comment about weapons or wars.
HOLD_BETA_BY_LABEL = {"threat": 2.0}


def lowest_hold(label: str) -> float:
    """The lowest hold threshold ``suggest`` gives ``label``."""
    return LOWEST_HOLD_BY_LABEL.get(label, LOWEST_HOLD)


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
    beta_squared = HOLD_BETA_BY_LABEL.get(label, 1.0) ** 2
    f_beta = (1 + beta_squared) * precision * recall
    f_beta /= np.maximum(beta_squared * precision + recall, 1e-12)

    wanted = REJECT_PRECISION.get(label, DEFAULT_REJECT_PRECISION)
    precise_enough = np.flatnonzero(precision >= wanted)
    # Lowest threshold that keeps the precision: the deepest cut still at or above the target.
    reject = (
        float(ranked_probability[precise_enough[-1]]) if precise_enough.size else HIGHEST_REJECT
    )
    reject = min(max(reject, LOWEST_HOLD), HIGHEST_REJECT)
    floor = lowest_hold(label)
    hold = float(ranked_probability[int(np.argmax(f_beta))]) if f_beta.size else floor
    hold = min(max(hold, floor), reject)
    return {"hold": round(hold, 4), "reject": _round_up(reject)}


def _round_up(threshold: float) -> float:
    """Four decimals, rounded up: rounding down would flag rows below the precise cut."""
    return math.ceil(round(threshold * 10_000, 6)) / 10_000
