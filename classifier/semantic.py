"""The semantic stage: logistic heads on sentence embeddings, blended per label with the lexical
scores.

The n-gram model sees words; the encoder's embeddings see what a sentence means (implicit hate,
generalisations, "go back where you came from"). Each label has a logistic head on the 384-d
embeddings, calibrated like the lexical heads (Platt scaling on out-of-fold scores, moved to the
label's real-world rate), and a blend weight ``w`` chosen on validation rows:

    blended logit = (1 - w) * lexical logit + w * semantic logit

``w = 0`` (a label where meaning does not help, such as spam) returns the lexical probability
unchanged and costs nothing: when every weight is 0 no text is embedded at all.

The stage is its own artifact (``<stem>.semantic.joblib``) holding plain arrays, never pickled
estimators; ``classifier.model.Model.load`` checks it against the card.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from classifier.card import ARTIFACT_SUFFIX, SEMANTIC_SUFFIX
from classifier.encoder import DIMENSION, Encoder, EncoderFiles, FloatMatrix

ARTIFACT_FORMAT = 1
# Probabilities are clipped this far from 0 and 1 before their logit is taken.
EPSILON = 1e-7

ProbabilityMatrix = npt.NDArray[np.float64]


class SemanticArtifactError(Exception):
    """A semantic stage artifact cannot be read."""


def semantic_artifact_path(artifact: Path) -> Path:
    """``models/civility-1.7.0.joblib`` → ``models/civility-1.7.0.semantic.joblib``."""
    return artifact.with_name(artifact.name.removesuffix(ARTIFACT_SUFFIX) + SEMANTIC_SUFFIX)


def logit(probabilities: ProbabilityMatrix) -> ProbabilityMatrix:
    clipped = np.clip(probabilities, EPSILON, 1.0 - EPSILON)
    result: ProbabilityMatrix = np.log(clipped) - np.log1p(-clipped)
    return result


def sigmoid(values: ProbabilityMatrix) -> ProbabilityMatrix:
    result: ProbabilityMatrix = 0.5 * (1.0 + np.tanh(0.5 * values))
    return result


class SemanticStage:
    """The encoder, one calibrated logistic head per label, and each label's blend weight."""

    def __init__(
        self,
        labels: Sequence[str],
        coef: npt.NDArray[np.float64],
        intercept: npt.NDArray[np.float64],
        platt: npt.NDArray[np.float64],
        weights: Mapping[str, float],
        encoder: Encoder,
    ) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        count = len(self.labels)
        if coef.shape != (count, DIMENSION) or intercept.shape != (count,):
            raise SemanticArtifactError(
                f"heads have shape {coef.shape} and {intercept.shape}, "
                f"expected ({count}, {DIMENSION}) and ({count},)"
            )
        if platt.shape != (count, 2):
            raise SemanticArtifactError(
                f"calibration has shape {platt.shape}, expected ({count}, 2)"
            )
        if set(weights) != set(self.labels) or not all(0.0 <= w < 1.0 for w in weights.values()):
            raise SemanticArtifactError(
                f"blend weights {dict(weights)} must give each label a weight in [0, 1)"
            )
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.platt = np.asarray(platt, dtype=np.float64)
        self.weights: Mapping[str, float] = {label: float(weights[label]) for label in self.labels}
        self.encoder = encoder
        self._blend_weights = np.array([self.weights[label] for label in self.labels])

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """Unit-length sentence embeddings, one row per text."""
        return self.encoder.embed(texts)

    def semantic_logits(self, vectors: FloatMatrix) -> ProbabilityMatrix:
        """Calibrated logits of every label's head, (texts x labels)."""
        raw = np.asarray(vectors, dtype=np.float64) @ self.coef.T + self.intercept
        result: ProbabilityMatrix = raw * self.platt[:, 0] + self.platt[:, 1]
        return result

    def semantic_proba(self, vectors: FloatMatrix) -> ProbabilityMatrix:
        """The heads' own probabilities (no lexical part), for measuring the stage alone."""
        return sigmoid(self.semantic_logits(vectors))

    def blend_vectors(self, vectors: FloatMatrix, lexical: ProbabilityMatrix) -> ProbabilityMatrix:
        """``blend`` from embeddings already computed (evaluation re-uses cached ones)."""
        lexical = np.asarray(lexical, dtype=np.float64)
        blended = lexical.copy()
        active = np.flatnonzero(self._blend_weights > 0)
        if active.size == 0 or lexical.shape[0] == 0:
            return blended
        w = self._blend_weights[active]
        semantic = self.semantic_logits(vectors)[:, active]
        mixed = (1.0 - w) * logit(lexical[:, active]) + w * semantic
        blended[:, active] = sigmoid(mixed)
        return blended

    def blend(self, texts: Sequence[str], lexical: ProbabilityMatrix) -> ProbabilityMatrix:
        """Blended probabilities (texts x labels), columns in labels order, from the lexical
        matrix."""
        lexical = np.asarray(lexical, dtype=np.float64)
        if lexical.shape != (len(texts), len(self.labels)):
            raise ValueError(
                f"lexical matrix has shape {lexical.shape}, expected ({len(texts)}, "
                f"{len(self.labels)})"
            )
        if not (self._blend_weights > 0).any() or not texts:
            return lexical.copy()
        return self.blend_vectors(self.embed(texts), lexical)

    def artifact_payload(self) -> dict[str, Any]:
        """What the artifact holds: plain arrays and values, nothing that needs unpickling
        code."""
        files = self.encoder.files
        return {
            "format": ARTIFACT_FORMAT,
            "labels": list(self.labels),
            "coef": self.coef,
            "intercept": self.intercept,
            "platt": self.platt,
            "weights": dict(self.weights),
            "max_length": self.encoder.max_length,
            "encoder": {
                "model_sha256": files.model_sha256,
                "tokenizer_sha256": files.tokenizer_sha256,
            },
        }

    def save(self, path: Path) -> None:
        partial = path.with_name(path.name + ".partial")
        joblib.dump(self.artifact_payload(), partial, compress=3)
        partial.replace(path)

    @classmethod
    def read(
        cls, path: Path, *, threads: int = 1, files: EncoderFiles | None = None
    ) -> "SemanticStage":
        """The stage saved at ``path``; its encoder loads on first use. The caller has checked
        the file's sha256 (``Model.load`` does, against the card)."""
        try:
            payload = joblib.load(path)
            if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
                raise SemanticArtifactError(f"{path.name} is not a semantic stage artifact")
            encoder_files = files or EncoderFiles.installed()
            pinned = payload["encoder"]
            if (pinned["model_sha256"], pinned["tokenizer_sha256"]) != (
                encoder_files.model_sha256,
                encoder_files.tokenizer_sha256,
            ):
                raise SemanticArtifactError(
                    f"{path.name} was trained on another encoder (model sha256 "
                    f"{pinned['model_sha256']}) than the one pinned here "
                    f"({encoder_files.model_sha256})"
                )
            encoder = Encoder(
                threads=threads, max_length=int(payload["max_length"]), files=encoder_files
            )
            return cls(
                labels=payload["labels"],
                coef=np.asarray(payload["coef"]),
                intercept=np.asarray(payload["intercept"]),
                platt=np.asarray(payload["platt"]),
                weights=payload["weights"],
                encoder=encoder,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SemanticArtifactError(f"{path.name} is malformed: {error}") from None
