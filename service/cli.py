"""The ``civility`` command's entry point, which imports the commands only when it runs.

multiprocessing starts each worker process (scoring, second look, refits) by running the entry
script again in it: with every command's modules imported there, each worker spent ~0.4 s of
CPU and ~38 MB of its own memory on a web stack it never uses.
"""

import signal
import sys
from collections.abc import Sequence

# What a shell reports for a command ended by Ctrl-C: 130.
INTERRUPTED_STATUS = 128 + signal.SIGINT


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from service.commands import run

        return run(argv)
    except KeyboardInterrupt:
        # Ctrl-C while the commands load (a second or two): no command has started yet.
        print("civility: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
