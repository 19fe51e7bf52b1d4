"""Scoring speed of the active model on one core, beside alt-profanity-check in the same run.

Run on purpose, not by the test suite::

    .venv/bin/python bench/classifier.py            # or: make bench
    .venv/bin/python bench/classifier.py --profile  # plus a cProfile of batch scoring

It pins itself to one CPU (and every BLAS/OpenMP pool to one thread), reads real comments from
the news-comment sets, and measures: comments per second at batch 1, 32 and 512; the latency of
a single comment (p50, p99); model load time and peak RSS (in a fresh process that loads the model
and scores one batch); the artifact size; and alt-profanity-check's comments per second at the
same batch sizes. It prints a table and writes ``bench/results/classifier.json``.
"""

import sys
from pathlib import Path

# Run as ``python bench/classifier.py``, this file's folder comes first on sys.path, and this
# file's name would then shadow the ``classifier`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.pipeline import FeatureUnion, Pipeline  # noqa: E402
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: E402

from classifier.datasets import load_source  # noqa: E402
from classifier.model import Model, active_stem  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "classifier.json"
# Comments as a news site receives them: three sets of reader comments on news articles.
SOURCES = (
    "c3-constructive-comments-corpus",
    "kaggle-insults-social-commentary",
    "toxic-spans-civil-comments",
)
BATCH_SIZES = (1, 32, 512)
COMMENTS_PER_RUN = 4096
REPEATS = 3
LOAD_REPEATS = 3
SEED = 20261127
TARGETS = {"comments_per_second_at_512": 3000.0, "single_p99_ms": 3.0, "load_seconds": 3.0}

Scorer = Callable[[list[str]], object]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--data", type=Path, default=_default_datasets())
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile")
    parser.add_argument("--child-load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_load is not None:
        return _child_load(args.child_load)

    cpu = pin_to_one_core(args.cpu)
    limits = threadpool_limits(limits=1)
    texts = load_texts(args.data)
    artifact = args.models_dir / f"{active_stem(args.models_dir)}.joblib"
    print(f"{len(texts)} comments from {', '.join(SOURCES)}; model {artifact.stem}; CPU {cpu}")

    cold = [_load_in_fresh_process(artifact, texts[:512]) for _ in range(LOAD_REPEATS)]
    model = Model.load(artifact)
    ours = measure(model.score, texts)
    peer = measure(_profanity_check_scorer(), texts)
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": artifact.stem,
        "artifact_mb": round(artifact.stat().st_size / 1e6, 2),
        "machine": _machine(cpu),
        "comments": _describe(texts),
        "civility": {
            **ours,
            "load_seconds": round(statistics.median(run["load_seconds"] for run in cold), 3),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in cold), 1),
        },
        "alt_profanity_check": {
            key: peer[key]
            for key in ("comments_per_second", "comments_per_cpu_second", "cpu_share")
        },
        # CPU time is what the two scorers cost; wall time also counts other processes' turns.
        "speed_ratio_vs_alt_profanity_check": {
            size: round(
                ours["comments_per_cpu_second"][size] / peer["comments_per_cpu_second"][size], 2
            )
            for size in ours["comments_per_cpu_second"]
        },
        "stages_cpu_ms_per_1000_comments": stage_breakdown(artifact, texts),
    }
    results["targets"] = _check_targets(results)
    limits.unregister()
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    if args.profile:
        print_profile(model, texts)
    return 0


def _default_datasets() -> Path:
    return Path(os.environ.get("CIVILITY_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets"))


