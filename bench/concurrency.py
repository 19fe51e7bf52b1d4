"""Intake under 512 concurrent clients: every answer 2xx while Redis is healthy.

    .venv/bin/python -m bench.concurrency [--clients 512] [--requests 4096]

Starts ``civility serve`` against ``REDIS_URL`` (default: database 14 of the Redis at
127.0.0.1:6379, flushed first; another ``REDIS_URL`` must name an empty database, or the seed
nodes of an empty Redis Cluster, ``redis+cluster://host:port,...``), creates a site, and sends
``--requests`` signed comments with unique ids from ``--clients`` concurrent clients, each on a
connection of its own. It does so with the default pool (``CIVILITY_REDIS_MAX_CONNECTIONS``,
256) and with redis-py's old default size (100), where requests wait for a free connection
instead of failing. Prints and writes each run's status counts and latency to
bench/results/concurrency.json (concurrency_cluster.json on a cluster). Run on purpose; pytest
never runs it.
"""

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from typing import Any

import aiohttp

from bench.intake import _bodies
from bench.memory import DATASETS, real_texts
from bench.servers import (
    DEFAULT_REDIS_URL,
    PROJECT_ROOT,
    SITE,
    create_site,
    empty_database,
    free_port,
    on_redis,
    started,
)
from service import signatures
from service.redis_url import parse_redis_url

RESULTS = PROJECT_ROOT / "bench" / "results" / "concurrency.json"
CLUSTER_RESULTS = PROJECT_ROOT / "bench" / "results" / "concurrency_cluster.json"
POOL_SIZES = (256, 100)


async def _burst(url: str, bodies: list[tuple[bytes, str]], clients: int) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    queue = list(reversed(bodies))
    # Every client starts at once: the pool meets all of them together.
    start = asyncio.Event()

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            await start.wait()
            while queue:
                body, signature = queue.pop()
                headers = {"Content-Type": "application/json", signatures.HEADER: signature}
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except aiohttp.ClientError as error:
                    status = type(error).__name__
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)  # let every client open its session before the burst
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def quantile(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    non_2xx = sum(count for status, count in statuses.items() if not status.startswith("2"))
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "non_2xx": non_2xx,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


def _run(redis_url: str, pool_size: int, args: argparse.Namespace) -> dict[str, Any]:
    on_redis(redis_url, lambda client: empty_database(client, redis_url, DEFAULT_REDIS_URL))
    admin_token = secrets.token_urlsafe(24)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": admin_token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_REDIS_MAX_CONNECTIONS": str(pool_size),
    }
    with started([sys.executable, "-m", "service", "serve"], env, f"{base}/readyz"):
        secret = create_site(base, admin_token)
        texts = real_texts(DATASETS)
        bodies = _bodies(args.requests, secret, seed=pool_size, texts=texts)
        result = asyncio.run(_burst(f"{base}/v1/sites/{SITE}/comments", bodies, args.clients))
    # Found empty (or the benchmark's own database): what is there now is this run's.
    on_redis(redis_url, lambda client: client.flushdb())
    return {"redis_max_connections": pool_size, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=512)
    parser.add_argument("--requests", type=int, default=4096)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    load_before = os.getloadavg()[0]
    runs = [_run(redis_url, size, args) for size in POOL_SIZES]
    for run in runs:
        print(
            f"pool {run['redis_max_connections']}: {run['requests']} requests from "
            f"{args.clients} clients, non-2xx {run['non_2xx']} {run['statuses']}, "
            f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms"
        )
    topology = parse_redis_url(redis_url).topology
    report = {
        "clients": args.clients,
        "redis": topology,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.no_write:
        results = CLUSTER_RESULTS if topology == "cluster" else RESULTS
        results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {results.relative_to(PROJECT_ROOT)}")
    if any(run["non_2xx"] for run in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
