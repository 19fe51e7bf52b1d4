"""Site adaptation replayed on a stream: global model only against global + site model.

Run on purpose, not by the test suite::

    nice -n 10 .venv/bin/python bench/adaptation.py [--datasets ../shared/datasets]
        [--caution 1.0] [--c3-order writing|file]

One site's comments arrive in the order they were written and moderators decide each: for
``c3-constructive-comments-corpus`` (ordered by article, ``c3_stream``) a comment is rejected when
its crowd toxicity level is 2 or more (8.8 % of the Globe and Mail comments), for
``civil-comments-sample`` when its label is toxic. The last 4,000 comments of the stream are the
fixed test tail. After the first N decisions (N = 250, 500, 1,000, 2,000, 4,000) both site models
are fitted exactly as a refit does (switch-on rule included): the verdict's, which chooses lexical
features, the global model's per-label scores or both, over the global lexical score, and the second
look's, which may read sentence embeddings too, over the global blended score. Each is measured on
the tail against its own global score: ROC-AUC of the global score alone and of what the site would
be scored with (the global score when the site model stays off). Draw 0 is the stream in its own
order; draws 1 and 2 shuffle the rows before the tail. For the headroom, each draw also reports the
tail ROC-AUC of the same heads blended with the weights that are best on the tail itself (no site
can choose so), and the 90 % interval of the adapted score's gain over paired bootstrap resamples of
the tail; each stream reports the 95 % interval of the global score's tail ROC-AUC. It also times a
refit of 10,000 labels on one core as the worker runs it (rows decoded from JSON, both fits) against
the verdict's fit alone, and the cost of one verdict's scoring with and without a site model
(two fresh copies of the model, each scoring every text of the tail once, interleaved). It prints
a table and writes ``bench/results/adaptation.json`` (with other settings, beside it). Embeddings
come from the embedding cache (computed once per stream).

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
import os  # noqa: E402
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
from classifier.embedding_cache import EmbeddingCache, default_cache_dir  # noqa: E402
from classifier.model import Model, load_active  # noqa: E402
from classifier.site_model import (  # noqa: E402
    EMBEDDING,
    LEXICAL,
    SCORES,
    FitSettings,
    LabelModel,
    LabelOutcome,
    SiteLabels,
    score_features,
    simplex,
    too_few,
)
from service.scorer import SiteRef  # noqa: E402
from service.site_fit import (  # noqa: E402
    KEPT,
    SECOND_LOOK_KINDS,
    VERDICT_KINDS,
    fit_rows,
    pack_features,
)
from service.site_model_reader import adapt_by_site, score_by_site  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "adaptation.json"
"""The default settings' results; other settings write beside it, named after what they change."""
DEFAULT_CAUTION = FitSettings().caution
SIZES = (250, 500, 1_000, 2_000, 4_000)
TAIL = 4_000
DRAWS = 3
REFIT_LABELS = 10_000
C3_REJECTED_AT = 2.0
LABEL = "toxicity"
VERDICT_ROUNDS = 16
VERDICT_TEXTS = 4_000
VERDICT_WARM_TEXTS = 50
BOOTSTRAPS = 500
PLACES = ("verdict", "second_look")
COLUMNS = (
    "labels",
    "global",
    "adapted",
    "±",
    "gain",
    "on",
    "min",
    "best-on-tail",
    "emb-lex",
    "features",
)
WIDTHS = (7, 7, 8, 6, 7, 3, 7, 12, 7, 26)


@dataclass(frozen=True)
class Stream:
    name: str
    texts: list[str]
    targets: npt.NDArray[np.int8]


@dataclass(frozen=True)
class Scored:
    """A stream's global scores (lexical and blended) and its features by kind."""

    lexical: npt.NDArray[np.float64]
    blended: npt.NDArray[np.float64]
    features: dict[str, Any]

    def rows(self, taken: npt.NDArray[np.intp]) -> dict[str, Any]:
        return {kind: values[taken] for kind, values in self.features.items()}


def c3_stream(datasets: Path, order: str = "writing") -> Stream:
    """C3's comments in the order they were written: by article, the Globe and Mail numbering its
    articles as it publishes them (each article's comments in the file's order). The file itself
    is not in that order: its rejected share falls from 35 % in the first 2,000 rows to 1.8 % in
    the last 4,000, so a tail taken from it held 74 rejected comments where the site's stream
    rejects 8.8 %. ``order="file"`` keeps the file's order: a site whose labelled comments are
    unlike its next ones."""
    records = load_source(datasets, "c3-constructive-comments-corpus").splits["all"]
    if order == "writing":
        records = sorted(records, key=lambda record: int(record.group))
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


