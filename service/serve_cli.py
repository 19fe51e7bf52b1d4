"""``civility run|serve|worker``: start the service's processes and serve until a signal."""

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures.process import BrokenProcessPool

import uvloop
from aiohttp import web

from classifier.model import ModelError, active_artifact
from service.api_processes import (
    API_PROCESS_MARKER,
    SupervisorFolders,
    become_supervisor,
    supervisor_gone,
)
from service.app import create_app
from service.connection import refuse_a_refused_redis_url
from service.demo_credentials import DEMO_CREDENTIALS, DemoFile
from service.embedded import (
    DataDirInUseError,
    EmbeddedStartError,
    data_dir_lock,
    embedded_valkey,
)
from service.env_reader import SettingsError
from service.logs import log_events, status_line
from service.reload import reload_if_changed, reload_on_signal
from service.settings import Settings
from service.worker import background_worker, run_until_signalled

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()
Started = Callable[[web.Application, str], Awaitable[None]]
StoreAlive = Callable[[], bool]
STORE_CHECK_SECONDS = 1.0
STORE_CHECK_MISSES = 3
SUPERVISOR_CHECK_SECONDS = 1.0


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    commands.add_parser(
        "run",
        help="start everything: embedded Valkey (unless REDIS_URL is set), the API and a worker",
        description="Start the API and one webhook worker, with an embedded Valkey in "
        "CIVILITY_DATA_DIR unless REDIS_URL is set. In development it also prints a demo site's "
        "credentials.",
    ).set_defaults(handler=run_command)
    commands.add_parser(
        "serve",
        help="start the API alone against REDIS_URL (for production)",
        description="Start the API against the Redis at REDIS_URL.",
    ).set_defaults(handler=serve_command)
    commands.add_parser(
        "worker",
        help="deliver decision webhooks from REDIS_URL (run as many as needed)",
        description="Deliver every site's outbox events to its callback URL until SIGTERM, then "
        "finish the deliveries in flight (for CIVILITY_WORKER_DRAIN_SECONDS at most).",
    ).set_defaults(handler=worker_command)


def _fail(message: str) -> int:
    print(f"civility: {message}", file=sys.stderr)
    return 2


def _check_redis(settings: Settings, *, say: bool = True, demo: bool = False) -> None:
    """Refuse a ``REDIS_URL`` its Redis refuses; a Redis that does not answer is said (``say``)
    and started against all the same, as it may come up after the service: otherwise an API
    would start and answer 503 to every request with nothing telling the operator why. Not with
    ``demo`` (`run` in development), which makes its demo site there before it serves."""
    unanswered = refuse_a_refused_redis_url(settings)
    if unanswered is None:
        return
    if demo:
        raise SettingsError(f"{unanswered}; `civility run` makes its demo site there at start")
    if say:
        print(
            f"civility: {unanswered}; starting all the same, trying it again until it answers "
            "(the API answers 503 store_unavailable meanwhile)",
            file=sys.stderr,
            flush=True,
        )


# The SIGHUPs that came before the service could reload: see ``_serve_until_stopped``.
_held_reloads: list[int] = []


def _hold_reload(signum: int, frame: object) -> None:
    _held_reloads.append(signum)


def _hold_reloads() -> None:
    """Hold a reload asked before this process (or the supervisor and API processes it becomes:
    the mask outlives exec) can act on it, rather than end. Blocking it is not enough alone: the
    threads native libraries started on import have it unblocked, and would take it."""
    signal.signal(signal.SIGHUP, _hold_reload)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def serve_command(args: argparse.Namespace) -> int:
    _hold_reloads()
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility serve` (or use `civility run`)")
        # Said by `serve` once, not again by each API process it starts.
        _check_redis(settings, say=API_PROCESS_MARKER not in os.environ)
        if API_PROCESS_MARKER not in os.environ:
            # At once, not after the model loaded: a taken port is said in a second.
            _refuse_a_taken_address(settings)
        if settings.api_processes > 1 and API_PROCESS_MARKER not in os.environ:
            # Here, once: each API process would say it again, and serve would end as failed.
            active_artifact(settings.models_dir)
            become_supervisor(settings.api_processes)
        return _serve(settings, _announce, with_worker=False)
    except (SettingsError, ModelError) as error:
        return _fail(str(error))
    except BrokenProcessPool:
        # Ctrl-C during start-up reaches the scoring workers before they can ignore it.
        return _fail("the scoring workers stopped while starting; nothing was served")


def _refuse_a_taken_address(settings: Settings) -> None:
    """Bind CIVILITY_HOST:CIVILITY_PORT once as a lone server would, then let it go: a taken
    port is refused before the model loads, not a minute later.

    The API processes share the port through SO_REUSEPORT, which would as gladly share it with
    another service bound the same way (another `civility serve`, or its orphans): the kernel
    would split the connections between the two, and nothing would say so."""
    try:
        addresses = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, protocol, _, address in addresses:
            with socket.socket(family, kind, protocol) as probe:
                # As asyncio binds: connections of an earlier run lingering in TIME_WAIT are no
                # reason to refuse.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as error:
        raise _cannot_listen(settings, error) from None


def _cannot_listen(settings: Settings, error: OSError) -> SettingsError:
    return SettingsError(
        f"cannot listen on CIVILITY_HOST:CIVILITY_PORT {settings.host}:{settings.port}: "
        f"{error.strerror or error}"
    )


def worker_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility worker`")
        _check_redis(settings)
    except SettingsError as error:
        return _fail(str(error))
    asyncio.run(run_until_signalled(settings))
    return 0


def run_command(args: argparse.Namespace) -> int:
    # A reload asked while the embedded Valkey starts is not the end of `run` either (Valkey
    # inherits the mask, and ignores SIGHUP anyway).
    _hold_reloads()
    try:
        settings = Settings.from_env()
        _check_redis(settings, demo=not settings.is_production)
    except SettingsError as error:
        return _fail(str(error))
    try:
        _refuse_a_taken_address(settings)
        with data_dir_lock(settings.data_dir):
            demo = DemoFile(settings.data_dir / DEMO_CREDENTIALS)
            if not settings.is_production and settings.admin_token is None:
                # A newcomer gets a working admin token, the same on every start.
                settings = dataclasses.replace(settings, admin_token=demo.admin_token())
            on_started = _announce if settings.is_production else demo.announce
            with _redis_for(settings) as (redis_url, alive):
                settings = dataclasses.replace(settings, redis_url=redis_url)
                return _serve(settings, on_started, with_worker=True, store_alive=alive)
    except (SettingsError, ModelError, DataDirInUseError, EmbeddedStartError) as error:
        return _fail(str(error))
    except OSError as error:
        # Raised before serving: the data folder cannot be created, written or locked.
        return _fail(f"CIVILITY_DATA_DIR {settings.data_dir} cannot be used: {error}")
    except BrokenProcessPool:
        # Ctrl-C during start-up reaches the scoring workers before they can ignore it.
        return _fail("the scoring workers stopped while starting; nothing was served")


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
    signal.signal(signal.SIGHUP, _hold_reload)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    # SIGHUP loads the newly activated model, as POST /v1/model:reload does.
    loop.add_signal_handler(signal.SIGHUP, reload_on_signal(runner.app))
    if _held_reloads:
        _held_reloads.clear()
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
            raise _cannot_listen(settings, error) from None
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
