"""The trained model as the service sees it: load one artifact safely, score texts, explain one.

An artifact ``<name>-<version>.joblib`` is only loaded beside its card ``<name>-<version>.json``,
when its sha256 matches the card and the running scikit-learn is the one that trained it (a
pickled pipeline from another version may load and still compute something else). The file
``ACTIVE`` in a models folder names the artifact stem in use.

A card with a ``semantic`` entry also names the semantic stage's artifact
``<name>-<version>.semantic.joblib`` (see ``classifier.semantic``), checked the same way. A model
without one, or loaded with ``semantic=False``, is the lexical model alone: ``score`` is always
lexical (the verdict at intake), ``score_blended`` adds the semantic stage where there is one.
"""

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.pipeline import Pipeline

# What reads a models folder without loading a model lives apart; importers of this module
# find it here too.
from classifier.artifacts import ACTIVE_FILE as ACTIVE_FILE
from classifier.artifacts import ModelError as ModelError
from classifier.artifacts import NoActiveModelError as NoActiveModelError
from classifier.artifacts import active_artifact as active_artifact
from classifier.artifacts import active_stem as active_stem
from classifier.artifacts import artifact_for
from classifier.card import card_path, file_sha256, read_card
from classifier.encoder import EncoderError
from classifier.evidence import ExplainablePipeline, Span, evidence_spans_many
from classifier.fast_features import CompiledParts
from classifier.semantic import SemanticArtifactError, SemanticStage, semantic_artifact_path
from classifier.site_model import (
    EMBEDDING,
    LEXICAL,
    SCORES,
    Features,
    LabelModel,
    adapt_matrix,
    score_features,
)


class ArtifactMissingError(ModelError):
    """The artifact file does not exist."""


class CardMissingError(ModelError):
    """The artifact has no model card beside it."""


class InvalidCardError(ModelError):
    """The model card cannot be read or lacks a required field."""


class ChecksumMismatchError(ModelError):
    """The artifact's sha256 differs from the one its card records."""


class LibraryVersionError(ModelError):
    """The artifact was trained with another scikit-learn version than the one running."""


def _card_field(card: dict[str, Any], *keys: str) -> Any:
    value: Any = card
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise InvalidCardError(f"model card has no {'.'.join(keys)!r}")
        value = value[key]
    return value


