"""Scoring off the event loop: the active model in worker processes, concurrent requests
micro-batched.

Each worker loads the active model once, when it starts. Requests that arrive within
``batch_wait`` of each other (or until ``batch_max_items`` are waiting) are scored as one batch in
one worker call, which pays the vectoriser's per-call overhead and the inter-process round trip
once. Comments longer than ``LONG_TEXT_CHARS`` and the evidence of held ones go to workers of
their own (``service.scoring_lanes``), so a site sending them in a flood does not hold up the
others' verdicts.

With several API processes, the first one's verdict workers also score the others' batches,
those waiting together as one call (``service.shared_scoring``).

``reload`` switches to the model ``models/ACTIVE`` names without dropping a request: a new pool
loads it while the old one keeps scoring, the scorer swaps pools only once every new worker has
loaded, and batches already sent to the old pool finish there and name its model.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import sklearn

from classifier.model import Model, active_stem, load_active
from service import language
from service.keys import DEFAULT_PREFIX
from service.language import Detected
from service.scorer import Scored, SiteRef, Spans
from service.scoring_lanes import (
    EVIDENCE_MAX_CHARS,
    LONG_TEXT_CHARS,
    Explaining,
    Lane,
    Read,
    Waiting,
)
from service.shared_scoring import SharedFirst, Sharing
from service.site_model_reader import SiteModelReader, score_by_site
from service.site_models import VERDICT_WEIGHTS, verdict_version
from service.worker_processes import Workers, WorkerSet, batchable

VERDICT_SET = "scoring"
"""The verdict workers' name (what ``ps`` shows, and their sockets' prefix when shared)."""

Scores = dict[str, float]
Language = tuple[str | None, float]
"""A ``Detected`` as it crosses from a worker: a plain tuple pickles in a fraction of the time."""

# The model of this worker process, loaded once when it starts.
_model: Model | None = None
# Where this worker reads site models, when it does.
_site_reader: SiteModelReader | None = None


def _start_worker(
    models_dir: Path, stem: str, redis_url: str | None = None, prefix: str = DEFAULT_PREFIX
) -> str:
    """Load model ``stem`` (the one active when the set started, so a worker started later to
    replace one that died loads the same) and return its version."""
    global _model, _site_reader
    # The model was validated when it was trained and its inputs are texts: scikit-learn's per-call
    # argument and finiteness checks cost ~1 ms of every worker call, a third of a small batch.
    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    _site_reader = (
        SiteModelReader(redis_url, prefix, VERDICT_WEIGHTS, _model_version, _model_checksum)
        if redis_url
        else None
    )
    # Intake scores with the lexical stage alone; the second look runs the semantic one.
    _model = load_active(models_dir, semantic=False, stem=stem)
    # Intake's texts have their language detected here, with their batch: loaded already when
    # the fork server preloaded it (``service.language_preload``), else now.
    language.load()
    return _model.version


def _active_model() -> Model:
    if _model is None:
        raise RuntimeError("scoring worker started without a model")
    return _model


def _score_batch(texts: Sequence[str], sites: Sequence[SiteRef | None]) -> list[tuple[Scores, int]]:
    """Each text's scores, with its site's model where it has one, and that model's version
    (0: the global model alone)."""
    wanted = {site for site in sites if site is not None and site[1]}
    found = _site_reader.models_of(wanted) if wanted and _site_reader else {}
    return score_by_site(_active_model(), texts, sites, found)


class OtherModelError(RuntimeError):
    """A worker was asked to score with a model version it does not hold."""


@batchable(3)
def _read_batch(
    texts: Sequence[str],
    sites: Sequence[SiteRef | None],
    detect: Sequence[bool],
    version: str | None = None,
) -> list[tuple[Language | None, tuple[Scores, int] | None]]:
    """``_score_batch``, each text that ``detect`` names having its language detected first
    (all of them in one pass): such a text is scored only when the model reads its language,
    as the serving process did when it detected. With ``version``, only by that model: a shared
    worker may hold another one than the process asking (``service.shared_scoring``)."""
    if version is not None and version != _active_model().version:
        raise OtherModelError(f"this worker scores with {_active_model().version}, not {version}")
    asked = [text for text, ask in zip(texts, detect, strict=True) if ask]
    detected = iter(language.detect_many(asked))
    languages = [next(detected) if ask else None for ask in detect]
    readable = [index for index, found in enumerate(languages) if found is None or found.supported]
    results: list[tuple[Language | None, tuple[Scores, int] | None]] = [
        (None if found is None else (found.language, found.confidence), None) for found in languages
    ]
    if readable:
        scored = _score_batch(
            [texts[index] for index in readable], [sites[index] for index in readable]
        )
        for index, scores in zip(readable, scored, strict=True):
            results[index] = (results[index][0], scores)
    return results


def _explain_batch(texts: Sequence[str], labels: Sequence[str]) -> list[Spans]:
    return _active_model().explain_many(texts, labels=labels)


def _model_version() -> str:
    return _active_model().version


def _model_checksum() -> str | None:
    return _active_model().checksum


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the web layer shows about the active model, read in the serving process."""

    name: str
    version: str
    labels: tuple[str, ...]
    thresholds: dict[str, dict[str, float]]
    card: dict[str, Any]
    semantic: bool = False
    """The model has a semantic stage (which the second look runs, not intake)."""
    checksum: str | None = None
    """The artifact's sha256 the card records."""

    @classmethod
    def of(cls, model: Model) -> "ModelInfo":
        return cls(
            name=model.name,
            version=model.version,
            labels=tuple(model.labels),
            thresholds={label: dict(t) for label, t in model.thresholds.items()},
            card=dict(model.card),
            # Read from the card: intake never runs the stage, so it need not load its encoder.
            semantic="semantic" in model.card,
            checksum=model.checksum,
        )


