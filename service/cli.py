"""The ``civility`` command's entry point, which imports the commands only when it runs.

multiprocessing starts each worker process (scoring, second look, refits) by running the entry
script again in it: with every command's modules imported there, each worker spent ~0.4 s of
CPU and ~38 MB of its own memory on a web stack it never uses.
"""

import atexit
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

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


def entry() -> NoReturn:
    """Run ``main`` as the ``civility`` command, and end the process as soon as it is done.

    A normal interpreter exit then spent 0.6-1.3 s (up to 4 s on a loaded machine) tearing down
    the modules and objects of numpy, scikit-learn and aiohttp, after everything was written
    and stopped. So this does what that exit does that matters: wait for the threads that are
    not daemons, run the atexit handlers (multiprocessing's joins and ends its children,
    logging's flushes the handlers, the finalizers of temporary folders remove them), flush
    stdout and stderr; and then ends without the teardown. Not in ``main``, which the tests call
    in their own process."""
    try:
        status = main()
    except SystemExit as stop:
        # argparse ends --help and a wrong command line this way.
        if not (stop.code is None or isinstance(stop.code, int)):
            raise
        status = stop.code or 0
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None when the command was started with it closed
                stream.flush()
    except (OSError, ValueError):
        # A stdout that does not take its last lines: the interpreter's own exit says so and
        # sets the status as it always did.
        sys.exit(status)
    os._exit(status)
