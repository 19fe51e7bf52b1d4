"""The ``civility`` command: subcommands come from the packages that own them."""

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from classifier import cli as classifier_cli
from classifier.model import ModelError
from service import admin_cli, learning_cli
from service.administration import Administration
from service.app import create_app
from service.appkeys import ADMINISTRATION, MODERATION, SETTINGS
from service.demo import fill_demo_queue
from service.domain import SiteSpec
from service.embedded import (
    DataDirInUseError,
    EmbeddedStartError,
    data_dir_lock,
    embedded_valkey,
)
from service.errors import NotFound, StoreUnavailable
from service.gauges import background_gauges
from service.metrics import MULTIPROCESS_DIR_VARIABLE
from service.moderation import Moderation
from service.refit_process import background_refits
from service.reload import reload_on_signal
from service.second_look_process import background_second_look
from service.settings import Settings, SettingsError
from service.worker import background_worker, run_until_signalled

DEMO_SITE = "demo"
DEMO_CREDENTIALS = "demo-credentials.json"

Started = Callable[[web.Application, str], Awaitable[None]]
StoreAlive = Callable[[], bool]
STORE_CHECK_SECONDS = 1.0
STORE_CHECK_MISSES = 3

# Set in the environment of the API processes `civility serve` starts, so they serve themselves.
API_PROCESS_MARKER = "CIVILITY_API_PROCESS_OF"
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civility", description="Self-hosted comment moderation service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classifier_cli.register(commands)
    learning_cli.register(commands)
    admin_cli.register(commands)
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
    _document_environment(parser)
    return parser


def _environment() -> dict[str, tuple[str, ...]]:
    """The environment variables each command reads, for its ``--help``."""
    store = ("REDIS_URL", "CIVILITY_DATA_DIR")
    models = ("CIVILITY_MODELS_DIR",)
    service = Settings.variables()
    return {
        "train": (),
        "evaluate": (),
        "tune": (),
        "score": models,
        "labels export": store,
        "model activate": models,
        "model list": models,
        "model show": models,
        "sites create": store,
        "sites show": store,
        "sites update": store,
        "sites delete": store,
        "sites reindex": store,
        "moderators list": store,
        "moderators revoke": store,
        "moderators add": store,
        "secrets rotate": (*store, "CIVILITY_SECRET_GRACE_SECONDS"),
        "run": service,
        "serve": service,
        "worker": service,
    }


def _document_environment(
    parser: argparse.ArgumentParser,
    environment: dict[str, tuple[str, ...]] | None = None,
    command: str = "",
) -> None:
    """End every command's ``--help`` with the variables it reads (a command missing from
    ``_environment`` fails here, so a new one cannot forget it)."""
    environment = _environment() if environment is None else environment
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _document_environment(child, environment, f"{command} {name}".strip())
            return
    names = environment[command]
    parser.epilog = f"environment: {', '.join(names) if names else 'none read'}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


def _fail(message: str) -> int:
    print(f"civility: {message}", file=sys.stderr)
    return 2


def serve_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility serve` (or use `civility run`)")
        if settings.api_processes > 1 and API_PROCESS_MARKER not in os.environ:
            return _serve_in_processes(settings.api_processes)
        return _serve(settings, _announce, with_worker=False)
    except (SettingsError, ModelError) as error:
        return _fail(str(error))
    except BrokenProcessPool:
        # Ctrl-C during start-up reaches the scoring workers before they can ignore it.
        return _fail("the scoring workers stopped while starting; nothing was served")


def worker_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility worker`")
    except SettingsError as error:
        return _fail(str(error))
    asyncio.run(run_until_signalled(settings))
    return 0


def run_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        return _fail(str(error))
    try:
        with data_dir_lock(settings.data_dir):
            demo = _DemoFile(settings.data_dir / DEMO_CREDENTIALS)
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
        print(
            f"embedded Valkey at {valkey.url}, data in {settings.data_dir / 'valkey'}", flush=True
        )
        yield valkey.url, valkey.alive


def _serve_in_processes(count: int) -> int:
    """Start ``count`` API processes sharing the port; signals reach them all.

    Returns when every one has stopped: 0 if each stopped cleanly, 1 if one failed (the others are
    then told to stop, since a partly running service would hide the failure).
    """
    with tempfile.TemporaryDirectory(prefix="civility-metrics-") as metrics_folder:
        env = {
            **os.environ,
            API_PROCESS_MARKER: str(os.getpid()),
            MULTIPROCESS_DIR_VARIABLE: metrics_folder,
        }
        return _run_api_processes(count, env)


def _run_api_processes(count: int, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "service", "serve"]
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        children.extend(subprocess.Popen(command, env=env) for _ in range(count))
        failed = False
        while children:
            pid, status = os.wait()
            stopped = [child for child in children if child.pid == pid]
            if not stopped:
                continue
            children.remove(stopped[0])
            if os.waitstatus_to_exitcode(status) != 0 and not failed:
                failed = True
                print(f"civility: API process {pid} failed; stopping the others", file=sys.stderr)
                forward(signal.SIGTERM, None)
            # Popen must not wait for a pid os.wait already reaped.
            stopped[0].returncode = os.waitstatus_to_exitcode(status)
    finally:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
    return 1 if failed else 0


