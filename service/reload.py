"""Switching running API processes to a newly activated model without dropping a request.

``civility model activate <version>`` only moves ``models/ACTIVE``; a process loads the model it
names when told to: ``POST /v1/model:reload`` (admin) or SIGHUP. Either reloads the process that
received it and announces the reload on a Redis channel; every other API process of the same
Redis follows (a process whose model is already the active one ignores the announcement), so one
request switches them all.
"""

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classifier.model import ModelError, active_stem
from service.appkeys import MODERATION, REDIS, SCORER, SETTINGS
from service.errors import Conflict
from service.scoring import ModelInfo

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = 1.0
SUBSCRIBE_WAIT_SECONDS = 5.0
SENDER = web.AppKey("reload_sender", str)
"""Names this application on the reload channel, so it skips its own announcements."""


@dataclass(frozen=True, slots=True)
class Reloaded:
    previous: str
    info: ModelInfo


async def reload_model(app: web.Application, *, announce: bool = True) -> Reloaded:
    """Load the active model in this process; ``Conflict`` (still serving the old one) when it
    does not load. With ``announce``, the other API processes are told to follow."""
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
        channel = app[MODERATION].store.keys.model_reloads()
        await app[REDIS].publish(channel, f"{app[SENDER]} {info.name}-{info.version}")
    return Reloaded(previous, info)


def reload_on_signal(app: web.Application) -> Callable[[], None]:
    """A signal handler (for SIGHUP) that reloads in the background and logs the outcome."""
    running: set[asyncio.Task[None]] = set()

    async def reload_logged() -> None:
        try:
            await reload_model(app)
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
    subscribed = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_follow(app, subscribed))
    # Serve once listening, so a reload announced right after start is not missed; a Redis
    # that is down does not hold the start-up (the task keeps trying).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _follow(app: web.Application, subscribed: asyncio.Event) -> None:
    while True:
        try:
            redis = app[REDIS]
            if isinstance(redis, RedisCluster):
                # A cluster client picks the channel's node from the slot table it learns on its
                # first command: subscribing first finds that table empty.
                await redis.initialize()
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(app[MODERATION].store.keys.model_reloads())
                subscribed.set()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await _follow_one(app, str(message["data"]))
        except (RedisConnectionError, RedisTimeoutError):
            await asyncio.sleep(RESUBSCRIBE_SECONDS)
        except Exception:
            # Following reloads must outlive any one bad message or reply.
            log.exception("following model reloads failed; subscribing again")
            await asyncio.sleep(RESUBSCRIBE_SECONDS)


async def _follow_one(app: web.Application, announcement: str) -> None:
    sender, _, stem = announcement.partition(" ")
    loaded = app[SCORER].info
    if sender == app[SENDER] or stem == f"{loaded.name}-{loaded.version}":
        return
    try:
        if active_stem(app[SETTINGS].models_dir) != stem:
            return  # activated again since; the announcement of that one follows
        await reload_model(app, announce=False)
    except (ModelError, Conflict) as error:
        log.error("could not follow the reload to %s: %s", stem, error)
