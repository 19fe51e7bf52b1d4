"""The model card: a JSON file beside each artifact saying what it is and how it was made."""

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import joblib
import numpy
import scipy
import sklearn

from classifier.artifacts import ARTIFACT_SUFFIX as ARTIFACT_SUFFIX

CARD_SUFFIX = ".json"
# The semantic stage's artifact beside a model's: ``<name>-<version>.semantic.joblib``.
SEMANTIC_SUFFIX = ".semantic.joblib"


def library_versions() -> dict[str, str]:
    """Versions whose change could alter what a pickled pipeline computes."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path(artifact: Path) -> Path:
    return artifact.with_suffix(CARD_SUFFIX)


def read_card(path: Path) -> dict[str, Any]:
    """The card at ``path``; ``ValueError`` when it is no JSON object."""
    card = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(card, dict):
        raise ValueError(f"a model card is a JSON object, not {type(card).__name__}")
    return card


def write_card(path: Path, card: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a card."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    partial.replace(path)
