"""Turn the sources of ``classifier.labels.SOURCES`` into target and weight matrices."""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classifier.card import file_sha256
from classifier.datasets import Record, SourceData, load_source, overlap_key
from classifier.labels import LABELS, SAME_COMMENTS, SOURCES, TRAIN_SOURCES
from classifier.progress import QUIET, Progress

FloatMatrix = npt.NDArray[np.float64]


@dataclass
class LabeledRows:
    """Texts with one target column per label (NaN where unknown) and matching weights."""

    texts: list[str] = field(default_factory=list)
    targets: list[list[float]] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add(self, source: str, record: Record, labels: Sequence[str]) -> None:
        use = SOURCES[source]
        row = [
            use.rules[label].target(record.values) if label in use.rules else math.nan
            for label in labels
        ]
        if all(math.isnan(value) for value in row):
            return
        self.texts.append(record.text)
        self.targets.append(row)
        self.weights.append([use.weight_for(label) for label in labels])
        self.sources.append(source)
        self.groups.append(record.group)

    def target_matrix(self) -> FloatMatrix:
        return np.asarray(self.targets, dtype=np.float64).reshape(len(self.texts), -1)

    def weight_matrix(self) -> FloatMatrix:
        return np.asarray(self.weights, dtype=np.float64).reshape(len(self.texts), -1)

    def select(self, keep: Iterable[bool]) -> "LabeledRows":
        chosen = LabeledRows()
        for index, wanted in enumerate(keep):
            if wanted:
                chosen.texts.append(self.texts[index])
                chosen.targets.append(self.targets[index])
                chosen.weights.append(self.weights[index])
                chosen.sources.append(self.sources[index])
                chosen.groups.append(self.groups[index])
        return chosen


@dataclass(frozen=True)
class WeightFactor:
    """Multiply one training source's weight, for one label or (``label`` None) for all."""

    source: str
    label: str | None
    factor: float

    @classmethod
    def parse(cls, text: str) -> "WeightFactor":
        """Read ``SOURCE=FACTOR`` or ``SOURCE:LABEL=FACTOR``; a clear ``ValueError`` otherwise."""
        target, equals, number = text.partition("=")
        source, colon, label = target.partition(":")
        if not equals or not source or (colon and not label):
            raise ValueError(f"expected SOURCE=FACTOR or SOURCE:LABEL=FACTOR, got {text!r}")
        if source not in TRAIN_SOURCES:
            raise ValueError(f"{source!r} is not a training source; one of {list(TRAIN_SOURCES)}")
        if colon and label not in SOURCES[source].rules:
            raise ValueError(
                f"{source} does not train {label!r}; it trains {list(SOURCES[source].rules)}"
            )
        try:
            factor = float(number)
        except ValueError:
            raise ValueError(f"factor must be a number, got {number!r}") from None
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"factor must be a positive number, got {number!r}")
        return cls(source, label or None, factor)

    def apply(self, rows: LabeledRows, labels: Sequence[str]) -> None:
        """Scale the matching weights of ``rows`` (whose columns are ``labels``) in place."""
        columns = range(len(labels)) if self.label is None else [labels.index(self.label)]
        for source, weights in zip(rows.sources, rows.weights, strict=True):
            if source == self.source:
                for column in columns:
                    weights[column] *= self.factor


def file_entries(datasets_dir: Path, data: SourceData) -> list[dict[str, Any]]:
    """What the card records for every file a source was read from."""
    use = SOURCES[data.name]
    return [
        {
            "source": data.name,
            "path": path.relative_to(datasets_dir).as_posix(),
            "sha256": file_sha256(path),
            "bytes": path.stat().st_size,
            "licence": use.licence,
            "role": use.role,
        }
        for path in data.files
    ]


def load_sources(
    datasets_dir: Path, names: Iterable[str], progress: Progress = QUIET
) -> dict[str, SourceData]:
    """Read the named sources, with the overlaps between sets of the same comments removed."""
    loaded = {
        name: load_source(datasets_dir, name)
        for name in progress.over(list(names), "reading datasets", unit="set")
    }
    return remove_overlaps(loaded)


def remove_overlaps(sources: Mapping[str, SourceData]) -> dict[str, SourceData]:
    """Keep every text measured in a ``SAME_COMMENTS`` group out of the group's training splits.

    Within each group of loaded sources, a training row is dropped when its text (by
    ``overlap_key``) is in any member's evaluation split, or was already taken by an earlier
    member's training split (the member itself included: copies differing only in markup can
    fall on both sides of a split): measured sets stay whole and comparable between models, and
    a comment two sets share is trained on once. Other sources are returned as they are.
    """
    cleaned = dict(sources)
    for group in SAME_COMMENTS:
        members = [name for name in sources if name in group]
        taken = {
            overlap_key(record.text)
            for name in members
            for split in SOURCES[name].eval_splits
            if split not in SOURCES[name].train_splits
            for record in sources[name].splits[split]
        }
        for name in members:
            data = sources[name]
            splits = dict(data.splits)
            for split in SOURCES[name].train_splits:
                kept = [r for r in splits[split] if overlap_key(r.text) not in taken]
                taken.update(overlap_key(record.text) for record in kept)
                splits[split] = kept
            cleaned[name] = SourceData(data.name, data.files, splits)
    return cleaned


def training_rows(
    sources: Mapping[str, SourceData],
    labels: Sequence[str] = LABELS,
    limit_per_source: int | None = None,
) -> LabeledRows:
    """Rows of every source's train splits; ``limit_per_source`` keeps a stratified-enough head.

    The limit takes every n-th row rather than the first rows, because several files are sorted
    by label.
    """
    rows = LabeledRows()
    for name, data in sources.items():
        use = SOURCES[name]
        if use.role != "train":
            raise ValueError(f"{name} is for evaluation only and must never train a model")
        records = [record for split in use.train_splits for record in data.splits[split]]
        if limit_per_source is not None and len(records) > limit_per_source:
            step = len(records) / limit_per_source
            records = [records[int(index * step)] for index in range(limit_per_source)]
        for record in records:
            rows.add(name, record, labels)
    return rows


def training_keys(rows: LabeledRows) -> set[str]:
    """Text identities of training rows, to remove them from anything measured."""
    return {overlap_key(text) for text in rows.texts}
