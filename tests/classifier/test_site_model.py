"""Site heads on the global model's features, fitted on real news comments."""

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import sparse

from classifier.datasets import load_source
from classifier.model import Model, load_active
from classifier.site_model import LEXICAL, FitSettings, decode, encode, fit_label

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROWS = 300
SETTINGS = FitSettings(min_labels=100, min_positives=10)


@pytest.fixture(scope="module")
def model() -> Model:
    return load_active(Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models")))


@pytest.fixture(scope="module")
def site(
    model: Model, datasets_dir: Path
) -> tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix]:
    """Globe and Mail comments whose site rejects every mention of one politician."""
    records = load_source(datasets_dir, "c3-constructive-comments-corpus").splits["all"][:ROWS]
    texts = [record.text for record in records]
    targets = np.array(["Harper" in text for text in texts], dtype=np.int8)
    matrix, features = model.predict_with_features(texts)
    return texts, targets, matrix[:, model.labels.index("toxicity")], features[LEXICAL]


def test_a_head_that_ranks_better_goes_into_use_and_survives_its_encoding(
    model: Model,
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    texts, targets, probability, features = site
    outcome = fit_label("toxicity", targets, probability, {LEXICAL: features}, SETTINGS)
    assert outcome.used
    assert outcome.model is not None
    assert outcome.auc_adapted is not None
    assert outcome.auc_global is not None
    assert outcome.auc_adapted > outcome.auc_global + 0.1
    assert outcome.card()["labels"] == ROWS
    adapted = outcome.model.adapt(probability, {LEXICAL: features})
    assert adapted[targets == 1].mean() > probability[targets == 1].mean()
    restored = decode(encode({"toxicity": outcome.model}))["toxicity"]
    again = restored.adapt(probability, {LEXICAL: features})
    np.testing.assert_allclose(again, adapted, rtol=1e-6)
    scored = model.score_adapted(texts[:5], {"toxicity": restored})
    assert [s["toxicity"] for s in scored] == pytest.approx(list(adapted[:5]), rel=1e-6)
    assert [s["spam"] for s in scored] == [s["spam"] for s in model.score(texts[:5])]


def test_a_head_in_use_stays_with_a_smaller_gain_than_switching_on_needs(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, targets, probability, features = site
    demanding = FitSettings(min_labels=100, min_positives=10, switch_on_gain=0.99)
    off = fit_label("toxicity", targets, probability, {LEXICAL: features}, demanding)
    assert not off.used
    assert off.why.endswith("needs more than +0.9900")
    kept = fit_label("toxicity", targets, probability, {LEXICAL: features}, demanding, in_use=True)
    assert kept.used


def test_too_few_labels_or_positives_keep_the_global_model(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, targets, probability, features = site
    few = fit_label("toxicity", targets[:50], probability[:50], {LEXICAL: features[:50]}, SETTINGS)
    assert (few.used, few.why) == (False, "50 labels, needs 100")
    none = np.zeros(ROWS, dtype=np.int8)
    none[:3] = 1
    rare = fit_label("toxicity", none, probability, {LEXICAL: features}, SETTINGS)
    assert (rare.used, rare.why) == (
        False,
        "3 positive and 297 negative labels, needs 10 of each",
    )


def test_a_stored_model_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a site model"):
        decode('{"toxicity": {"heads": []}}')
