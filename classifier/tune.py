"""Choose each label's head settings on validation rows that no reported figure ever uses.

Every training source gives up a fifth of its rows (a fixed hash of the text decides, so the split
does not depend on row order); the features and every candidate head are fitted on the rest. A
candidate is scored by the ROC-AUC on the validation rows of each source that knows the label,
averaged with the weights those sources' rows have in training (comment sites count most). No
evaluation set (the test splits, c3, the identity set) is looked at; the spam videos are, for one
weight only (see below).
``civility tune`` prints the table and writes it as JSON; the chosen settings are what
``classifier.labels.HEADS`` holds.

Source weights are not searched: they are priors set by how close a source is to comments on a
news site. ``--source-weights`` measures how much halving or doubling each toxicity source's
weight would move the validation mean, to show that the figures do not rest on them. The one
weight that is chosen is YouTube's for spam, the only comment-section spam source: by leave one
video out over all videos (``classifier.video_weight``). Because that uses the videos the spam
figure is measured on, ``civility evaluate`` repeats the choice inside each of its folds without
the held-out video.
"""

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.metrics import roc_auc_score

from classifier.datasets import stable_fraction, text_key
from classifier.heads import HeadSettings, LinearFit
from classifier.labels import HEADS, LABELS, SOURCES, TRAIN_SOURCES, YOUTUBE_SPAM_WEIGHT
from classifier.pipeline import build_pipeline
from classifier.progress import QUIET, Progress
from classifier.training_data import LabeledRows, load_sources, training_rows
from classifier.video_weight import SPAM, SpamRows, choose_video_weight, held_out

FloatArray = npt.NDArray[np.float64]

VALIDATION_FRACTION = 0.2
TOXICITY = "toxicity"
# The related labels whose raw scores a label may borrow a share of, tried in this order; spam
# borrows from none.
PARTNERS: Mapping[str, tuple[str, ...]] = {
    "toxicity": ("profanity", "insult"),
    "severe_toxicity": (TOXICITY,),
    "insult": (TOXICITY,),
    "threat": (TOXICITY,),
    "identity_attack": (TOXICITY,),
    "profanity": (TOXICITY,),
}
C_CANDIDATES = (1.0, 4.0)
# As for training: the fewest rows of each class a head is fitted on.
MIN_ROWS_PER_CLASS = 2


class TuningError(Exception):
    """The rows cannot tune the heads; the message says what to change."""


BLEND_WEIGHT_CANDIDATES = (0.1, 0.25, 0.5, 1.0)
WEIGHT_FACTORS = (0.5, 2.0)
SEED = 0


def validation_mask(texts: Sequence[str]) -> npt.NDArray[np.bool_]:
    """True for the rows kept for validation (about a fifth, fixed by each text)."""
    return np.array(
        [stable_fraction(f"validation:{text_key(text)}") < VALIDATION_FRACTION for text in texts]
    )


@dataclass(frozen=True)
class Split:
    features: sparse.csr_matrix
    targets: FloatArray
    weights: FloatArray
    sources: npt.NDArray[np.str_]
    validation: npt.NDArray[np.bool_]


def prepare(rows: LabeledRows) -> Split:
    """Features fitted on the fit rows only, computed for every row."""
    validation = validation_mask(rows.texts)
    features = build_pipeline().named_steps["features"]
    features.fit([text for text, held in zip(rows.texts, validation, strict=True) if not held])
    return Split(
        features=sparse.csr_matrix(features.transform(rows.texts)),
        targets=rows.target_matrix(),
        weights=rows.weight_matrix(),
        sources=np.asarray(rows.sources),
        validation=validation,
    )


def _both_classes(target: FloatArray) -> bool:
    return len(np.unique(target[~np.isnan(target)])) == 2


def require_enough_rows(split: Split, labels: Sequence[str], spam_rows: SpamRows | None) -> None:
    """Refuse before fitting when a label cannot be tuned: each candidate is fitted on the fit
    rows and measured within the sources whose validation rows hold both classes, and YouTube's
    spam weight on each video held out."""
    short = []
    for label in labels:
        column = LABELS.index(label)
        target = split.targets[:, column]
        fit = target[~split.validation & (split.weights[:, column] > 0)]
        positives, negatives = int(np.sum(fit == 1)), int(np.sum(fit == 0))
        held = target[split.validation]
        held_sources = split.sources[split.validation]
        measured = any(
            _both_classes(held[held_sources == source]) for source in set(held_sources.tolist())
        )
        if min(positives, negatives) < MIN_ROWS_PER_CLASS or not measured:
            where = "" if measured else ", no source with both among its validation rows"
            short.append(f"{label} ({positives} positive, {negatives} negative to fit{where})")
    if spam_rows is not None:
        videos = spam_rows.video_names()
        if len(videos) < 2 or not all(
            _both_classes(spam_rows.target[held_out(spam_rows, video)]) for video in videos
        ):
            short.append(f"YouTube's spam weight ({len(videos)} videos, each needs spam and ham)")
    if short:
        raise TuningError(
            f"too few rows to tune {', '.join(short)}; each label needs at least "
            f"{MIN_ROWS_PER_CLASS} of each class to fit and a source with both among its "
            "validation rows: raise --limit-per-source or add the missing sets"
        )


