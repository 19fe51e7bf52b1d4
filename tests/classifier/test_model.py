"""Loading refuses artifacts it cannot vouch for; a loaded model scores every label."""

import json
import shutil
import threading
from pathlib import Path

import joblib
import numpy as np
import pytest

from classifier.labels import LABELS
from classifier.model import (
    ACTIVE_FILE,
    ArtifactMissingError,
    CardMissingError,
    ChecksumMismatchError,
    InvalidCardError,
    LibraryVersionError,
    Model,
    NoActiveModelError,
    activate,
    load_active,
)
from classifier.pipeline import FittedParts


@pytest.fixture
def model_copy(tiny_model_path: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model and its card that a test may damage."""
    for source in (tiny_model_path, tiny_model_path.with_suffix(".json")):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / tiny_model_path.name


def _edit_card(model_artifact: Path, **changes: object) -> None:
    card_file = model_artifact.with_suffix(".json")
    card = json.loads(card_file.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = card
        for key in parents:
            node = node[key]
        node[last] = value
    card_file.write_text(json.dumps(card))


def test_loaded_model_scores_every_label_as_a_probability(tiny_model_path: Path) -> None:
    model = Model.load(tiny_model_path)
    scores = model.score(["You are a pathetic idiot.", "Thanks, that was a helpful reply."])
    assert model.labels == LABELS
    assert [set(row) for row in scores] == [set(LABELS)] * 2
    assert all(0.0 <= value <= 1.0 for row in scores for value in row.values())
    assert scores[0]["toxicity"] > scores[1]["toxicity"]


def test_scoring_nothing_returns_nothing(tiny_model_path: Path) -> None:
    assert Model.load(tiny_model_path).score([]) == []


def test_thresholds_are_suggested_for_every_label(tiny_model_path: Path) -> None:
    model = Model.load(tiny_model_path)
    assert set(model.thresholds) == set(LABELS)
    for levels in model.thresholds.values():
        assert 0.0 < levels["hold"] <= levels["reject"] < 1.0


def test_load_refuses_an_artifact_without_card(model_copy: Path) -> None:
    model_copy.with_suffix(".json").unlink()
    with pytest.raises(CardMissingError, match=r"card .*missing"):
        Model.load(model_copy)


def test_load_refuses_a_changed_artifact(model_copy: Path) -> None:
    with model_copy.open("ab") as stream:
        stream.write(b"\0")
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        Model.load(model_copy)


def test_load_refuses_another_scikit_learn_version(model_copy: Path) -> None:
    _edit_card(model_copy, **{"versions__scikit-learn": "0.24.2"})
    with pytest.raises(LibraryVersionError, match=r"scikit-learn 0\.24\.2"):
        Model.load(model_copy)


def test_load_refuses_a_card_without_checksum(model_copy: Path) -> None:
    _edit_card(model_copy, artifact={})
    with pytest.raises(InvalidCardError, match=r"artifact\.sha256"):
        Model.load(model_copy)


def test_load_refuses_an_unreadable_card(model_copy: Path) -> None:
    model_copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(InvalidCardError, match="cannot be read"):
        Model.load(model_copy)


@pytest.mark.parametrize(
    "changes",
    [
        {"labels": 5},
        {"thresholds": [1]},
        {"thresholds__spam": 5},
        {"thresholds__spam": {"hold": "x"}},
    ],
)
def test_load_refuses_malformed_labels_or_thresholds(
    model_copy: Path, changes: dict[str, object]
) -> None:
    _edit_card(model_copy, **changes)
    with pytest.raises(InvalidCardError, match="labels or thresholds are malformed"):
        Model.load(model_copy)


def test_load_reports_a_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactMissingError, match="does not exist"):
        Model.load(tmp_path / "civility-9.9.9.joblib")


def test_load_active_follows_the_active_marker(model_copy: Path) -> None:
    models_dir = model_copy.parent
    activate(models_dir, model_copy.stem)
    assert (models_dir / ACTIVE_FILE).read_text().strip() == model_copy.stem
    assert load_active(models_dir).stem == model_copy.stem


def test_load_active_without_marker_says_so(tmp_path: Path) -> None:
    with pytest.raises(NoActiveModelError, match="ACTIVE does not exist"):
        load_active(tmp_path)


def test_load_active_says_so_when_the_marker_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / ACTIVE_FILE).write_bytes(b"\xff\xfe")
    with pytest.raises(NoActiveModelError, match="cannot be read"):
        load_active(tmp_path)
    (tmp_path / ACTIVE_FILE).unlink()
    (tmp_path / ACTIVE_FILE).mkdir()
    with pytest.raises(NoActiveModelError, match="cannot be read"):
        load_active(tmp_path)


@pytest.mark.parametrize("stem", ["../elsewhere", "", "civility-1.0.0/../x"])
def test_load_active_refuses_a_marker_that_is_not_a_model_name(tmp_path: Path, stem: str) -> None:
    (tmp_path / ACTIVE_FILE).write_text(stem)
    with pytest.raises(NoActiveModelError):
        load_active(tmp_path)


def test_activate_refuses_a_broken_model_and_keeps_the_old_marker(model_copy: Path) -> None:
    models_dir = model_copy.parent
    activate(models_dir, model_copy.stem)
    broken = models_dir / "civility-0.0.1.joblib"
    shutil.copy(model_copy, broken)
    with pytest.raises(CardMissingError):
        activate(models_dir, broken.stem)
    assert (models_dir / ACTIVE_FILE).read_text().strip() == model_copy.stem


def test_explain_refuses_unknown_labels(tiny_model_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown labels"):
        Model.load(tiny_model_path).explain("hello", labels=["rudeness"])


def test_direct_scoring_matches_the_fitted_pipeline(tiny_model_path: Path) -> None:
    texts = ["You are a pathetic idiot.", "Visit www.example.com now!!!", "", "Ｆｉｎｅ ｂｙ ｍｅ"]
    expected = joblib.load(tiny_model_path).predict_proba(texts)
    np.testing.assert_allclose(Model.load(tiny_model_path).predict_matrix(texts), expected)


def test_vocabulary_survives_the_compact_pickle(tiny_model_path: Path, tmp_path: Path) -> None:
    vectorizer = FittedParts(joblib.load(tiny_model_path)).words
    joblib.dump(vectorizer, tmp_path / "words.joblib")
    assert joblib.load(tmp_path / "words.joblib").vocabulary_ == vectorizer.vocabulary_


def test_two_activations_at_once_each_write_a_file_of_their_own(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = model_copy.parent
    other = models_dir / "civility-0.0.2.joblib"
    shutil.copy(model_copy, other)
    shutil.copy(model_copy.with_suffix(".json"), other.with_suffix(".json"))
    # Both write their marker before either puts it in place; the first then switches first.
    both_written = threading.Barrier(2, timeout=30)
    first_switched = threading.Event()
    arrivals: list[str] = []
    replace = Path.replace

    def replace_in_turn(self: Path, target: Path) -> Path:
        arrivals.append(threading.current_thread().name)
        both_written.wait()
        if threading.current_thread().name != arrivals[0]:
            assert first_switched.wait(timeout=30)
        try:
            return replace(self, target)
        finally:
            first_switched.set()

    monkeypatch.setattr(Path, "replace", replace_in_turn)
    errors: list[BaseException] = []

    def activating(stem: str) -> None:
        try:
            activate(models_dir, stem)
        except BaseException as error:  # what each one raised is reported below
            errors.append(error)

    threads = [
        threading.Thread(target=activating, args=(stem,), name=stem)
        for stem in (model_copy.stem, other.stem)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    # The activation that switched last is the one in force, and no temporary file is left.
    assert (models_dir / ACTIVE_FILE).read_text().strip() == arrivals[1]
    assert sorted(path.name for path in models_dir.iterdir() if "partial" in path.name) == []
