"""Cost of the semantic stage's encoder beside the lexical model, on real news comments.

Run on purpose, not by the test suite::

    .venv/bin/python bench/semantic.py

Reads the comments of the news-comment sets (their real length distribution, in a fixed shuffled
order) and measures, for 1 and 2 onnxruntime threads and a maximum of 128 and 256 tokens: comments
per second through the encoder in batches of 32, and the lexical ``Model.score`` of the active
model on the same batches, run in turn with the encoder's (so both see the same machine load),
with the ratio of the two. In fresh processes: the encoder's load time (checksums included) and
the peak RSS of a process that embeds the whole sample. Prints a table and writes
``bench/results/semantic.json``.
"""

import sys
from pathlib import Path

# Run as ``python bench/semantic.py``, this file's folder comes first on sys.path; keep it from
# shadowing installed packages, as bench/classifier.py does.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: E402

from classifier.datasets import load_source  # noqa: E402
from classifier.encoder import BATCH_SIZE, MAX_RUN_TOKENS, Encoder  # noqa: E402
from classifier.model import Model, active_stem  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "semantic.json"
SOURCES = (
    "c3-constructive-comments-corpus",
    "kaggle-insults-social-commentary",
    "toxic-spans-civil-comments",
)
THREADS = (1, 2)
MAX_LENGTHS = (128, 256)
SAMPLE = 960
SEED = 20261205

Scorer = Callable[[list[str]], object]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--data", type=Path, default=_default_datasets())
    parser.add_argument("--sample", type=int, default=SAMPLE, help="comments per configuration")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", nargs=2, metavar=("THREADS", "MAX_LENGTH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(int(args.child[0]), int(args.child[1]))

    texts = load_texts(args.data)[: args.sample]
    artifact = args.models_dir / f"{active_stem(args.models_dir)}.joblib"
    print(f"{len(texts)} comments from {', '.join(SOURCES)}; lexical model {artifact.stem}")
    model = Model.load(artifact, semantic=False)
    configurations = []
    for threads in THREADS:
        for max_length in MAX_LENGTHS:
            encoder = Encoder(threads=threads, max_length=max_length)
            measured = interleaved(encoder.embed, model.score, texts)
            fresh = _in_fresh_process(threads, max_length, texts)
            configurations.append(
                {"threads": threads, "max_length": max_length, **measured, **fresh}
            )
            print(f"  {threads} thread(s), max {max_length} tokens: done")
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lexical_model": artifact.stem,
        "batch_size": BATCH_SIZE,
        "max_run_tokens": MAX_RUN_TOKENS,
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "comments": _describe(texts),
        "tokens": token_lengths(texts),
        "configurations": configurations,
    }
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


def _default_datasets() -> Path:
    return Path(os.environ.get("CIVILITY_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets"))


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


def interleaved(semantic: Scorer, lexical: Scorer, texts: list[str]) -> dict[str, Any]:
    """Both scorers over the same batches of 32, one batch each in turn."""
    batches = [texts[start : start + BATCH_SIZE] for start in range(0, len(texts), BATCH_SIZE)]
    semantic(batches[0])  # load and warm up
    lexical(batches[0])
    spent = {"semantic": [0.0, 0.0], "lexical": [0.0, 0.0]}
    batch_ms: list[float] = []
    wall_began, cpu_began = time.perf_counter(), time.process_time()
    for batch in batches:
        for name, score in (("semantic", semantic), ("lexical", lexical)):
            wall, cpu = time.perf_counter(), time.process_time()
            score(batch)
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
            if name == "semantic":
                batch_ms.append((time.perf_counter() - wall) * 1e3)
    elapsed_wall = time.perf_counter() - wall_began
    elapsed_cpu = time.process_time() - cpu_began
    rates = {name: round(len(texts) / wall, 1) for name, (wall, _) in spent.items()}
    cpu_rates = {name: round(len(texts) / cpu, 1) for name, (_, cpu) in spent.items()}
    return {
        "comments_per_second": rates,
        "comments_per_cpu_second": cpu_rates,
        "lexical_to_semantic_ratio": round(rates["lexical"] / rates["semantic"], 1),
        "semantic_batch_ms": {
            "p50": round(float(np.percentile(batch_ms, 50)), 1),
            "p99": round(float(np.percentile(batch_ms, 99)), 1),
        },
        # CPU seconds per wall second of this process: up to the thread count when it had the
        # cores to itself, less when other processes took turns.
        "cpu_share": round(elapsed_cpu / elapsed_wall, 2),
    }