def pin_to_one_core(cpu: int | None) -> int:
    """Run this process (and the processes it starts) on one CPU only."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def load_texts(datasets_dir: Path) -> list[str]:
    """Every comment text of the news-comment sets, in a fixed shuffled order."""
    texts = [
        record.text
        for name in SOURCES
        for records in load_source(datasets_dir, name).splits.values()
        for record in records
    ]
    random.Random(SEED).shuffle(texts)
    return texts


def measure(score: Scorer, texts: list[str]) -> dict[str, Any]:
    """Comments per second at each batch size (median of repeats), and single-comment latency.

    Rates and latencies are given in wall time and in CPU time of this process: on a shared
    machine other processes take turns on the pinned CPU, which slows the wall clock only.
    """
    score(texts[: BATCH_SIZES[-1]])  # warm caches and lazy imports
    per_second: dict[str, float] = {}
    per_cpu_second: dict[str, float] = {}
    latencies: list[Timing] = []
    wall_began, cpu_began = time.perf_counter(), time.process_time()
    for size in BATCH_SIZES:
        rates: list[Timing] = []
        for repeat in range(REPEATS):
            start = repeat * COMMENTS_PER_RUN % max(1, len(texts) - COMMENTS_PER_RUN)
            run = texts[start : start + COMMENTS_PER_RUN]
            timings = _timed_batches(score, run, size)
            wall = sum(timing.wall for timing in timings)
            cpu = sum(timing.cpu for timing in timings)
            rates.append(Timing(len(run) / wall, len(run) / cpu))
            if size == 1:
                latencies.extend(timings)
        per_second[str(size)] = round(statistics.median(rate.wall for rate in rates), 1)
        per_cpu_second[str(size)] = round(statistics.median(rate.cpu for rate in rates), 1)
    cpu_share = (time.process_time() - cpu_began) / (time.perf_counter() - wall_began)
    return {
        "comments_per_second": per_second,
        "comments_per_cpu_second": per_cpu_second,
        # Below 1.0 other processes took the pinned CPU part of the time: wall rates are then low.
        "cpu_share": round(cpu_share, 2),
        "single_latency_ms": _percentiles([timing.wall for timing in latencies]),
        "single_cpu_ms": _percentiles([timing.cpu for timing in latencies]),
    }


def _percentiles(seconds: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(seconds, 50)) * 1e3, 3),
        "p99": round(float(np.percentile(seconds, 99)) * 1e3, 3),
    }


@dataclass(frozen=True, slots=True)
class Timing:
    wall: float
    cpu: float


def _timed_batches(score: Scorer, texts: list[str], size: int) -> list[Timing]:
    timings = []
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        wall, cpu = time.perf_counter(), time.process_time()
        score(batch)
        timings.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))
    return timings


def _profanity_check_scorer() -> Scorer:
    from profanity_check import predict_prob

    def score(texts: list[str]) -> object:
        return predict_prob(texts)

    return score


def _load_in_fresh_process(artifact: Path, batch: list[str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child-load", str(artifact)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout)
    return result


def _child_load(artifact: Path) -> int:
    """In a fresh process: time ``Model.load``, score one batch, report the peak RSS."""
    with threadpool_limits(limits=1):
        batch = json.loads(sys.stdin.read())
        began = time.perf_counter()
        model = Model.load(artifact)
        load_seconds = time.perf_counter() - began
        model.score(batch)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"load_seconds": load_seconds, "peak_rss_mb": peak_kib / 1024}))
    return 0


def stage_breakdown(artifact: Path, texts: list[str]) -> dict[str, float]:
    """CPU milliseconds per 1000 comments in each step of the fitted scikit-learn pipeline, at
    batch 512: where training-time transforms spend their time. ``Model.score`` replaces the two
    n-gram steps by their compiled equivalents (``classifier.fast_features``), so the rates above
    are faster than this breakdown adds up to."""
    pipeline = joblib.load(artifact)
    totals: dict[str, float] = {}
    run = texts[:COMMENTS_PER_RUN]
    for start in range(0, len(run), BATCH_SIZES[-1]):
        _timed_transform(pipeline, run[start : start + BATCH_SIZES[-1]], "", totals)
    return {name: round(seconds * 1e6 / len(run), 2) for name, seconds in totals.items()}


def _timed_transform(estimator: Any, data: Any, path: str, totals: dict[str, float]) -> Any:
    """Run ``estimator`` on ``data`` step by step, adding each leaf step's time to ``totals``."""
    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            data = _timed_transform(step, data, f"{path}{name}/", totals)
        return data
    if isinstance(estimator, FeatureUnion):
        parts = [
            _timed_transform(part, data, f"{path}{name}/", totals)
            for name, part in estimator.transformer_list
        ]
        return sp.hstack(parts).tocsr()
    began = time.process_time()
    if hasattr(estimator, "transform"):
        result = estimator.transform(data)
    else:
        result = estimator.predict_proba(data)
    key = path.rstrip("/")
    totals[key] = totals.get(key, 0.0) + time.process_time() - began
    return result


