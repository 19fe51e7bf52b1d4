"""A models folder as files: the artifact each model stem names and the stem ``ACTIVE`` names.

Read without loading a model, and without importing scikit-learn: ``civility serve`` checks that
there is an active model before it becomes the supervisor of API processes that load it.
"""

import re
from pathlib import Path

ACTIVE_FILE = "ACTIVE"
ARTIFACT_SUFFIX = ".joblib"
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ModelError(Exception):
    """A model cannot be loaded or used."""


class NoActiveModelError(ModelError):
    """The models folder names no usable active model."""


def artifact_for(models_dir: Path, stem: str) -> Path:
    """The artifact file of model ``stem`` of ``models_dir``, whether or not it exists."""
    if not _STEM.fullmatch(stem):
        raise NoActiveModelError(f"{stem!r} is not a model name (expected e.g. civility-1.0.0)")
    return models_dir / f"{stem}{ARTIFACT_SUFFIX}"


def active_stem(models_dir: Path) -> str:
    marker = models_dir / ACTIVE_FILE
    try:
        stem = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NoActiveModelError(f"no active model: {marker} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NoActiveModelError(f"no active model: {marker} cannot be read: {error}") from None
    if not stem:
        raise NoActiveModelError(f"no active model: {marker} is empty")
    return stem


def active_artifact(models_dir: Path, stem: str | None = None) -> Path:
    """The artifact file of the model ``models_dir / "ACTIVE"`` names (or of model ``stem``),
    without loading it; ``NoActiveModelError`` when there is none."""
    stem = stem or active_stem(models_dir)
    artifact = artifact_for(models_dir, stem)
    if not artifact.is_file():
        raise NoActiveModelError(f"active model {stem} has no artifact {artifact}")
    return artifact
