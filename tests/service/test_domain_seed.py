"""The default policy with the active model's own scores and thresholds, on the seed article.

Skipped while no model is active in the models folder (``CIVILITY_MODELS_DIR`` or ``models/``).
"""

import os
from pathlib import Path
from typing import Any

import pytest

from classifier.model import Model, ModelError, load_active
from service.domain import Policy, State
from service.policy import PolicyContext, decide
from tests.seed import seed_article

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model() -> Model:
    models_dir = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
    try:
        return load_active(models_dir)
    except ModelError as error:
        pytest.skip(f"no usable active model in {models_dir}: {error}")


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return seed_article()


def test_the_default_policy_publishes_both_seed_comments(
    model: Model, seed: dict[str, Any]
) -> None:
    texts = [comment["text"] for comment in seed["comments"]]
    for text, scores in zip(texts, model.score(texts), strict=True):
        verdict = decide(scores, PolicyContext(text=text), Policy(), model.thresholds)
        assert (verdict.state, verdict.reasons) == (State.APPROVED, ()), scores


@pytest.mark.parametrize(
    ("text", "stopped"),
    [
        (
            "BUY CHEAP VIAGRA NOW!!! Best pills online, 90% off, click http://cheap-pills.example "
            "and http://pills-deal.example today, limited offer, free shipping!!!",
            {State.SPAM, State.PENDING},
        ),
        (
            "You are a worthless idiot and a disgusting piece of garbage, shut up you moron.",
            {State.REJECTED, State.PENDING},
        ),
    ],
)
def test_the_default_policy_stops_obvious_spam_and_abuse(
    model: Model, text: str, stopped: set[State]
) -> None:
    [scores] = model.score([text])
    verdict = decide(scores, PolicyContext(text=text), Policy(), model.thresholds)
    assert verdict.state in stopped, scores
