"""Serving: the web app of `civility run` (with a worker, and the embedded Valkey unless
REDIS_URL is set), of a lone `civility serve`, or of each API process a supervised one starts,
until a signal.

Imported only by the command that serves here: it imports the web stack and, through the app,
the model's libraries, which `serve`'s supervisor never needs."""

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator

import uvloop
from aiohttp import web

from service.api_processes import API_PROCESS_MARKER, SupervisorFolders, supervisor_gone
from service.app import create_app
from service.demo_credentials import DEMO_CREDENTIALS, DemoFile
from service.embedded import data_dir_lock, embedded_valkey
from service.logs import log_events, status_line
from service.reload import reload_if_changed, reload_on_signal
from service.serve_start import cannot_listen, held_reloads, hold_reload
from service.settings import Settings
from service.worker import background_worker

Started = Callable[[web.Application, str], Awaitable[None]]
StoreAlive = Callable[[], bool]
STORE_CHECK_SECONDS = 1.0
STORE_CHECK_MISSES = 3
SUPERVISOR_CHECK_SECONDS = 1.0


def serve_api(settings: Settings) -> int:
    """The API alone against ``settings.redis_url`` (`civility serve`, or one of its API
    processes)."""
    return _serve(settings, _announce, with_worker=False)


def run_service(settings: Settings) -> int:
    """The API and a worker, with the embedded Valkey unless ``settings.redis_url`` is set and,
    in development, the demo site's credentials (`civility run`)."""
    with data_dir_lock(settings.data_dir):
        demo = DemoFile(settings.data_dir / DEMO_CREDENTIALS)
        if not settings.is_production and settings.admin_token is None:
            # A newcomer gets a working admin token, the same on every start.
            settings = dataclasses.replace(settings, admin_token=demo.admin_token())
        on_started = _announce if settings.is_production else demo.announce
        with _redis_for(settings) as (redis_url, alive):
            settings = dataclasses.replace(settings, redis_url=redis_url)
            return _serve(settings, on_started, with_worker=True, store_alive=alive)


@contextlib.contextmanager
def _redis_for(settings: Settings) -> Iterator[tuple[str, StoreAlive | None]]:
    if settings.redis_url is not None:
        yield settings.redis_url, None
        return
    with embedded_valkey(settings.data_dir, settings.valkey_port) as valkey:
        status_line(f"embedded Valkey at {valkey.url}, data in {settings.data_dir / 'valkey'}")
        yield valkey.url, valkey.alive


def _serve(
    settings: Settings,
    on_started: Started,
    *,
    with_worker: bool,
    store_alive: StoreAlive | None = None,
) -> int:
    # Reloads, webhook retries, failures: the events an operator follows in the service's log.
    log_events()
    # uvloop's event loop measured 8-10% less CPU per request in the serving process.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        store_lost = runner.run(
            _serve_until_stopped(settings, on_started, with_worker, store_alive)
        )
    if store_lost:
        log_file = settings.data_dir / "valkey" / "valkey.log"
        print(f"civility: the embedded Valkey stopped (its log: {log_file})", file=sys.stderr)
        return 1
    status_line("civility stopped")
    return 0


async def _serve_until_stopped(
    settings: Settings, on_started: Started, with_worker: bool, store_alive: StoreAlive | None
) -> bool:
    """Serve until SIGINT or SIGTERM, or until ``store_alive`` fails; True in that last case."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # A SIGHUP while the model loads (or held until now) would end the process: it is noted, and
    # acted on once ready, since a model activated meanwhile may not be the one loading.
    signal.signal(signal.SIGHUP, hold_reload)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    # SIGHUP loads the newly activated model, as POST /v1/model:reload does.
    loop.add_signal_handler(signal.SIGHUP, reload_on_signal(runner.app))
    if held_reloads:
        held_reloads.clear()
        # Not when the model loaded is still the active one, as a follower checks: it would be
        # loaded a second time, doubling the start-up.
        reload_on_signal(runner.app, reload_if_changed)()
    store_lost = asyncio.Event()
    watches: list[asyncio.Task[None]] = []
    # One of the API processes of `serve`'s supervisor, or a service on its own.
    supervised = API_PROCESS_MARKER in os.environ
    folders = SupervisorFolders() if supervised else None
    try:
        if supervised:
            watches.append(asyncio.create_task(_follow_supervisor(stop)))
        # The API processes of one supervisor bind the same port; the kernel spreads connections
        # over them. Anything else binds it alone, so a port in use is refused.
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=supervised)
        try:
            await site.start()
        except OSError as error:
            raise cannot_listen(settings, error) from None
        # An IPv6 address goes in brackets, or the printed address opens nothing.
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        await on_started(runner.app, f"http://{host}:{settings.port}")
        if store_alive is not None:
            watches.append(asyncio.create_task(_watch_store(store_alive, stop, store_lost)))
        async with contextlib.AsyncExitStack() as worker:
            if with_worker:
                assert settings.redis_url is not None  # run_command resolved it
                # With its refits, second look and gauges, all stopped at once.
                await worker.enter_async_context(background_worker(settings))
            await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await runner.cleanup()
        for watch in watches:
            watch.cancel()
        if folders is not None:
            # After the cleanup: this process's scoring workers no longer listen there.
            folders.leave()
    return store_lost.is_set()


async def _watch_store(alive: StoreAlive, stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Stop the service when the embedded store is gone: serving 503s forever would hide it."""
    misses = 0
    while not stop.is_set():
        await asyncio.sleep(STORE_CHECK_SECONDS)
        # A busy server may miss one check; only consecutive misses mean it is gone.
        misses = 0 if await asyncio.to_thread(alive) else misses + 1
        if misses >= STORE_CHECK_MISSES:
            lost.set()
            stop.set()


async def _follow_supervisor(stop: asyncio.Event) -> None:
    """Stop this API process, as SIGTERM would, once the supervisor that started it is gone.

    A supervisor killed outright (SIGKILL, the OOM killer) forwards no signal: its API processes
    would go on serving the port, orphaned, beside whatever starts there next."""
    while not stop.is_set():
        if supervisor_gone():
            with contextlib.suppress(OSError):  # its standard error may have gone with it
                print("civility: the serve supervisor is gone; stopping", file=sys.stderr)
            stop.set()
            return
        await asyncio.sleep(SUPERVISOR_CHECK_SECONDS)


async def _announce(app: web.Application, url: str) -> None:
    status_line(f"civility is running at {url} (Ctrl-C to stop); console at {url}/console")