def featurise(model: Model, stream: Stream, cache: EmbeddingCache) -> Scored:
    assert model.semantic is not None, "the benchmark needs a model with a semantic stage"
    column = model.labels.index(LABEL)
    matrices, lexical = [], []
    for start in range(0, len(stream.texts), 512):
        matrix, kinds = model.predict_with_features(stream.texts[start : start + 512])
        matrices.append(matrix)
        lexical.append(kinds[LEXICAL])
    matrix = np.vstack(matrices)
    vectors = cache.embed(stream.name, stream.texts)
    blended = model.semantic.blend_vectors(vectors, matrix)
    embeddings = np.asarray(vectors, dtype=np.float64)
    return Scored(
        lexical=matrix[:, column],
        blended=blended[:, column],
        features={
            LEXICAL: sparse.vstack(lexical, format="csr"),
            SCORES: score_features(matrix),
            EMBEDDING: embeddings,
        },
    )


PLACE_KINDS = {"verdict": VERDICT_KINDS, "second_look": SECOND_LOOK_KINDS}


def fit_both(
    targets: npt.NDArray[np.int8],
    scored: Scored,
    taken: npt.NDArray[np.intp],
    settings: FitSettings,
) -> tuple[dict[str, LabelOutcome], SiteLabels | None]:
    """The verdict's and the second look's fits, as ``service.site_fit.fit_rows`` makes them,
    and the heads they were chosen from (``None`` with too few labels)."""
    refused = too_few(LABEL, targets[taken], settings)
    if refused is not None:
        return {place: refused for place in PLACES}, None
    site = SiteLabels(LABEL, targets[taken], scored.rows(taken), settings)
    return {
        "verdict": site.fit(scored.lexical[taken], VERDICT_KINDS),
        "second_look": site.fit(scored.blended[taken], SECOND_LOOK_KINDS),
    }, site


def oracle_blend(
    site: SiteLabels,
    kinds: Sequence[str],
    base: npt.NDArray[np.float64],
    features: dict[str, Any],
    targets: npt.NDArray[np.int8],
    step: float,
) -> float:
    """The tail ROC-AUC of the global score and the heads of ``kinds`` blended with the grid's
    weights that are best on the tail itself: more than any site's own labels can choose."""
    logits = [score_features(base)] + [site.head(kind).logit(features[kind]) for kind in kinds]
    return max(
        float(roc_auc_score(targets, sum(w * part for w, part in zip(ws, logits, strict=True))))
        for ws in simplex(len(logits), step)
    )


def resampled_aucs(
    targets: npt.NDArray[np.int8], scores: Sequence[npt.NDArray[np.float64]], seed: int
) -> npt.NDArray[np.float64]:
    """Each of ``scores``' tail ROC-AUC (columns) on the same bootstrap resamples (rows)."""
    generator = np.random.default_rng(seed)
    found = []
    for _ in range(BOOTSTRAPS):
        rows = generator.integers(0, targets.size, targets.size)
        if 0 < targets[rows].sum() < rows.size:
            found.append([float(roc_auc_score(targets[rows], score[rows])) for score in scores])
    return np.array(found)


