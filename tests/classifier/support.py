"""Helpers shared by the classifier's command tests."""

import argparse

from classifier import cli


def run_cli(*argv: str) -> int:
    """Run a classifier subcommand as ``civility`` would; its exit status."""
    parser = argparse.ArgumentParser(prog="civility")
    commands = parser.add_subparsers(dest="command", required=True)
    cli.register(commands)
    args = parser.parse_args(argv)
    return int(args.handler(args))
