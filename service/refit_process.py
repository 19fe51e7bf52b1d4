"""The process the worker starts for site model refits (``service.refits``).

This module stays light: the worker imports it, and the global model with scikit-learn is
imported only in the process it starts, so the deliveries start at once.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import AsyncIterator
from multiprocessing.process import BaseProcess

from service.child_process import follow_parent, start_child
from service.settings import Settings

RESTART_PAUSE_SECONDS = 30.0
"""How long a refit process that died waits to be started again: a fit the OOM killer ended
would otherwise start over at once, and likely end the same way."""

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def background_refits(
    settings: Settings, *, restart_pause: float = RESTART_PAUSE_SECONDS
) -> AsyncIterator[None]:
    """Site model refits in a process of their own until the block ends; nothing when site
    models are switched off. Loading the model and fitting hold the GIL for seconds, which the
    deliveries beside them must not wait for. A refit process that dies (the OOM killer during
    a large fit) is logged and started again ``restart_pause`` seconds later."""
    if not settings.site_models.enabled:
        yield
        return
    refits = _RefitProcess(settings)
    keeping = asyncio.create_task(refits.keep_running(restart_pause))
    try:
        yield
    finally:
        # First: the exit of the process stopped below is no death to answer.
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
        await refits.stop(settings.delivery.drain_seconds)


class _RefitProcess:
    """The one refit process running, started again whenever it dies."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._process = self._start()

    def _start(self) -> BaseProcess:
        process = multiprocessing.get_context("spawn").Process(
            target=_main,
            args=(self._settings,),
            name="civility-refits",
            daemon=True,
        )
        start_child(process)
        return process

    async def keep_running(self, pause: float) -> None:
        while True:
            await _ended(self._process)
            code = self._process.exitcode
            if code == 0:
                return  # refits are off (no model to refit on): a new process would end alike
            log.error(
                "site model refit process %s %s; starting it again in %g s",
                self._process.pid,
                _how_it_ended(code),
                pause,
            )
            await asyncio.sleep(pause)
            self._process = self._start()

    async def stop(self, drain_seconds: float) -> None:
        # SIGTERM lets the refit in hand finish within the drain time. A refit cut short loses
        # nothing: rows are stored before the cursor moves past them and a fit is stored in one
        # write at its end, so the next run redoes what was cut.
        process = self._process
        process.terminate()
        await asyncio.to_thread(process.join, drain_seconds)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join)


async def _ended(process: BaseProcess) -> None:
    """Wait, holding no thread, until ``process`` has ended, and reap it."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        # Its sentinel reads as closed once it ended, so this may run again before the wait
        # below resumes.
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(process.sentinel, readable)
    try:
        await ended
    finally:
        loop.remove_reader(process.sentinel)
    process.join()  # at once: it has ended


def _how_it_ended(code: int | None) -> str:
    if code is None or code >= 0:
        return f"ended with exit code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name of its own
        return f"was killed by signal {-code}"


def _main(settings: Settings) -> None:
    # Before the slow imports and the model's load: a worker killed meanwhile takes this along.
    # Asked to stop with SIGTERM, which it takes once its handler is set (``refit_process``).
    follow_parent(stopped_by_sigterm=True)
    # Imported here, in the refit process only: it loads scikit-learn and the model.
    from service.refits import refit_process

    refit_process(settings)