def _in_fresh_process(threads: int, max_length: int, texts: list[str]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(threads), str(max_length)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout)
    return result


def _child(threads: int, max_length: int) -> int:
    """In a fresh process: load the encoder (verifying both files), embed every text given,
    report the load time and the peak RSS."""
    with threadpool_limits(limits=1):
        texts = json.loads(sys.stdin.read())
        before_load = _peak_rss_mb()
        encoder = Encoder(threads=threads, max_length=max_length)
        began = time.perf_counter()
        encoder.load()
        load_seconds = time.perf_counter() - began
        after_load = _peak_rss_mb()
        encoder.embed(texts)
    print(
        json.dumps(
            {
                "load_seconds": round(load_seconds, 3),
                "peak_rss_mb": _peak_rss_mb(),
                "peak_rss_before_load_mb": before_load,
                "peak_rss_after_load_mb": after_load,
            }
        )
    )
    return 0


def _peak_rss_mb() -> float:
    """This process's peak RSS. ``getrusage``'s survives ``exec`` and would start at the
    parent's; the kernel's high-water mark of this process's own memory does not."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def token_lengths(texts: list[str]) -> dict[str, float]:
    """How long the comments are in the encoder's tokens, and how many each maximum cuts."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Encoder().files.tokenizer))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = np.array([len(encoding.ids) for encoding in tokenizer.encode_batch(texts)])
    return {
        "median": float(np.median(lengths)),
        "p90": float(np.percentile(lengths, 90)),
        "p99": float(np.percentile(lengths, 99)),
        **{
            f"share_over_{limit}": round(float((lengths > limit).mean()), 3)
            for limit in MAX_LENGTHS
        },
    }


def _describe(texts: list[str]) -> dict[str, Any]:
    lengths = [len(text) for text in texts]
    return {
        "sources": list(SOURCES),
        "count": len(texts),
        "mean_chars": round(statistics.mean(lengths), 1),
        "median_chars": statistics.median(lengths),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(results: dict[str, Any]) -> None:
    tokens = results["tokens"]
    print(
        f"\ntokens per comment: median {tokens['median']:.0f}, p90 {tokens['p90']:.0f}, "
        f"p99 {tokens['p99']:.0f}; over 128: {tokens['share_over_128']:.1%}, "
        f"over 256: {tokens['share_over_256']:.1%}"
    )
    header = (
        f"{'threads':>7} {'max':>4} {'encoder/s':>10} {'CPU/s':>7} {'lexical/s':>10} "
        f"{'ratio':>6} {'batch p50':>10} {'p99 ms':>7} {'load s':>7} {'peak MB':>8} {'share':>6}"
    )
    print(header)
    print("-" * len(header))
    for entry in results["configurations"]:
        print(
            f"{entry['threads']:>7} {entry['max_length']:>4} "
            f"{entry['comments_per_second']['semantic']:>10.1f} "
            f"{entry['comments_per_cpu_second']['semantic']:>7.1f} "
            f"{entry['comments_per_second']['lexical']:>10.1f} "
            f"{entry['lexical_to_semantic_ratio']:>6.1f} "
            f"{entry['semantic_batch_ms']['p50']:>10.1f} {entry['semantic_batch_ms']['p99']:>7.1f} "
            f"{entry['load_seconds']:>7.3f} {entry['peak_rss_mb']:>8.1f} {entry['cpu_share']:>6.2f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