def print_profile(model: Model, texts: list[str]) -> None:
    run = texts[:COMMENTS_PER_RUN]
    profiler = cProfile.Profile()
    profiler.enable()
    for start in range(0, len(run), BATCH_SIZES[-1]):
        model.score(run[start : start + BATCH_SIZES[-1]])
    profiler.disable()
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
    print(report.getvalue())


def _machine(cpu: int) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "pinned_cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _describe(texts: list[str]) -> dict[str, Any]:
    lengths = [len(text) for text in texts]
    return {
        "sources": list(SOURCES),
        "count": len(texts),
        "mean_chars": round(statistics.mean(lengths), 1),
        "median_chars": statistics.median(lengths),
    }


def _check_targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target against the wall-clock figure and against the CPU-time one."""
    ours = results["civility"]
    measured = {
        "comments_per_second_at_512": (
            ours["comments_per_second"]["512"],
            ours["comments_per_cpu_second"]["512"],
        ),
        "single_p99_ms": (ours["single_latency_ms"]["p99"], ours["single_cpu_ms"]["p99"]),
        "load_seconds": (ours["load_seconds"], ours["load_seconds"]),
    }
    checks = {}
    for name, target in TARGETS.items():
        wall, cpu = measured[name]
        higher_is_better = name.startswith("comments")
        checks[name] = {
            "target": target,
            "measured_wall": wall,
            "measured_cpu": cpu,
            "met_wall": wall >= target if higher_is_better else wall < target,
            "met_cpu": cpu >= target if higher_is_better else cpu < target,
        }
    return checks


def print_table(results: dict[str, Any]) -> None:
    ours = results["civility"]
    peer = results["alt_profanity_check"]
    ratio = results["speed_ratio_vs_alt_profanity_check"]
    print(
        f"\n{'batch':>6} {'civility/s':>11} {'(CPU s)':>9} {'alt-profanity-check/s':>22}"
        f" {'(CPU s)':>9} {'ratio (CPU)':>12}"
    )
    for size in ours["comments_per_second"]:
        print(
            f"{size:>6} {ours['comments_per_second'][size]:>11,.0f}"
            f" {ours['comments_per_cpu_second'][size]:>9,.0f}"
            f" {peer['comments_per_second'][size]:>22,.0f}"
            f" {peer['comments_per_cpu_second'][size]:>9,.0f} {ratio[size]:>12.2f}"
        )
    latency, cpu = ours["single_latency_ms"], ours["single_cpu_ms"]
    print(
        f"\nsingle comment: p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms"
        f" (CPU time: p50 {cpu['p50']:.2f} ms, p99 {cpu['p99']:.2f} ms)"
        f"\nshare of the pinned CPU the run got: {ours['cpu_share']:.2f}"
        f"\nmodel load {ours['load_seconds']:.2f} s, peak RSS {ours['peak_rss_mb']:.0f} MB,"
        f" artifact {results['artifact_mb']:.1f} MB"
    )
    print(f"\n{'target':<28} {'wall':>9} {'CPU':>9} {'target':>8}  met (wall/CPU)")
    for name, check in results["targets"].items():
        met = "/".join("yes" if check[key] else "NO" for key in ("met_wall", "met_cpu"))
        print(
            f"{name:<28} {check['measured_wall']:>9} {check['measured_cpu']:>9}"
            f" {check['target']:>8}  {met}"
        )
    print("\nCPU ms per 1000 comments by scikit-learn pipeline step (batch 512, uncompiled):")
    for name, milliseconds in results["stages_cpu_ms_per_1000_comments"].items():
        print(f"  {name:<40} {milliseconds:>9.1f}")


if __name__ == "__main__":
    sys.exit(main())
