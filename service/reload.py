"""Switching running API processes to a newly activated model without dropping a request.

``civility model activate <version>`` only moves ``models/ACTIVE``; a process loads the model it
names when told to: ``POST /v1/model:reload`` (admin) or SIGHUP. Either reloads the process that
received it and announces the reload: it keeps the model's stem in a Redis key and publishes it
on a channel. Every other API process of the same Redis follows (a process whose model is already
the active one ignores the announcement), so one request switches them all. A process that was
not listening when it was published (starting, or its subscription down while Redis restarted or
failed over) reads the key whenever it subscribes, and follows it the same way. An announcement
Redis does not take is tried again in the background: the reload itself has already happened.
"""

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from classifier.model import ModelError, active_stem
from service.appkeys import MODERATION, REDIS, SCORER, SETTINGS
from service.errors import Conflict
from service.keys import KeySpace
from service.scoring import ModelInfo
from service.served_model import trained_again
from service.store.scripts import RedisClient, is_unavailable

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = 1.0
SUBSCRIBE_WAIT_SECONDS = 5.0
ANNOUNCE_AGAIN_SECONDS = 1.0
SENDER = web.AppKey("reload_sender", str)
"""Names this application on the reload channel, so it skips its own announcements."""


@dataclass(frozen=True, slots=True)
class Reloaded:
    previous: str
    info: ModelInfo


async def reload_model(app: web.Application, *, announce: bool = True) -> Reloaded:
    """Load the active model in this process; ``Conflict`` (still serving the old one) when it
    does not load. With ``announce``, the other API processes are told to follow."""
    async with app[RELOADING]:
        return await _reload(app, announce)


async def reload_if_changed(app: web.Application) -> None:
    """Load the active model unless it is the one this process serves, as it loaded it (a
    reload asked while the process started, which may have loaded it already)."""
    async with app[RELOADING]:
        if not await _active_is_loaded(app):
            await _reload(app, announce=True)


async def _reload(app: web.Application, announce: bool) -> Reloaded:
    scorer = app[SCORER]
    previous = scorer.model_version
    try:
        info = await scorer.reload(app[SETTINGS].models_dir)
    except (ModelError, RuntimeError) as error:
        raise Conflict(
            f"the active model does not load, still serving {previous}: {error}"
        ) from error
    # Thresholds travel with each score; these serve decisions made on older comments.
    app[MODERATION].thresholds = info.thresholds
    log.info("model reloaded: %s -> %s", previous, info.version)
    if announce:
        app[ANNOUNCER].announce(f"{info.name}-{info.version}")
    return Reloaded(previous, info)


class Announcer:
    """Tells the other API processes which model this one reloaded, trying again in the
    background until Redis takes it: the reload has happened, a Redis that is down meanwhile must
    not make it look failed."""

    def __init__(self, redis: RedisClient, keys: KeySpace, sender: str, models_dir: Path) -> None:
        self._redis = redis
        self._keys = keys
        self._sender = sender
        self._models_dir = models_dir
        self._task: asyncio.Task[None] | None = None

    def announce(self, stem: str) -> None:
        if self._task is not None:
            self._task.cancel()  # a later reload's announcement replaces one still being tried
        self._task = asyncio.get_running_loop().create_task(self._until_taken(stem))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _until_taken(self, stem: str) -> None:
        while True:
            try:
                # The key first: a process that subscribes after the publish reads it.
                await self._redis.set(self._keys.model_reloaded(), stem)
                await self._redis.publish(self._keys.model_reloads(), f"{self._sender} {stem}")
                return
            except Exception as error:
                if not is_unavailable(error):
                    log.exception("announcing the reload to %s failed; not announced", stem)
                    return
                log.warning("announcing the reload to %s failed, trying again: %s", stem, error)
            await asyncio.sleep(ANNOUNCE_AGAIN_SECONDS)
            if not await asyncio.to_thread(_still_active, self._models_dir, stem):
                # Activated again since: the followers would ignore this one, and the key must
                # not go back from the newer model another process's reload put there.
                return


ANNOUNCER = web.AppKey("reload_announcer", Announcer)
RELOADING = web.AppKey("model_reloading", asyncio.Lock)
"""Held while this process loads a model: reloads asked meanwhile wait their turn, and one
that would load the model already loaded (a reload held through start-up and an announcement
read as the follower subscribes, both of the same model) loads nothing."""


