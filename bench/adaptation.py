"""Site adaptation replayed on a stream: global model only against global + site model.

Run on purpose, not by the test suite::

    nice -n 10 .venv/bin/python bench/adaptation.py [--datasets ../shared/datasets]

One site's comments arrive in order and moderators decide each: for
``c3-constructive-comments-corpus`` a comment is rejected when its crowd toxicity level is 2 or more
(8.8 % of the Globe and Mail comments), for ``civil-comments-sample`` when its label is toxic. The
last 4,000 comments of the stream are the fixed test tail. After the first N decisions (N = 250,
500, 1,000, 2,000, 4,000) the site model is fitted exactly as a refit does (switch-on rule
included) and both scores are measured on the tail: ROC-AUC of the global model alone and of what
the site would be scored with (the global model when the site model stays off). Draw 0 is the
stream in its own order; draws 1 and 2 are the same rows shuffled. It also times a refit on
10,000 labels on one core and the cost of one verdict's scoring with and without a site model
(interleaved, same texts). It prints a table and writes ``bench/results/adaptation.json``.

The shipped global model is never trained on C3; this benchmark only measures on it.
"""

import sys
from pathlib import Path

# Run as ``python bench/adaptation.py``, this file's folder comes first on sys.path, and
# ``bench/classifier.py`` would then shadow the ``classifier`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import sklearn  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: E402

from classifier.datasets import load_source  # noqa: E402
from classifier.model import Model, load_active  # noqa: E402
from classifier.site_model import LEXICAL, FitSettings, LabelModel, fit_label  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "adaptation.json"
SIZES = (250, 500, 1_000, 2_000, 4_000)
TAIL = 4_000
DRAWS = 3
REFIT_LABELS = 10_000
C3_REJECTED_AT = 2.0
LABEL = "toxicity"
VERDICT_ROUNDS = 5
VERDICT_TEXTS = 300
WIDTHS = (7, 7, 8, 6, 7, 3, 6)


@dataclass(frozen=True)
class Stream:
    name: str
    texts: list[str]
    targets: npt.NDArray[np.int8]


def c3_stream(datasets: Path) -> Stream:
    records = load_source(datasets, "c3-constructive-comments-corpus").splits["all"]
    targets = [record.values["crowd_toxicity_level"] >= C3_REJECTED_AT for record in records]
    return Stream(
        "c3-constructive-comments-corpus",
        [record.text for record in records],
        np.array(targets, dtype=np.int8),
    )


def civil_stream(datasets: Path) -> Stream:
    path = datasets / "civil-comments-sample" / "civil_comments_10k.csv"
    with path.open(encoding="utf-8", newline="") as rows:
        table = list(csv.DictReader(rows))
    return Stream(
        "civil-comments-sample",
        [row["text"] for row in table],
        np.array([int(row["label"]) for row in table], dtype=np.int8),
    )


def featurise(model: Model, texts: Sequence[str]) -> tuple[npt.NDArray[np.float64], Any]:
    column = model.labels.index(LABEL)
    probabilities, features = [], []
    for start in range(0, len(texts), 512):
        matrix, kinds = model.predict_with_features(texts[start : start + 512])
        probabilities.append(matrix[:, column])
        features.append(kinds[LEXICAL])
    return np.concatenate(probabilities), sparse.vstack(features, format="csr")


def replay(
    stream: Stream,
    global_probability: npt.NDArray[np.float64],
    features: Any,
    settings: FitSettings,
    draws: int,
) -> dict[str, Any]:
    tail = np.arange(len(stream.texts) - TAIL, len(stream.texts))
    head = np.arange(len(stream.texts) - TAIL)
    tail_targets = stream.targets[tail]
    auc_global = float(roc_auc_score(tail_targets, global_probability[tail]))
    rows: list[dict[str, Any]] = []
    for size in SIZES:
        runs: list[dict[str, Any]] = []
        for draw in range(draws):
            order = head.copy()
            if draw:
                random.Random(draw).shuffle(order)  # type: ignore[arg-type]
            taken = order[:size]
            started = time.perf_counter()
            outcome = fit_label(
                LABEL,
                stream.targets[taken],
                global_probability[taken],
                {LEXICAL: features[taken]},
                settings,
            )
            seconds = time.perf_counter() - started
            print(f"{stream.name} N={size} draw {draw}: {outcome.why}", flush=True)
            scored = global_probability[tail]
            if outcome.model is not None:
                scored = outcome.model.adapt(scored, {LEXICAL: features[tail]})
            runs.append(
                {
                    "used": outcome.used,
                    "why": outcome.why,
                    "positives": outcome.positives,
                    "oof_auc_global": outcome.auc_global,
                    "oof_auc_adapted": outcome.auc_adapted,
                    "tail_auc_adapted": float(roc_auc_score(tail_targets, scored)),
                    "refit_seconds": seconds,
                }
            )
        adapted = [float(draw["tail_auc_adapted"]) for draw in runs]
        rows.append(
            {
                "labels": size,
                "tail_auc_global": auc_global,
                "tail_auc_adapted_mean": statistics.fmean(adapted),
                "tail_auc_adapted_stdev": statistics.stdev(adapted) if len(adapted) > 1 else 0.0,
                "gain_mean": statistics.fmean(adapted) - auc_global,
                "used": sum(draw["used"] for draw in runs),
                "refit_seconds_mean": statistics.fmean(d["refit_seconds"] for d in runs),
                "draws": runs,
            }
        )
    return {
        "stream": stream.name,
        "comments": len(stream.texts),
        "tail": TAIL,
        "tail_positives": int(tail_targets.sum()),
        "sizes": rows,
    }