def replay(stream: Stream, scored: Scored, settings: FitSettings, draws: int) -> dict[str, Any]:
    tail = np.arange(len(stream.texts) - TAIL, len(stream.texts))
    head = np.arange(len(stream.texts) - TAIL)
    tail_targets = stream.targets[tail]
    bases = {"verdict": scored.lexical[tail], "second_look": scored.blended[tail]}
    auc_global = {place: float(roc_auc_score(tail_targets, bases[place])) for place in PLACES}
    places: dict[str, list[dict[str, Any]]] = {place: [] for place in PLACES}
    for size in SIZES:
        runs: dict[str, list[dict[str, Any]]] = {place: [] for place in PLACES}
        for draw in range(draws):
            order = head.copy()
            if draw:
                random.Random(draw).shuffle(order)  # type: ignore[arg-type]
            taken = order[:size]
            started = time.perf_counter()
            outcomes, site = fit_both(stream.targets, scored, taken, settings)
            seconds = time.perf_counter() - started
            for place, outcome in outcomes.items():
                print(f"{stream.name} N={size} draw {draw} {place}: {outcome.why}", flush=True)
                adapted = bases[place]
                if outcome.model is not None:
                    adapted = outcome.model.adapt(adapted, scored.rows(tail))
                oracle = (
                    oracle_blend(
                        site,
                        PLACE_KINDS[place],
                        bases[place],
                        scored.rows(tail),
                        tail_targets,
                        settings.weight_step,
                    )
                    if site is not None
                    else None
                )
                interval = None
                if outcome.model is not None:
                    paired = resampled_aucs(tail_targets, [adapted, bases[place]], draw)
                    gains = paired[:, 0] - paired[:, 1]
                    interval = [float(np.quantile(gains, q)) for q in (0.05, 0.95)]
                runs[place].append(
                    {
                        "used": outcome.used,
                        "why": outcome.why,
                        "features": outcome.features,
                        "candidates": dict(outcome.candidates),
                        "oof_auc_heads_alone": dict(outcome.heads),
                        "positives": outcome.positives,
                        "oof_auc_global": outcome.auc_global,
                        "oof_auc_adapted": outcome.auc_adapted,
                        "oof_gain_lower_bound": outcome.gain_lower_bound,
                        "tail_auc_adapted": float(roc_auc_score(tail_targets, adapted)),
                        "tail_gain_interval_90": interval,
                        "tail_auc_blend_best_on_tail": oracle,
                        "refit_seconds_both": seconds,
                    }
                )
        for place in PLACES:
            aucs = [float(draw["tail_auc_adapted"]) for draw in runs[place]]
            places[place].append(
                {
                    "labels": size,
                    "tail_auc_global": auc_global[place],
                    "tail_auc_adapted_mean": statistics.fmean(aucs),
                    "tail_auc_adapted_stdev": statistics.stdev(aucs) if len(aucs) > 1 else 0,
                    "tail_auc_adapted_min": min(aucs),
                    "gain_mean": statistics.fmean(aucs) - auc_global[place],
                    "gain_min": min(aucs) - auc_global[place],
                    "tail_auc_blend_best_on_tail_mean": _mean_of(
                        runs[place], "tail_auc_blend_best_on_tail"
                    ),
                    "used": sum(draw["used"] for draw in runs[place]),
                    "features": sorted({d["features"] for d in runs[place] if d["used"]}),
                    # The outside measurement's comparison: embedding heads against n-gram heads,
                    # each alone and each blended with the global score.
                    "oof_heads_alone_embedding_minus_lexical": _mean_difference(
                        runs[place], "oof_auc_heads_alone"
                    ),
                    "oof_blends_embedding_minus_lexical": _mean_difference(
                        runs[place], "candidates"
                    ),
                    "draws": runs[place],
                }
            )
    return {
        "stream": stream.name,
        "comments": len(stream.texts),
        "tail": TAIL,
        "tail_positives": int(tail_targets.sum()),
        "tail_auc_global_interval_95": {
            place: [
                float(np.quantile(resampled_aucs(tail_targets, [bases[place]], 0), q))
                for q in (0.025, 0.975)
            ]
            for place in PLACES
        },
        "places": places,
    }


def _mean_of(runs: Sequence[dict[str, Any]], field: str) -> float | None:
    values = [run[field] for run in runs if run[field] is not None]
    return statistics.fmean(values) if values else None


def _mean_difference(runs: Sequence[dict[str, Any]], field: str) -> float | None:
    pairs = [
        run[field][EMBEDDING] - run[field][LEXICAL]
        for run in runs
        if {EMBEDDING, LEXICAL} <= set(run[field])
    ]
    return statistics.fmean(pairs) if pairs else None


