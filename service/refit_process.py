"""The process the worker starts for site model refits (``service.refits``).

This module stays light: the worker imports it, and the global model with scikit-learn is
imported only in the process it starts, so the deliveries start at once.
"""

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator
from multiprocessing.synchronize import Event as EventType

from service.settings import Settings


@contextlib.asynccontextmanager
async def background_refits(settings: Settings) -> AsyncIterator[None]:
    """Site model refits in a process of their own until the block ends; nothing when site
    models are switched off. Loading the model and fitting hold the GIL for seconds, which the
    deliveries beside them must not wait for."""
    if not settings.site_models.enabled:
        yield
        return
    context = multiprocessing.get_context("spawn")
    stopping = context.Event()
    process = context.Process(
        target=_main,
        args=(settings, stopping),
        name="civility-refits",
        daemon=True,
    )
    process.start()
    try:
        yield
    finally:
        stopping.set()
        await asyncio.to_thread(process.join, STOP_SECONDS)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join)


STOP_SECONDS = 30.0
"""How long a refit in progress may take to end when the worker stops."""


def _main(settings: Settings, stopping: EventType) -> None:
    # Imported here, in the refit process only: it loads scikit-learn and the model.
    from service.refits import refit_process

    refit_process(settings, stopping)