def _still_active(models_dir: Path, stem: str) -> bool:
    try:
        return active_stem(models_dir) == stem
    except ModelError:
        return False


def reload_on_signal(
    app: web.Application,
    reload: Callable[[web.Application], Awaitable[object]] = reload_model,
) -> Callable[[], None]:
    """A signal handler (for SIGHUP) that runs ``reload`` in the background and logs a failure."""
    running: set[asyncio.Task[None]] = set()

    async def reload_logged() -> None:
        try:
            await reload(app)
        except Exception:
            log.exception("model reload on SIGHUP failed; still serving the previous model")

    def handle() -> None:
        task = asyncio.get_running_loop().create_task(reload_logged())
        # The loop keeps only weak references to tasks.
        running.add(task)
        task.add_done_callback(running.discard)

    return handle


async def follow_reloads(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: follow the reloads other API processes announce, while serving."""
    app[SENDER] = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    keys = app[MODERATION].store.keys
    app[ANNOUNCER] = Announcer(app[REDIS], keys, app[SENDER], app[SETTINGS].models_dir)
    app[RELOADING] = asyncio.Lock()
    tried = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_follow(app, tried))
    # Serve once listening, so a reload announced right after start is not missed; a Redis
    # that is down does not hold the start-up: once it refused the first subscription, or
    # after SUBSCRIBE_WAIT_SECONDS without an answer, the task keeps trying in the background,
    # and reads the last reload announced whenever it subscribes.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tried.wait(), SUBSCRIBE_WAIT_SECONDS)
    yield
    await _cancelled(task)
    await app[ANNOUNCER].close()


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` until it ends. redis-py may swallow a cancellation that lands while a
    command's own read timeout expires (the command then ends as usual), and the follower would
    then wait on the channel for ever, holding the application's shutdown."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def _follow(app: web.Application, tried: asyncio.Event) -> None:
    """Follow the reloads announced; ``tried`` is set once the first subscription succeeded or
    failed."""
    while True:
        try:
            redis = app[REDIS]
            if isinstance(redis, RedisCluster):
                # A cluster client picks the channel's node from the slot table it learns on its
                # first command: subscribing first finds that table empty.
                await redis.initialize()
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(app[MODERATION].store.keys.model_reloads())
                tried.set()
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        # Subscribed, first or again after the connection dropped (redis-py
                        # subscribes again by itself): what was published before reached no one.
                        await _follow_announced(app)
                    elif message["type"] == "message":
                        sender, _, stem = str(message["data"]).partition(" ")
                        if sender != app[SENDER]:
                            await _follow_one(app, stem)
        except Exception as error:
            if is_unavailable(error):
                # Redis away or refusing for now (down, restarting, busy, failing over): no bug,
                # so no traceback.
                log.warning(
                    "following model reloads failed, Redis is unavailable (%s); subscribing again",
                    error,
                )
            else:
                # Following reloads must outlive any one bad message or reply.
                log.exception("following model reloads failed; subscribing again")
            tried.set()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)


async def _follow_announced(app: web.Application) -> None:
    stem = await app[REDIS].get(app[MODERATION].store.keys.model_reloaded())
    if stem:
        await _follow_one(app, str(stem))


async def _active_is_loaded(app: web.Application) -> bool:
    """Whether the model this process serves is still the active one, as it loaded it: a reload
    would load it a second time for nothing."""
    try:
        stem = await asyncio.to_thread(active_stem, app[SETTINGS].models_dir)
    except ModelError:
        return False  # a reload says why
    return await _is_loaded(app, stem)


async def _is_loaded(app: web.Application, stem: str) -> bool:
    loaded = app[SCORER].info
    return stem == f"{loaded.name}-{loaded.version}" and not await asyncio.to_thread(
        trained_again, app[SETTINGS].models_dir, stem, loaded.checksum
    )


async def _follow_one(app: web.Application, stem: str) -> None:
    models_dir = app[SETTINGS].models_dir
    async with app[RELOADING]:
        if await _is_loaded(app, stem):
            return
        try:
            if active_stem(models_dir) != stem:
                return  # activated again since; the announcement of that one follows
            await _reload(app, announce=False)
        except (ModelError, Conflict) as error:
            log.error("could not follow the reload to %s: %s", stem, error)