@dataclass(frozen=True, slots=True)
class _Pool:
    """Worker processes and the model every one of them loaded: swapped together."""

    workers: Workers
    long: Workers | None
    """The long lane's workers, when it has its own."""
    info: ModelInfo


class PoolScorer:
    """The ``Scorer`` the domain uses: ``score`` one text, micro-batched; ``explain`` one text.

    A batch goes to a lane's workers when one is free: after ``batch_wait`` when the lane is idle
    (to gather requests arriving together), at once when ``batch_max_items`` are waiting. While
    every worker is busy, texts accumulate and go as one batch as soon as one is free, so batches
    grow with the load instead of queueing in the pool. One text alone costs ~4.5 ms to score;
    in a batch of 64, ~0.3 ms each. A batch takes the sites' texts in turn and holds at most
    ``BATCH_MAX_CHARS`` characters (``service.scoring_lanes``).

    With ``long_pool``, texts longer than ``LONG_TEXT_CHARS`` and every explanation go to those
    workers instead, so neither a flood of long comments nor the evidence of held ones holds up
    an ordinary comment's verdict.

    Implements ``ReloadableScorer``: ``score_with_model`` names the model of the pool that
    scored the text, and ``reload`` swaps pools.
    """

    def __init__(
        self,
        pool: Workers,
        info: ModelInfo,
        *,
        workers: int,
        batch_max_items: int,
        batch_wait_seconds: float,
        long_pool: Workers | None = None,
        long_workers: int = 1,
        redis_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        sharing: Sharing | None = None,
    ) -> None:
        self._sharing = sharing
        self._pool = _Pool(self._verdict_workers(pool), long_pool, info)
        self._redis_url = redis_url
        self._prefix = prefix
        self._workers = workers
        self._long_workers = long_workers if long_pool is not None else 0
        self._batch_max_items = batch_max_items
        self._batch_wait_seconds = batch_wait_seconds
        self._short = Lane(workers, batch_max_items)
        self._long = Lane(long_workers, batch_max_items) if long_pool is not None else self._short
        self._reloading = asyncio.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._pool.info

    @property
    def worker_pids(self) -> list[int]:
        """The scoring workers' process ids, the long lane's last (they change when one dies or
        the model reloads)."""
        return self._pool.workers.pids + self.long_worker_pids

    @property
    def long_worker_pids(self) -> list[int]:
        """The long lane's own workers' process ids (none when it shares the others)."""
        return self._pool.long.pids if self._pool.long is not None else []

    @property
    def model_version(self) -> str:
        return self._pool.info.version

    async def score(self, text: str) -> Scores:
        return (await self.score_with_model(text)).scores

    async def score_with_model(self, text: str, site: SiteRef | None = None) -> Scored:
        """Scores of ``text`` by the model that made them; with ``site`` (site id and its
        active site model version), by that site model where the worker can read it."""
        _, scored = await self._queue(text, site, detect=False)
        if scored is None:
            raise RuntimeError("a text whose language was not asked for came back unscored")
        return scored

    async def detect_and_score(
        self, text: str, site: SiteRef | None = None
    ) -> tuple[Detected, Scored | None]:
        """``text``'s language, detected in the worker with the rest of its batch, and its
        scores (as ``score_with_model``) when the model reads that language; None otherwise."""
        detected, scored = await self._queue(text, site, detect=True)
        if detected is None:
            raise RuntimeError("a text came back without the language asked for")
        return detected, scored

    async def _queue(self, text: str, site: SiteRef | None, *, detect: bool) -> Read:
        future: asyncio.Future[Read] = asyncio.get_running_loop().create_future()
        lane = self._long if len(text) > LONG_TEXT_CHARS else self._short
        lane.waiting.append((text, site, future, detect))
        if len(lane.waiting) >= self._batch_max_items:
            self._dispatch(lane)
        elif lane.timer is None and not lane.busy:
            lane.timer = asyncio.get_running_loop().call_later(
                self._batch_wait_seconds, self._dispatch, lane
            )
        return await future

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> Spans:
        """The evidence spans of ``labels`` (every label: None) in ``text`` (its first
        ``EVIDENCE_MAX_CHARS``); ``site`` takes its turn with the other sites' explanations."""
        future: asyncio.Future[Spans] = asyncio.get_running_loop().create_future()
        # Explaining costs ~1.5 ms per 1,000 characters: the cut bounds what one comment can
        # take from the workers (and what goes through the socket).
        cut: Explaining = (
            text[:EVIDENCE_MAX_CHARS],
            None if site is None else (site, 0),
            future,
            None if labels is None else tuple(labels),
        )
        self._long.explaining.append(cut)
        if self._long.timer is None and not self._long.busy:
            self._dispatch(self._long)
        return await future

    async def reload(self, models_dir: Path) -> ModelInfo:
        """Load the active model in a new pool, swap to it, then let the old pool finish.

        Raises ``ModelError`` (and keeps serving the current model) when the active model does
        not load. One reload at a time; a second waits and then loads whatever is active."""
        async with self._reloading:
            workers, long, model = await _start_pool(
                models_dir,
                self._workers,
                self._long_workers,
                self._redis_url,
                self._prefix,
                self._sharing,
            )
            previous = self._pool
            self._pool = _Pool(self._verdict_workers(workers), long, ModelInfo.of(model))
            # Batches already sent to the old pool finish there; only then do its workers stop.
            await previous.workers.close()
            if previous.long is not None:
                await previous.long.close()
            return self._pool.info

    async def close(self) -> None:
        """Score what is still waiting, let running batches finish, then stop the workers."""
        lanes = [self._short] if self._long is self._short else [self._short, self._long]
        while any(lane.queued or lane.running for lane in lanes):
            for lane in lanes:
                if lane.queued:
                    self._dispatch(lane, force=True)
            running = [task for lane in lanes for task in lane.running]
            await asyncio.gather(*running, return_exceptions=True)
        await self._pool.workers.close()
        if self._pool.long is not None:
            await self._pool.long.close()

    def _dispatch(self, lane: Lane, *, force: bool = False) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        if lane.busy and not force:
            return  # the batch that finishes next takes everything waiting by then
        scoring, explaining = lane.take()
        task: asyncio.Task[None]
        if explaining:
            task = asyncio.get_running_loop().create_task(self._explain_batch(lane, explaining))
        elif scoring:
            task = asyncio.get_running_loop().create_task(self._score_batch(lane, scoring))
        else:
            return
        # The loop keeps only weak references to tasks; this set keeps each batch alive.
        lane.running.add(task)
        task.add_done_callback(partial(self._batch_done, lane))

    def _batch_done(self, lane: Lane, task: asyncio.Task[None]) -> None:
        lane.running.discard(task)
        self._dispatch(lane)

    def _verdict_workers(self, own: Workers) -> Workers:
        """A peer's verdict batches go to the shared worker first, its own workers otherwise."""
        if self._sharing is None or self._sharing.owner:
            return own
        return SharedFirst(self._sharing.folder, VERDICT_SET, own)

    def _workers_of(self, pool: _Pool, lane: Lane) -> Workers:
        return pool.long if lane is self._long and pool.long is not None else pool.workers

    async def _explain_batch(self, lane: Lane, batch: list[Explaining]) -> None:
        pool = self._pool
        texts = [text for text, _, _, _ in batch]
        # A label's spans do not depend on the others explained with it: the batch explains
        # the labels any of its texts asks for, and each text keeps its own.
        asked = {label for *_, labels in batch for label in labels or pool.info.labels}
        try:
            results = await self._workers_of(pool, lane).run(
                _explain_batch, texts, [label for label in pool.info.labels if label in asked]
            )
        except Exception as error:
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future, labels), spans in zip(batch, results, strict=True):
            if not future.done():
                kept = spans if labels is None else {k: v for k, v in spans.items() if k in labels}
                future.set_result(kept)

    async def _score_batch(self, lane: Lane, batch: list[Waiting]) -> None:
        pool = self._pool
        texts = [text for text, _, _, _ in batch]
        sites = [site for _, site, _, _ in batch]
        detect = [ask for _, _, _, ask in batch]
        results: list[tuple[Language | None, tuple[Scores, int] | None]]
        try:
            results = await self._workers_of(pool, lane).run(
                _read_batch, texts, sites, detect, pool.info.version
            )
        except Exception as error:  # the pool or the model failed: every waiter learns why
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future, _), (found, scored) in zip(batch, results, strict=True):
            if future.done():
                continue
            detected = None if found is None else Detected(*found)
            if scored is None:
                future.set_result((detected, None))
                continue
            scores, site_version = scored
            version = verdict_version(pool.info.version, site_version)
            future.set_result(
                (detected, Scored(scores, version, pool.info.thresholds, pool.info.semantic))
            )


