"""``civility train`` and ``civility evaluate`` on small slices of the real data."""

import json
import shutil
from pathlib import Path

import pytest

from classifier.card import file_sha256
from classifier.evaluate import PEER_TRAINED_ON
from classifier.labels import LABELS
from classifier.video_weight import WEIGHT_CANDIDATES

from .support import run_cli


def test_train_writes_artifact_card_and_active_marker(datasets_dir: Path, tmp_path: Path) -> None:
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(tmp_path), "--version", "0.0.1",
        "--limit-per-source", "150", "--jobs", "1",
    )  # fmt: skip
    assert status == 0
    artifact = tmp_path / "civility-0.0.1.joblib"
    card = json.loads((tmp_path / "civility-0.0.1.json").read_text())
    assert (tmp_path / "ACTIVE").read_text().strip() == "civility-0.0.1"
    assert card["artifact"]["sha256"] == file_sha256(artifact)
    assert card["labels"] == list(LABELS)
    assert set(card["versions"]) >= {"python", "scikit-learn", "numpy", "scipy", "joblib"}
    recorded = {entry["path"]: entry for entry in card["inputs"]}
    kaggle = recorded["kaggle-insults-social-commentary/train.csv"]
    assert kaggle["sha256"] == file_sha256(datasets_dir / kaggle["path"])
    assert all(entry["role"] == "train" for entry in card["inputs"])
    assert card["training"]["limit_per_source"] == 150


def test_train_without_datasets_folder_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_cli("train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path))
    assert status == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_evaluate_prints_the_table_and_stores_the_report_in_the_card(
    datasets_dir: Path,
    tiny_model_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, artifact)
    shutil.copy(tiny_model_path.with_suffix(".json"), artifact.with_suffix(".json"))
    status = run_cli(
        "evaluate", "--data", str(datasets_dir), "--model", str(artifact),
        "--limit-per-set", "120", "--jobs", "1",
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "kaggle-insults-social-commentary" in printed
    assert "leave one video out" in printed
    report = json.loads(artifact.with_suffix(".json").read_text())["metrics"]
    measured = {(entry["source"], entry["label"]) for entry in report["sets"]}
    assert ("c3-constructive-comments-corpus", "toxicity") in measured
    assert ("wikipedia-toxicity-identity-testset", "toxicity") in measured
    videos = report["spam_leave_one_video_out"]["videos"]
    assert len(videos) == 4
    for video, entry in videos.items():
        # The held-out video never helps choose the weight it is measured with.
        assert entry["youtube_weight"]["videos"] == sorted(set(videos) - {video})
        assert entry["youtube_weight"]["chosen"] in WEIGHT_CANDIDATES
    news = report["spam_on_news"]
    assert news["rows"] == 120
    assert 0.0 <= news["share_at_reject"] <= news["share_at_hold"] <= 1.0
    assert "spam on news comments" in printed
    for entry in report["sets"]:
        assert 0.0 <= entry["roc_auc"] <= 1.0
        assert entry["peer_roc_auc"] is not None or entry["label"] == "spam"
        assert entry.get("peer_trained_on_it") == (entry["source"] in PEER_TRAINED_ON)
        if entry["label"] != "spam":
            low, high = entry["peer_difference_interval"]
            assert -1.0 <= low <= high <= 1.0
    assert 0.0 < report["evidence"]["char_f1"] <= 1.0
    assert "* the peer was trained on this set's texts" in printed
    assert "ours-peer (90% interval)" in printed
    (identity,) = (
        e for e in report["sets"] if e["source"] == "wikipedia-toxicity-identity-testset"
    )
    assert set(identity["peer_subgroups"]) == set(identity["subgroups"])
    assert 0.0 <= identity["peer_largest_subgroup_gap"] <= 1.0


def test_evaluate_refuses_a_model_without_card(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, artifact)
    assert run_cli("evaluate", "--data", str(datasets_dir), "--model", str(artifact)) == 2
    assert "card" in capsys.readouterr().err
