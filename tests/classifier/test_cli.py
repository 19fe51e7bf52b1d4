"""``civility train`` and ``civility evaluate`` on small slices of the real data."""

import base64
import errno
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from classifier import cli
from classifier.card import file_sha256
from classifier.embedding_cache import EmbeddingCache
from classifier.evaluate import PEER_TRAINED_ON
from classifier.labels import LABELS, TRAIN_SOURCES
from classifier.model import active_stem, load_active
from classifier.output import OutputError
from classifier.versions import next_version
from classifier.video_weight import WEIGHT_CANDIDATES

from .support import run_cli
from .test_compare import saved_as

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HAND_WRITTEN = PROJECT_ROOT / "tests" / "data" / "civil_and_abuse.jsonl"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_train_writes_artifact_card_and_active_marker(datasets_dir: Path, tmp_path: Path) -> None:
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(tmp_path), "--version", "0.0.1",
        "--limit-per-source", "150", "--jobs", "1", "--no-semantic", "--identity-swaps",
        "--identity-reweigh",
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
    assert "semantic" not in card  # --no-semantic
    assert not (tmp_path / "civility-0.0.1.semantic.joblib").exists()
    augmentation = card["training"]["augmentation"]
    assert augmentation["identity_swaps"] is True
    assert augmentation["swapped_copies"] > 0
    reweighed = augmentation["identity_reweigh"]["toxicity"]
    assert 0 < reweighed["base_rate"] < 1
    assert all(
        factors["toxic"] > 0 and factors["civil"] > 0 for factors in reweighed["factors"].values()
    )


