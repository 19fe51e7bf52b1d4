"""Fixtures for classifier tests: the small real models of ``tests/conftest.py``, loaded once, and
the sentence encoder."""

from pathlib import Path

import pytest

from classifier.encoder import Encoder
from classifier.model import Model


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
