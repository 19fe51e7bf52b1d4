"""How much the YouTube spam comments count against the other spam sources, chosen by video.

YouTube's comments are the only comment-section spam there is to train on; SMS spam and the
always-negative Wikipedia and news comments outnumber them several times over. Their weight is
chosen the way it is measured: leave one video out. For each candidate weight, a spam head is fitted
without one video and scored on it (texts also present among the fitted rows are dropped, as in
the evaluation), and the candidate with the best mean ROC-AUC over the videos wins; ties go to the
smaller weight. ``civility tune`` chooses it over every training video; ``civility evaluate``
chooses it again inside each of its leave-one-video-out folds, over the other videos only, so the
held-out video never takes part in choosing the weight it is measured with.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.metrics import roc_auc_score

from classifier.datasets import overlap_key
from classifier.heads import LinearFit
from classifier.labels import HEADS, SPAM_SOURCE
from classifier.training_data import LabeledRows

FloatArray = npt.NDArray[np.float64]

SPAM = "spam"
WEIGHT_CANDIDATES: tuple[float, ...] = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class SpamRows:
    """Rows that know ``spam``: features, target, weight, video ("" off YouTube), text id."""

    features: sparse.csr_matrix
    target: FloatArray
    weight: FloatArray
    videos: npt.NDArray[np.str_]
    keys: npt.NDArray[np.int64]
    """Rows with the same ``overlap_key`` share an id."""

    @classmethod
    def of(
        cls, rows: LabeledRows, features: sparse.csr_matrix, labels: Sequence[str]
    ) -> "SpamRows":
        column = list(labels).index(SPAM)
        target = rows.target_matrix()[:, column]
        known = np.flatnonzero(~np.isnan(target))
        videos = [
            rows.groups[index] if rows.sources[index] == SPAM_SOURCE else "" for index in known
        ]
        # Texts as small integers: an array of the texts themselves would be as wide as the
        # longest one in every row.
        ids: dict[str, int] = {}
        keys = [ids.setdefault(overlap_key(rows.texts[index]), len(ids)) for index in known]
        return cls(
            features=sparse.csr_matrix(features)[known],
            target=target[known],
            weight=rows.weight_matrix()[known, column],
            videos=np.asarray(videos, dtype=str),
            keys=np.asarray(keys, dtype=np.int64),
        )

    def video_names(self) -> list[str]:
        return sorted(set(self.videos.tolist()) - {""})

    def weights_with(self, video_weight: float) -> FloatArray:
        """Row weights with every YouTube row at ``video_weight``."""
        weights = self.weight.copy()
        weights[self.videos != ""] = video_weight
        return weights


def held_out(rows: SpamRows, video: str) -> npt.NDArray[np.bool_]:
    """The rows of ``video`` whose text does not also occur among the other rows."""
    of_video = rows.videos == video
    held: npt.NDArray[np.bool_] = of_video & ~np.isin(rows.keys, rows.keys[~of_video])
    return held


def held_out_auc(rows: SpamRows, video: str, video_weight: float, linear: LinearFit) -> float:
    """ROC-AUC on ``video`` of a spam head fitted on every other row."""
    held = held_out(rows, video)
    fitted = np.flatnonzero(rows.videos != video)
    weights = rows.weights_with(video_weight)
    coef, intercept = linear.fit(rows.features[fitted], rows.target[fitted], weights[fitted])
    scores = np.asarray(rows.features[np.flatnonzero(held)] @ coef).ravel() + intercept
    return float(roc_auc_score(rows.target[held], scores))


def choose_video_weight(
    rows: SpamRows, candidates: Sequence[float] = WEIGHT_CANDIDATES, n_jobs: int = 1
) -> dict[str, Any]:
    """Each candidate's mean held-out-video ROC-AUC over ``rows``' videos, and the best one."""
    setting = HEADS[SPAM]
    linear = LinearFit(1.0 if setting.c is None else setting.c, setting.log_count_ratio)
    videos = rows.video_names()
    if len(videos) < 2:
        raise ValueError("choosing the YouTube spam weight needs at least two videos")
    grid = [(weight, video) for weight in candidates for video in videos]
    aucs = Parallel(n_jobs=n_jobs)(
        delayed(held_out_auc)(rows, video, weight, linear) for weight, video in grid
    )
    means = {
        weight: round(float(np.mean(aucs[index * len(videos) : (index + 1) * len(videos)])), 4)
        for index, weight in enumerate(candidates)
    }
    best = max(candidates, key=lambda weight: (means[weight], -weight))
    return {
        "videos": videos,
        "mean_roc_auc": {str(w): auc for w, auc in means.items()},
        "chosen": best,
    }
