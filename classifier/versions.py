"""The model versions in a models folder: what is there, and the name a new training run takes."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.card import ARTIFACT_SUFFIX, SEMANTIC_SUFFIX, card_path, read_card
from classifier.model import (
    ACTIVE_FILE,
    ArtifactMissingError,
    ModelError,
    NoActiveModelError,
)

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Stored:
    """One artifact in the folder, with what its card says (``card`` is None when unreadable)."""

    stem: str
    artifact: Path
    card: dict[str, Any] | None
    active: bool


def stored_models(models_dir: Path) -> list[Stored]:
    """Every ``*.joblib`` in ``models_dir``, by name, marking the one ``ACTIVE`` names."""
    try:
        active = (models_dir / ACTIVE_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        active = ""
    found = []
    for artifact in sorted(models_dir.glob(f"*{ARTIFACT_SUFFIX}")):
        if artifact.name.endswith(SEMANTIC_SUFFIX):
            continue  # a model's semantic stage, not a model
        stem = artifact.name.removesuffix(ARTIFACT_SUFFIX)
        try:
            card: dict[str, Any] | None = read_card(card_path(artifact))
        except (OSError, ValueError):
            card = None
        found.append(Stored(stem, artifact, card, stem == active))
    return found


def next_version(models_dir: Path, name: str, first: str) -> str:
    """The version after the highest ``<name>-X.Y.Z`` in ``models_dir`` (its patch number plus
    one), or ``first`` when there is none: a run without a version never replaces a model."""
    releases = []
    for stored in stored_models(models_dir):
        version = stored.stem.removeprefix(f"{name}-")
        if version != stored.stem and (match := _RELEASE.fullmatch(version)):
            releases.append(tuple(int(part) for part in match.groups()))
    if not releases:
        return first
    major, minor, patch = max(releases)
    return f"{major}.{minor}.{patch + 1}"


def model_problem(error: ModelError, models_dir: Path) -> str:
    """The error's message; for a model that is not there, also the ones that are."""
    if not isinstance(error, ArtifactMissingError | NoActiveModelError):
        return str(error)
    stems = [stored.stem for stored in stored_models(models_dir)]
    there = ", ".join(stems) if stems else "none"
    return f"{error} (models in {models_dir}: {there})"
