"""Choosing YouTube's spam weight by leaving one video out, on real rows."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classifier.datasets import Record
from classifier.labels import LABELS, SPAM_SOURCE, TRAIN_SOURCES
from classifier.pipeline import build_pipeline
from classifier.training_data import LabeledRows, load_sources, training_rows
from classifier.video_weight import SpamRows, choose_video_weight, held_out


def _spam_rows(rows: LabeledRows) -> SpamRows:
    features = build_pipeline().named_steps["features"].fit_transform(rows.texts)
    return SpamRows.of(rows, features, LABELS)


def _youtube(text: str, video: str, spam: float) -> tuple[str, Record]:
    return SPAM_SOURCE, Record(text, {"CLASS": spam}, group=video)


def _rows(*records: tuple[str, Record]) -> LabeledRows:
    rows = LabeledRows()
    for source, record in records:
        rows.add(source, record, LABELS)
    return rows


EXAMPLES = (
    _youtube("subscribe to my channel for free gift cards", "Psy", 1.0),
    _youtube("check out my channel please", "Psy", 1.0),
    _youtube("this song still slaps in 2015", "Psy", 0.0),
    _youtube("check out my channel please", "Eminem", 1.0),
    _youtube("best rap verse ever written", "Eminem", 0.0),
    _youtube("visit my blog for cheap followers", "Eminem", 1.0),
    ("sms-spam-collection", Record("WINNER! call now to claim your prize", {"spam": 1.0})),
    ("sms-spam-collection", Record("see you at the station at six", {"spam": 0.0})),
)


def test_a_held_out_video_leaves_out_texts_the_other_rows_also_have() -> None:
    rows = _spam_rows(_rows(*EXAMPLES))
    held = set(np.flatnonzero(held_out(rows, "Eminem")).tolist())
    assert held == {4, 5}  # "check out my channel please" is also one of Psy's
    assert set(np.flatnonzero(held_out(rows, "Psy")).tolist()) == {0, 2}


def test_only_youtube_rows_take_the_video_weight() -> None:
    rows = _spam_rows(_rows(*EXAMPLES))
    weights = rows.weights_with(3.0)
    assert np.all(weights[rows.videos != ""] == 3.0)
    assert np.array_equal(weights[rows.videos == ""], rows.weight[rows.videos == ""])
    assert np.all(rows.weight[rows.videos != ""] != 3.0)


def test_one_video_is_not_enough_to_choose_a_weight() -> None:
    rows = _spam_rows(_rows(*EXAMPLES))
    rows = replace(rows, videos=np.where(rows.videos == "Psy", "Eminem", rows.videos))
    with pytest.raises(ValueError, match="at least two videos"):
        choose_video_weight(rows)


def test_the_weight_with_the_best_mean_held_out_auc_is_chosen(datasets_dir: Path) -> None:
    sources = load_sources(datasets_dir, TRAIN_SOURCES)
    rows = _spam_rows(training_rows(sources, LABELS, limit_per_source=300))
    choice = choose_video_weight(rows, candidates=(1.0, 4.0))
    assert choice["videos"] == sorted(set(rows.videos.tolist()) - {""})
    assert len(choice["videos"]) == 4
    means = {float(weight): auc for weight, auc in choice["mean_roc_auc"].items()}
    assert set(means) == {1.0, 4.0}
    assert all(0.5 < auc <= 1.0 for auc in means.values())
    assert means[choice["chosen"]] == max(means.values())
