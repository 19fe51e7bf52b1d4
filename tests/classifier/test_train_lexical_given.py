"""Training with a lexical pipeline given: a semantic stage fitted on a model trained before,
whose pipeline is used as it is, not fitted again."""

import json
from pathlib import Path

import joblib
import pytest

from classifier.model import Model
from classifier.train import TrainingError, TrainOptions, train

from .test_semantic import TEXTS


def test_the_model_given_its_lexical_pipeline_scores_and_thresholds_as_the_one_it_came_from(
    tiny_model: Model, tiny_semantic_model: Model
) -> None:
    # The small semantic model's pipeline is the small model's (``tests/conftest.py``).
    assert tiny_semantic_model.semantic is not None
    assert tiny_semantic_model.score(TEXTS) == tiny_model.score(TEXTS)
    assert tiny_semantic_model.thresholds == tiny_model.thresholds
    assert tiny_semantic_model.card["training"]["rows"] == tiny_model.card["training"]["rows"]
    # Its card does not pass off the few seconds it took as the time to train the model.
    assert tiny_semantic_model.card["training"]["lexical_pipeline"] == "given"
    assert tiny_semantic_model.card["training"]["seconds"] is None
    assert tiny_model.card["training"]["lexical_pipeline"] == "fitted"
    assert tiny_model.card["training"]["seconds"] > 0


def test_a_lexical_pipeline_fitted_on_other_rows_is_refused_before_anything_is_written(
    datasets_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    rows = json.loads(tiny_model_path.with_suffix(".json").read_text())["training"]["rows"]
    options = TrainOptions(version="0.0.0-other", limit_per_source=300, n_jobs=1, semantic=False)
    with pytest.raises(TrainingError) as refused:
        train(datasets_dir, tmp_path / "models", options, lexical=joblib.load(tiny_model_path))
    assert str(refused.value).startswith(
        f"the lexical pipeline given was fitted on {rows} rows, not on these "
    )
    assert not (tmp_path / "models").exists()
