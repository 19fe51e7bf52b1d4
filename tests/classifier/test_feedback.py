"""Feedback files (``civility labels export``) read and folded into training rows."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from classifier.feedback import (
    FEEDBACK_SOURCE,
    FeedbackError,
    FeedbackRow,
    fold_feedback,
    read_feedback,
)
from classifier.training_data import LabeledRows


def write_lines(path: Path, entries: list[Any]) -> Path:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")
    return path


def test_a_comment_labelled_twice_counts_once_with_its_latest_label(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "labels.jsonl",
        [
            {"site": "news", "comment_id": "c1", "text": "first", "labels": {"toxicity": 1}},
            {"site": "news", "comment_id": "c2", "text": "second", "labels": {"spam": 1}},
            {"site": "blog", "comment_id": "c1", "text": "other site", "labels": {"spam": 0}},
            {"text": "no id", "labels": {"spam": 1}},
            {"text": "no id", "labels": {"spam": 1}},
            {"site": "news", "comment_id": "c1", "text": "first", "labels": {"toxicity": 0}},
        ],
    )
    rows = read_feedback(path)
    assert [(row.site, row.text, row.labels) for row in rows] == [
        ("news", "second", {"spam": 1}),
        ("blog", "other site", {"spam": 0}),
        ("", "no id", {"spam": 1}),
        ("", "no id", {"spam": 1}),
        ("news", "first", {"toxicity": 0}),
    ]


def test_a_comments_latest_empty_label_withdraws_it(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "labels.jsonl",
        [
            {"site": "news", "comment_id": "c1", "text": "kept", "labels": {"toxicity": 0}},
            {"site": "news", "comment_id": "c2", "text": "second", "labels": {"spam": 1}},
            {"site": "news", "comment_id": "c1", "text": "kept", "labels": {}},
        ],
    )
    rows = LabeledRows()
    assert fold_feedback(rows, read_feedback(path), ("spam", "toxicity")) == 1
    assert rows.texts == ["second"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "a line must be a JSON object"),
        ('{"labels": {"spam": 1}}', "'text' must be a non-empty string"),
        ('{"text": "x", "labels": {}}', "'labels' must be an object"),
        ('{"text": "x", "labels": {"spam": 2}}', "label 'spam' must be 0 or 1, not 2"),
        ('{"text": "x", "labels": {"spam": true}}', "label 'spam' must be 0 or 1, not True"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"text": "fine", "labels": {"spam": 0}}\n\n' + line + "\n")
    with pytest.raises(FeedbackError) as raised:
        read_feedback(path)
    assert str(raised.value).startswith(f"{path}:3: ")
    assert message in str(raised.value)


def test_feedback_rows_join_the_training_rows_with_unknown_labels_left_unknown() -> None:
    rows = LabeledRows()
    feedback = [
        FeedbackRow(text="kept", labels={"spam": 0, "toxicity": 0}, site="news"),
        FeedbackRow(text="abusive", labels={"toxicity": 1, "not_a_label": 1}, site="news"),
        FeedbackRow(text="ignored", labels={"not_a_label": 1}, site="news"),
    ]
    added = fold_feedback(rows, feedback, ("spam", "toxicity", "insult"))
    assert added == 2
    assert rows.texts == ["kept", "abusive"]
    targets = rows.target_matrix()
    assert targets[0, :2].tolist() == [0.0, 0.0]
    assert math.isnan(targets[0, 2])
    assert math.isnan(targets[1, 0])
    assert targets[1, 1] == 1.0
    assert rows.sources == [FEEDBACK_SOURCE, FEEDBACK_SOURCE]
    assert rows.groups == ["feedback:news", "feedback:news"]
    assert rows.weight_matrix().shape == (2, 3)
