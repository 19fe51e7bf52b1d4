"""What the benchmarks share to run civility: a free port, a process awaited until it answers,
the benchmark site, and Redis reached the way civility reaches it (``service.connection``)."""

import asyncio
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from service.connection import connect
from service.settings import Settings
from service.store.scripts import RedisClient

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SITE = "bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
"""The database a benchmark flushes and fills unless ``REDIS_URL`` names another: outside 1-13,
which test runs lease (``tests/conftest.py``); bench.delivery keeps 15 to itself."""
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answers(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


@contextmanager
def started(
    command: list[str], env: dict[str, str], ready_url: str | None = None, *, quiet: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """The process running until the block ends, once ``ready_url`` (if any) answers 200."""
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=output)
    try:
        if ready_url is not None:
            wait_until_answers(ready_url, process, 120)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def create_site(
    base: str, admin_token: str, site: str = SITE, policy: dict[str, Any] | None = None
) -> str:
    """A benchmark site (by default no flood interval: the drivers post fast), its webhook
    secret."""
    spec = {"id": site, "name": "Benchmark", "policy": policy or {"flood_seconds_per_author": 0}}
    request = urllib.request.Request(
        f"{base}/v1/sites",
        data=json.dumps(spec).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created: dict[str, Any] = json.loads(response.read())
    return str(created["webhook_secret"])


@asynccontextmanager
async def redis_client(redis_url: str) -> AsyncIterator[RedisClient]:
    """A client of ``redis_url`` (one server, Sentinel or a cluster), made as civility makes its
    own, closed when the block ends."""
    connection = connect(Settings(redis_url=redis_url))
    try:
        yield connection.client
    finally:
        await connection.aclose()


def on_redis(redis_url: str, work: Callable[[RedisClient], Awaitable[T]]) -> T:
    """``work`` done on a fresh client, from code that runs outside an event loop."""

    async def run() -> T:
        async with redis_client(redis_url) as client:
            return await work(client)

    return asyncio.run(run())


async def empty_database(client: RedisClient, redis_url: str, own_url: str) -> None:
    """Flush the benchmark's own database; refuse another one that holds data, which the
    benchmark would fill with thousands of comments."""
    if redis_url == own_url:
        await client.flushdb()
    elif await client.dbsize():
        raise SystemExit(f"{redis_url} is not empty; point REDIS_URL at an empty database")
