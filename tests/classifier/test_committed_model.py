"""The committed default model: the seed article's comments pass, and abuse ranks above civility."""

import json
import os
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from classifier.model import Model, load_active

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HAND_WRITTEN = PROJECT_ROOT / "tests" / "data" / "civil_and_abuse.jsonl"
SEED_LIMIT = 0.2


@pytest.fixture(scope="module")
def committed_model() -> Model:
    return load_active(PROJECT_ROOT / "models")


@pytest.fixture(scope="module")
def seed_comments() -> list[str]:
    default = PROJECT_ROOT.parent / "shared" / "seed"
    seed_dir = Path(os.environ.get("CIVILITY_SEED", default))
    article = seed_dir / "seed-article.json"
    if not article.is_file():
        pytest.skip(f"seed article not found at {article} (set CIVILITY_SEED)")
    return [comment["text"] for comment in json.loads(article.read_text())["comments"]]


def _hand_written() -> list[dict[str, str]]:
    return [json.loads(line) for line in HAND_WRITTEN.read_text().splitlines() if line.strip()]


def test_committed_model_is_verified_and_has_a_card_with_metrics(committed_model: Model) -> None:
    assert {"spam", "toxicity"} <= set(committed_model.labels)
    assert committed_model.card["artifact"]["sha256"]
    assert committed_model.card["inputs"], "the card lists every training file"
    assert committed_model.card["metrics"]["sets"], "the card carries the evaluation report"


def test_seed_comments_score_low_on_every_label(
    committed_model: Model, seed_comments: list[str]
) -> None:
    for scores in committed_model.score(seed_comments):
        too_high = {label: value for label, value in scores.items() if value >= SEED_LIMIT}
        assert not too_high, f"seed comment scored {too_high}"


@pytest.mark.parametrize(("label", "bad_kind"), [("toxicity", "abuse"), ("spam", "spam")])
def test_every_bad_comment_ranks_above_every_civil_one(
    committed_model: Model, label: str, bad_kind: str
) -> None:
    rows = [row for row in _hand_written() if row["kind"] in {"civil", bad_kind}]
    scores = [row[label] for row in committed_model.score([row["text"] for row in rows])]
    is_bad = [row["kind"] == bad_kind for row in rows]
    assert roc_auc_score(is_bad, scores) == 1.0


def test_civil_comments_about_weapons_and_wars_stay_below_hold(committed_model: Model) -> None:
    civil = [row for row in _hand_written() if row["kind"] == "civil"]
    for row, scores in zip(
        civil, committed_model.score([row["text"] for row in civil]), strict=True
    ):
        held = {
            label: value
            for label, value in scores.items()
            if value >= committed_model.thresholds[label]["hold"]
        }
        assert not held, f"{row['id']} would be held: {held}"
