"""Fixtures for classifier tests: a real model trained in seconds on small slices of the data."""

from pathlib import Path

import pytest

from classifier.encoder import Encoder
from classifier.model import Model
from classifier.train import TrainOptions, train

# Enough rows per source for every label to have positives, few enough to train in seconds.
TINY_ROWS_PER_SOURCE = 400
# Rows per source the tiny semantic stage embeds: a few hundred texts in all, a few seconds.
TINY_SEMANTIC_ROWS_PER_SOURCE = 60


@pytest.fixture(scope="session")
def tiny_model_path(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact of a small real model, saved with its card (and ACTIVE) in a temporary folder."""
    models_dir = tmp_path_factory.mktemp("tiny-models")
    options = TrainOptions(
        version="0.0.0-test", limit_per_source=TINY_ROWS_PER_SOURCE, n_jobs=1, semantic=False
    )
    return train(datasets_dir, models_dir, options)


@pytest.fixture(scope="session")
def tiny_semantic_model_path(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact of a small real model with a semantic stage (``<stem>.semantic.joblib``), saved
    with its card (and ACTIVE) in a temporary folder."""
    models_dir = tmp_path_factory.mktemp("tiny-semantic-models")
    options = TrainOptions(
        version="0.0.0-semantic-test",
        limit_per_source=TINY_ROWS_PER_SOURCE,
        n_jobs=1,
        semantic_rows_per_source=TINY_SEMANTIC_ROWS_PER_SOURCE,
        embedding_cache=tmp_path_factory.mktemp("embeddings"),
    )
    return train(datasets_dir, models_dir, options)


@pytest.fixture(scope="session")
def tiny_semantic_model(tiny_semantic_model_path: Path) -> Model:
    """The small model with its semantic stage, loaded once."""
    return Model.load(tiny_semantic_model_path)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The installed sentence encoder, loaded once."""
    return Encoder()


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> Model:
    """The small model, loaded once (scoring never changes it)."""
    return Model.load(tiny_model_path)