def refit_time(
    model: Model, stream: Stream, scored: Scored, settings: FitSettings
) -> tuple[dict[str, Any], LabelModel | None]:
    """A refit of the stream's first 10,000 labels as the worker runs it (rows decoded from the
    JSON Redis keeps, both fits), against the verdict's fit alone on the same features."""
    taken = np.arange(REFIT_LABELS)
    rows = {
        f"c{row}": json.dumps(
            {
                "labels": {LABEL: int(stream.targets[row])},
                "author": f"a{row % 500}",
                "text": stream.texts[row],
                "model": model.version,
                "global": {LABEL: float(scored.lexical[row])},
                "blended": {LABEL: float(scored.blended[row])},
                "features": {
                    kind: pack_features(values, row)
                    for kind, values in scored.features.items()
                    if kind in KEPT
                },
            }
        )
        for row in range(REFIT_LABELS)
    }
    # CPU seconds are the measure of "one core" on a machine other jobs share; wall seconds
    # are what a site waits.
    started, cpu = time.perf_counter(), time.process_time()
    fitted = fit_rows(model, {key: json.loads(row) for key, row in rows.items()}, settings, {})
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    verdict = SiteLabels(LABEL, stream.targets[taken], scored.rows(taken), settings).fit(
        scored.lexical[taken], VERDICT_KINDS
    )
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
    labels = fitted.card["labels"][LABEL]
    return {
        "labels": REFIT_LABELS,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "verdict_fit_alone_seconds": baseline,
        "verdict_fit_alone_cpu_seconds": baseline_cpu,
        "ratio_to_verdict_fit_alone": cpu_seconds / baseline_cpu,
        "verdict": {key: labels[key] for key in ("used", "why", "features")},
        "second_look": {key: labels["second_look"][key] for key in ("used", "why", "features")},
    }, verdict.model


def verdict_cost(
    model: Model, twin: Model, texts: Sequence[str], site: LabelModel
) -> dict[str, Any]:
    """Seconds per comment of a verdict worker's own scoring (``score_by_site``), one comment at
    a time, without a site model (by ``model``) and with one (by ``twin``, a second copy of the
    same model). Each text is scored once by each copy, so both find their caches of words in
    the same state, as intake's one scoring of a new comment does; which copy goes first
    alternates from text to text, so both see the machine alike however its load moves. A round
    is a run of ``len(texts) // VERDICT_ROUNDS`` texts."""
    ref: SiteRef = ("bench", 1)
    found = {ref: {LABEL: site}}
    # Code paths warmed on texts the rounds do not time.
    warm = texts[:VERDICT_WARM_TEXTS]
    score_by_site(model, warm, [None] * len(warm), {})
    score_by_site(twin, warm, [ref] * len(warm), found)
    timed_texts = texts[VERDICT_WARM_TEXTS:]
    per_round = len(timed_texts) // VERDICT_ROUNDS

    def timed(name: str, text: str) -> float:
        started = time.perf_counter()
        if name == "adapted":
            score_by_site(twin, [text], [ref], found)
        else:
            score_by_site(model, [text], [None], {})
        return time.perf_counter() - started

    plain: list[float] = []
    adapted: list[float] = []
    for round_ in range(VERDICT_ROUNDS):
        spent = {"plain": 0.0, "adapted": 0.0}
        chunk = timed_texts[round_ * per_round : (round_ + 1) * per_round]
        for index, text in enumerate(chunk):
            for name in ("plain", "adapted") if index % 2 == 0 else ("adapted", "plain"):
                spent[name] += timed(name, text)
        plain.append(spent["plain"] / per_round)
        adapted.append(spent["adapted"] / per_round)
    # The site model's own step on the texts the twin has scored (its caches as scoring left
    # them): less at the mercy of the machine's load than the pair.
    step = 0.0
    for text in timed_texts[: VERDICT_ROUNDS * per_round]:
        matrix, features = twin.predict_with_features([text])
        started = time.perf_counter()
        adapt_by_site(matrix, twin.labels, [ref], found, features)
        step += time.perf_counter() - started
    step_per_comment = step / (VERDICT_ROUNDS * per_round)
    round_ratios = [pair / alone for pair, alone in zip(adapted, plain, strict=True)]
    return {
        "texts": VERDICT_ROUNDS * per_round,
        "rounds": VERDICT_ROUNDS,
        "ms_per_comment_global": sum(plain) / len(plain) * 1000,
        "ms_per_comment_with_site_model": sum(adapted) / len(adapted) * 1000,
        "added_fraction": sum(adapted) / sum(plain) - 1,
        "added_fraction_median_of_rounds": statistics.median(round_ratios) - 1,
        "added_fraction_by_round": [round(each - 1, 4) for each in round_ratios],
        "ms_per_comment_site_model_step": step_per_comment * 1000,
        "site_model_step_fraction": step_per_comment / (sum(plain) / len(plain)),
    }


