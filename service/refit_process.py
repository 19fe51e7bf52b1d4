"""The process the worker starts for site model refits (``service.refits``).

This module stays light: the worker imports it, and the global model with scikit-learn is
imported only in the process it starts, so the deliveries start at once.
"""

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator

from service.child_process import follow_parent
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
    process = context.Process(
        target=_main,
        args=(settings,),
        name="civility-refits",
        daemon=True,
    )
    process.start()
    try:
        yield
    finally:
        # SIGTERM lets the refit in hand finish within the drain time. A refit cut short loses
        # nothing: rows are stored before the cursor moves past them and a fit is stored in one
        # write at its end, so the next run redoes what was cut.
        process.terminate()
        await asyncio.to_thread(process.join, settings.delivery.drain_seconds)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join)


def _main(settings: Settings) -> None:
    # Before the slow imports and the model's load: a worker killed meanwhile takes this along.
    follow_parent()
    # Imported here, in the refit process only: it loads scikit-learn and the model.
    from service.refits import refit_process

    refit_process(settings)
