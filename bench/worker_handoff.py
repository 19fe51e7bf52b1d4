"""The API process's CPU per scoring batch handed to a worker: ProcessPoolExecutor against the
worker processes talked to over their own sockets (service/worker_processes.py).

    .venv/bin/python -m bench.worker_handoff [--calls 300] [--batch 16] [--rounds 3]

Both run the same function (intake's ``_score_batch`` on real comments, the active model loaded
in one worker) one batch at a time, as intake does with one worker, interleaved for ``--rounds``
rounds. The figure is this process's CPU (every thread: the pool's feeder and management threads
count) per batch, and the wall time per batch; the worker's own time is the same in both. Writes
bench/results/worker_handoff.json.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.memory import DATASETS, real_texts
from bench.servers import PROJECT_ROOT
from classifier.model import active_stem
from service.scoring import _model_version, _score_batch, _start_worker
from service.worker_processes import WorkerSet

RESULTS = PROJECT_ROOT / "bench" / "results" / "worker_handoff.json"
MODELS_DIR = PROJECT_ROOT / "models"

Call = Callable[[list[str]], Awaitable[Any]]


async def _timed(call: Call, batches: Sequence[list[str]]) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        await call(batch)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "api_cpu_ms_per_batch": round(1000 * cpu / len(batches), 4),
        "wall_ms_per_batch": round(1000 * wall / len(batches), 4),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    texts = real_texts(Path(args.datasets))
    chooser = random.Random(14)
    batches = [chooser.sample(texts, args.batch) for _ in range(args.calls)]
    stem = active_stem(MODELS_DIR)
    initargs = (MODELS_DIR, stem, None, "civ")
    loop = asyncio.get_running_loop()

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["classifier.model"])
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker, initargs=initargs)
    await loop.run_in_executor(pool, _model_version)
    workers, _ = await WorkerSet.start(
        1, _start_worker, initargs, name="scoring", preload=["classifier.model"]
    )

    async def by_pool(batch: list[str]) -> Any:
        return await loop.run_in_executor(pool, _score_batch, batch, [None] * len(batch))

    async def by_sockets(batch: list[str]) -> Any:
        return await workers.run(_score_batch, batch, [None] * len(batch))

    assert await by_pool(batches[0]) == await by_sockets(batches[0])
    runs: dict[str, list[dict[str, float]]] = {"process_pool": [], "worker_sockets": []}
    try:
        for round_number in range(args.rounds):
            order = [("process_pool", by_pool), ("worker_sockets", by_sockets)]
            for name, call in order if round_number % 2 == 0 else order[::-1]:
                runs[name].append(await _timed(call, batches))
    finally:
        pool.shutdown(wait=True)
        await workers.close()
    summary = {
        name: {
            key: statistics.median(run[key] for run in results)
            for key in ("api_cpu_ms_per_batch", "wall_ms_per_batch")
        }
        for name, results in runs.items()
    }
    return {
        "summary": summary,
        "api_cpu_ratio": round(
            summary["worker_sockets"]["api_cpu_ms_per_batch"]
            / summary["process_pool"]["api_cpu_ms_per_batch"],
            3,
        ),
        "runs": runs,
        "calls": args.calls,
        "batch": args.batch,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--datasets", default=str(DATASETS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    report = asyncio.run(_run(args))
    for name, figures in report["summary"].items():
        print(f"{name}: {figures}")
    print(f"API CPU, sockets / pool: {report['api_cpu_ratio']} (load {report['machine']})")
    if not args.no_write:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
