"""Quality measures used by the evaluation report (pure functions over arrays)."""

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

FloatArray = npt.NDArray[np.float64]

RELIABILITY_BINS = 10

# Identity terms of the Wikipedia identity test set's construction (Dixon et al., AIES 2018).
IDENTITY_TERMS = (
    "lesbian", "gay", "bisexual", "transgender", "queer", "homosexual", "heterosexual", "straight",
    "male", "female", "african", "black", "white", "european", "hispanic", "latino", "mexican",
    "canadian", "american", "asian", "indian", "chinese", "japanese", "christian", "muslim",
    "jewish", "buddhist", "catholic", "protestant", "sikh", "old", "young", "teenage", "elderly",
    "blind", "deaf",
)  # fmt: skip
MIN_SUBGROUP_ROWS = 20
MIN_SUBGROUP_CLASS_ROWS = 5
# A subgroup has a few dozen rows, so its AUC is uncertain; a bootstrap interval says how much.
BOOTSTRAP_RESAMPLES = 1000
INTERVAL = 0.9


def ranking_metrics(target: FloatArray, probability: FloatArray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier score and base rate of one labeled set."""
    return {
        "roc_auc": round(float(roc_auc_score(target, probability)), 4),
        "pr_auc": round(float(average_precision_score(target, probability)), 4),
        "brier": round(float(brier_score_loss(target, probability)), 4),
        "base_rate": round(float(target.mean()), 4),
    }


ROC_POINTS = 51


def roc_curve_points(target: FloatArray, probability: FloatArray) -> list[float]:
    """The ROC curve as true positive rates at false positive rates 0, 1/50, ..., 1: small enough
    to keep in the card, fine enough to draw (the curve's steps are sampled, not smoothed)."""
    false_rate, true_rate, _ = roc_curve(target, probability)
    grid = np.linspace(0.0, 1.0, ROC_POINTS)
    # The best true positive rate reachable without passing each false positive rate.
    reached = np.searchsorted(false_rate, grid, side="right") - 1
    return [round(float(rate), 4) for rate in true_rate[reached]]


def at_threshold(target: FloatArray, probability: FloatArray, threshold: float) -> dict[str, float]:
    """Precision and recall when every probability at or above ``threshold`` is flagged."""
    flagged = probability >= threshold
    true_positives = float((flagged & (target == 1)).sum())
    precision = true_positives / flagged.sum() if flagged.any() else 1.0
    recall = true_positives / max(float((target == 1).sum()), 1.0)
    return {
        "threshold": threshold,
        "precision": round(float(precision), 4),
        "recall": round(recall, 4),
    }


def reliability_table(target: FloatArray, probability: FloatArray) -> list[dict[str, Any]]:
    """Mean predicted probability against the observed rate, in equal-width probability bins."""
    bins = np.minimum((probability * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    table = []
    for index in range(RELIABILITY_BINS):
        members = bins == index
        if members.any():
            table.append(
                {
                    "bin": f"{index / RELIABILITY_BINS:.1f}-{(index + 1) / RELIABILITY_BINS:.1f}",
                    "rows": int(members.sum()),
                    "predicted": round(float(probability[members].mean()), 4),
                    "observed": round(float(target[members].mean()), 4),
                }
            )
    return table


def subgroup_aucs(
    texts: Sequence[str], target: FloatArray, probability: FloatArray
) -> dict[str, dict[str, Any]]:
    """ROC-AUC within the rows that mention each identity term (where both classes occur)."""
    result = {}
    for term in IDENTITY_TERMS:
        pattern = re.compile(rf"\b{term}s?\b", re.IGNORECASE)
        members = np.array([bool(pattern.search(text)) for text in texts])
        positives = int(target[members].sum())
        negatives = int(members.sum()) - positives
        if (
            members.sum() >= MIN_SUBGROUP_ROWS
            and min(positives, negatives) >= MIN_SUBGROUP_CLASS_ROWS
        ):
            low, high = bootstrap_auc_interval(target[members], probability[members])
            result[term] = {
                "rows": int(members.sum()),
                "positives": positives,
                "roc_auc": round(float(roc_auc_score(target[members], probability[members])), 4),
                "interval": [low, high],
            }
    return result


BoolArray = npt.NDArray[np.bool_]


def term_members(texts: Sequence[str], term: str) -> BoolArray:
    """Which texts name ``term`` as a whole word or phrase (any case)."""
    pattern = re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE)
    return np.array([bool(pattern.search(text)) for text in texts], dtype=bool)


def _auc_if_defined(target: FloatArray, probability: FloatArray) -> float | None:
    """ROC-AUC rounded like the others, or None when the rows do not hold both classes."""
    if len(np.unique(target)) < 2:
        return None
    return round(float(roc_auc_score(target, probability)), 4)


def bias_aucs(
    target: FloatArray, probability: FloatArray, members: BoolArray
) -> dict[str, float | None]:
    """The three identity-bias AUCs of Borkan et al. 2019 for one subgroup (``members``).

    - subgroup AUC: within the subgroup's rows only; low when the model cannot tell toxic from
      civil among comments that name the identity.
    - BPSN (background positive, subgroup negative): toxic rows outside the subgroup against
      civil rows inside it; low when civil mentions of the identity score above toxic comments
      elsewhere, i.e. the term itself reads as toxic.
    - BNSP (background negative, subgroup positive): civil rows outside against toxic rows
      inside; low when toxic comments about the identity score below civil comments elsewhere.

    Each is None when its rows lack one of the classes.
    """
    positive = target == 1
    background = ~members
    chosen = {
        "subgroup_auc": members,
        "bpsn_auc": (background & positive) | (members & ~positive),
        "bnsp_auc": (background & ~positive) | (members & positive),
    }
    return {name: _auc_if_defined(target[rows], probability[rows]) for name, rows in chosen.items()}


def _bootstrap_interval(
    target: FloatArray, statistic: Callable[[npt.NDArray[np.int64]], float], seed: int
) -> tuple[float, float]:
    """The central ``INTERVAL`` of ``statistic`` over resamples of the rows (seeded, repeatable)."""
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        rows = generator.integers(0, target.size, target.size)
        if 0 < target[rows].sum() < rows.size:
            values.append(statistic(rows))
    tail = (1 - INTERVAL) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return round(float(low), 4), round(float(high), 4)


def weighted_auc(target: npt.NDArray[Any], score: FloatArray, counts: FloatArray) -> FloatArray:
    """ROC-AUC of ``score`` under each row of ``counts`` (resamples x rows: how often each row
    was drawn), ties counted half, as ``roc_auc_score`` of the rows repeated that often gives it:
    one sort for every resample, where sklearn sorts and checks each one."""
    order = np.argsort(score, kind="stable")
    ordered, positive = score[order], target[order].astype(bool)
    weights = counts[:, order]
    negatives = np.where(positive, 0.0, weights)
    below = np.cumsum(negatives, axis=1)
    # Each row's tie group: negatives before it and in its group, read at the group's ends.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    group = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    ends = np.r_[starts[1:], ordered.size] - 1
    before = np.where(starts[group] > 0, below[:, np.maximum(starts[group] - 1, 0)], 0.0)
    tied = below[:, ends[group]] - before
    credit = (before + 0.5 * tied)[:, positive] * weights[:, positive]
    pairs = weights[:, positive].sum(axis=1) * negatives.sum(axis=1)
    result: FloatArray = credit.sum(axis=1) / np.maximum(pairs, 1e-6)
    return result


def resampled_auc(
    target: FloatArray, score: FloatArray
) -> Callable[[npt.NDArray[np.int64]], float]:
    """ROC-AUC of ``score`` on a resample of the rows (row numbers, repeats allowed), equal to
    ``roc_auc_score(target[rows], score[rows])``: an evaluation's thousands of resamples
    scored by sklearn took most of its time."""

    def auc(rows: npt.NDArray[np.int64]) -> float:
        drawn = np.bincount(rows, minlength=target.size).astype(np.float64)
        return float(weighted_auc(target, score, drawn[np.newaxis, :])[0])

    return auc


def bootstrap_auc_interval(
    target: FloatArray, probability: FloatArray, seed: int = 0
) -> tuple[float, float]:
    """The central ``INTERVAL`` of ROC-AUC over resamples of the rows."""
    return _bootstrap_interval(target, resampled_auc(target, probability), seed)


def auc_difference_interval(
    target: FloatArray, ours: FloatArray, theirs: FloatArray, seed: int = 0
) -> tuple[float, float]:
    """The central ``INTERVAL`` of ROC-AUC(ours) minus ROC-AUC(theirs), paired on the same rows.

    Both scorers see each resample together, so what the rows have in common cancels: an interval
    that holds 0 means the two cannot be told apart on this set.
    """

    ours_auc, theirs_auc = resampled_auc(target, ours), resampled_auc(target, theirs)

    def difference(rows: npt.NDArray[np.int64]) -> float:
        return ours_auc(rows) - theirs_auc(rows)

    return _bootstrap_interval(target, difference, seed)


def span_f1(predicted: Iterable[int], gold: Iterable[int]) -> float:
    """Character-offset F1 of one post as in SemEval-2021 Task 5 (both empty counts as 1)."""
    predicted_set, gold_set = set(predicted), set(gold)
    if not predicted_set and not gold_set:
        return 1.0
    if not predicted_set or not gold_set:
        return 0.0
    overlap = len(predicted_set & gold_set)
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_set)
    recall = overlap / len(gold_set)
    return 2 * precision * recall / (precision + recall)
