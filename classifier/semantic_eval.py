"""The semantic stage in ``civility evaluate``: each set's ROC-AUC lexical, blended and semantic
alone, on the same held-out rows as the rest of the report.

Embeddings come through the cache (``classifier.embedding_cache``), one file per source, so a
second evaluation (or one after training) embeds nothing again.
"""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from classifier import metrics
from classifier.embedding_cache import EmbeddingCache, default_cache_dir
from classifier.encoder import FloatMatrix
from classifier.model import Model
from classifier.progress import QUIET, Progress


class Measured(Protocol):
    """What the comparison needs of an evaluation set (``classifier.evaluate.EvalSet``)."""

    @property
    def source(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def texts(self) -> list[str]: ...
    @property
    def target(self) -> npt.NDArray[np.float64]: ...


def _vectors_by_source(
    cache: EmbeddingCache, sets: Sequence[Measured], progress: Progress
) -> dict[str, dict[str, FloatMatrix]]:
    """Every set's texts embedded once per source (a source's labels share their texts)."""
    texts_of: dict[str, dict[str, None]] = {}
    for measured in sets:
        texts_of.setdefault(measured.source, {}).update(dict.fromkeys(measured.texts))
    found = {}
    for source, texts in texts_of.items():
        ordered = list(texts)
        vectors = cache.embed(source, ordered, progress)
        found[source] = dict(zip(ordered, vectors, strict=True))
    return found


def semantic_comparison(
    model: Model,
    sets: Iterable[Measured],
    *,
    cache_dir: Path | None = None,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """ROC-AUC per set and label of the lexical stage, the blend, and the semantic heads alone."""
    stage = model.semantic
    if stage is None:
        raise ValueError(f"{model.stem} has no semantic stage")
    measured = list(sets)
    cache = EmbeddingCache(cache_dir or default_cache_dir(), stage.encoder)
    vectors_of = _vectors_by_source(cache, measured, progress)
    rows = []
    for evaluated in measured:
        column = model.labels.index(evaluated.label)
        lexical = model.predict_matrix(evaluated.texts)
        vectors = np.stack([vectors_of[evaluated.source][text] for text in evaluated.texts])
        blended = stage.blend_vectors(vectors, lexical)[:, column]
        alone = stage.semantic_proba(vectors)[:, column]
        target = evaluated.target
        rows.append(
            {
                "source": evaluated.source,
                "split": evaluated.split,
                "label": evaluated.label,
                "rows": len(evaluated.texts),
                "weight": stage.weights[evaluated.label],
                "lexical_roc_auc": metrics.ranking_metrics(target, lexical[:, column])["roc_auc"],
                "blended_roc_auc": metrics.ranking_metrics(target, blended)["roc_auc"],
                "semantic_roc_auc": metrics.ranking_metrics(target, alone)["roc_auc"],
            }
        )
    return {"weights": dict(stage.weights), "sets": rows}


def format_semantic(report: Mapping[str, Any]) -> list[str]:
    """The comparison as table lines (none when the report has no semantic part)."""
    semantic = report.get("semantic")
    if not semantic:
        return []
    header = (
        f"{'source':36} {'split':6} {'label':16} {'rows':>6} {'w':>4} {'lexical':>8} "
        f"{'blended':>8} {'change':>7} {'alone':>6}"
    )
    lines = ["", "semantic stage, ROC-AUC (w: the label's blend weight):", header]
    lines.append("-" * len(header))
    for entry in semantic["sets"]:
        change = entry["blended_roc_auc"] - entry["lexical_roc_auc"]
        lines.append(
            f"{entry['source']:36} {entry['split']:6} {entry['label']:16} {entry['rows']:>6} "
            f"{entry['weight']:>4.1f} {entry['lexical_roc_auc']:>8.3f} "
            f"{entry['blended_roc_auc']:>8.3f} {change:>+7.3f} {entry['semantic_roc_auc']:>6.3f}"
        )
    return lines
