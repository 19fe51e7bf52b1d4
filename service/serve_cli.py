"""``civility run|serve|worker``: start the service's processes and serve until a signal.

The serving itself is ``service.serving``'s, imported only where it serves: `serve` with several
API processes checks its settings, its Redis, its port and its model here, then becomes their
supervisor without having imported the web stack or the model's libraries (each API process
imports them as it starts)."""

import argparse
import asyncio
import os
import sys

from classifier.artifacts import ModelError, active_artifact
from service.api_processes import API_PROCESS_MARKER, become_supervisor
from service.connection import refuse_a_refused_redis_url
from service.env_reader import SettingsError
from service.serve_start import hold_reloads, refuse_a_taken_address
from service.settings import Settings

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


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


def serve_command(args: argparse.Namespace) -> int:
    hold_reloads()
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility serve` (or use `civility run`)")
        # Said by `serve` once, not again by each API process it starts.
        _check_redis(settings, say=API_PROCESS_MARKER not in os.environ)
        if API_PROCESS_MARKER not in os.environ:
            # At once, not after the model loaded: a taken port is said in a second.
            refuse_a_taken_address(settings)
        if settings.api_processes > 1 and API_PROCESS_MARKER not in os.environ:
            # Here, once: each API process would say it again, and serve would end as failed.
            active_artifact(settings.models_dir)
            become_supervisor(settings.api_processes)
        from service import serving

        return serving.serve_api(settings)
    except (SettingsError, ModelError) as error:
        return _fail(str(error))


def worker_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if settings.redis_url is None:
            raise SettingsError("REDIS_URL is required by `civility worker`")
        _check_redis(settings)
    except SettingsError as error:
        return _fail(str(error))
    from service.worker import run_until_signalled

    asyncio.run(run_until_signalled(settings))
    return 0


def run_command(args: argparse.Namespace) -> int:
    # A reload asked while the embedded Valkey starts is not the end of `run` either (Valkey
    # inherits the mask, and ignores SIGHUP anyway).
    hold_reloads()
    try:
        settings = Settings.from_env()
        _check_redis(settings, demo=not settings.is_production)
    except SettingsError as error:
        return _fail(str(error))
    from service import serving
    from service.embedded import DataDirInUseError, EmbeddedStartError

    try:
        refuse_a_taken_address(settings)
        return serving.run_service(settings)
    except (SettingsError, ModelError, DataDirInUseError, EmbeddedStartError) as error:
        return _fail(str(error))
    except OSError as error:
        # Raised before serving: the data folder cannot be created, written or locked.
        return _fail(f"CIVILITY_DATA_DIR {settings.data_dir} cannot be used: {error}")
