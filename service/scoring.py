"""Scoring off the event loop: the active model in worker processes, concurrent requests
micro-batched.

Each worker loads the active model once, when it starts. Requests that arrive within
``batch_wait`` of each other (or until ``batch_max_items`` are waiting) are scored as one batch in
one worker call, which pays the vectoriser's per-call overhead and the inter-process round trip
once.

``reload`` switches to the model ``models/ACTIVE`` names without dropping a request: a new pool
loads it while the old one keeps scoring, the scorer swaps pools only once every new worker has
loaded, and batches already sent to the old pool finish there and name its model.
"""

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sklearn

from classifier.model import Model, active_stem, load_active
from service.keys import DEFAULT_PREFIX
from service.scorer import Scored, SiteRef, Spans
from service.site_model_reader import SiteModelReader, adapt_by_site
from service.site_models import VERDICT_WEIGHTS, verdict_version
from service.worker_processes import Workers, WorkerSet

Scores = dict[str, float]
Waiting = tuple[str, SiteRef | None, "asyncio.Future[Scored]"]

BATCH_MAX_CHARS = 16_000
"""Characters of text one scoring batch holds at most (at least one text): scoring costs about
1 ms per 1,000, so a batch of long comments cannot keep the workers from others for long."""
EVIDENCE_MAX_CHARS = 2_000
"""Evidence spans are worked out on a comment's first characters only (99.3 % of the benchmark's
real comments are shorter)."""
EXPLAIN_BATCH_CHARS = 3_000
"""Characters one evidence batch holds at most (at least one text), between scoring batches."""

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
        SiteModelReader(redis_url, prefix, VERDICT_WEIGHTS, _model_version) if redis_url else None
    )
    # Intake scores with the lexical stage alone; the second look runs the semantic one.
    _model = load_active(models_dir, semantic=False, stem=stem)
    return _model.version


def _active_model() -> Model:
    if _model is None:
        raise RuntimeError("scoring worker started without a model")
    return _model


def _score_batch(texts: Sequence[str], sites: Sequence[SiteRef | None]) -> list[tuple[Scores, int]]:
    """Each text's scores, with its site's model where it has one, and that model's version
    (0: the global model alone)."""
    model = _active_model()
    wanted = {site for site in sites if site is not None and site[1]}
    if not wanted:
        return [(scores, 0) for scores in model.score(texts)]
    found = _site_reader.models_of(wanted) if _site_reader else {}
    if not any(found.values()):
        return [(scores, 0) for scores in model.score(texts)]
    matrix, features = model.predict_with_features(texts)
    adapted, versions = adapt_by_site(matrix, model.labels, sites, found, features)
    return [
        (dict(zip(model.labels, map(float, row), strict=True)), version)
        for row, version in zip(adapted, versions, strict=True)
    ]


def _explain_batch(texts: Sequence[str], labels: Sequence[str]) -> list[Spans]:
    # Explaining costs ~15 ms per 1,000 characters: the cut bounds what one comment can take
    # from the workers that score everyone's comments.
    cut = [text[:EVIDENCE_MAX_CHARS] for text in texts]
    return _active_model().explain_many(cut, labels=labels)


def _model_version() -> str:
    return _active_model().version


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
        )


@dataclass(frozen=True, slots=True)
class _Pool:
    """Worker processes and the model every one of them loaded: swapped together."""

    workers: Workers
    info: ModelInfo


def fair_batch(
    waiting: Sequence[Waiting], max_items: int, max_chars: int, turn: int = 0
) -> tuple[list[Waiting], list[Waiting]]:
    """The next batch and what stays waiting: one text of each site in turn (each site's in the
    order they came; ``turn`` rotates which site goes first), up to ``max_items`` texts and
    ``max_chars`` characters, at least one text. A site whose next text does not fit sits out
    the rest of the batch.

    So a site sending many long comments at once delays another site's by about one batch, not
    by all of its own."""
    lanes: dict[str, deque[Waiting]] = {}
    for item in waiting:
        lanes.setdefault(item[1][0] if item[1] is not None else "", deque()).append(item)
    order = list(lanes.values())
    shift = turn % len(order) if order else 0
    open_lanes = order[shift:] + order[:shift]
    batch: list[Waiting] = []
    chars = 0
    while open_lanes and len(batch) < max_items:
        for lane in list(open_lanes):
            size = len(lane[0][0])
            if batch and (len(batch) >= max_items or chars + size > max_chars):
                open_lanes.remove(lane)
                continue
            batch.append(lane.popleft())
            chars += size
            if not lane:
                open_lanes.remove(lane)
    taken = {id(item) for item in batch}
    return batch, [item for item in waiting if id(item) not in taken]


