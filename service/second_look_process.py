"""The second look run beside the API or the webhook worker (``background_second_look``).

This module stays light, as ``refit_process`` does: the worker and the CLI import it, and the
scoring process's model (with scikit-learn) is imported only when the look is switched on.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from service.connection import connect
from service.keys import KeySpace
from service.second_look import SecondLookWorker
from service.settings import Settings
from service.site_models import SiteModels


@contextlib.asynccontextmanager
async def background_second_look(settings: Settings) -> AsyncIterator[SecondLookWorker | None]:
    """The second look running in this event loop until the block ends; nothing when it is
    switched off. Its scoring process starts when the first comment is due."""
    if not settings.second_look.enabled:
        yield None
        return
    from service.second_look_pool import PoolBlendScorer
    from service.served_model import served_stem

    connection = connect(settings)
    adapting = settings.site_models.enabled
    keys = KeySpace(connection.prefix)
    scorer = PoolBlendScorer(
        settings.models_dir,
        settings.second_look.threads,
        redis_url=settings.redis_url if adapting else None,
        prefix=connection.prefix,
        served=lambda: served_stem(connection.client, keys, settings.models_dir),
    )
    worker = SecondLookWorker(
        connection.client,
        scorer,
        settings.second_look,
        prefix=connection.prefix,
        site_models=SiteModels(connection.client, connection.prefix) if adapting else None,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stopped(task, settings.delivery.drain_seconds)
        await scorer.close()
        await connection.aclose()
