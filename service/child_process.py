"""What every process civility starts for heavy work (scoring, second look, refits) does first."""

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from pathlib import Path

COMMAND_NAME_BYTES = 15
"""What Linux keeps of a process's command name (``/proc/<pid>/comm``)."""


def name_process(name: str) -> None:
    """Show ``name`` as this process's command name (``ps -o comm``, ``top``, psutil's
    ``name()``), cut to what Linux keeps; a no-op where there is no ``/proc``.

    The children of the fork server all carry its command line, so without this a scoring
    worker, a long-lane worker and the fork server itself look alike from outside."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_bytes(name.encode()[:COMMAND_NAME_BYTES])


def follow_parent() -> None:
    """Take the name the parent gave this process (``name_process``), end it when the process
    that started it ends, however it ended, and leave Ctrl-C to the parent.

    A child waits for its next task on a queue whose writing end it holds itself, so a parent
    killed without its shutdown (SIGKILL, the OOM killer) would leave it running forever, holding
    the parent's inherited standard output open for whoever reads it.
    """
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    name_process(multiprocessing.current_process().name)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
