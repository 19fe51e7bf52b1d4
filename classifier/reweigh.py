"""Identity-term reweighing: the rows naming each identity term are weighted so that, per term,
they are toxic as often as the training rows are overall (Kamiran and Calders 2012, "Data
preprocessing techniques for classification without discrimination").

Term swaps (``classifier.counterfactual``) share contexts within a group, but a whole group can
still be met mostly in abuse: "queer" rows are toxic 87 % of the time in the training sets against
39 % of all rows, and the swaps mix in the contexts of "gay" (58 %), so the term keeps a weight of
its own and a civil sentence naming it outranks abuse that names no one (a low BPSN on
``identity-madlibs``).
Reweighing scales a term's toxic rows by ``base / rate`` and its civil rows by ``(1 - base) /
(1 - rate)``: the term's rows keep their total weight, no label is added or changed, and the term
stops predicting the label on its own. A row naming several terms takes the mean of their
factors. Only the labels in ``REWEIGHED_LABELS`` are reweighed: an identity attack names an
identity by definition, so that label keeps its association.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from classifier.counterfactual import terms_named
from classifier.training_data import LabeledRows

FloatArray = npt.NDArray[np.float64]

REWEIGHED_LABELS: tuple[str, ...] = ("toxicity",)
# A term needs this many rows that know the label, with both classes, to get a factor: on fewer
# the rate is noise.
MIN_TERM_ROWS = 10
# No row's weight is multiplied by more than this: a term with one civil row in fifty would
# otherwise give that row the weight of twenty.
MAX_FACTOR = 5.0


def _factors(
    named: Sequence[set[str]], target: FloatArray, weight: FloatArray, base: float
) -> dict[str, tuple[float, float]]:
    """Per term with enough rows of both classes: (factor of its toxic rows, of its civil rows)."""
    factors: dict[str, tuple[float, float]] = {}
    for term in sorted(set().union(*named)) if named else []:
        rows = np.array([term in terms for terms in named])
        positives = target[rows] == 1
        if rows.sum() < MIN_TERM_ROWS or positives.all() or not positives.any():
            continue
        rate = float(np.average(target[rows], weights=weight[rows]))
        factors[term] = (
            min(base / rate, MAX_FACTOR),
            min((1.0 - base) / (1.0 - rate), MAX_FACTOR),
        )
    return factors


def reweigh_identity_rows(
    rows: LabeledRows, labels: Sequence[str], reweighed: Sequence[str] = REWEIGHED_LABELS
) -> dict[str, Any]:
    """Scale, in place, the weights of ``reweighed`` labels on rows naming an identity; what
    the card records (each term's two factors per label)."""
    targets = rows.target_matrix()
    weights = rows.weight_matrix()
    named_all = [terms_named(text) for text in rows.texts]
    report: dict[str, Any] = {}
    for label in reweighed:
        column = labels.index(label)
        known = np.flatnonzero(~np.isnan(targets[:, column]))
        target, weight = targets[known, column], weights[known, column]
        base = float(np.average(target, weights=weight))
        named = [named_all[index] for index in known]
        factors = _factors(named, target, weight, base)
        for position, index in enumerate(known):
            side = 0 if target[position] == 1 else 1
            chosen = [factors[term][side] for term in named[position] if term in factors]
            if chosen:
                rows.weights[index][column] *= float(np.mean(chosen))
        report[label] = {
            "base_rate": round(base, 4),
            "factors": {
                term: {"toxic": round(toxic, 3), "civil": round(civil, 3)}
                for term, (toxic, civil) in factors.items()
            },
        }
    return report
