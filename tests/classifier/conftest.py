"""Fixtures for classifier tests: a real model trained in seconds on small slices of the data."""

from pathlib import Path

import pytest

from classifier.model import Model
from classifier.train import TrainOptions, train

# Enough rows per source for every label to have positives, few enough to train in seconds.
TINY_ROWS_PER_SOURCE = 400


@pytest.fixture(scope="session")
def tiny_model_path(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact of a small real model, saved with its card (and ACTIVE) in a temporary folder."""
    models_dir = tmp_path_factory.mktemp("tiny-models")
    options = TrainOptions(version="0.0.0-test", limit_per_source=TINY_ROWS_PER_SOURCE, n_jobs=1)
    return train(datasets_dir, models_dir, options)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> Model:
    """The small model, loaded once (scoring never changes it)."""
    return Model.load(tiny_model_path)
