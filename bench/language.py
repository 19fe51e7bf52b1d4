"""Language detection: how often it would hold an English comment, and what it costs.

Run on purpose, not by the test suite::

    .venv/bin/python bench/language.py

Every training set is English, so the figure that matters is how often ``service.language``
would take an English comment for another language (and hold it with ``LANGUAGE``): it is
measured on a few hundred comments of each English comment set. The YouTube spam collection also
holds comments in other languages (Spanish, Portuguese, ...); the detector's languages there are
counted and examples printed to be read. Cost: per comment, detection beside the active model's
scoring of the same comment (the baseline every comment already pays), interleaved in one run.
Prints a table and writes ``bench/results/language.json``.
"""

import sys
from pathlib import Path

# Run as ``python bench/language.py``, this file's folder comes first on sys.path, and
# bench/classifier.py would then shadow the ``classifier`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from classifier.datasets import load_source  # noqa: E402
from classifier.model import Model, active_stem  # noqa: E402
from service import language  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "language.json"
ENGLISH_SOURCES = (
    "c3-constructive-comments-corpus",
    "kaggle-insults-social-commentary",
    "toxic-spans-civil-comments",
    "youtube-toxic-comments",
    "sms-spam-collection",
)
MIXED_SOURCE = "youtube-spam-collection"
PER_SOURCE = 300
TIMED = 500
SEED = 20261205


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "datasets")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rng = random.Random(SEED)

    english: dict[str, Any] = {}
    held_texts: dict[str, list[str]] = {}
    timed_texts: list[str] = []
    for name in ENGLISH_SOURCES:
        texts = _sample(args.data, name, rng)
        timed_texts += texts
        held = [text for text in texts if not language.detect(text).supported]
        held_texts[name] = held
        judged = sum(language.detect(text).language is not None for text in texts)
        english[name] = {
            "comments": len(texts),
            "judged": judged,
            "held_as_other_language": len(held),
            "held_share": round(len(held) / len(texts), 4),
            # Languages only: the texts are the datasets', printed to be read, never stored.
            "held_languages": [language.detect(text).language for text in held],
        }
    all_english = sum(entry["comments"] for entry in english.values())
    all_held = sum(entry["held_as_other_language"] for entry in english.values())

    mixed_texts = _sample(args.data, MIXED_SOURCE, rng, limit=None)
    detected = Counter(
        "not held" if found.supported else str(found.language)
        for found in map(language.detect, mixed_texts)
    )
    others = {
        code: [text[:100] for text in mixed_texts if language.detect(text).language == code][:3]
        for code, _ in detected.most_common()
        if code != "not held"
    }

    model = Model.load(args.models_dir / f"{active_stem(args.models_dir)}.joblib")
    cost = _interleaved_cost(model, rng.sample(timed_texts, min(TIMED, len(timed_texts))))

    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        },
        "detector": "py3langid 0.4.0 (langid.py model, 97 languages)",
        "rule": {
            "model_languages": sorted(language.MODEL_LANGUAGES),
            "min_letters": language.MIN_LETTERS,
            "min_confidence": language.MIN_CONFIDENCE,
        },
        "english": english,
        "english_total": {
            "comments": all_english,
            "held_as_other_language": all_held,
            "held_share": round(all_held / all_english, 4),
        },
        "youtube_spam_collection": {
            "comments": len(mixed_texts),
            "held_by_detected_language": dict(detected),
        },
        "cost_microseconds": cost,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    _print(result, held_texts, others)
    return 0


def _sample(data: Path, name: str, rng: random.Random, limit: int | None = PER_SOURCE) -> list[str]:
    source = load_source(data, name)
    texts = sorted({record.text for records in source.splits.values() for record in records})
    if limit is None or len(texts) <= limit:
        return texts
    return rng.sample(texts, limit)


def _interleaved_cost(model: Model, texts: list[str]) -> dict[str, dict[str, float]]:
    """Per comment, detection and the model's single-comment scoring, timed turn about."""
    language.detect(texts[0])
    model.score([texts[0]])
    timings: dict[str, list[float]] = {"detect": [], "model_score_baseline": []}
    for text in texts:
        started = time.perf_counter()
        language.detect(text)
        timings["detect"].append(time.perf_counter() - started)
        started = time.perf_counter()
        model.score([text])
        timings["model_score_baseline"].append(time.perf_counter() - started)
    return {
        name: {
            "mean": round(statistics.fmean(values) * 1e6, 1),
            "p50": round(statistics.median(values) * 1e6, 1),
            "p99": round(sorted(values)[int(len(values) * 0.99) - 1] * 1e6, 1),
        }
        for name, values in timings.items()
    }


def _print(
    result: dict[str, Any], held_texts: dict[str, list[str]], others: dict[str, list[str]]
) -> None:
    print(f"{'English source':40} {'comments':>9} {'judged':>7} {'held':>5} {'share':>7}")
    for name, entry in result["english"].items():
        print(
            f"{name:40} {entry['comments']:>9} {entry['judged']:>7} "
            f"{entry['held_as_other_language']:>5} {entry['held_share']:>7.2%}"
        )
    total = result["english_total"]
    print(
        f"{'all':40} {total['comments']:>9} {'':>7} "
        f"{total['held_as_other_language']:>5} {total['held_share']:>7.2%}"
    )
    for name, texts in held_texts.items():
        for text in texts[:5]:
            print(f"  held in {name} as {language.detect(text).language}: {text[:100]}")
    mixed = result["youtube_spam_collection"]
    print(f"\nYouTube spam collection ({mixed['comments']}): {mixed['held_by_detected_language']}")
    for code, examples in others.items():
        for text in examples:
            print(f"  {code}: {text}")
    print("\ncost per comment (µs)     mean      p50      p99")
    for name, figures in result["cost_microseconds"].items():
        print(f"{name:22} {figures['mean']:>8} {figures['p50']:>8} {figures['p99']:>8}")


if __name__ == "__main__":
    raise SystemExit(main())
