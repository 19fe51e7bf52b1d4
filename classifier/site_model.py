"""A site's own model: small heads on the global model's features, blended with its score.

Moderators of one site hold and reject by their own standard. A site head is a logistic regression
fitted on that site's labelled comments, one per feature kind (the global model's lexical features;
its per-label scores; the semantic stage's sentence embeddings when the model has one), its logit
calibrated on the site's labels. The adapted score of a label is the sigmoid of a weighted sum of
the global logit and each head's calibrated logit, the weights chosen on a grid by out-of-fold
ROC-AUC on the site's labels: the most cautious weights (most on the global logit) within one
bootstrap standard error of the best (``FitSettings.caution``). The kinds that get a weight are
the site's choice of features (any of lexical, scores and embedding). The heads go into use only
with enough labels and positives, and only when out of fold they rank the site's labels better
than the global model by more than a minimum gain and by more than their noise (the lower bound of
a paired bootstrap of the gain over the out-of-fold scores is above zero); once in use, a head
stays in use while it does not rank worse (hysteresis), so a refit on labels a moderator keeps
undoing does not switch the site back and forth. That rule is ``classifier.switch_on``'s, on the
figures this module measures.
"""

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from classifier.metrics import weighted_auc
from classifier.switch_on import decide, short_of_labels

FloatArray = npt.NDArray[np.float64]
Features: TypeAlias = sparse.csr_matrix | FloatArray

ADAPTED_LABELS: tuple[str, ...] = ("toxicity", "spam")
"""The labels a site's moderators decide on: kept, rejected (toxic by the site's standard), spam."""

LEXICAL = "lexical"
"""The global model's word, character and signal features, the kind every model has."""
EMBEDDING = "embedding"
"""The semantic stage's sentence embeddings, a kind only a model with a stage has."""
SCORES = "scores"
"""The global model's logit of every label it scores: a site whose standard weighs the global
labels otherwise (insults more than profanity, say) is learnt from a few columns, and the verdict
has them already."""

_EPSILON = 1e-6
_BOOTSTRAP_CELLS = 2_000_000
"""Resampled rows held at once (16 MB an array): 200 resamples of 10,000 labels."""


@dataclass(frozen=True, slots=True)
class FitSettings:
    """When a site head may go into use, and how it is fitted."""

    min_labels: int = 500
    min_positives: int = 40
    # Out-of-fold ROC-AUC a head must add over the global model to go into use, and to stay.
    switch_on_gain: float = 0.005
    keep_gain: float = 0.0
    # To go into use, the gain's lower quantile over paired bootstrap resamples of the site's
    # out-of-fold scores must be above zero too: a gain within its noise is no gain.
    bootstraps: int = 200
    lower_quantile: float = 0.05
    folds: int = 5
    # The lexical heads' inverse regularisation. A dense kind's is the one of ``dense_cs`` whose
    # head ranks the site's labels best out of fold: its few columns fit in a few milliseconds,
    # and the embeddings want ten times more regularisation than the scores at a few hundred
    # labels.
    c: float = 1.0
    dense_cs: tuple[float, ...] = (0.1, 1.0)
    weight_step: float = 0.1
    # How many bootstrap standard errors below the best blend out of fold a more cautious blend
    # (more global weight, then fewer kinds) may rank and still be taken. The best blend itself
    # (0) gains more on a site whose next comments are like its labelled ones and loses more on
    # one whose are not: the stream benchmark measures both.
    caution: float = 1.0
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
        raw: FloatArray
        if isinstance(features, np.ndarray):
            raw = np.asarray(features @ self.vector, dtype=np.float64).ravel()
        else:
            # Each row's non-zeros times their weights, summed by row: a verdict scores one row,
            # for which scipy's product costs more in dispatch than in arithmetic.
            products = features.data * self.vector[features.indices]
            if features.shape[0] == 1:
                return self.scale * (np.array([products.sum()]) + self.intercept) + self.offset
            rows = np.repeat(np.arange(features.shape[0]), np.diff(features.indptr)).astype(np.intp)
            raw = np.bincount(rows, weights=products, minlength=features.shape[0]).astype(
                np.float64
            )
        return self.scale * (raw + self.intercept) + self.offset


