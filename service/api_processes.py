"""``civility serve`` with several API processes: each a whole app sharing the one port, and
every signal the parent gets forwarded to them all."""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

# Set in the environment of the API processes `civility serve` starts, so they serve themselves.
API_PROCESS_MARKER = "CIVILITY_API_PROCESS_OF"
# The rest of their environment, named here so that the supervisor, which runs this module alone,
# imports neither the metrics' modules nor the scoring's that read it.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""The folder where each API process writes its metrics (prometheus-client's multiprocess mode,
read when it is imported: set before the API processes start)."""
SHARE_DIR_VARIABLE = "CIVILITY_SHARED_SCORING_DIR"
"""The folder where shared workers listen."""
PROCESS_INDEX_VARIABLE = "CIVILITY_API_PROCESS_INDEX"
"""0 for the API process whose workers are shared."""
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def become_supervisor(count: int) -> NoReturn:
    """Replace this process with a fresh interpreter that runs ``serve_in_processes(count)``.

    Its pid stays, so the signals a terminal or a container manager sends it still reach every
    API process; it imports this module alone, and the ~120 MB of private memory that every
    command's modules (the model's and the web stack's among them) took in it are given back."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", __name__, str(count)])


def supervisor_gone() -> bool:
    """True in an API process whose supervisor has ended: it then has another parent (init, or
    the nearest subreaper)."""
    return os.getppid() != int(os.environ[API_PROCESS_MARKER])


class SupervisorFolders:
    """The temporary folders the supervisor made for its API processes, as one of them sees them.

    Each API process holds a shared lock on the first folder while it runs. A supervisor killed
    outright removes nothing, so its API processes do: the last of them to leave finds no other
    lock, and removes the folders."""

    def __init__(self) -> None:
        self._folders = [
            Path(os.environ[MULTIPROCESS_DIR_VARIABLE]),
            Path(os.environ[SHARE_DIR_VARIABLE]),
        ]
        # Not inherited: the scoring processes, started through exec, never hold it.
        self._lock = os.open(self._folders[0], os.O_RDONLY)
        fcntl.flock(self._lock, fcntl.LOCK_SH)

    def leave(self) -> None:
        """Let the folders go; remove them if the supervisor is gone and no API process runs."""
        try:
            if not supervisor_gone():
                return  # it removes them once every API process has stopped
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another API process still runs: the last one removes them
            for folder in self._folders:
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(self._lock)


def serve_in_processes(count: int) -> int:
    """Start ``count`` API processes sharing the port; signals reach them all.

    Returns when every one has stopped: 0 if each stopped cleanly, 1 if one failed (the others are
    then told to stop, since a partly running service would hide the failure).
    """
    with (
        tempfile.TemporaryDirectory(prefix="civility-metrics-") as metrics_folder,
        # Short: the shared workers' socket paths in it must stay under 100 bytes.
        tempfile.TemporaryDirectory(prefix="civ-scoring-") as scoring_folder,
    ):
        env = {
            **os.environ,
            API_PROCESS_MARKER: str(os.getpid()),
            MULTIPROCESS_DIR_VARIABLE: metrics_folder,
            # The first API process's verdict workers score the others' batches with its own
            # (``service.shared_scoring``).
            SHARE_DIR_VARIABLE: scoring_folder,
        }
        return _run_api_processes(count, env)


def _run_api_processes(count: int, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "service", "serve"]
    children: list[subprocess.Popen[bytes]] = []
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def told_to_stop(code: int) -> bool:
        """True for the exit code of a process ended by a stop signal passed on to it."""
        return -code in STOP_SIGNALS and -code in received

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    # Held by `civility serve` until it could be forwarded (one that came meanwhile is not: the
    # API processes load the active model as they start).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    try:
        for index in range(count):
            if any(signum in STOP_SIGNALS for signum in received):
                break  # told to stop while starting them: start no more
            seen = len(received)
            # Started with SIGHUP blocked (the mask outlives exec), it holds a reload until it
            # can act on it rather than end; it unblocks it itself.
            before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
            try:
                child = subprocess.Popen(command, env={**env, PROCESS_INDEX_VARIABLE: str(index)})
                # A stop that came while it started reached only the others: it is passed on
                # here (a reload need not be: it loads the active model as it starts). Signals
                # blocked meanwhile, none comes between the two steps, so none is lost nor sent
                # twice.
                signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
                children.append(child)
                stops = [signum for signum in received[seen:] if signum in STOP_SIGNALS]
                if stops:
                    child.send_signal(stops[0])
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, before)
        failed = False
        while children:
            pid, status = os.wait()
            stopped = [child for child in children if child.pid == pid]
            if not stopped:
                continue
            children.remove(stopped[0])
            code = os.waitstatus_to_exitcode(status)
            # One ended by the stop it was passed (before it could stop cleanly) did as told.
            if code != 0 and not told_to_stop(code) and not failed:
                failed = True
                print(f"civility: API process {pid} failed; stopping the others", file=sys.stderr)
                forward(signal.SIGTERM, None)
            # Popen must not wait for a pid os.wait already reaped.
            stopped[0].returncode = code
    finally:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(serve_in_processes(int(sys.argv[1])))
