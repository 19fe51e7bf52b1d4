"""A verdict worker's scoring with site models (``score_by_site``): each text gets its own site's
model whatever else its batch holds, the same scores alone as in any batch, and the version of
the site model that made them."""

from pathlib import Path

import numpy as np
import pytest

from classifier.model import Model
from classifier.site_model import LEXICAL, SCORES, Head, LabelModel
from service.scorer import SiteRef
from service.site_model_reader import score_by_site

TEXTS = (
    "You are an idiot and everyone here knows it.",
    "The council should publish the figures before the vote on the budget.",
    "Buy cheap watches at my site, best prices, click now!!!",
    "I disagree with the author, but the piece is well argued.",
    "Shut up, nobody asked for your stupid opinion.",
    "Thanks for the reporting on the flood defences.",
)
NEWS: SiteRef = ("news", 3)
BLOG: SiteRef = ("blog", 1)


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> Model:
    return Model.load(tiny_model_path)


def site_models(model: Model, seed: int) -> dict[str, LabelModel]:
    """A toxicity site model with random heads on the lexical features and the global scores."""
    width = model.predict_with_features(["width"])[1][LEXICAL].shape[1]
    random = np.random.default_rng(seed)
    columns = np.sort(random.choice(width, 2_000, replace=False)).astype(np.int32)
    lexical = Head(
        LEXICAL, columns, random.normal(size=columns.size).astype(np.float32), 0.1, width, 1.5, -0.2
    )
    labels = len(model.labels)
    scores = Head(
        SCORES,
        np.arange(labels, dtype=np.int32),
        random.normal(size=labels).astype(np.float32),
        0.0,
        labels,
        1.0,
        0.0,
    )
    return {"toxicity": LabelModel("toxicity", 0.5, ((lexical, 0.6), (scores, 0.4)))}


def as_matrix(model: Model, scored: list[tuple[dict[str, float], int]]) -> np.ndarray:
    return np.array([[scores[label] for label in model.labels] for scores, _ in scored])


def test_a_batch_of_one_site_scores_as_the_model_adapts_it(model: Model) -> None:
    found = {NEWS: site_models(model, 1)}

    scored = score_by_site(model, TEXTS, [NEWS] * len(TEXTS), found)

    assert [version for _, version in scored] == [3] * len(TEXTS)
    adapted = model.score_adapted(TEXTS, found[NEWS])
    np.testing.assert_allclose(
        as_matrix(model, scored), [[row[label] for label in model.labels] for row in adapted]
    )
    # The site model does change its label, and only that one.
    toxicity = model.labels.index("toxicity")
    global_matrix = model.predict_matrix(TEXTS)
    assert not np.allclose(as_matrix(model, scored)[:, toxicity], global_matrix[:, toxicity])
    np.testing.assert_array_equal(
        np.delete(as_matrix(model, scored), toxicity, axis=1),
        np.delete(global_matrix, toxicity, axis=1),
    )


def test_each_text_of_a_mixed_batch_scores_as_it_does_alone(model: Model) -> None:
    found: dict[SiteRef, dict[str, LabelModel] | None] = {
        NEWS: site_models(model, 1),
        BLOG: site_models(model, 2),
    }
    sites: list[SiteRef | None] = [NEWS, None, BLOG, NEWS, BLOG, None]

    scored = score_by_site(model, TEXTS, sites, found)

    assert [version for _, version in scored] == [3, 0, 1, 3, 1, 0]
    alone = [
        score_by_site(model, [text], [site], found)[0]
        for text, site in zip(TEXTS, sites, strict=True)
    ]
    assert [version for _, version in alone] == [3, 0, 1, 3, 1, 0]
    np.testing.assert_allclose(as_matrix(model, scored), as_matrix(model, alone), rtol=1e-12)
    # A text without a site model scores as the global model scores it.
    for row, (scores, _) in enumerate(scored):
        if sites[row] is None:
            assert scores == model.score([TEXTS[row]])[0]


def test_without_a_site_model_found_every_text_is_the_global_models(model: Model) -> None:
    scored = score_by_site(model, TEXTS, [NEWS] * len(TEXTS), {NEWS: None})

    assert [version for _, version in scored] == [0] * len(TEXTS)
    assert [scores for scores, _ in scored] == model.score(TEXTS)
