"""Saved copies of a model under other versions, for tests that switch models."""

import shutil
from pathlib import Path

import joblib

from classifier.card import ARTIFACT_SUFFIX, card_path, file_sha256, read_card, write_card
from classifier.model import active_stem
from classifier.semantic import semantic_artifact_path


def copy_model(source_dir: Path, target_dir: Path, version: str) -> str:
    """The active model of ``source_dir`` saved again as another version; returns its stem."""
    artifact = source_dir / f"{active_stem(source_dir)}{ARTIFACT_SUFFIX}"
    card = read_card(card_path(artifact))
    stem = f"{card['name']}-{version}"
    copy = target_dir / f"{stem}{ARTIFACT_SUFFIX}"
    shutil.copyfile(artifact, copy)
    if "semantic" in card:
        shutil.copyfile(semantic_artifact_path(artifact), semantic_artifact_path(copy))
    write_card(card_path(copy), {**card, "version": version})
    return stem


def train_again(artifact: Path) -> str:
    """``civility train --force`` of the artifact's version: another file of the same name;
    returns its sha256."""
    partial = artifact.with_suffix(".partial")
    joblib.dump(joblib.load(artifact), partial, compress=1)
    partial.replace(artifact)
    card = read_card(card_path(artifact))
    checksum = file_sha256(artifact)
    write_card(card_path(artifact), {**card, "artifact": {**card["artifact"], "sha256": checksum}})
    return checksum
