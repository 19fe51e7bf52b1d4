"""The ``civility`` command's subcommands, from the packages that own them."""

import argparse
import importlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from classifier.output import OutputError

# What a shell reports for a command ended by Ctrl-C: 130.
INTERRUPTED_STATUS = 128 + signal.SIGINT

# The module that registers each command, in the order `civility --help` lists them. A command
# imports its own module alone: `sites list` had imported the web stack, and `serve`, on its way
# to becoming the supervisor of its API processes, every other command's modules.
MODULES = {
    "classifier.cli": ("train", "evaluate", "tune", "score"),
    "service.learning_cli": ("labels", "model"),
    "service.admin_cli": ("sites", "moderators", "secrets"),
    "service.serve_cli": ("run", "serve", "worker"),
}


class _CommandModule(Protocol):
    def register(self, commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
        pass


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the one ``argv`` names when it names one (its
    parsing, usage and errors are the same: the top level has no option but --help)."""
    parser = argparse.ArgumentParser(
        prog="civility", description="Self-hosted comment moderation service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = [module for module, names in MODULES.items() if argv and argv[0] in names]
    for module in named or MODULES:
        command_module: _CommandModule = importlib.import_module(module)
        command_module.register(commands)
    _document_environment(parser)
    return parser


def _models() -> tuple[str, ...]:
    from classifier.score_cli import MODELS_DIR_VARIABLE

    return (MODELS_DIR_VARIABLE,)


def _cache() -> tuple[str, ...]:
    """The embeddings kept between runs, read by training and by measuring a semantic stage."""
    from classifier.embedding_cache import CACHE_VARIABLE

    return (CACHE_VARIABLE,)


def _service() -> tuple[str, ...]:
    """Every command that reaches the store reads the whole of the service's settings, and
    refuses to run when any of them is wrong, as `serve` would."""
    from service.settings import Settings

    return Settings.variables()


def _none() -> tuple[str, ...]:
    return ()


# The environment variables each command reads, for its ``--help``: asked of the modules that
# define them only for the commands registered (the classifier's do not import the service's).
ENVIRONMENT: dict[str, Callable[[], tuple[str, ...]]] = {
    "train": _cache,
    "evaluate": _cache,
    "tune": _none,
    "score": _models,
    "labels export": _service,
    "model activate": _models,
    "model list": _models,
    "model show": _models,
    "sites create": _service,
    "sites show": _service,
    "sites update": _service,
    "sites delete": _service,
    "sites reindex": _service,
    "moderators list": _service,
    "moderators revoke": _service,
    "moderators add": _service,
    "secrets rotate": _service,
    "run": _service,
    "serve": _service,
    "worker": _service,
}


def _document_environment(parser: argparse.ArgumentParser, command: str = "") -> None:
    """End every command's ``--help`` with the variables it reads (a command missing from
    ``ENVIRONMENT`` fails here, so a new one cannot forget it)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _document_environment(child, f"{command} {name}".strip())
            return
    names = ENVIRONMENT[command]()
    parser.epilog = f"environment: {', '.join(names) if names else 'none read'}"


def run(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