def _serve(
    settings: Settings,
    on_started: Started,
    *,
    with_worker: bool,
    store_alive: StoreAlive | None = None,
) -> int:
    # uvloop's event loop measured 8-10% less CPU per request in the serving process.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        store_lost = runner.run(
            _serve_until_stopped(settings, on_started, with_worker, store_alive)
        )
    if store_lost:
        log_file = settings.data_dir / "valkey" / "valkey.log"
        print(f"civility: the embedded Valkey stopped (its log: {log_file})", file=sys.stderr)
        return 1
    print("civility stopped", flush=True)
    return 0


async def _serve_until_stopped(
    settings: Settings, on_started: Started, with_worker: bool, store_alive: StoreAlive | None
) -> bool:
    """Serve until SIGINT or SIGTERM, or until ``store_alive`` fails; True in that last case."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None)
    await runner.setup()
    # SIGHUP loads the newly activated model, as POST /v1/model:reload does.
    loop.add_signal_handler(signal.SIGHUP, reload_on_signal(runner.app))
    store_lost = asyncio.Event()
    watch: asyncio.Task[None] | None = None
    try:
        # Several API processes bind the same port; the kernel spreads connections over them.
        site = web.TCPSite(
            runner, settings.host, settings.port, reuse_port=settings.api_processes > 1
        )
        try:
            await site.start()
        except OSError as error:
            raise SettingsError(
                f"cannot listen on CIVILITY_HOST:CIVILITY_PORT {settings.host}:{settings.port}: "
                f"{error.strerror or error}"
            ) from None
        await on_started(runner.app, f"http://{settings.host}:{settings.port}")
        if store_alive is not None:
            watch = asyncio.create_task(_watch_store(store_alive, stop, store_lost))
        async with contextlib.AsyncExitStack() as worker:
            if with_worker:
                assert settings.redis_url is not None  # run_command resolved it
                await worker.enter_async_context(background_worker(settings))
                await worker.enter_async_context(background_refits(settings))
                await worker.enter_async_context(background_second_look(settings))
                await worker.enter_async_context(background_gauges(settings))
            await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await runner.cleanup()
        if watch is not None:
            watch.cancel()
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


async def _announce(app: web.Application, url: str) -> None:
    print(f"civility is running at {url} (Ctrl-C to stop); console at {url}/console", flush=True)


class _DemoFile:
    """Demo credentials kept in the data folder (mode 0600), so every start can print them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, str] = self._read()

    def _read(self) -> dict[str, str]:
        try:
            loaded: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {key: value for key, value in loaded.items() if isinstance(value, str)}

    def _write(self) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(self.values, file, indent=2)
        os.chmod(self.path, 0o600)

    def admin_token(self) -> str:
        if "admin_token" not in self.values:
            self.values["admin_token"] = secrets.token_urlsafe(32)
            self._write()
        return self.values["admin_token"]

    async def announce(self, app: web.Application, url: str) -> None:
        await self._ensure_demo_site(app[MODERATION], app[ADMINISTRATION])
        # Only a token this file generated is printed; one from CIVILITY_ADMIN_TOKEN is the
        # operator's own.
        admin_token = app[SETTINGS].admin_token
        if admin_token is None or admin_token != self.values.get("admin_token"):
            admin_token = "(from CIVILITY_ADMIN_TOKEN)"
        print(
            f"civility is running at {url} (development mode, Ctrl-C to stop)\n"
            f"  console:          {url}/console\n"
            f"  admin token:      {admin_token}\n"
            f"  demo site:        {DEMO_SITE}\n"
            f"  webhook secret:   {self.values['webhook_secret']}\n"
            f"  api key:          {self.values['api_key']}\n"
            f"  moderator token:  {self.values['moderator_token']}\n"
            f"  (kept in {self.path})",
            flush=True,
        )
        # After the banner: scoring the demo comments must not delay the addresses and tokens,
        # and a store lost meanwhile is reported by the store watch, not by a traceback here.
        with contextlib.suppress(StoreUnavailable):
            await fill_demo_queue(app[MODERATION], DEMO_SITE)

    async def _ensure_demo_site(
        self, moderation: Moderation, administration: Administration
    ) -> None:
        if not await self._still_valid(moderation):
            await self._renew(moderation)
        api_key = self.values.get("api_key")
        site = None if api_key is None else await moderation.site_for_api_key(api_key)
        if site is None or site.id != DEMO_SITE:
            # A file from before api keys were kept, or a key rotated away: issue one now.
            rotation = await administration.rotate_api_key(DEMO_SITE, 0)
            self.values["api_key"] = rotation.api_key
            self._write()

    async def _renew(self, moderation: Moderation) -> None:
        try:
            await moderation.get_site(DEMO_SITE)
        except NotFound:
            _, credentials = await moderation.create_site(SiteSpec(id=DEMO_SITE, name="Demo site"))
            self.values["webhook_secret"] = credentials.webhook_secret
            self.values["api_key"] = credentials.api_key
        else:
            # The site exists but its secret was lost with the file: issue a new one at once.
            rotation = await moderation.rotate_secret(DEMO_SITE, 0)
            self.values["webhook_secret"] = rotation.webhook_secret
        _, token = await moderation.create_moderator(DEMO_SITE, "demo moderator")
        self.values["moderator_token"] = token
        self._write()

    async def _still_valid(self, moderation: Moderation) -> bool:
        secret = self.values.get("webhook_secret")
        token = self.values.get("moderator_token")
        if secret is None or token is None:
            return False
        try:
            valid_secrets = await moderation.webhook_secrets(DEMO_SITE)
        except NotFound:
            return False
        moderator = await moderation.moderator_for_token(token)
        return secret in valid_secrets and moderator is not None
