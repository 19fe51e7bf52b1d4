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

BODIES_PER_SECOND = 32000


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


SCORING_KINDS = ("scoring", "scoring-long", "forked worker")
"""The processes that score comments: the verdict lane's workers, the long lane's (long texts
and held comments' evidence), and a fork server's child that does not name itself (a checkout
from before the workers did)."""


def process_kind(process: psutil.Process) -> str:
    """What a process of a civility server is: "api", the name a worker gave itself
    ("scoring", "scoring-long", "second-look", ...), "fork server", "resource tracker",
    "forked worker" (a fork server's child without a name of its own), or its command name."""
    command = process.cmdline()
    if command[-1:] == ["serve"]:
        return "api"
    name: str = process.name()
    if name != "python" and not name.startswith("python3"):
        return name
    joined = " ".join(command)
    if "multiprocessing.resource_tracker" in joined:
        return "resource tracker"
    if "multiprocessing.forkserver" in joined:
        # The fork server's children keep its command line.
        parent = process.parent()
        forked = parent is not None and "multiprocessing.forkserver" in " ".join(parent.cmdline())
        return "forked worker" if forked else "fork server"
    return name


def cpu_seconds_by_kind(process: psutil.Process) -> dict[str, float]:
    """CPU used so far by a server and its children, summed per ``process_kind``. With several
    API processes the first one only starts and waits for the others: it counts as "api"."""
    own = process.cpu_times()
    kinds = {"api": own.user + own.system}
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            kind = process_kind(child)
            kinds[kind] = kinds.get(kind, 0.0) + times.user + times.system
    return kinds


def _cpu_seconds(process: psutil.Process) -> dict[str, float]:
    """CPU used so far by a server's API processes, by its scoring workers (both lanes) and by
    the rest (fork servers, resource trackers, the second look), and per process kind."""
    kinds = cpu_seconds_by_kind(process)
    scoring = sum(kinds.get(kind, 0.0) for kind in SCORING_KINDS)
    other = sum(
        value for kind, value in kinds.items() if kind != "api" and kind not in SCORING_KINDS
    )
    cpu = {f"kind:{kind}": value for kind, value in kinds.items()}
    cpu.update(api=kinds["api"], scoring=scoring, other=other)
    return cpu


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
    used = {part: (cpu_after[part] - cpu_before.get(part, 0.0)) * 1000 / sent for part in cpu_after}
    cpu = {part: used[part] for part in ("api", "scoring", "other")}
    cpu["redis"] = (redis_after - redis_before) * 1000 / sent
    cpu["total"] = sum(cpu.values())
    run["cpu_ms_per_request"] = {name: round(value, 3) for name, value in cpu.items()}
    run["cpu_ms_per_request_by_process"] = {
        part.removeprefix("kind:"): round(value, 3)
        for part, value in used.items()
        if part.startswith("kind:")
    }
    return run


def server_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "accepted_per_second": spread([run["accepted_per_second"] for run in runs]),
        "p50_ms": spread([run["p50_ms"] for run in runs]),
        "p99_ms": spread([run["p99_ms"] for run in runs]),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "cpu_ms_per_request": {
            part: spread([run["cpu_ms_per_request"][part] for run in runs])
            for part in ("api", "scoring", "other", "redis", "total")
        },
    }