def _bounded(items: Sequence[tuple[str, Any]], max_chars: int) -> int:
    """How many of ``items`` (texts first) one batch takes: at least one, then up to
    ``max_chars`` characters."""
    count, chars = 0, 0
    for text, _ in items:
        if count and chars + len(text) > max_chars:
            break
        count, chars = count + 1, chars + len(text)
    return count


class PoolScorer:
    """The ``Scorer`` the domain uses: ``score`` one text, micro-batched; ``explain`` one text.

    A batch goes to the pool when a worker is free: after ``batch_wait`` when the service is idle
    (to gather requests arriving together), at once when ``batch_max_items`` are waiting. While
    every worker is busy, texts accumulate and go as one batch as soon as one is free, so batches
    grow with the load instead of queueing in the pool. One text alone costs ~4.5 ms to score;
    in a batch of 64, ~0.3 ms each. A batch takes the sites' texts in turn and holds at most
    ``BATCH_MAX_CHARS`` characters (``fair_batch``).

    Explanations wait behind scoring: they go to the pool, batched up to
    ``EXPLAIN_BATCH_CHARS`` characters, when no text waits to be scored or, under a steady load,
    after every scoring batch, so they neither starve nor hold up a verdict by more than one
    small batch.

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
        redis_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._pool = _Pool(pool, info)
        self._redis_url = redis_url
        self._prefix = prefix
        self._workers = workers
        self._batch_max_items = batch_max_items
        self._batch_wait_seconds = batch_wait_seconds
        self._waiting: list[Waiting] = []
        self._explaining: list[tuple[str, asyncio.Future[Spans]]] = []
        self._explain_next = False
        self._turn = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._pool.info

    @property
    def worker_pids(self) -> list[int]:
        """The scoring workers' process ids (they change when one dies or the model reloads)."""
        return self._pool.workers.pids

    @property
    def model_version(self) -> str:
        return self._pool.info.version

    async def score(self, text: str) -> Scores:
        return (await self.score_with_model(text)).scores

    async def score_with_model(self, text: str, site: SiteRef | None = None) -> Scored:
        """Scores of ``text`` by the model that made them; with ``site`` (site id and its
        active site model version), by that site model where the worker can read it."""
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._waiting.append((text, site, future))
        if len(self._waiting) >= self._batch_max_items:
            self._dispatch()
        elif self._timer is None and len(self._running) < self._workers:
            self._timer = asyncio.get_running_loop().call_later(
                self._batch_wait_seconds, self._dispatch
            )
        return await future

    async def explain(self, text: str) -> Spans:
        """Each label's evidence spans in ``text`` (its first ``EVIDENCE_MAX_CHARS``)."""
        future: asyncio.Future[Spans] = asyncio.get_running_loop().create_future()
        self._explaining.append((text, future))
        if self._timer is None and len(self._running) < self._workers:
            self._dispatch()
        return await future

    async def reload(self, models_dir: Path) -> ModelInfo:
        """Load the active model in a new pool, swap to it, then let the old pool finish.

        Raises ``ModelError`` (and keeps serving the current model) when the active model does
        not load. One reload at a time; a second waits and then loads whatever is active."""
        async with self._reloading:
            workers, model = await _start_pool(
                models_dir, self._workers, self._redis_url, self._prefix
            )
            previous = self._pool
            self._pool = _Pool(workers, ModelInfo.of(model))
            # Batches already sent to the old pool finish there; only then do its workers stop.
            await previous.workers.close()
            return self._pool.info

    async def close(self) -> None:
        """Score what is still waiting, let running batches finish, then stop the workers."""
        while self._waiting or self._explaining or self._running:
            self._dispatch(force=True)
            await asyncio.gather(*self._running, return_exceptions=True)
        await self._pool.workers.close()

    def _dispatch(self, *, force: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if len(self._running) >= self._workers and not force:
            return  # the batch that finishes next takes everything waiting by then
        task: asyncio.Task[None]
        if self._explaining and (self._explain_next or not self._waiting):
            count = _bounded(self._explaining, EXPLAIN_BATCH_CHARS)
            explains = self._explaining[:count]
            del self._explaining[:count]
            self._explain_next = False
            task = asyncio.get_running_loop().create_task(self._explain_batch(explains))
        elif self._waiting:
            batch, self._waiting = fair_batch(
                self._waiting, self._batch_max_items, BATCH_MAX_CHARS, self._turn
            )
            self._turn += 1
            self._explain_next = True
            task = asyncio.get_running_loop().create_task(self._score_batch(batch))
        else:
            return
        # The loop keeps only weak references to tasks; this set keeps each batch alive.
        self._running.add(task)
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._dispatch()

    async def _explain_batch(self, batch: list[tuple[str, asyncio.Future[Spans]]]) -> None:
        pool = self._pool
        texts = [text for text, _ in batch]
        try:
            results = await pool.workers.run(_explain_batch, texts, pool.info.labels)
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), spans in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(spans)

    async def _score_batch(self, batch: list[Waiting]) -> None:
        pool = self._pool
        try:
            results = await pool.workers.run(
                _score_batch, [text for text, _, _ in batch], [site for _, site, _ in batch]
            )
        except Exception as error:  # the pool or the model failed: every waiter learns why
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, _, future), (scores, site_version) in zip(batch, results, strict=True):
            if not future.done():
                version = verdict_version(pool.info.version, site_version)
                future.set_result(Scored(scores, version, pool.info.thresholds, pool.info.semantic))