def refit_time(
    stream: Stream,
    global_probability: npt.NDArray[np.float64],
    features: Any,
    settings: FitSettings,
) -> dict[str, Any]:
    """One refit on the stream's first 10,000 labels (their features already encoded, as the
    worker keeps them)."""
    started = time.perf_counter()
    outcome = fit_label(
        LABEL,
        stream.targets[:REFIT_LABELS],
        global_probability[:REFIT_LABELS],
        {LEXICAL: features[:REFIT_LABELS]},
        settings,
    )
    return {
        "labels": REFIT_LABELS,
        "seconds": time.perf_counter() - started,
        "used": outcome.used,
        "model": outcome.model,
    }


def verdict_cost(model: Model, texts: Sequence[str], site: LabelModel) -> dict[str, Any]:
    """Seconds per comment scored one at a time, as intake does, global alone and with the site
    model, alternating rounds so both see the same machine state."""
    models = {LABEL: site}
    model.score(texts[:50])
    model.score_adapted(texts[:50], models)
    plain: list[float] = []
    adapted: list[float] = []
    for _ in range(VERDICT_ROUNDS):
        for target, run in ((plain, model.score), (adapted, None)):
            started = time.perf_counter()
            for text in texts:
                if run is None:
                    model.score_adapted([text], models)
                else:
                    run([text])
            target.append((time.perf_counter() - started) / len(texts))
    without, with_site = statistics.median(plain), statistics.median(adapted)
    return {
        "texts": len(texts),
        "rounds": VERDICT_ROUNDS,
        "ms_per_comment_global": without * 1000,
        "ms_per_comment_with_site_model": with_site * 1000,
        "added_fraction": with_site / without - 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=PROJECT_ROOT.parent / "shared/datasets")
    parser.add_argument("--models", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument(
        "--draws", type=int, default=DRAWS, help="draws per N: the stream, then shuffles of it"
    )
    args = parser.parse_args()
    settings = FitSettings()
    with threadpool_limits(1):
        model = load_active(args.models)
        c3, civil = c3_stream(args.datasets), civil_stream(args.datasets)
        c3_scored = featurise(model, c3.texts)
        streams = [replay(c3, *c3_scored, settings, args.draws)]
        streams.append(replay(civil, *featurise(model, civil.texts), settings, args.draws))
        refit = refit_time(c3, *c3_scored, settings)
        site = refit.pop("model")
        cost = verdict_cost(model, c3.texts[-VERDICT_TEXTS:], site) if site else None
    for result in streams:
        print(f"\n{result['stream']}: tail of {TAIL} ({result['tail_positives']} rejected)")
        columns = ("labels", "global", "adapted", "±", "gain", "on", "fit s")
        print(" ".join(f"{name:>{width}}" for name, width in zip(columns, WIDTHS, strict=True)))
        for row in result["sizes"]:
            print(
                f"{row['labels']:>7} {row['tail_auc_global']:7.4f} "
                f"{row['tail_auc_adapted_mean']:8.4f} {row['tail_auc_adapted_stdev']:6.4f} "
                f"{row['gain_mean']:+7.4f} {row['used']:>3} {row['refit_seconds_mean']:6.2f}"
            )
    print(f"\nrefit on {refit['labels']} labels, one core: {refit['seconds']:.2f} s")
    if cost:
        print(
            f"verdict scoring, one comment: {cost['ms_per_comment_global']:.3f} ms global, "
            f"{cost['ms_per_comment_with_site_model']:.3f} ms with the site model "
            f"({cost['added_fraction']:+.1%})"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "adaptation",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": model.stem,
                "machine": {"python": platform.python_version(), "cpu": platform.processor()},
                "scikit-learn": sklearn.__version__,
                "settings": {
                    "min_labels": settings.min_labels,
                    "min_positives": settings.min_positives,
                    "switch_on_gain": settings.switch_on_gain,
                },
                "c3_rejected_at_crowd_toxicity_level": C3_REJECTED_AT,
                "draws": args.draws,
                "streams": streams,
                "refit": refit,
                "verdict": cost,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
