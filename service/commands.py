"""The ``civility`` command's subcommands, from the packages that own them."""

import argparse
import signal
import sys
from collections.abc import Sequence

from classifier import cli as classifier_cli
from classifier.embedding_cache import CACHE_VARIABLE
from classifier.output import OutputError
from classifier.score_cli import MODELS_DIR_VARIABLE
from service import admin_cli, learning_cli, serve_cli
from service.settings import Settings

# What a shell reports for a command ended by Ctrl-C: 130.
INTERRUPTED_STATUS = 128 + signal.SIGINT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civility", description="Self-hosted comment moderation service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classifier_cli.register(commands)
    learning_cli.register(commands)
    admin_cli.register(commands)
    serve_cli.register(commands)
    _document_environment(parser)
    return parser


def _environment() -> dict[str, tuple[str, ...]]:
    """The environment variables each command reads, for its ``--help``."""
    models = (MODELS_DIR_VARIABLE,)
    # The embeddings kept between runs, read by training and by measuring a semantic stage.
    cache = (CACHE_VARIABLE,)
    # Every command that reaches the store reads the whole of the service's settings, and
    # refuses to run when any of them is wrong, as `serve` would.
    service = Settings.variables()
    return {
        "train": cache,
        "evaluate": cache,
        "tune": (),
        "score": models,
        "labels export": service,
        "model activate": models,
        "model list": models,
        "model show": models,
        "sites create": service,
        "sites show": service,
        "sites update": service,
        "sites delete": service,
        "sites reindex": service,
        "moderators list": service,
        "moderators revoke": service,
        "moderators add": service,
        "secrets rotate": service,
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


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # Ctrl-C is the operator's choice, not a failure to show a traceback for.
        print(f"civility {_name(args)}: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except OutputError as error:
        print(f"civility {_name(args)}: {error}", file=sys.stderr)
        return 1


def _name(args: argparse.Namespace) -> str:
    """The command as typed: ``train``, ``labels export``."""
    action = getattr(args, f"{args.command}_command", None)
    return str(args.command) if action is None else f"{args.command} {action}"
