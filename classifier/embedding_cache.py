"""Embeddings kept on disk between training and evaluation runs (never used when serving).

Embedding a training set takes minutes; the vectors of a text never change for one encoder file
and maximum length. One ``.npz`` per text set (a dataset source) holds the sha256 of each text and
its vector; the file name carries the encoder's sha256 and the maximum length, so vectors of
another encoder are never mixed in. The folder is ``$CIVILITY_CACHE/embeddings``, by default
``~/.cache/civility/embeddings``.
"""

import hashlib
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifier.encoder import DIMENSION, Encoder, FloatMatrix
from classifier.progress import QUIET, Progress

# Texts embedded per progress step (and per save of nothing: the file is written once at the end).
CHUNK = 256
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CACHE_VARIABLE = "CIVILITY_CACHE"


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_VARIABLE)
    base = Path(root) if root else Path.home() / ".cache" / "civility"
    return base / "embeddings"


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors by text, one file per named text set, for one encoder."""

    def __init__(self, directory: Path, encoder: Encoder) -> None:
        self.directory = directory
        self.encoder = encoder

    def path(self, set_name: str) -> Path:
        if not _SET_NAME.fullmatch(set_name):
            raise ValueError(f"{set_name!r} is not a text set name")
        files = self.encoder.files
        return self.directory / (
            f"{set_name}-{files.model_sha256[:12]}-{self.encoder.max_length}.npz"
        )

    def _read(self, path: Path) -> dict[bytes, FloatMatrix]:
        try:
            with path.open("rb") as stream, np.load(stream) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return {}  # missing or unreadable: computed again
        if vectors.ndim != 2 or vectors.shape[1] != DIMENSION or len(keys) != len(vectors):
            return {}
        return {bytes(key): vector for key, vector in zip(keys, vectors, strict=True)}

    def _write(self, path: Path, known: dict[bytes, FloatMatrix]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = np.frombuffer(b"".join(known), dtype=np.uint8).reshape(len(known), 32)
        vectors = np.stack(list(known.values())).astype(np.float32)
        # A name of this process's own: two runs (training and evaluation) may write the same
        # set at once; each file is whole, and the last one written stays.
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        with partial.open("wb") as stream:
            np.savez(stream, keys=keys, vectors=vectors)
        partial.replace(path)

    def embed(self, set_name: str, texts: Sequence[str], progress: Progress = QUIET) -> FloatMatrix:
        """One vector per text; texts not in the set's file are embedded and added to it."""
        path = self.path(set_name)
        known = self._read(path)
        digests = [text_digest(text) for text in texts]
        missing: dict[bytes, str] = {}
        for digest, text in zip(digests, texts, strict=True):
            if digest not in known:
                missing[digest] = text
        if missing:
            # Sorted by length across the whole set, so every encoder batch has little padding.
            pending = sorted(missing.items(), key=lambda item: len(item[1]))
            chunks = [pending[start : start + CHUNK] for start in range(0, len(pending), CHUNK)]
            for chunk in progress.over(chunks, f"embedding {set_name}", unit="chunk"):
                vectors = self.encoder.embed([text for _, text in chunk])
                known.update(zip((digest for digest, _ in chunk), vectors, strict=True))
            self._write(path, known)
        result = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, digest in enumerate(digests):
            result[row] = known[digest]
        return result
