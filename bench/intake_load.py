"""What bench.intake and its cases share: a load sent by a driver process (``python -m
bench.intake drive``) and the figures of a server under it (latency, rates, CPU per request of
the API, the scoring workers and Redis)."""

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.servers import PROJECT_ROOT, on_redis
from service.store.scripts import RedisClient

BODIES_PER_SECOND = 16000


@dataclass(frozen=True)
class Load:
    """What one driver sends: how many at once, which texts (the datasets' when None), and how
    many bodies per second it prepares (it must not run out)."""

    concurrency: int
    texts: Path | None = None
    bodies_per_second: int = BODIES_PER_SECOND


def start_driver(
    url: str, secret: str, args: argparse.Namespace, seed: int, load: Load
) -> "subprocess.Popen[str]":
    command = [
        sys.executable, "-m", "bench.intake", "drive", "--url", url, "--secret", secret,
        "--concurrency", str(load.concurrency), "--seconds", str(args.seconds),
        "--seed", str(seed), "--datasets", args.datasets,
        "--bodies-per-second", str(load.bodies_per_second),
        *(["--texts", str(load.texts)] if load.texts else []),
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def driver_result(driver: "subprocess.Popen[str]") -> dict[str, Any]:
    stdout, stderr = driver.communicate()
    if driver.returncode != 0:
        raise SystemExit(f"the driver failed:\n{stderr}")
    result: dict[str, Any] = json.loads(stdout)
    return result


def run_driver(
    url: str, secret: str, args: argparse.Namespace, seed: int, load: Load | None = None
) -> dict[str, Any]:
    return driver_result(start_driver(url, secret, args, seed, load or Load(args.concurrency)))


def _cpu_seconds(process: psutil.Process) -> dict[str, float]:
    """CPU used so far by a server's API processes and, separately, by its scoring workers."""
    own = process.cpu_times()
    api, workers = own.user + own.system, 0.0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            # With several API processes the first one only starts and waits for the others.
            if child.cmdline()[-1:] == ["serve"]:
                api += times.user + times.system
            else:
                workers += times.user + times.system
    return {"api": api, "scoring": workers}


async def _redis_cpu_seconds(client: RedisClient) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def _settled_cpu_seconds(server: psutil.Process) -> dict[str, float]:
    """CPU used so far, once the scoring workers have finished what the requests left them
    (evidence is worked out after the answer): they are idle for a quarter of a second."""
    cpu = _cpu_seconds(server)
    for _ in range(240):
        time.sleep(0.25)
        later = _cpu_seconds(server)
        if later["scoring"] - cpu["scoring"] < 0.005:
            return later
        cpu = later
    return cpu


def measured(
    url: str, secret: str, args: argparse.Namespace, seed: int, server: psutil.Process,
    redis_url: str, load: Load | None = None,
) -> dict[str, Any]:  # fmt: skip
    cpu_before = _settled_cpu_seconds(server)
    redis_before = on_redis(redis_url, _redis_cpu_seconds)
    run = run_driver(url, secret, args, seed, load)
    cpu_after = _settled_cpu_seconds(server)
    redis_after = on_redis(redis_url, _redis_cpu_seconds)
    sent = max(run["sent_in_total"], 1)
    cpu = {
        "api": (cpu_after["api"] - cpu_before["api"]) * 1000 / sent,
        "scoring": (cpu_after["scoring"] - cpu_before["scoring"]) * 1000 / sent,
        "redis": (redis_after - redis_before) * 1000 / sent,
    }
    cpu["total"] = cpu["api"] + cpu["scoring"] + cpu["redis"]
    run["cpu_ms_per_request"] = {name: round(value, 3) for name, value in cpu.items()}
    return run


def server_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "accepted_per_second": spread([run["accepted_per_second"] for run in runs]),
        "p50_ms": spread([run["p50_ms"] for run in runs]),
        "p99_ms": spread([run["p99_ms"] for run in runs]),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "cpu_ms_per_request": {
            part: spread([run["cpu_ms_per_request"][part] for run in runs])
            for part in ("api", "scoring", "redis", "total")
        },
    }
