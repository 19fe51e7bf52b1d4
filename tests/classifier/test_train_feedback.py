"""``civility train --feedback``: exported labels join the training rows and the card names them."""

import json
from pathlib import Path

from classifier.feedback import FEEDBACK_SOURCE
from classifier.labels import LABELS
from classifier.train import feedback_entries
from classifier.training_data import LabeledRows


def test_feedback_rows_join_the_training_rows_and_the_card_records_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "labels.jsonl"
    entries = [
        {"site": "news", "comment_id": "c1", "text": "Buy now", "labels": {"spam": 1}},
        {"site": "news", "comment_id": "c2", "text": "Fair point", "labels": {"toxicity": 0}},
        {"site": "news", "comment_id": "c1", "text": "Buy now", "labels": {"spam": 0}},
    ]
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    rows = LabeledRows()
    inputs = feedback_entries(rows, path)
    assert rows.texts == ["Fair point", "Buy now"]
    assert rows.sources == [FEEDBACK_SOURCE, FEEDBACK_SOURCE]
    spam = LABELS.index("spam")
    assert rows.target_matrix()[1, spam] == 0.0  # the latest label of c1
    [entry] = inputs
    assert entry["source"] == FEEDBACK_SOURCE
    assert entry["path"] == "labels.jsonl"
    assert entry["rows"] == 2
    assert entry["bytes"] == path.stat().st_size
    assert len(entry["sha256"]) == 64


def test_no_feedback_adds_nothing() -> None:
    rows = LabeledRows()
    assert feedback_entries(rows, None) == []
    assert rows.texts == []