def print_stream(result: dict[str, Any]) -> None:
    for place in PLACES:
        low, high = result["tail_auc_global_interval_95"][place]
        print(
            f"\n{result['stream']}, {place}: tail of {TAIL} ({result['tail_positives']} rejected; "
            f"global ROC-AUC 95 % interval {low:.3f}-{high:.3f})"
        )
        print(" ".join(f"{name:>{width}}" for name, width in zip(COLUMNS, WIDTHS, strict=True)))
        for row in result["places"][place]:
            print(
                f"{row['labels']:>7} {row['tail_auc_global']:7.4f} "
                f"{row['tail_auc_adapted_mean']:8.4f} {row['tail_auc_adapted_stdev']:6.4f} "
                f"{row['gain_mean']:+7.4f} {row['used']:>3} {row['gain_min']:+7.4f} "
                f"{_plain(row['tail_auc_blend_best_on_tail_mean']):>12} "
                f"{_signed(row['oof_heads_alone_embedding_minus_lexical']):>7} "
                f"{','.join(row['features']) or '-':>26}"
            )


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=PROJECT_ROOT.parent / "shared/datasets")
    parser.add_argument("--models", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument(
        "--draws", type=int, default=DRAWS, help="draws per N: the stream, then shuffles of it"
    )
    parser.add_argument(
        "--caution",
        type=float,
        default=DEFAULT_CAUTION,
        help="bootstrap standard errors below the best blend a more cautious one may rank",
    )
    parser.add_argument(
        "--c3-order",
        choices=("writing", "file"),
        default="writing",
        help="C3's stream in the order its comments were written, or in its file's order",
    )
    args = parser.parse_args()
    settings = FitSettings(caution=args.caution)
    load_before = os.getloadavg()
    with threadpool_limits(1):
        model = load_active(args.models)
        assert model.semantic is not None, "the benchmark needs a model with a semantic stage"
        cache = EmbeddingCache(default_cache_dir(), model.semantic.encoder)
        c3, civil = c3_stream(args.datasets, args.c3_order), civil_stream(args.datasets)
        c3_scored = featurise(model, c3, cache)
        streams = [replay(c3, c3_scored, settings, args.draws)]
        streams.append(replay(civil, featurise(model, civil, cache), settings, args.draws))
        refit, site = refit_time(model, c3, c3_scored, settings)
        cost = None
        if site:
            # Two fresh copies: the one above has cached the words of every text it featurised.
            plain, twin = load_active(args.models), load_active(args.models)
            cost = verdict_cost(plain, twin, c3.texts[-VERDICT_TEXTS:], site)
    for result in streams:
        print_stream(result)
    print(
        f"\nrefit on {refit['labels']} labels, one core: {refit['cpu_seconds']:.2f} CPU s, "
        f"{refit['seconds']:.2f} s wall (the verdict's fit alone "
        f"{refit['verdict_fit_alone_cpu_seconds']:.2f} CPU s)"
    )
    if cost:
        print(
            f"verdict scoring, one comment: {cost['ms_per_comment_global']:.3f} ms global, "
            f"{cost['ms_per_comment_with_site_model']:.3f} ms with the site model "
            f"({cost['added_fraction']:+.1%}; median of the rounds "
            f"{cost['added_fraction_median_of_rounds']:+.1%}); the site model's step alone "
            f"{cost['ms_per_comment_site_model_step']:.3f} ms "
            f"({cost['site_model_step_fraction']:+.1%} of the global scoring)"
        )
    results = RESULTS
    if args.caution != DEFAULT_CAUTION or args.c3_order != "writing":
        results = RESULTS.with_name(f"adaptation-caution{args.caution:g}-{args.c3_order}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                "benchmark": "adaptation",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": model.stem,
                "machine": {
                    "python": platform.python_version(),
                    "cpu": platform.processor(),
                    "load_average_before_after": [load_before[0], os.getloadavg()[0]],
                },
                "scikit-learn": sklearn.__version__,
                "settings": {
                    "min_labels": settings.min_labels,
                    "min_positives": settings.min_positives,
                    "switch_on_gain": settings.switch_on_gain,
                    "bootstraps": settings.bootstraps,
                    "lower_quantile": settings.lower_quantile,
                    "caution": settings.caution,
                },
                "c3_order": args.c3_order,
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
    print(f"wrote {results.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
