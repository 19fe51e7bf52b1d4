"""Language detection per text: one text at a time (``detect``) against a scoring worker's batch
(``detect_many``), on real comments.

    .venv/bin/python -m bench.language_batch [--batch 7] [--batches 300] [--rounds 5]

Draws ``--batches`` batches of ``--batch`` real comments (C3 and the Civil Comments sample, as
written) and detects them both ways in turn, round after round, so a load that moves between
rounds moves both; prints each round's CPU microseconds per text and the median ratio, and
writes them to ``bench/results/language_batch.json``. Run on purpose, never by pytest.
"""

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.memory import DATASETS, real_texts
from bench.servers import PROJECT_ROOT
from service import language

RESULTS = PROJECT_ROOT / "bench" / "results" / "language_batch.json"


def _per_text(batches: list[list[str]], detect: Callable[[list[str]], object]) -> float:
    started = time.process_time()
    for batch in batches:
        detect(batch)
    return (time.process_time() - started) / sum(map(len, batches)) * 1e6


def _alone(batch: list[str]) -> list[language.Detected]:
    return [language.detect(text) for text in batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    args = parser.parse_args()
    texts = real_texts(args.datasets)
    chooser = random.Random(14)
    batches = [chooser.sample(texts, args.batch) for _ in range(args.batches)]
    language.load()
    _per_text(batches[:10], language.detect_many)  # the first calls warm the caches
    load_before = os.getloadavg()[0]
    ratios = []
    rounds = []
    for round_number in range(args.rounds):
        alone = _per_text(batches, _alone)
        batched = _per_text(batches, language.detect_many)
        ratios.append(batched / alone)
        rounds.append(
            {"detect_us_per_text": round(alone, 1), "detect_many_us_per_text": round(batched, 1)}
        )
        print(
            f"round {round_number}: detect {alone:.1f} µs/text, "
            f"detect_many (batches of {args.batch}) {batched:.1f} µs/text",
            flush=True,
        )
    ratio = round(statistics.median(ratios), 3)
    print(f"detect_many / detect, median of the rounds: {ratio:.2f}")
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "batch": args.batch,
        "batches": args.batches,
        "rounds": rounds,
        "detect_many_over_detect": ratio,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