async def start_scorer(
    models_dir: Path,
    *,
    workers: int,
    batch_max_items: int,
    batch_wait_seconds: float,
    redis_url: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> PoolScorer:
    """Start the workers and wait until each has loaded the active model, so /readyz tells true.

    With ``redis_url``, the workers read site models from there."""
    pool, model = await _start_pool(models_dir, workers, redis_url, prefix)
    return PoolScorer(
        pool,
        ModelInfo.of(model),
        workers=workers,
        batch_max_items=batch_max_items,
        batch_wait_seconds=batch_wait_seconds,
        redis_url=redis_url,
        prefix=prefix,
    )


async def _start_pool(
    models_dir: Path, workers: int, redis_url: str | None = None, prefix: str = DEFAULT_PREFIX
) -> tuple[WorkerSet, Model]:
    """Worker processes that each loaded the active model, and that model.

    The serving process loads the model too, at the same time: that check of card, checksum and
    scikit-learn version gives a clear error, and its card answers ``GET /v1/model``.

    Measured with bench/intake.py on 2 cores: worker processes accepted 558 comments/s (p99 150 ms)
    where one scoring thread in the serving process accepted 493/s (p99 220 ms); the vectoriser
    is Python code that holds the GIL, so a thread takes its time from the event loop.
    """
    stem = await asyncio.to_thread(active_stem, models_dir)
    started = asyncio.create_task(
        WorkerSet.start(
            workers,
            _start_worker,
            (models_dir, stem, redis_url, prefix),
            name="scoring",
            preload=["classifier.model"],
        )
    )
    try:
        model = await asyncio.to_thread(load_active, models_dir, semantic=False, stem=stem)
    except BaseException:
        # The workers fail the same way or start: either way they are stopped before raising.
        done = await asyncio.gather(started, return_exceptions=True)
        if isinstance(done[0], tuple):
            await done[0][0].close()
        raise
    pool, versions = await started
    if any(version != model.version for version in versions):
        await pool.close()
        raise RuntimeError(f"scoring workers loaded {set(versions)}, not {model.version}")
    return pool, model
