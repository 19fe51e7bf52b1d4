"""What every process civility starts for heavy work (scoring, second look, refits) does first."""

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading


def follow_parent() -> None:
    """End this process when the process that started it ends, however it ended, and leave
    Ctrl-C to the parent.

    A child waits for its next task on a queue whose writing end it holds itself, so a parent
    killed without its shutdown (SIGKILL, the OOM killer) would leave it running forever, holding
    the parent's inherited standard output open for whoever reads it.
    """
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