async def start_scorer(
    models_dir: Path,
    *,
    workers: int,
    batch_max_items: int,
    batch_wait_seconds: float,
    long_workers: int = 0,
    redis_url: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    sharing: Sharing | None = None,
) -> PoolScorer:
    """Start the workers and wait until each has loaded the active model, so /readyz tells true.

    With ``long_workers``, that many more workers take the long texts and the explanations. With
    ``redis_url``, the workers read site models from there. With ``sharing``, the verdict
    workers are shared with the other API processes (owner) or tried first (peer)."""
    pool, long, model = await _start_pool(
        models_dir, workers, long_workers, redis_url, prefix, sharing
    )
    return PoolScorer(
        pool,
        ModelInfo.of(model),
        workers=workers,
        batch_max_items=batch_max_items,
        batch_wait_seconds=batch_wait_seconds,
        long_pool=long,
        long_workers=long_workers,
        redis_url=redis_url,
        prefix=prefix,
        sharing=sharing,
    )


async def _start_pool(
    models_dir: Path,
    workers: int,
    long_workers: int = 0,
    redis_url: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    sharing: Sharing | None = None,
) -> tuple[WorkerSet, WorkerSet | None, Model]:
    """Worker processes that each loaded the active model (the long lane's apart, when it has
    any), and that model.

    The serving process loads the model too, at the same time: that check of card, checksum and
    scikit-learn version gives a clear error, and its card answers ``GET /v1/model``.

    Measured with bench/intake.py on 2 cores: worker processes accepted 558 comments/s (p99 150 ms)
    where one scoring thread in the serving process accepted 493/s (p99 220 ms); the vectoriser
    is Python code that holds the GIL, so a thread takes its time from the event loop.
    """
    stem = await asyncio.to_thread(active_stem, models_dir)
    initargs = (models_dir, stem, redis_url, prefix)
    sizes = {VERDICT_SET: workers, "scoring-long": long_workers}
    shared = {VERDICT_SET: sharing.folder} if sharing is not None and sharing.owner else {}
    started = asyncio.create_task(
        _start_sets({name: size for name, size in sizes.items() if size}, initargs, shared)
    )
    try:
        model = await asyncio.to_thread(load_active, models_dir, semantic=False, stem=stem)
    except BaseException:
        # The workers fail the same way or start: either way they are stopped before raising.
        done = await asyncio.gather(started, return_exceptions=True)
        if isinstance(done[0], dict):
            await asyncio.gather(*(found.close() for found, _ in done[0].values()))
        raise
    sets = await started
    versions = {version for _, loaded in sets.values() for version in loaded}
    if versions != {model.version}:
        await asyncio.gather(*(found.close() for found, _ in sets.values()))
        raise RuntimeError(f"scoring workers loaded {versions}, not {model.version}")
    long = sets.get("scoring-long")
    return sets[VERDICT_SET][0], None if long is None else long[0], model


async def _start_sets(
    sizes: dict[str, int], initargs: tuple[Any, ...], shared: dict[str, Path]
) -> dict[str, tuple[WorkerSet, list[str]]]:
    """A started set of ``size`` workers per name (those in ``shared`` serving peers in that
    folder), with the model version each loaded; raises the first error, with every set
    stopped."""
    started = await asyncio.gather(
        *(
            WorkerSet.start(
                size,
                _start_worker,
                initargs,
                name=name,
                preload=["service.language_preload"],
                share_dir=shared.get(name),
            )
            for name, size in sizes.items()
        ),
        return_exceptions=True,
    )
    failed = [result for result in started if isinstance(result, BaseException)]
    if failed:
        await asyncio.gather(
            *(result[0].close() for result in started if not isinstance(result, BaseException))
        )
        raise failed[0]
    return {
        name: result
        for name, result in zip(sizes, started, strict=True)
        if not isinstance(result, BaseException)
    }
