"""Site heads on the global model's features, fitted on real news comments."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import sparse

from classifier.datasets import load_source
from classifier.model import Model, load_active
from classifier.site_model import (
    EMBEDDING,
    LEXICAL,
    SCORES,
    FitSettings,
    fit_label,
    score_features,
)
from classifier.site_model_codec import decode, encode

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
    assert outcome.card()["features"] == LEXICAL
    assert outcome.gain_lower_bound is not None
    assert outcome.gain_lower_bound > 0
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


def test_a_gain_within_its_noise_does_not_switch_the_site_model_on(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, _, probability, features = site
    # Labels no text explains: what the best blend adds out of fold is chance, here more than
    # the minimum gain.
    targets = (np.random.default_rng(5).random(ROWS) < 0.3).astype(np.int8)
    outcome = fit_label("toxicity", targets, probability, {LEXICAL: features}, SETTINGS)
    assert outcome.auc_global is not None
    assert outcome.candidates[LEXICAL] - outcome.auc_global > SETTINGS.switch_on_gain
    # Within a standard error of that best blend is one with more global weight, which adds
    # less: it is the one taken, and it stays off.
    assert outcome.auc_adapted is not None
    assert outcome.auc_adapted < outcome.candidates[LEXICAL]
    assert not outcome.used
    assert outcome.model is None
    # With no caution the best blend out of fold is the one taken.
    bold = fit_label(
        "toxicity",
        targets,
        probability,
        {LEXICAL: features},
        dataclasses.replace(SETTINGS, caution=0.0),
    )
    assert bold.auc_adapted == max(outcome.candidates.values())
    assert bold.weights[LEXICAL] > outcome.weights[LEXICAL]
    # Without a minimum gain, the bootstrap alone keeps it off.
    lenient = FitSettings(min_labels=100, min_positives=10, switch_on_gain=-1.0)
    noisy = fit_label("toxicity", targets, probability, {LEXICAL: features}, lenient)
    assert noisy.gain_lower_bound is not None
    assert noisy.gain_lower_bound <= 0
    assert not noisy.used
    assert "within its noise (bootstrap lower bound -" in noisy.why


def test_a_head_that_learnt_nothing_does_not_beat_a_global_model_that_ranks_backwards(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, _, probability, features = site
    # Chance labels the global model happens to rank below 0.5 and the head cannot rank at all.
    targets = (np.random.default_rng(1).random(ROWS) < 0.3).astype(np.int8)
    lenient = FitSettings(min_labels=100, min_positives=10, switch_on_gain=-1.0)
    outcome = fit_label("toxicity", targets, probability, {LEXICAL: features}, lenient)
    assert outcome.auc_global is not None
    assert outcome.auc_global < 0.5
    assert not outcome.used
    assert outcome.why == "out of fold no site head ranks the labels better than chance"


def test_the_kind_that_ranks_the_site_labels_better_is_chosen_and_recorded(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, targets, probability, features = site
    generator = np.random.default_rng(3)
    # An embedding-like kind: dense columns of noise, and one that carries the site's labels.
    noise = generator.normal(size=(ROWS, 16))
    telling = noise.copy()
    telling[:, 0] = targets + generator.normal(scale=0.2, size=ROWS)
    chosen = fit_label(
        "toxicity", targets, probability, {LEXICAL: features, EMBEDDING: telling}, SETTINGS
    )
    assert chosen.used
    assert chosen.model is not None
    assert EMBEDDING in chosen.model.kinds
    assert chosen.features is not None
    assert EMBEDDING in chosen.features.split("+")
    assert set(chosen.candidates) == {LEXICAL, EMBEDDING, f"{EMBEDDING}+{LEXICAL}"}
    assert chosen.auc_adapted is not None
    assert chosen.auc_adapted <= chosen.candidates[chosen.features]
    card = chosen.card()
    assert card["features"] == chosen.features
    # Each head alone, out of fold: the telling column ranks the labels better than the words.
    assert set(card["heads"]) == {LEXICAL, EMBEDDING}
    assert card["heads"][EMBEDDING] > card["heads"][LEXICAL]
    assert card["weights"][EMBEDDING] > 0
    restored = decode(encode({"toxicity": chosen.model}))["toxicity"]
    kinds = {LEXICAL: features, EMBEDDING: telling}
    np.testing.assert_allclose(
        restored.adapt(probability, kinds), chosen.model.adapt(probability, kinds), rtol=1e-5
    )

    ignored = fit_label(
        "toxicity", targets, probability, {LEXICAL: features, EMBEDDING: noise}, SETTINGS
    )
    assert ignored.used
    assert ignored.model is not None
    assert ignored.features == LEXICAL
    assert ignored.model.kinds == {LEXICAL}
    assert ignored.weights.get(EMBEDDING, 0.0) == 0.0


def test_a_site_that_weighs_the_global_labels_otherwise_is_learnt_from_their_scores(
    model: Model,
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    texts, _, probability, _ = site
    matrix, features = model.predict_with_features(texts)
    np.testing.assert_allclose(features[SCORES], score_features(matrix))
    assert features[SCORES].shape == (ROWS, len(model.labels))
    # The site rejects what the global model takes for an identity attack, toxic or not.
    attack = matrix[:, model.labels.index("identity_attack")]
    targets = (attack >= np.quantile(attack, 0.8)).astype(np.int8)
    outcome = fit_label("toxicity", targets, probability, features, SETTINGS)
    assert outcome.used
    assert outcome.model is not None
    assert outcome.features is not None
    assert SCORES in outcome.features.split("+")
    assert set(outcome.heads) == {LEXICAL, SCORES}
    assert outcome.heads[SCORES] > outcome.heads[LEXICAL]
    assert outcome.heads[SCORES] > 0.95
    assert outcome.auc_adapted is not None
    assert outcome.auc_global is not None
    assert outcome.auc_adapted > outcome.auc_global + 0.1
    # The head keeps a weight of each label's logit, and is stored and read back as it was.
    (head,) = [head for head, _ in outcome.model.heads if head.kind == SCORES]
    assert head.width == len(model.labels)
    restored = decode(encode({"toxicity": outcome.model}))["toxicity"]
    adapted = outcome.model.adapt(probability, features)
    np.testing.assert_allclose(restored.adapt(probability, features), adapted, rtol=1e-6)
    # Scoring a text with the site model computes the kind as the fit read it.
    scored = model.score_adapted(texts[:5], {"toxicity": restored})
    assert [s["toxicity"] for s in scored] == pytest.approx(list(adapted[:5]), rel=1e-6)


def test_a_dense_kind_takes_the_regularisation_that_ranks_the_site_labels_best(
    site: tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float64], sparse.csr_matrix],
) -> None:
    _, targets, probability, _ = site
    generator = np.random.default_rng(4)
    # One telling column among many of noise: strong regularisation keeps the noise out.
    dense = generator.normal(size=(ROWS, 200))
    dense[:, 0] = targets + generator.normal(scale=1.0, size=ROWS)
    kinds = {EMBEDDING: dense}
    heads = {
        cs: fit_label(
            "toxicity",
            targets,
            probability,
            kinds,
            FitSettings(min_labels=100, min_positives=10, dense_cs=cs),
        ).heads[EMBEDDING]
        for cs in ((0.01,), (10.0,), (10.0, 0.01))
    }
    assert heads[(0.01,)] > heads[(10.0,)]
    assert heads[(10.0, 0.01)] == heads[(0.01,)]


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
