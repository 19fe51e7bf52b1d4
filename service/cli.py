"""The ``civility`` command: subcommands come from the packages that own them."""

import argparse
from collections.abc import Sequence

from classifier import cli as classifier_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civility", description="Self-hosted comment moderation service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classifier_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
