"""Helpers shared by the classifier's command tests."""

import argparse

from classifier import cli


def parse_cli(*argv: str) -> argparse.Namespace:
    """A classifier subcommand's arguments as ``civility`` reads them."""
    parser = argparse.ArgumentParser(prog="civility")
    commands = parser.add_subparsers(dest="command", required=True)
    cli.register(commands)
    return parser.parse_args(argv)


def run_cli(*argv: str) -> int:
    """Run a classifier subcommand as ``civility`` would; its exit status."""
    args = parse_cli(*argv)
    return int(args.handler(args))