@dataclass(frozen=True, slots=True)
class LabelModel:
    """The adapted score of one label: global logit and head logits, weighted."""

    label: str
    global_weight: float
    heads: tuple[tuple[Head, float], ...]

    @property
    def kinds(self) -> frozenset[str]:
        """The feature kinds scoring with this model needs."""
        return frozenset(head.kind for head, weight in self.heads if weight)

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
    # The kinds the blend chose ("lexical", "scores", "embedding+lexical+scores", ...), each
    # candidate's out-of-fold ROC-AUC, and the bootstrap lower bound of the chosen blend's gain.
    features: str | None = None
    candidates: Mapping[str, float] = field(default_factory=dict)
    gain_lower_bound: float | None = None
    # Each kind's head alone, out of fold: how well the site's labels are learnt from it.
    heads: Mapping[str, float] = field(default_factory=dict)

    def card(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "why": self.why,
            "labels": self.labels,
            "positives": self.positives,
            "auc_global": _rounded(self.auc_global),
            "auc_adapted": _rounded(self.auc_adapted),
            "weights": {kind: round(weight, 3) for kind, weight in self.weights.items()},
            "features": self.features,
            "candidates": {name: _rounded(auc) for name, auc in self.candidates.items()},
            "gain_lower_bound": _rounded(self.gain_lower_bound),
            "heads": {kind: _rounded(auc) for kind, auc in self.heads.items()},
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


def too_few(
    label: str, targets: npt.NDArray[np.int8], settings: FitSettings
) -> LabelOutcome | None:
    """The outcome of a label with too few labels or positives to fit; ``None`` when enough."""
    count, positives = int(targets.size), int(targets.sum())
    why = short_of_labels(count, positives, settings)
    return None if why is None else LabelOutcome(label, False, why, count, positives)


def fit_label(
    label: str,
    targets: npt.NDArray[np.int8],
    global_probability: FloatArray,
    features: Mapping[str, Features],
    settings: FitSettings,
    *,
    in_use: bool = False,
) -> LabelOutcome:
    """Fit the site heads of ``label`` on every kind of ``features`` and decide whether they go
    into use.

    ``targets`` are the site's 0/1 labels, ``global_probability`` the global model's score of the
    same rows and ``features`` each kind's rows; ``in_use`` says whether the label's previous fit
    was in use (it then stays with a smaller gain)."""
    refused = too_few(label, targets, settings)
    if refused is not None:
        return refused
    site = SiteLabels(label, targets, features, settings)
    return site.fit(global_probability, tuple(features), in_use=in_use)


class SiteLabels:
    """One label's site labels and each feature kind's head on them: the heads' calibrated
    out-of-fold logits are computed once per kind and shared by every blend fitted on them (the
    verdict's on lexical features, the second look's on lexical features and embeddings)."""

    def __init__(
        self,
        label: str,
        targets: npt.NDArray[np.int8],
        features: Mapping[str, Features],
        settings: FitSettings,
    ) -> None:
        self.label = label
        self.targets = targets
        self.features = features
        self.settings = settings
        folds = StratifiedKFold(settings.folds, shuffle=True, random_state=settings.seed)
        self.splits = list(folds.split(np.zeros(targets.size), targets))
        self._calibrated: dict[str, tuple[FloatArray, tuple[float, float]]] = {}
        self._heads: dict[str, Head] = {}

    def calibrated(self, kind: str) -> tuple[FloatArray, tuple[float, float]]:
        """The kind's calibrated out-of-fold logits and its Platt scaling."""
        if kind not in self._calibrated:
            raw, head = _out_of_fold(
                kind, self.features[kind], self.targets, self.splits, self.settings
            )
            scale, offset = _platt(raw, self.targets)
            self._calibrated[kind] = (scale * raw + offset, (scale, offset))
            self._heads[kind] = dataclasses.replace(head, scale=scale, offset=offset)
        return self._calibrated[kind]

    def head(self, kind: str) -> Head:
        """The kind's head: the mean of its folds' regressions, so that no fit on every row is
        needed (each fold saw most of them), with the Platt scaling of their logits."""
        self.calibrated(kind)
        return self._heads[kind]

    def fit(
        self, global_probability: FloatArray, kinds: Sequence[str], *, in_use: bool = False
    ) -> LabelOutcome:
        """The best blend of ``global_probability`` with heads of ``kinds``, and whether it goes
        into use."""
        targets, settings = self.targets, self.settings
        count, positives = int(targets.size), int(targets.sum())
        global_logit = _logit(global_probability)
        auc_global = float(roc_auc_score(targets, global_logit))
        heads = {
            kind: float(roc_auc_score(targets, self.calibrated(kind)[0])) for kind in sorted(kinds)
        }
        # A kind whose head ranks the labels no better than chance out of fold is no candidate:
        # its constant score would "beat" a global model that happens to rank them backwards.
        kinds = sorted(kind for kind in kinds if self.calibrated(kind)[1][0] > 0)
        if not kinds:
            why = "out of fold no site head ranks the labels better than chance"
            return LabelOutcome(self.label, False, why, count, positives, auc_global, heads=heads)
        calibrated = {kind: self.calibrated(kind)[0] for kind in kinds}
        blends: list[_Blend] = []
        for weights in simplex(len(kinds) + 1, settings.weight_step):
            if weights[0] == 1.0:
                continue
            support = tuple(kind for kind, w in zip(kinds, weights[1:], strict=True) if w)
            blended = weights[0] * global_logit
            for kind, weight in zip(kinds, weights[1:], strict=True):
                blended = blended + weight * calibrated[kind]
            blends.append(_Blend(float(roc_auc_score(targets, blended)), weights, support, blended))
        # The candidates: the best blend of each set of kinds that get a weight.
        candidates: dict[str, float] = {}
        for blend in blends:
            name = "+".join(blend.support)
            candidates[name] = max(candidates.get(name, 0.0), blend.auc)
        candidates = dict(sorted(candidates.items()))
        top = max(blends, key=lambda blend: blend.auc)
        (resampled,) = _bootstrap_aucs(targets, [top.logits], settings)
        spread = float(np.std(resampled))
        # The blend with the most global weight (then the fewest kinds) within ``caution``
        # bootstrap standard errors of the best: the site's labels do not tell a bolder one from
        # it, and a bolder one loses more where the site's next comments differ from its
        # labelled ones.
        chosen = max(
            (blend for blend in blends if blend.auc >= top.auc - settings.caution * spread),
            key=lambda blend: (blend.weights[0], -len(blend.support), blend.auc),
        )
        best_auc, weights, blended = chosen.auc, chosen.weights, chosen.logits
        features = "+".join(chosen.support)
        named = dict(zip(kinds, weights[1:], strict=True))
        # The same resamples again (the same seed): the gain is paired row by row.
        adapted, base = _bootstrap_aucs(targets, [blended, global_logit], settings)
        gains = adapted - base
        low = float(np.quantile(gains, settings.lower_quantile))
        decision = decide(
            count=count,
            positives=positives,
            auc_global=auc_global,
            auc_adapted=best_auc,
            lower_bound=low,
            features=features,
            thresholds=settings,
            in_use=in_use,
        )
        if not decision.used:
            return LabelOutcome(
                self.label,
                False,
                decision.why,
                count,
                positives,
                auc_global,
                best_auc,
                named,
                features=features,
                candidates=candidates,
                gain_lower_bound=low,
                heads=heads,
            )
        model = LabelModel(
            label=self.label,
            global_weight=weights[0],
            heads=tuple((self.head(kind), named[kind]) for kind in chosen.support),
        )
        return LabelOutcome(
            self.label,
            True,
            decision.why,
            count,
            positives,
            auc_global,
            best_auc,
            named,
            model,
            features=features,
            candidates=candidates,
            gain_lower_bound=low,
            heads=heads,
        )


class _Blend(NamedTuple):
    """One weighting of the global logit and the heads' (global first), and its rank."""

    auc: float
    weights: tuple[float, ...]
    support: tuple[str, ...]
    logits: FloatArray


def _bootstrap_aucs(
    targets: npt.NDArray[np.int8], scores: Sequence[FloatArray], settings: FitSettings
) -> list[FloatArray]:
    """Each of ``scores``' ROC-AUC on the same ``settings.bootstraps`` resamples of the rows
    (each resample counts every row some number of times), drawn a chunk at a time so that the
    memory stays bounded however many labels a site has."""
    generator = np.random.default_rng(settings.seed)
    rows = targets.size
    chunk = max(1, _BOOTSTRAP_CELLS // rows)
    found: list[list[FloatArray]] = [[] for _ in scores]
    for start in range(0, settings.bootstraps, chunk):
        size = min(chunk, settings.bootstraps - start)
        counts = generator.multinomial(rows, np.full(rows, 1 / rows), size=size).astype(np.float64)
        for aucs, score in zip(found, scores, strict=True):
            aucs.append(weighted_auc(targets, score, counts))
    return [np.concatenate(aucs) for aucs in found]


def _classifier(settings: FitSettings, features: Features, c: float) -> LogisticRegression:
    # Balanced: a site's rejections are rare, and the rank of the few matters most. The lexical
    # kind has far more columns than a site has labels, where liblinear's dual solver reaches
    # the same optimum a few times faster; the dense kinds' few columns suit L-BFGS.
    if isinstance(features, np.ndarray):
        return LogisticRegression(
            C=c, class_weight="balanced", max_iter=300, tol=1e-3, solver="lbfgs"
        )
    return LogisticRegression(
        C=c,
        class_weight="balanced",
        max_iter=300,
        # The same out-of-fold ranking as 1e-3 on a site's labels, in three quarters the time.
        tol=1e-2,
        solver="liblinear",
        dual=True,
        # Its coordinate descent visits the rows in a random order: the same labels, the same fit.
        random_state=settings.seed,
    )


def _out_of_fold(
    kind: str,
    features: Features,
    targets: npt.NDArray[np.int8],
    splits: Sequence[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    settings: FitSettings,
) -> tuple[FloatArray, Head]:
    """Each row's logit by the fold that did not see it, and the folds' mean regression as an
    uncalibrated head: of a dense kind, the one of the regularisations ``settings.dense_cs``
    whose logits rank the labels best."""
    if not isinstance(features, np.ndarray):
        return _folds(kind, features, targets, splits, settings, settings.c)
    tried = [_folds(kind, features, targets, splits, settings, c) for c in settings.dense_cs]
    # Ties go to the first, the most regularised: the site's labels do not tell them apart.
    ranks = [float(roc_auc_score(targets, logits)) for logits, _ in tried]
    return tried[int(np.argmax(ranks))]


def _folds(
    kind: str,
    features: Features,
    targets: npt.NDArray[np.int8],
    splits: Sequence[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    settings: FitSettings,
    c: float,
) -> tuple[FloatArray, Head]:
    logits = np.zeros(targets.size)
    coefficients = np.zeros(features.shape[1])
    intercept = 0.0
    for train, held in splits:
        fitted = _classifier(settings, features, c).fit(features[train], targets[train])
        logits[held] = fitted.decision_function(features[held])
        coefficients += fitted.coef_[0] / len(splits)
        intercept += float(fitted.intercept_[0]) / len(splits)
    weights = coefficients.astype(np.float32)
    columns = np.flatnonzero(weights).astype(np.int32)
    head = Head(
        kind=kind,
        columns=columns,
        weights=weights[columns],
        intercept=intercept,
        width=int(features.shape[1]),
        scale=1.0,
        offset=0.0,
    )
    return logits, head


def _platt(logits: FloatArray, targets: npt.NDArray[np.int8]) -> tuple[float, float]:
    fitted = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), targets)
    # A head whose out-of-fold logits rank the labels backwards has learnt nothing: a negative
    # scale fitted on those same rows would turn its chance ranking into a gain.
    scale = max(float(fitted.coef_[0, 0]), 0.0)
    if scale == 0.0:
        return 0.0, float(_logit(np.array([targets.mean()]))[0])
    return scale, float(fitted.intercept_[0])


def simplex(size: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``size`` non-negative multiples of ``step`` that sum to 1."""
    units = round(1 / step)
    return [
        tuple(part / units for part in (*parts, units - sum(parts)))
        for parts in itertools.product(range(units + 1), repeat=size - 1)
        if sum(parts) <= units
    ]


def score_features(matrix: FloatArray) -> FloatArray:
    """The ``scores`` kind of a (texts x labels) matrix of the global model's probabilities."""
    return _logit(matrix)


def _logit(probability: FloatArray) -> FloatArray:
    clipped = np.clip(np.asarray(probability, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    result: FloatArray = np.log(clipped) - np.log1p(-clipped)
    return result


def _sigmoid(logit: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-logit))
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)