def _validation_scores(
    split: Split, label: str, c: float, log_count_ratio: bool, weights: FloatArray
) -> FloatArray:
    """Raw scores of the validation rows that know ``label``, from a head fitted on the rest."""
    column = LABELS.index(label)
    known = ~np.isnan(split.targets[:, column])
    fit_rows = np.flatnonzero(known & ~split.validation & (weights > 0))
    coef, intercept = LinearFit(c, log_count_ratio, SEED).fit(
        split.features[fit_rows], split.targets[fit_rows, column], weights[fit_rows]
    )
    held = np.flatnonzero(split.validation)
    scores: FloatArray = np.asarray(split.features[held] @ coef).ravel() + intercept
    return scores


def per_source_auc(split: Split, label: str, scores: FloatArray) -> dict[str, float]:
    """ROC-AUC of validation ``scores`` within each source that has both classes."""
    column = LABELS.index(label)
    target = split.targets[split.validation, column]
    sources = split.sources[split.validation]
    result = {}
    for source in sorted(set(sources)):
        rows = (sources == source) & ~np.isnan(target)
        if len(np.unique(target[rows])) == 2:
            result[source] = round(float(roc_auc_score(target[rows], scores[rows])), 4)
    return result


def weighted_mean(aucs: Mapping[str, float], label: str) -> float:
    """The sources' AUCs weighted as their rows are in training: comment sites count most."""
    weights = [SOURCES[source].weight_for(label) for source in aucs]
    return round(float(np.average(list(aucs.values()), weights=weights)), 4)


def _entry(
    c: float, ratio: bool, blend: tuple[tuple[str, float], ...], aucs: dict[str, float], label: str
) -> dict[str, Any]:
    return {
        "c": c,
        "log_count_ratio": ratio,
        "blend": [list(pair) for pair in blend],
        "mean": weighted_mean(aucs, label),
        "sources": aucs,
    }


def _settings(entry: Mapping[str, Any]) -> HeadSettings:
    return HeadSettings(
        c=entry["c"],
        log_count_ratio=entry["log_count_ratio"],
        blend=tuple((partner, share) for partner, share in entry["blend"]),
    )


def tune_heads(split: Split, labels: Sequence[str], n_jobs: int) -> dict[str, Any]:
    """Every label's candidates with their validation AUCs, and the best of each.

    First each label's own fit (C and log-count ratio); then, one partner at a time, the share of
    that partner's own best fit to add, kept only where it raises the validation mean.
    """
    grid = list(itertools.product(labels, C_CANDIDATES, (False, True)))
    scored = Parallel(n_jobs=n_jobs)(
        delayed(_validation_scores)(split, label, c, ratio, split.weights[:, LABELS.index(label)])
        for label, c, ratio in grid
    )
    candidates: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    raw: dict[tuple[str, float, bool], FloatArray] = {}
    for (label, c, ratio), scores in zip(grid, scored, strict=True):
        raw[label, c, ratio] = scores
        aucs = per_source_auc(split, label, scores)
        candidates[label].append(_entry(c, ratio, (), aucs, label))
    best = {label: max(candidates[label], key=lambda entry: entry["mean"]) for label in labels}
    own = {label: raw[label, best[label]["c"], best[label]["log_count_ratio"]] for label in labels}
    for label in labels:
        blend: tuple[tuple[str, float], ...] = ()
        for partner in PARTNERS.get(label, ()):
            if partner not in labels:
                continue
            for share in BLEND_WEIGHT_CANDIDATES:
                trial = (*blend, (partner, share))
                scores = own[label] + sum(weight * own[name] for name, weight in trial)
                aucs = per_source_auc(split, label, scores)
                entry = _entry(best[label]["c"], best[label]["log_count_ratio"], trial, aucs, label)
                candidates[label].append(entry)
                if entry["mean"] > best[label]["mean"]:
                    best[label] = entry
            blend = tuple((name, weight) for name, weight in best[label]["blend"])
    chosen = {label: asdict(_settings(entry)) for label, entry in best.items()}
    return {"candidates": candidates, "chosen": _as_json(chosen)}


def _as_json(value: Any) -> Any:
    """Tuples as lists, the way the report is written and read back."""
    return json.loads(json.dumps(value))


