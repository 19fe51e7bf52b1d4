"""Subcommands of ``civility`` that belong to the classifier: train, evaluate, score."""

import argparse

from classifier import score_cli

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    """Add the classifier's subcommands to the ``civility`` parser."""
    score_cli.register(commands)