def test_train_without_datasets_folder_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_cli("train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path))
    assert status == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# Trains a small model, evaluates it on every set and draws the report: minutes, not seconds.
@pytest.mark.timeout(1800)
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
        "--limit-per-set", "120", "--jobs", "1", "--examples", str(HAND_WRITTEN),
        "--seed", str(tmp_path / "no-seed.json"),
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    page = tmp_path / f"{artifact.stem}.report.html"
    folder = tmp_path / f"{artifact.stem}.figures"
    assert printed.endswith(f"report: {page} (figures in {folder})\n")
    drawn = {path.name: path.read_bytes() for path in folder.iterdir()}
    report = json.loads(artifact.with_suffix(".json").read_text())["metrics"]
    # A bias figure exists for each set whose sample held enough rows naming an identity term.
    bias = {
        f"bias-{entry['source']}-{entry['label']}.png"
        for entry in report["sets"]
        if entry.get("subgroups")
    }
    assert set(drawn) == {"roc.png", "reliability.png", "examples.png"} | bias
    html = page.read_text()
    for data in drawn.values():
        assert data.startswith(PNG_SIGNATURE)
        # The page carries every figure itself: it opens anywhere, alone.
        assert base64.b64encode(data).decode() in html
    assert "<td>c3-constructive-comments-corpus</td>" in html
    assert "kaggle-insults-social-commentary" in printed
    assert "leave one video out" in printed
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
        curve = entry["roc_curve"]
        assert (len(curve), curve[-1]) == (51, 1.0)
        assert curve == sorted(curve)  # a ROC curve never falls
        assert entry.get("peer_trained_on_it") == (entry["source"] in PEER_TRAINED_ON)
        # The peer is compared on every set but those it was fitted on.
        if entry["source"] not in PEER_TRAINED_ON:
            low, high = entry["peer_difference_interval"]
            assert -1.0 <= low <= high <= 1.0
            assert 0.0 <= entry["peer_roc_auc"] <= 1.0
        else:
            assert "peer_roc_auc" not in entry
    assert 0.0 < report["evidence"]["char_f1"] <= 1.0
    assert "* the peer was trained on this set's texts" in printed
    assert "ours-peer (90% interval)" in printed
    assert ("civil-comments-sample", "toxicity") in measured
    assert ("toxigen-implicit", "toxicity") in measured
    # Identity-term bias on the madlibs: at most 120 rows per term (and 120 naming none), every
    # term with its three AUCs for both scorers.
    bias = report["identity_bias"]
    assert len(bias["terms"]) == 50
    assert not bias["terms_absent"]
    assert bias["rows"] <= 51 * 120
    for entry in bias["terms"].values():
        assert entry["rows"] >= 120  # more where other terms' rows name it too
        for scorer in ("ours", "peer"):
            assert all(0.0 <= entry[scorer][m] <= 1.0 for m in ("subgroup_auc", "bpsn_auc"))
    assert 0.0 < bias["mean_bpsn"]["ours"] <= 1.0
    assert bias["lowest_bpsn"]["ours"]["value"] <= bias["mean_bpsn"]["ours"]
    assert "identity-term bias (identity-madlibs, toxicity" in printed
    assert "Identity-term bias (identity-madlibs" in html
    implicit = report["implicit_hate"]
    assert implicit["overall"]["rows"] == 120
    assert implicit["groups"]
    assert set(implicit["groups"]) <= {
        "lgbtq", "immigrant", "women", "muslim", "mental_disability", "black", "jewish", "latino"
    }  # fmt: skip
    assert "implicit hate (toxigen-implicit" in printed
    assert "Implicit hate (toxigen-implicit)" in html
    threats = report["threat_recall"]
    assert {entry["source"] for entry in threats["sets"]} == {
        "jigsaw-toxic-predibase-sample", "gab-hate-corpus", "youtube-toxic-comments"
    }  # fmt: skip
    assert (
        threats["threshold"]
        == json.loads(artifact.with_suffix(".json").read_text())["thresholds"]["threat"]["hold"]
    )
    # Every threat-labelled row is measured, whatever the limit per set.
    assert threats["pooled"]["positives"] > 60
    assert 0 <= threats["pooled"]["found"] <= threats["pooled"]["positives"]
    assert "threat recall at the threat hold threshold" in printed
    assert "Threat recall at the hold threshold" in html


class FullDisk(io.StringIO):
    """A stdout on a full disk."""

    def write(self, text: str, /) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_an_evaluation_stdout_does_not_take_still_leaves_its_report(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evaluating takes minutes: the committed model's report stands in for a fresh one, as what
    # is at stake is only where it goes once measured.
    models = PROJECT_ROOT / "models"
    measured = json.loads((models / f"{active_stem(models)}.json").read_text())["metrics"]
    monkeypatch.setattr(cli, "evaluate", lambda *_, **__: measured)
    artifact = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, artifact)
    shutil.copy(tiny_model_path.with_suffix(".json"), artifact.with_suffix(".json"))
    monkeypatch.setattr(sys, "stdout", FullDisk())
    with pytest.raises(OutputError, match=r"^cannot write to stdout \(No space left on device\)$"):
        run_cli(
            "evaluate", "--data", str(datasets_dir), "--model", str(artifact), "--examples",
            str(HAND_WRITTEN), "--seed", str(tmp_path / "no-seed.json"), "--quiet",
        )  # fmt: skip
    sys.stdout.close()  # what the failure put in stdout's place, so that nothing is lost at exit
    assert json.loads(artifact.with_suffix(".json").read_text())["metrics"] == measured
    assert (tmp_path / f"{artifact.stem}.report.html").is_file()
    assert (tmp_path / f"{artifact.stem}.figures" / "roc.png").is_file()


def test_a_comparison_stdout_does_not_take_still_leaves_its_report(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, artifact)
    shutil.copy(tiny_model_path.with_suffix(".json"), artifact.with_suffix(".json"))
    old = saved_as(tiny_model_path, tmp_path, "0.0.0-old")
    monkeypatch.setattr(sys, "stdout", FullDisk())
    with pytest.raises(OutputError, match=r"^cannot write to stdout \(No space left on device\)$"):
        run_cli(
            "evaluate", "--data", str(datasets_dir), "--model", str(artifact), "--models",
            str(tmp_path), "--compare", old.stem, "--limit-per-set", "60", "--quiet",
        )  # fmt: skip
    sys.stdout.close()
    assert (tmp_path / f"{artifact.stem}-vs-{old.stem}.report.html").is_file()


def test_evaluate_refuses_a_model_without_card(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / tiny_model_path.name
    shutil.copy(tiny_model_path, artifact)
    assert run_cli("evaluate", "--data", str(datasets_dir), "--model", str(artifact)) == 2
    assert "card" in capsys.readouterr().err


DATASETS_HELP = (
    "README.md's section 'Data' says where each set comes from and which ones give a usable subset"
)


def test_missing_datasets_say_where_to_get_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent"
    for command in ("train", "evaluate", "tune"):
        assert run_cli(command, "--data", str(absent)) == 2
        assert capsys.readouterr().err == (
            f"civility {command}: datasets folder {absent} does not exist; {DATASETS_HELP}\n"
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("train", "--data", str(empty), "--out", str(tmp_path / "out")) == 2
    assert capsys.readouterr().err == (
        f"civility train: dataset folder {empty / TRAIN_SOURCES[0]} is missing; {DATASETS_HELP}\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_existing_version_is_refused_unless_forced(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "civility-2.0.0.joblib"
    existing.write_bytes(b"a model someone relies on")
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(tmp_path), "--version", "2.0.0"
    )
    assert status == 2
    assert capsys.readouterr().err == (
        f"civility train: {existing} already exists; choose another --version, or --force to "
        "replace it\n"
    )
    assert existing.read_bytes() == b"a model someone relies on"
    # --force gets past that check; two rows per source then leave labels without positives,
    # which is refused before any fitting, with each short label and its counts.
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(tmp_path), "--version", "2.0.0",
        "--force", "--limit-per-source", "2",
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("civility train: too few rows to train ")
    assert "(0 positive, " in err
    assert err.endswith(
        "each label needs at least 2 of each: raise --limit-per-source or add the missing sets\n"
    )
    assert [path.name for path in tmp_path.iterdir()] == [existing.name]
    assert existing.read_bytes() == b"a model someone relies on"


def test_forcing_the_active_version_is_refused_before_any_fitting(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_path.parent, models)
    before = {path.name: file_sha256(path) for path in models.iterdir()}
    active = active_stem(models)
    # Two rows per source: a run let through would stop at too few rows, never fitting.
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(models),
        "--version", active.removeprefix("civility-"), "--force", "--limit-per-source", "2",
    )  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err == (
        f"civility train: {active} is the active model in {models}, which --force would leave "
        "unloadable while it trains: train another --version and activate it\n"
    )
    assert {path.name: file_sha256(path) for path in models.iterdir()} == before
    assert load_active(models, semantic=False).stem == active


def test_a_run_without_version_takes_the_next_free_one(tmp_path: Path) -> None:
    assert next_version(tmp_path, "civility", "1.4.0") == "1.4.0"
    for stem in (
        "civility-1.4.0",
        "civility-1.10.2",
        "civility-0.9.9",
        "other-7.0.0",
        "civility-x",
    ):
        (tmp_path / f"{stem}.joblib").write_bytes(b"")
    assert next_version(tmp_path, "civility", "1.4.0") == "1.10.3"
    assert next_version(tmp_path, "other", "1.4.0") == "7.0.1"


def test_evaluate_names_the_models_there_when_one_is_missing(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "civility-1.0.0.joblib").write_bytes(b"")
    missing = tmp_path / "civility-3.0.0.joblib"
    status = run_cli("evaluate", "--data", str(datasets_dir), "--model", str(missing),
                     "--models", str(tmp_path))  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err == (
        f"civility evaluate: model artifact {missing} does not exist "
        f"(models in {tmp_path}: civility-1.0.0)\n"
    )


def test_train_into_a_folder_it_cannot_write_says_so_before_fitting(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "models"
    taken.write_text("a file where the models folder should be\n")
    for out in (taken, taken / "nested"):
        status = run_cli(
            "train", "--data", str(datasets_dir), "--out", str(out), "--limit-per-source", "40",
            "--no-semantic", "--quiet",
        )  # fmt: skip
        assert status == 2
        assert capsys.readouterr() == (
            "",
            f"civility train: cannot write models into {out}: {taken} is not a folder\n",
        )


def test_tune_into_a_folder_it_cannot_write_says_so_before_tuning(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where a folder should be\n")
    out = taken / "tuning.json"
    assert run_cli("tune", "--data", str(datasets_dir), "--out", str(out), "--quiet") == 2
    assert capsys.readouterr() == (
        "",
        f"civility tune: cannot write {out}: {taken} is not a folder\n",
    )


def test_evaluate_with_a_models_folder_it_cannot_write_says_so_before_evaluating(
    datasets_dir: Path,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The image's models folder belongs to root while the service's user runs the command.
    models = tiny_model_path.parent
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != models and real_access(path, mode)
    )
    argv = ["evaluate", "--data", str(datasets_dir), "--model", str(tiny_model_path)]
    assert run_cli(*argv, "--no-semantic", "--quiet") == 2
    assert capsys.readouterr() == (
        "", f"civility evaluate: cannot write the report into {models}: {models} is not "
        "writable; or --no-write\n",
    )  # fmt: skip


def test_a_run_cut_short_in_its_semantic_stage_leaves_the_models_folder_as_it_was(
    datasets_dir: Path,
    tiny_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_path.parent, models)
    before = {path.name: file_sha256(path) for path in models.iterdir()}

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the texts are embedded, minutes into the stage

    monkeypatch.setattr(EmbeddingCache, "embed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_cli(
            "train", "--data", str(datasets_dir), "--out", str(models), "--version", "9.0.0",
            "--limit-per-source", "150", "--jobs", "1", "--quiet",
        )  # fmt: skip
    # No model without its card, nor half-written files: the version can be trained again.
    assert {path.name: file_sha256(path) for path in models.iterdir()} == before
    assert next_version(models, "civility", "9.0.0") == "9.0.0"


def test_a_feedback_line_that_is_not_utf8_is_named_in_one_line(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feedback = tmp_path / "labels.jsonl"
    # A file edited in another encoding: its second line holds "café" in Latin-1.
    feedback.write_bytes(
        b'{"text": "fine", "labels": {"spam": 0}}\n'
        + '{"text": "caf\u00e9 spam", "labels": {"spam": 1}}\n'.encode("latin-1")
    )
    out = tmp_path / "models"
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(out), "--feedback", str(feedback),
        "--limit-per-source", "40", "--no-semantic", "--quiet",
    )  # fmt: skip
    assert (status, capsys.readouterr()) == (
        2,
        ("", f"civility train: {feedback}:2: not valid UTF-8: byte 0xe9 at offset 13\n"),
    )
    assert not out.exists()


def test_a_forced_retrain_without_semantic_stage_does_not_load_the_old_one_left_beside_it(
    datasets_dir: Path, tiny_semantic_model_path: Path, tmp_path: Path
) -> None:
    # A version trained with its semantic stage, not active (so --force may replace it).
    models = tmp_path / "models"
    shutil.copytree(tiny_semantic_model_path.parent, models)
    (models / "ACTIVE").unlink()
    stem = tiny_semantic_model_path.name.removesuffix(".joblib")
    stale = models / f"{stem}.semantic.joblib"
    old = file_sha256(stale)
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(models),
        "--version", stem.removeprefix("civility-"), "--force", "--no-semantic",
        "--limit-per-source", "150", "--jobs", "1", "--quiet",
    )  # fmt: skip
    assert status == 0
    # The old stage's file is still there, but the new card does not name it, and a model is
    # loaded with the stage its card names (checked by its sha256), so none here.
    assert file_sha256(stale) == old
    assert "semantic" not in json.loads((models / f"{stem}.json").read_text())
    model = load_active(models)
    assert (model.stem, model.semantic) == (stem, None)
    texts = ["You are an idiot.", "Thanks for the careful summary."]
    assert (model.predict_blended(texts) == model.predict_matrix(texts)).all()
