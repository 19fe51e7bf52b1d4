"""What every process civility starts for heavy work (scoring, second look, refits) does first."""

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from multiprocessing import resource_tracker
from multiprocessing.process import BaseProcess
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


def start_child(process: BaseProcess) -> None:
    """Start ``process`` (of the forkserver or spawn context) with SIGINT blocked, and the fork
    server too when this start launches it: a blocked signal stays blocked across fork and exec.

    A terminal's Ctrl-C reaches the whole process group. A process that starts with SIGINT at
    its default dies of one that comes before ``follow_parent`` ignores it: Python raises
    ``KeyboardInterrupt`` wherever it is (the fork server gives each process it forks that
    handler back), so a fork server importing its preloaded modules, or a child still unpickling
    what it runs, ended at a Ctrl-C in the service's first seconds, and its parent took that
    for a failure. Blocked, the Ctrl-C waits, and ``follow_parent`` discards it. The fork server
    keeps it blocked, and ignores it once its modules are imported. Only this thread blocks it,
    for the start alone: the parent's own handler still gets it."""
    # Its start unblocks SIGINT in the thread that started it (Python's resource tracker): it
    # is started first, so that the block below holds for the processes started after it.
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def follow_parent() -> None:
    """Take the name the parent gave this process (``name_process``), end it when the process
    that started it ends, however it ended, and leave Ctrl-C to the parent.

    A child waits for its next task on a queue whose writing end it holds itself, so a parent
    killed without its shutdown (SIGKILL, the OOM killer) would leave it running forever, holding
    the parent's inherited standard output open for whoever reads it.
    """
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop. Started
    # with SIGINT blocked (``start_child``): ignoring it discards one that came meanwhile, and
    # only then is it unblocked, so none is raised here nor left blocked for what this process
    # starts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    name_process(multiprocessing.current_process().name)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
