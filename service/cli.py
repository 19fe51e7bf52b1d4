"""The ``civility`` command's entry point, which imports the commands only when it runs.

multiprocessing starts each worker process (scoring, second look, refits) by running the entry
script again in it: with every command's modules imported there, each worker spent ~0.4 s of
CPU and ~38 MB of its own memory on a web stack it never uses.
"""

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from service.commands import run

    return run(argv)
