"""The committed default model: the seed article's comments pass, abuse ranks above civility, and
``make train`` trains it again."""

import dataclasses
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import roc_auc_score

from classifier.feedback import FEEDBACK_SOURCE
from classifier.model import Model, load_active
from tests.seed import seed_article

from .support import parse_cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HAND_WRITTEN = PROJECT_ROOT / "tests" / "data" / "civil_and_abuse.jsonl"
SEED_LIMIT = 0.2


@pytest.fixture(scope="module")
def committed_model() -> Model:
    return load_active(PROJECT_ROOT / "models")


@pytest.fixture(scope="module")
def seed_comments() -> list[str]:
    return [comment["text"] for comment in seed_article()["comments"]]


def _hand_written() -> list[dict[str, str]]:
    return [json.loads(line) for line in HAND_WRITTEN.read_text().splitlines() if line.strip()]


def test_committed_model_is_verified_and_has_a_card_with_metrics(committed_model: Model) -> None:
    assert {"spam", "toxicity"} <= set(committed_model.labels)
    assert committed_model.card["artifact"]["sha256"]
    assert committed_model.card["inputs"], "the card lists every training file"
    assert committed_model.card["metrics"]["sets"], "the card carries the evaluation report"
    # The second look needs the semantic stage; its artifact was verified on load.
    assert committed_model.semantic is not None
    assert set(committed_model.semantic.weights) == set(committed_model.labels)


@pytest.mark.parametrize("stage", ["lexical", "blended"])
def test_seed_comments_score_low_on_every_label(
    committed_model: Model, seed_comments: list[str], stage: str
) -> None:
    score = committed_model.score if stage == "lexical" else committed_model.score_blended
    for scores in score(seed_comments):
        too_high = {label: value for label, value in scores.items() if value >= SEED_LIMIT}
        assert not too_high, f"seed comment scored {too_high} ({stage})"


@pytest.mark.parametrize("stage", ["lexical", "blended"])
@pytest.mark.parametrize(("label", "bad_kind"), [("toxicity", "abuse"), ("spam", "spam")])
def test_every_bad_comment_ranks_above_every_civil_one(
    committed_model: Model, label: str, bad_kind: str, stage: str
) -> None:
    score = committed_model.score if stage == "lexical" else committed_model.score_blended
    rows = [row for row in _hand_written() if row["kind"] in {"civil", bad_kind}]
    scores = [row[label] for row in score([row["text"] for row in rows])]
    is_bad = [row["kind"] == bad_kind for row in rows]
    assert roc_auc_score(is_bad, scores) == 1.0


@pytest.mark.parametrize("stage", ["lexical", "blended"])
def test_civil_comments_about_weapons_and_wars_stay_below_hold(
    committed_model: Model, stage: str
) -> None:
    # The blend is what the second look holds on: meaning must not hold a civil comment that
    # only names a topic such as violence.
    score = committed_model.score if stage == "lexical" else committed_model.score_blended
    civil = [row for row in _hand_written() if row["kind"] == "civil"]
    for row, scores in zip(civil, score([row["text"] for row in civil]), strict=True):
        held = {
            label: value
            for label, value in scores.items()
            if value >= committed_model.thresholds[label]["hold"]
        }
        assert not held, f"{row['id']} would be held: {held} ({stage})"


def _set_auc(metrics: dict[str, Any], source: str, label: str) -> float:
    (entry,) = (e for e in metrics["sets"] if (e["source"], e["label"]) == (source, label))
    return float(entry["roc_auc"])


# The floors the README's quality section states for the committed card, by the words it uses.
TARGETS: dict[str, Callable[[dict[str, Any]], float]] = {
    "YouTube spam leave-one-video-out ROC-AUC": lambda m: m["spam_leave_one_video_out"][
        "mean_roc_auc"
    ],
    "YouTube spam precision at reject": lambda m: m["spam_leave_one_video_out"]["pooled_at_reject"][
        "precision"
    ],
    "kaggle-insults toxicity ROC-AUC": lambda m: _set_auc(
        m, "kaggle-insults-social-commentary", "toxicity"
    ),
    "jigsaw toxicity ROC-AUC": lambda m: _set_auc(m, "jigsaw-toxic-predibase-sample", "toxicity"),
    "C3 toxicity ROC-AUC": lambda m: _set_auc(m, "c3-constructive-comments-corpus", "toxicity"),
    "madlibs mean BPSN": lambda m: m["identity_bias"]["mean_bpsn"]["ours"],
    "madlibs lowest subgroup, BPSN or BNSP AUC": lambda m: m["identity_bias"]["lowest"]["ours"][
        "value"
    ],
    "evidence character F1": lambda m: m["evidence"]["char_f1"],
}


def test_the_card_meets_every_target_the_readme_states(committed_model: Model) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = " ".join(readme.split("Targets held by")[1].split("\n\n")[0].split())
    listed = paragraph.split(": ", 1)[1].removesuffix(".").split("; ")
    stated = {name: floor for name, _, floor in (item.rpartition(" ≥ ") for item in listed)}
    assert set(stated) == set(TARGETS), "the README's target list and this test name the same"
    metrics = committed_model.card["metrics"]
    missed = {
        name: (TARGETS[name](metrics), float(floor))
        for name, floor in stated.items()
        if TARGETS[name](metrics) < float(floor)
    }
    assert not missed, f"the committed card misses the README's targets: {missed}"


def make_recipe(target: str) -> list[str]:
    """The command line of a one-line Makefile target, split as the shell would."""
    lines = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    at = next(number for number, line in enumerate(lines) if line.startswith(f"{target}:"))
    return shlex.split(lines[at + 1])


def test_make_train_trains_with_the_options_the_committed_card_records(
    committed_model: Model,
) -> None:
    command = make_recipe("train")
    args = parse_cli(*command[command.index("train") :])
    card = committed_model.card
    training = card["training"]
    augmentation = training["augmentation"]
    assert args.identity_swaps == augmentation["identity_swaps"]
    assert args.identity_reweigh == ("identity_reweigh" in augmentation)
    assert args.limit_per_source == training["limit_per_source"]
    assert [dataclasses.asdict(factor) for factor in args.weight] == training["weight_factors"]
    assert args.feedback is None
    assert all(entry["source"] != FEEDBACK_SOURCE for entry in card["inputs"])
    assert not args.no_semantic
    assert args.semantic_rows_per_source == card["semantic"]["rows_per_source"]
