"""The second look's scoring process: the active model with its semantic stage, in one process.

One process, apart from the intake scoring pool: the encoder costs ~40 times the lexical score,
and on its own process (with onnxruntime capped at ``threads``) it queues behind nothing and
nothing queues behind it. It starts when the first comment is due and follows the model the API
processes serve (``service/served_model.py``): a batch after a reload is scored by a new process
with the reloaded model.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from classifier.model import Model, active_stem, load_active
from service.keys import DEFAULT_PREFIX
from service.scorer import SiteRef
from service.second_look import Blended
from service.served_model import served_checksum, trained_again
from service.site_model_reader import SiteModelReader, adapt_by_site
from service.site_models import SECOND_LOOK
from service.worker_processes import WorkerSet

_model: Model | None = None

NICENESS = 10
"""How much lower the scoring process's CPU priority is than the worker's: on a machine whose
cores intake needs, the verdicts come first and the looks take what is left."""


# Where this process reads the sites' second-look models, when it does.
_site_reader: SiteModelReader | None = None


def _start(models_dir: Path, stem: str, threads: int, redis_url: str | None, prefix: str) -> None:
    global _model, _site_reader
    os.nice(NICENESS)
    # The BLAS libraries of the lexical stage read it when their thread pools start; the
    # encoder's onnxruntime session takes ``threads`` itself.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    _model = load_active(models_dir, semantic=True, semantic_threads=threads, stem=stem)
    if redis_url is not None:
        _site_reader = SiteModelReader(
            redis_url,
            prefix,
            SECOND_LOOK,
            lambda: _loaded().version,
            lambda: _loaded().checksum,
        )


def _loaded() -> Model:
    assert _model is not None, "second-look process started without a model"
    return _model


def _blend(
    texts: Sequence[str], sites: Sequence[SiteRef | None]
) -> tuple[list[dict[str, float]], list[int], str, dict[str, dict[str, float]]]:
    """The blended scores of ``texts``, each with its site's second-look model where it has one,
    and the site model version each was scored with (0: none)."""
    model = _loaded()
    wanted = {site for site in sites if site is not None and site[1]}
    found = _site_reader.models_of(wanted) if _site_reader is not None else {}
    if not any(found.values()):
        return model.score_blended(texts), [0] * len(texts), model.version, model.thresholds
    # The site models read the embeddings the blend is made of: the texts are encoded once.
    lexical, features = model.predict_with_features(texts, embeddings=True)
    blended = model.blend_features(lexical, features)
    adapted, versions = adapt_by_site(blended, model.labels, sites, found, features)
    scores = [dict(zip(model.labels, map(float, row), strict=True)) for row in adapted]
    return scores, versions, model.version, model.thresholds


class PoolBlendScorer:
    """``BlendScorer`` over one process that loaded the active model and its stage."""

    def __init__(
        self,
        models_dir: Path,
        threads: int,
        *,
        redis_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        served: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        """With ``redis_url``, the process reads the sites' second-look models from there;
        ``served`` names the model to score with (else ``ACTIVE``'s)."""
        self._models_dir = models_dir
        self._served = served
        self._threads = threads
        self._redis_url = redis_url
        self._prefix = prefix
        self._workers: WorkerSet | None = None
        self._stem: str | None = None
        self._checksum: str | None = None

    async def blend(
        self, texts: Sequence[str], sites: Sequence[SiteRef | None] | None = None
    ) -> Blended:
        if self._served is not None:
            stem = await self._served()
        else:
            stem = await asyncio.to_thread(active_stem, self._models_dir)
        if (
            self._workers is None
            or stem != self._stem
            or await asyncio.to_thread(trained_again, self._models_dir, stem, self._checksum)
        ):
            await self.close()
            self._checksum = await asyncio.to_thread(served_checksum, self._models_dir, stem)
            self._workers, _ = await WorkerSet.start(
                1,
                _start,
                (self._models_dir, stem, self._threads, self._redis_url, self._prefix),
                name="second-look",
            )
            self._stem = stem
        # A process that dies is replaced (with the same model) and the batch sent once more.
        scores, versions, version, thresholds = await self._workers.run(
            _blend, list(texts), list(sites or [None] * len(texts))
        )
        return Blended(scores, version, thresholds, versions)

    @property
    def pids(self) -> list[int]:
        """The scoring process's id (another once the model changes); none before a batch."""
        return self._workers.pids if self._workers is not None else []

    def closing(self) -> None:
        if self._workers is not None:
            self._workers.closing()

    async def close(self) -> None:
        if self._workers is not None:
            workers, self._workers = self._workers, None
            await workers.close()
