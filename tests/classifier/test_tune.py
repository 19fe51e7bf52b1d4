"""``civility tune``: head settings chosen on validation rows that evaluation never sees."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifier.datasets import overlap_key
from classifier.evaluate import evaluation_sets
from classifier.labels import LABELS, SOURCES, TRAIN_SOURCES
from classifier.training_data import load_sources, training_rows
from classifier.tune import VALIDATION_FRACTION, validation_mask, weighted_mean
from classifier.video_weight import WEIGHT_CANDIDATES

from .support import run_cli


@given(st.lists(st.text(min_size=1), min_size=1, max_size=30))
def test_a_text_lands_on_the_same_side_whatever_its_neighbours(texts: list[str]) -> None:
    alone = [bool(validation_mask([text])[0]) for text in texts]
    assert validation_mask(texts).tolist() == alone
    assert validation_mask(list(reversed(texts))).tolist() == list(reversed(alone))


def test_about_a_fifth_of_the_rows_are_held_for_validation(datasets_dir: Path) -> None:
    sources = load_sources(datasets_dir, TRAIN_SOURCES)
    rows = training_rows(sources, LABELS, limit_per_source=1000)
    held = validation_mask(rows.texts)
    assert abs(held.mean() - VALIDATION_FRACTION) < 0.02


def test_validation_rows_are_training_rows_not_evaluation_rows(datasets_dir: Path) -> None:
    """Tuning looks only at training splits; every reported set stays unseen."""
    sources = load_sources(datasets_dir, SOURCES)
    train_sources = {name: sources[name] for name in TRAIN_SOURCES}
    rows = training_rows(train_sources, LABELS)
    held = validation_mask(rows.texts)
    validation = {overlap_key(text) for text, kept in zip(rows.texts, held, strict=True) if kept}
    measured = {overlap_key(text) for s in evaluation_sets(sources, set()) for text in s.texts}
    # Identical texts across files exist (a tweet in two sets); evaluation drops them anyway.
    assert len(validation & measured) < 0.005 * len(validation)


def test_tune_prints_candidates_and_writes_the_chosen_settings(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuning.json"
    status = run_cli(
        "tune", "--data", str(datasets_dir), "--out", str(out), "--limit-per-source", "400",
        "--jobs", "1",
    )  # fmt: skip
    assert status == 0
    report = json.loads(out.read_text())
    assert set(report["chosen"]) == set(LABELS)
    for label, entries in report["candidates"].items():
        best = max(entry["mean"] for entry in entries)
        chosen = report["chosen"][label]
        winner = next(
            entry
            for entry in entries
            if (entry["c"], entry["log_count_ratio"], entry["blend"])
            == (chosen["c"], chosen["log_count_ratio"], chosen["blend"])
        )
        assert winner["mean"] == best
        assert winner["mean"] == weighted_mean(winner["sources"], label)
    assert report["chosen"]["spam"]["blend"] == []
    weight = report["youtube_spam_weight"]
    means = {float(candidate): auc for candidate, auc in weight["mean_roc_auc"].items()}
    assert set(means) == set(WEIGHT_CANDIDATES)
    assert means[weight["chosen"]] == max(means.values())
    printed = capsys.readouterr().out
    assert "toxicity:" in printed
    assert "classifier.labels.HEADS" in printed
    assert "YouTube spam weight" in printed


def test_a_tuning_stdout_does_not_take_still_writes_its_report(
    datasets_dir: Path, tmp_path: Path
) -> None:
    # Tuning takes a while even this small: what it measured is not lost with the printout.
    out = tmp_path / "tuning.json"
    civility = Path(sys.executable).with_name("civility")
    with Path("/dev/full").open("w") as full:
        completed = subprocess.run(
            [civility, "tune", "--data", datasets_dir, "--out", out, "--limit-per-source", "400",
             "--jobs", "1", "--quiet"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert (completed.returncode, completed.stderr) == (
        1, "civility tune: cannot write to stdout (No space left on device)\n",
    )  # fmt: skip
    assert set(json.loads(out.read_text())["chosen"]) == set(LABELS)


def test_tune_without_datasets_folder_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuning.json"
    assert run_cli("tune", "--data", str(tmp_path / "absent"), "--out", str(out)) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_tune_with_too_few_rows_names_the_labels_in_one_line(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 25 rows a source leave threat and severe toxicity without positives among the fit rows.
    out = tmp_path / "tuning.json"
    status = run_cli(
        "tune", "--data", str(datasets_dir), "--out", str(out), "--limit-per-source", "25",
        "--jobs", "1",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("civility tune: too few rows to tune severe_toxicity (0 positive, ")
    assert "threat (0 positive, " in err
    assert err.endswith(": raise --limit-per-source or add the missing sets\n")
    assert err.count("\n") == 1
    assert not out.exists()
