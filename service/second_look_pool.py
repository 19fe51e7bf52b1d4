"""The second look's scoring process: the active model with its semantic stage, in one process.

One process, apart from the intake scoring pool: the encoder costs ~40 times the lexical score,
and on its own process (with onnxruntime capped at ``threads``) it queues behind nothing and
nothing queues behind it. It starts when the first comment is due and follows ``models/ACTIVE``:
a batch after the active model changed is scored by a new process with the new model.
"""

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from classifier.model import Model, active_stem, load_active
from service.child_process import follow_parent
from service.second_look import Blended

_model: Model | None = None

NICENESS = 10
"""How much lower the scoring process's CPU priority is than the worker's: on a machine whose
cores intake needs, the verdicts come first and the looks take what is left."""


def _start(models_dir: Path, threads: int) -> None:
    global _model
    follow_parent()
    os.nice(NICENESS)
    # The BLAS libraries of the lexical stage read it when their thread pools start; the
    # encoder's onnxruntime session takes ``threads`` itself.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    _model = load_active(models_dir, semantic=True, semantic_threads=threads)


def _blend(texts: Sequence[str]) -> tuple[list[dict[str, float]], str, dict[str, dict[str, float]]]:
    assert _model is not None, "second-look process started without a model"
    return _model.score_blended(texts), _model.version, _model.thresholds


class PoolBlendScorer:
    """``BlendScorer`` over one process that loaded the active model and its stage."""

    def __init__(self, models_dir: Path, threads: int) -> None:
        self._models_dir = models_dir
        self._threads = threads
        self._executor: ProcessPoolExecutor | None = None
        self._stem: str | None = None

    async def blend(self, texts: Sequence[str]) -> Blended:
        stem = await asyncio.to_thread(active_stem, self._models_dir)
        if self._executor is None or stem != self._stem:
            await self.close()
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["classifier.model"])
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=_start,
                initargs=(self._models_dir, self._threads),
            )
            self._stem = stem
        loop = asyncio.get_running_loop()
        try:
            scores, version, thresholds = await loop.run_in_executor(
                self._executor, _blend, list(texts)
            )
        except BrokenProcessPool:
            await self.close()  # the next batch starts a new process
            raise
        return Blended(scores, version, thresholds)

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