class Model:
    """A loaded, verified model: calibrated probabilities per label and evidence spans."""

    def __init__(
        self,
        pipeline: Pipeline,
        card: dict[str, Any],
        artifact: Path,
        semantic: SemanticStage | None = None,
    ) -> None:
        self.artifact = artifact
        self.semantic = semantic
        self.card = card
        self.name: str = str(_card_field(card, "name"))
        self.version: str = str(_card_field(card, "version"))
        try:
            self.labels: tuple[str, ...] = tuple(map(str, _card_field(card, "labels")))
            self.thresholds: dict[str, dict[str, float]] = {
                str(label): {str(kind): float(value) for kind, value in levels.items()}
                for label, levels in dict(_card_field(card, "thresholds")).items()
            }
        except (TypeError, ValueError, AttributeError) as error:
            raise InvalidCardError(
                f"model card labels or thresholds are malformed: {error}"
            ) from None
        self._parts = CompiledParts(pipeline)
        self._explainable = ExplainablePipeline(self._parts)
        if self._explainable.labels != self.labels:
            raise InvalidCardError(
                f"card labels {self.labels} differ from the artifact's {self._explainable.labels}"
            )

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def checksum(self) -> str | None:
        """The artifact's sha256 its card records: two models may share a version (another
        name, a version trained again with ``--force``) and still compute other features."""
        return artifact_checksum(self.card)

    @classmethod
    def load(cls, artifact: Path, semantic: bool = True, semantic_threads: int = 1) -> "Model":
        """Load ``artifact`` after checking its card, checksum and scikit-learn version; with
        ``semantic``, also the semantic stage the card names (its encoder loads on first use,
        with ``semantic_threads`` threads)."""
        if not artifact.is_file():
            raise ArtifactMissingError(f"model artifact {artifact} does not exist")
        card_file = card_path(artifact)
        if not card_file.is_file():
            raise CardMissingError(
                f"model card {card_file.name} is missing beside {artifact.name}; "
                "refusing to load an artifact of unknown origin"
            )
        try:
            card = read_card(card_file)
        except (OSError, ValueError) as error:
            raise InvalidCardError(f"model card {card_file} cannot be read: {error}") from error
        expected = str(_card_field(card, "artifact", "sha256"))
        actual = file_sha256(artifact)
        if actual != expected:
            raise ChecksumMismatchError(
                f"{artifact.name} has sha256 {actual} but its card records {expected}; "
                "the file was changed or replaced after training"
            )
        trained_with = str(_card_field(card, "versions", "scikit-learn"))
        if trained_with != sklearn.__version__:
            raise LibraryVersionError(
                f"{artifact.name} was trained with scikit-learn {trained_with} but "
                f"{sklearn.__version__} is installed; install {trained_with} or retrain"
            )
        pipeline = joblib.load(artifact)
        if not isinstance(pipeline, Pipeline):
            raise InvalidCardError(f"{artifact.name} does not hold a scikit-learn Pipeline")
        stage = _load_semantic(artifact, card, semantic_threads) if semantic else None
        model = cls(pipeline, card, artifact, stage)
        if stage is not None and stage.labels != model.labels:
            raise InvalidCardError(
                f"semantic stage labels {stage.labels} differ from the model's {model.labels}"
            )
        return model

    def predict_matrix(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Probabilities as a (texts x labels) array, columns in ``labels`` order."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self._parts.predict_proba(list(texts))

    def predict_with_features(
        self, texts: Sequence[str], *, embeddings: bool = False
    ) -> tuple[npt.NDArray[np.float64], dict[str, Features]]:
        """``predict_matrix`` and the features it was computed from, by kind (``lexical``: the
        word, character and signal columns; ``scores``: every label's logit), for the site models
        that reuse them. With ``embeddings`` and a semantic stage, the texts' sentence embeddings
        too (``embedding``)."""
        lexical = self._parts.features(list(texts))
        matrix = self._parts.heads.predict_proba(lexical)
        features: dict[str, Features] = {LEXICAL: lexical, SCORES: score_features(matrix)}
        if embeddings and self.semantic is not None:
            features[EMBEDDING] = np.asarray(self.semantic.embed(texts), dtype=np.float64)
        return matrix, features

    def predict_lexical_features(self, lexical: Features) -> npt.NDArray[np.float64]:
        """``predict_matrix`` from the ``lexical`` features ``predict_with_features`` returned
        (a refit rebuilds the ``scores`` kind from the features a row keeps)."""
        return self._parts.heads.predict_proba(lexical)

    def blend_features(
        self, lexical: npt.NDArray[np.float64], features: Mapping[str, Features]
    ) -> npt.NDArray[np.float64]:
        """``predict_blended`` from what ``predict_with_features`` returned with embeddings: the
        lexical matrix when there is no stage."""
        if self.semantic is None or EMBEDDING not in features:
            return lexical.copy()
        return self.semantic.blend_vectors(np.asarray(features[EMBEDDING]), lexical)

    def score_adapted(
        self, texts: Sequence[str], site: Mapping[str, LabelModel]
    ) -> list[dict[str, float]]:
        """``score`` with the site's adapted labels in place of the global ones."""
        if not texts:
            return []
        matrix, features = self.predict_with_features(texts)
        matrix = adapt_matrix(matrix, self.labels, site, features)
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in matrix]

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One dict of calibrated probabilities per text, keyed by label."""
        matrix = self.predict_matrix(texts)
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in matrix]

    def predict_blended(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """``predict_matrix`` blended with the semantic stage (the lexical matrix without one)."""
        lexical = self.predict_matrix(texts)
        if self.semantic is None:
            return lexical
        return self.semantic.blend(texts, lexical)

    def score_blended(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """``score`` with the semantic stage blended in; equal to ``score`` without a stage."""
        matrix = self.predict_blended(texts)
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in matrix]

    def explain(
        self, text: str, labels: Sequence[str] | None = None, max_spans: int = 5
    ) -> dict[str, list[Span]]:
        """Character spans [start, end) of ``text`` that raised each label's score most."""
        return self.explain_many([text], labels, max_spans)[0]

    def explain_many(
        self, texts: Sequence[str], labels: Sequence[str] | None = None, max_spans: int = 5
    ) -> list[dict[str, list[Span]]]:
        """``explain`` for each text of a batch, worked out for all its texts at once."""
        wanted = tuple(self.labels if labels is None else labels)
        unknown = [label for label in wanted if label not in self.labels]
        if unknown:
            raise ValueError(f"unknown labels {unknown}; this model has {list(self.labels)}")
        return evidence_spans_many(self._explainable, texts, wanted, max_spans)


def _load_semantic(artifact: Path, card: dict[str, Any], threads: int) -> SemanticStage | None:
    """The semantic stage the card names, verified; ``None`` for a card without one."""
    if "semantic" not in card:
        return None
    path = semantic_artifact_path(artifact)
    if not path.is_file():
        raise ArtifactMissingError(f"semantic stage {path} named by the card does not exist")
    expected = str(_card_field(card, "semantic", "artifact", "sha256"))
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{path.name} has sha256 {actual} but its card records {expected}; "
            "the file was changed or replaced after training"
        )
    try:
        return SemanticStage.read(path, threads=threads)
    except (SemanticArtifactError, EncoderError) as error:
        raise InvalidCardError(f"semantic stage cannot be used: {error}") from None


def artifact_checksum(card: Mapping[str, Any]) -> str | None:
    """The artifact sha256 a model card records, if it records one."""
    artifact = card.get("artifact")
    checksum = artifact.get("sha256") if isinstance(artifact, Mapping) else None
    return str(checksum) if checksum else None


def load_active(
    models_dir: Path, semantic: bool = True, semantic_threads: int = 1, stem: str | None = None
) -> Model:
    """Load the model that ``models_dir / "ACTIVE"`` names, or model ``stem`` of ``models_dir``
    (``Model.load``'s options)."""
    artifact = active_artifact(models_dir, stem)
    return Model.load(artifact, semantic=semantic, semantic_threads=semantic_threads)


def activate(models_dir: Path, stem: str) -> None:
    """Mark ``stem`` active after checking that it loads; the switch itself is atomic."""
    Model.load(artifact_for(models_dir, stem))
    # A temporary file of this writer's own, in the same folder (so the rename is atomic): two
    # activations at once each put a whole marker in place, and the last one stays.
    partial = models_dir / f"{ACTIVE_FILE}.{secrets.token_hex(8)}.partial"
    try:
        partial.write_text(stem + "\n", encoding="utf-8")
        partial.replace(models_dir / ACTIVE_FILE)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
