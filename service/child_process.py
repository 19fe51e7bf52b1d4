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


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
"""What a whole process group is sent to stop it: a terminal's Ctrl-C, and the SIGTERM of a
process supervisor or container runtime (systemd's ``KillMode=control-group``, ``docker stop``
with an init that signals the group). The parent alone decides how its children stop."""


def start_child(process: BaseProcess) -> None:
    """Start ``process`` (of the forkserver or spawn context) with SIGINT and SIGTERM blocked,
    and the fork server too when this start launches it: a blocked signal stays blocked across
    fork and exec.

    A terminal's Ctrl-C reaches the whole process group, and so does the SIGTERM of a supervisor
    that stops the group. A process that starts with either at its default dies of one that
    comes before ``follow_parent`` ignores it (Python raises ``KeyboardInterrupt`` wherever it
    is; the fork server gives each process it forks that handler back, and SIGTERM's default is
    to die): a fork server importing its preloaded modules, or a child still unpickling what it
    runs, ended at a Ctrl-C in the service's first seconds, and its parent took that for a
    failure. Blocked, the signal waits, and ``follow_parent`` discards it. The fork server keeps
    both blocked for its whole life (it ignores SIGINT besides, once its modules are imported):
    it ends when its parent does. Only this thread blocks them, for the start alone: the
    parent's own handlers still get them."""
    # Its start unblocks SIGINT in the thread that started it (Python's resource tracker, which
    # ignores SIGINT and SIGTERM itself): it is started first, so that the block below holds for
    # the processes started after it.
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def follow_parent(*, stopped_by_sigterm: bool = False) -> None:
    """Take the name the parent gave this process (``name_process``), end it when the process
    that started it ends, however it ended, and leave Ctrl-C and a SIGTERM sent to the whole
    process group to the parent, which stops (or ends) its children once it has stopped taking
    work.

    A child waits for its next task on a queue whose writing end it holds itself, so a parent
    killed without its shutdown (SIGKILL, the OOM killer) would leave it running forever, holding
    the parent's inherited standard output open for whoever reads it.

    ``stopped_by_sigterm``: the parent asks this process to stop with SIGTERM (the refit
    process). It is left blocked, not ignored, so that one the parent sends before this process
    has set its handler is not lost: the process unblocks it once its handler is set. One sent to
    the whole group then asks the same: to stop after the work in hand.
    """
    # Both reach the whole process group; the parent alone decides how to stop. Started with
    # them blocked (``start_child``): ignoring one discards what came meanwhile, and only then
    # is it unblocked, so none is raised here nor left blocked for what this process starts.
    ignored = STOP_SIGNALS - {signal.SIGTERM} if stopped_by_sigterm else STOP_SIGNALS
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ignored)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    name_process(multiprocessing.current_process().name)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