def source_weight_sensitivity(split: Split, settings: HeadSettings, n_jobs: int) -> dict[str, Any]:
    """The toxicity validation mean with each source's weight halved and doubled."""
    column = LABELS.index(TOXICITY)
    known = ~np.isnan(split.targets[:, column])
    sources = sorted(set(split.sources[known]))
    variants: list[tuple[str, float]] = [("", 1.0)]
    variants += [(source, factor) for source in sources for factor in WEIGHT_FACTORS]
    c = 1.0 if settings.c is None else settings.c

    def weights_for(source: str, factor: float) -> FloatArray:
        weights = split.weights[:, column].copy()
        weights[split.sources == source] *= factor
        return weights

    scored = Parallel(n_jobs=n_jobs)(
        delayed(_validation_scores)(
            split, TOXICITY, c, settings.log_count_ratio, weights_for(source, factor)
        )
        for source, factor in variants
    )
    means = [weighted_mean(per_source_auc(split, TOXICITY, scores), TOXICITY) for scores in scored]
    baseline = means[0]
    return {
        "baseline_mean": baseline,
        "changes": [
            {"source": source, "factor": factor, "mean": mean, "delta": round(mean - baseline, 4)}
            for (source, factor), mean in zip(variants[1:], means[1:], strict=True)
        ],
    }


def tune(
    datasets_dir: Path,
    *,
    labels: Sequence[str] = LABELS,
    limit_per_source: int | None = None,
    source_weights: bool = False,
    n_jobs: int = 2,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """The tuning report: candidates per label, the chosen settings, optionally weight shifts."""
    started = time.perf_counter()
    sources = load_sources(datasets_dir, TRAIN_SOURCES, progress)
    rows = training_rows(sources, LABELS, limit_per_source)
    with progress.step("features"):
        split = prepare(rows)
    spam_rows = SpamRows.of(rows, split.features, LABELS) if SPAM in labels else None
    require_enough_rows(split, labels, spam_rows)
    with progress.step(f"head candidates of {len(labels)} labels"):
        heads = tune_heads(split, labels, n_jobs)
    report: dict[str, Any] = {
        "tuned": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": len(rows.texts),
        "validation_rows": int(split.validation.sum()),
        "limit_per_source": limit_per_source,
        **heads,
        "current": _as_json({label: asdict(HEADS[label]) for label in labels if label in HEADS}),
    }
    if spam_rows is not None:
        with progress.step("YouTube's spam weight, one video out"):
            video_weight = choose_video_weight(spam_rows, n_jobs=n_jobs)
        report["youtube_spam_weight"] = {**video_weight, "current": YOUTUBE_SPAM_WEIGHT}
    if source_weights and TOXICITY in labels:
        chosen = _settings(report["chosen"][TOXICITY])
        with progress.step("source weights halved and doubled"):
            report["source_weights"] = source_weight_sensitivity(split, chosen, n_jobs)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


_CHOICES = ("c", "log_count_ratio", "blend")


def _blend_text(blend: Sequence[Sequence[Any]]) -> str:
    return " + ".join(f"{share} {partner}" for partner, share in blend) or "-"


def format_report(report: Mapping[str, Any]) -> str:
    """Candidates per label, best first, and the weight shifts when measured."""
    lines = [
        f"validation rows {report['validation_rows']} of {report['rows']}; "
        "ROC-AUC on each source's validation rows, averaged with the sources' training weights"
    ]
    for label, entries in report["candidates"].items():
        lines.append(f"{label}:")
        chosen = report["chosen"][label]
        for entry in sorted(entries, key=lambda entry: -entry["mean"]):
            mark = "*" if all(entry[key] == chosen[key] for key in _CHOICES) else " "
            lines.append(
                f" {mark} C {entry['c']:<4} log-count ratio {entry['log_count_ratio']!s:5} "
                f"blend {_blend_text(entry['blend']):24} mean {entry['mean']:.4f}"
            )
    if weights := report.get("source_weights"):
        lines.append(f"toxicity source weights (validation mean {weights['baseline_mean']:.4f}):")
        for change in weights["changes"]:
            lines.append(
                f"  {change['source']:36} x{change['factor']:<4} {change['mean']:.4f} "
                f"({change['delta']:+.4f})"
            )
    drifted = [
        label
        for label, chosen in report["chosen"].items()
        if report["current"].get(label) != chosen
    ]
    if weight := report.get("youtube_spam_weight"):
        means = ", ".join(f"{w}: {auc:.4f}" for w, auc in weight["mean_roc_auc"].items())
        lines.append(f"YouTube spam weight, mean leave-one-video-out ROC-AUC by weight: {means}")
        if weight["chosen"] != weight["current"]:
            lines.append(
                f"classifier.labels.YOUTUBE_SPAM_WEIGHT is {weight['current']:g}, "
                f"the videos choose {weight['chosen']:g}"
            )
    lines.append(
        "classifier.labels.HEADS matches the chosen settings"
        if not drifted
        else f"classifier.labels.HEADS differs for: {', '.join(drifted)}"
    )
    return "\n".join(lines)
