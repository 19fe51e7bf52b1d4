"""``civility evaluate --compare OLD``: a new model against the old one on the same held-out sets.

Both models are scored on exactly the same texts: every evaluation set minus the texts either
model was fitted on (each model's card says how many rows per source it used), so a difference
is the models', not the sets'. The sets a label has in only one of the models are skipped.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from classifier.evaluate import evaluation_sets, score_set
from classifier.labels import SOURCES, TRAIN_SOURCES
from classifier.model import Model
from classifier.training_data import load_sources, training_keys, training_rows

COMPARED = ("roc_auc", "pr_auc", "brier")
DRAWN = ("roc_curve", "reliability")


def compare(
    new: Model, old: Model, datasets_dir: Path, *, limit_per_set: int | None = None
) -> dict[str, Any]:
    """Per held-out set and label, each model's ranking metrics and the difference (new - old)."""
    sources = load_sources(datasets_dir, SOURCES)
    exclude: set[str] = set()
    for model in (new, old):
        limit = model.card.get("training", {}).get("limit_per_source")
        fitted = training_rows({name: sources[name] for name in TRAIN_SOURCES}, model.labels, limit)
        exclude |= training_keys(fitted)
    sets = []
    for evaluated in evaluation_sets(sources, exclude, limit_per_set):
        if evaluated.label not in new.labels or evaluated.label not in old.labels:
            continue
        scored = {"new": score_set(new, evaluated, None), "old": score_set(old, evaluated, None)}
        sets.append(
            {
                "source": evaluated.source,
                "split": evaluated.split,
                "label": evaluated.label,
                "rows": len(evaluated.texts),
                **{
                    metric: {
                        "new": scored["new"][metric],
                        "old": scored["old"][metric],
                        "delta": round(scored["new"][metric] - scored["old"][metric], 4),
                    }
                    for metric in COMPARED
                },
                **{
                    drawn: {"new": scored["new"][drawn], "old": scored["old"][drawn]}
                    for drawn in DRAWN
                },
            }
        )
    return {"new": new.stem, "old": old.stem, "limit_per_set": limit_per_set, "sets": sets}


def format_comparison(report: Mapping[str, Any]) -> str:
    """One line per set: ROC-AUC and PR-AUC of both models and the change (higher is better)."""
    header = (
        f"{'source':36} {'split':6} {'label':16} {'rows':>6} "
        f"{'ROC new':>8} {'old':>6} {'Δ':>7} {'PR new':>8} {'old':>6} {'Δ':>7}"
    )
    lines = [f"{report['new']} against {report['old']}", header, "-" * len(header)]
    for entry in report["sets"]:
        roc, pr = entry["roc_auc"], entry["pr_auc"]
        lines.append(
            f"{entry['source']:36} {entry['split']:6} {entry['label']:16} {entry['rows']:>6} "
            f"{roc['new']:>8.3f} {roc['old']:>6.3f} {roc['delta']:>+7.3f} "
            f"{pr['new']:>8.3f} {pr['old']:>6.3f} {pr['delta']:>+7.3f}"
        )
    return "\n".join(lines)
