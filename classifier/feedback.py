"""Moderators' labels as training rows, for ``civility train --feedback labels.jsonl``.

The file is what ``civility labels export`` writes: one JSON object a line with the ``text`` and
its ``labels`` (``{"spam": 1}``, ``{"spam": 0, "toxicity": 0}``; 1 it is, 0 it is not), plus the
``site`` and ``comment_id`` when known. A comment labelled twice (a moderator's undo) counts once,
with its latest label; a latest label ``{}`` (a decision that teaches nothing) leaves it out.
Labels the model does not have are ignored, and the model's labels a row does not name stay
unknown, as with a dataset source that says nothing about a label.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.training_data import LabeledRows

FEEDBACK_SOURCE = "feedback"
FEEDBACK_WEIGHT = 1.0
"""The weight of a feedback label: as much as one row of a fully trusted source."""


class FeedbackError(ValueError):
    """A line of the feedback file is not a label row; names the file and line."""


@dataclass(frozen=True)
class FeedbackRow:
    text: str
    labels: dict[str, int]
    site: str


def read_feedback(path: Path) -> list[FeedbackRow]:
    """The file's label rows in order, each comment once with its latest label (in its place)."""
    ordered: dict[tuple[str, str | int], FeedbackRow] = {}
    # Read as bytes and decoded line by line: a line in another encoding is named, not a traceback.
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                found = f"byte 0x{raw[error.start]:02x} at offset {error.start}"
                raise FeedbackError(f"{path}:{number}: not valid UTF-8: {found}") from None
            if not line.strip():
                continue
            try:
                row, comment_id = _row(json.loads(line))
            except (ValueError, TypeError) as error:
                raise FeedbackError(f"{path}:{number}: {error}") from None
            # A row without a comment id is its own; a comment's later label replaces the earlier.
            key: tuple[str, str | int] = (row.site, comment_id if comment_id else number)
            ordered.pop(key, None)
            ordered[key] = row
    return list(ordered.values())


def _row(entry: Any) -> tuple[FeedbackRow, str | None]:
    if not isinstance(entry, dict):
        raise ValueError("a line must be a JSON object")
    text, labels = entry.get("text"), entry.get("labels")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    comment_id = entry.get("comment_id")
    # A comment's {} withdraws its earlier labels (a decision that teaches nothing replaced them).
    if not isinstance(labels, dict) or not (labels or isinstance(comment_id, str)):
        raise ValueError("'labels' must be an object such as {\"spam\": 1}")
    for name, value in labels.items():
        if value not in (0, 1) or isinstance(value, bool):
            raise ValueError(f"label {name!r} must be 0 or 1, not {value!r}")
    site = entry.get("site")
    return (
        FeedbackRow(text=text, labels=dict(labels), site=site if isinstance(site, str) else ""),
        comment_id if isinstance(comment_id, str) else None,
    )


def fold_feedback(rows: LabeledRows, feedback: Sequence[FeedbackRow], labels: Sequence[str]) -> int:
    """Append the feedback rows that name at least one of ``labels``; returns how many."""
    added = 0
    for row in feedback:
        targets = [
            float(row.labels[label]) if label in row.labels else math.nan for label in labels
        ]
        if all(math.isnan(value) for value in targets):
            continue
        rows.texts.append(row.text)
        rows.targets.append(targets)
        rows.weights.append([FEEDBACK_WEIGHT] * len(labels))
        rows.sources.append(FEEDBACK_SOURCE)
        # Rows of one site stay together wherever training splits by group.
        rows.groups.append(f"{FEEDBACK_SOURCE}:{row.site}")
        added += 1
    return added
