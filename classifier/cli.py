"""Subcommands of ``civility`` that belong to the classifier: train, evaluate, tune, score."""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from classifier import score_cli
from classifier.card import ARTIFACT_SUFFIX
from classifier.compare import compare, format_comparison
from classifier.datasets import DatasetError
from classifier.evaluate import evaluate, format_table, write_report
from classifier.feedback import FeedbackError
from classifier.model import Model, ModelError, load_active
from classifier.output import write_line
from classifier.progress import Progress, add_quiet
from classifier.train import (
    DEFAULT_NAME,
    DEFAULT_SEMANTIC_ROWS_PER_SOURCE,
    DEFAULT_VERSION,
    TrainingError,
    TrainOptions,
    train,
)
from classifier.training_data import WeightFactor
from classifier.tune import TuningError, format_report, tune
from classifier.versions import model_problem, next_version

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    """Add the classifier's subcommands to the ``civility`` parser."""
    _register_train(commands)
    _register_evaluate(commands)
    _register_tune(commands)
    score_cli.register(commands)


DATASETS_HELP = (
    "README.md's section 'Data' says where each set comes from and which ones give a usable subset"
)


def _fail(command: str, message: str) -> int:
    print(f"civility {command}: {message}", file=sys.stderr)
    return 2


def _missing_datasets(command: str, folder: Path) -> int:
    return _fail(command, f"datasets folder {folder} does not exist; {DATASETS_HELP}")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _register_train(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "train",
        help="train the spam and toxicity model on the labeled datasets",
        description="Train on the sets marked for training, write <name>-<version>.joblib and "
        "its card into --out, and mark it active.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the datasets folder")
    parser.add_argument("--out", type=Path, default=Path("models"), help="models folder")
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=f"model name, the file's prefix (default: {DEFAULT_NAME})",
    )
    parser.add_argument(
        "--version",
        help="version to write (default: the highest X.Y.Z of --name in --out with its patch "
        f"number plus one, or {DEFAULT_VERSION} in an empty folder)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing model of that name and version (not the active one)",
    )
    parser.add_argument(
        "--limit-per-source",
        type=_positive_int,
        help="use at most this many rows of each source (quick experiments and tests)",
    )
    parser.add_argument("--jobs", type=_positive_int, default=2, help="labels fitted in parallel")
    parser.add_argument(
        "--no-activate", action="store_true", help="write the model without marking it active"
    )
    parser.add_argument(
        "--feedback",
        type=Path,
        help="labels from `civility labels export` (JSON Lines), folded into the training rows",
    )
    parser.add_argument(
        "--weight",
        type=_weight_factor,
        action="append",
        default=[],
        metavar="SOURCE[:LABEL]=FACTOR",
        help="multiply a training source's weight (for one label, or all); repeatable; the card "
        "records it",
    )
    parser.add_argument(
        "--no-semantic",
        action="store_true",
        help="train the lexical model alone, without the semantic stage",
    )
    parser.add_argument(
        "--semantic-rows-per-source",
        type=_positive_int,
        default=DEFAULT_SEMANTIC_ROWS_PER_SOURCE,
        help="rows of each source the semantic stage is fitted on (default: "
        f"{DEFAULT_SEMANTIC_ROWS_PER_SOURCE}; embedding them is most of its time)",
    )
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        help="folder of embeddings kept between runs (default: $CIVILITY_CACHE/embeddings or "
        "~/.cache/civility/embeddings)",
    )
    parser.add_argument(
        "--identity-swaps",
        action="store_true",
        help="also train on a copy of each row naming an identity (gay, muslim, black, ...) with "
        "that identity swapped for another of its kind, same label: the term stops predicting "
        "the label; the card records it",
    )
    parser.add_argument(
        "--identity-reweigh",
        action="store_true",
        help="weight each identity term's rows so that they are toxic as often as the training "
        "rows are overall (after any swaps); the card records each term's factors",
    )
    add_quiet(parser)
    parser.set_defaults(handler=_run_train)


def _weight_factor(text: str) -> WeightFactor:
    try:
        return WeightFactor.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _unwritable(folder: Path) -> str | None:
    """Why ``folder`` could not be created or written, or None; it is not created here."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _run_train(args: argparse.Namespace) -> int:
    options = TrainOptions(
        name=args.name,
        version=args.version or next_version(args.out, args.name, DEFAULT_VERSION),
        limit_per_source=args.limit_per_source,
        n_jobs=args.jobs,
        activate=not args.no_activate,
        feedback=args.feedback,
        weight_factors=tuple(args.weight),
        force=args.force,
        semantic=not args.no_semantic,
        semantic_rows_per_source=args.semantic_rows_per_source,
        embedding_cache=args.embedding_cache,
        identity_swaps=args.identity_swaps,
        identity_reweigh=args.identity_reweigh,
    )
    if not args.data.is_dir():
        return _missing_datasets("train", args.data)
    if args.feedback is not None and not args.feedback.is_file():
        return _fail("train", f"feedback file {args.feedback} does not exist")
    if (problem := _unwritable(args.out)) is not None:
        # Said before minutes of fitting, not after them.
        return _fail("train", f"cannot write models into {args.out}: {problem}")
    try:
        artifact = train(args.data, args.out, options, Progress(quiet=args.quiet))
    except (FeedbackError, TrainingError) as error:
        return _fail("train", str(error))
    except DatasetError as error:
        return _fail("train", f"{error}; {DATASETS_HELP}")
    write_line(f"trained {artifact} ({artifact.stat().st_size / 1e6:.1f} MB)")
    return 0


def _register_evaluate(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "evaluate",
        help="measure a model cross-domain and write the report into its card",
        description="Score every held-out source and label (beside alt-profanity-check, with a "
        "paired bootstrap interval of the difference), spam leave-one-video-out, identity "
        "subgroups and evidence spans; print a table and store the report in the model card.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the datasets folder")
    parser.add_argument("--model", type=Path, help="artifact to evaluate (default: the active one)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder")
    parser.add_argument(
        "--skip-spam-folds", action="store_true", help="skip the leave-one-video-out refits"
    )
    parser.add_argument(
        "--no-semantic",
        action="store_true",
        help="measure the lexical stage alone (the first run with the semantic stage embeds "
        "every set, which takes a while; later runs re-use the embedding cache)",
    )
    parser.add_argument("--jobs", type=_positive_int, default=2, help="labels fitted in parallel")
    parser.add_argument(
        "--limit-per-set",
        type=_positive_int,
        help="measure at most this many rows per set (quick checks; the report records it)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave the card, write no report"
    )
    parser.add_argument(
        "--seed",
        type=Path,
        default=Path("../shared/seed/seed-article.json"),
        help="the seed article, whose comments' scores the report shows (skipped if absent)",
    )
    parser.add_argument(
        "--examples",
        type=Path,
        default=Path("tests/data/civil_and_abuse.jsonl"),
        help="hand-written JSON Lines {kind, text} whose scores the report shows by kind "
        "(skipped if absent)",
    )
    parser.add_argument(
        "--compare",
        metavar="OLD",
        help="instead of the full report, score OLD (a version, model name or artifact) and this "
        "model on the same held-out sets, print both and draw one over the other",
    )
    add_quiet(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        return _missing_datasets("evaluate", args.data)
    try:
        model = (
            Model.load(args.model, not args.no_semantic, semantic_threads=args.jobs)
            if args.model
            else load_active(args.models, not args.no_semantic, semantic_threads=args.jobs)
        )
    except ModelError as error:
        return _fail("evaluate", model_problem(error, args.models))
    folder = model.artifact.parent
    if not args.no_write and (problem := _unwritable(folder)) is not None:
        # The report goes into the card and beside it: said before the evaluation, not after.
        return _fail("evaluate", f"cannot write the report into {folder}: {problem}; or --no-write")
    try:
        if args.compare:
            return _run_compare(model, args)
        report = evaluate(
            model,
            args.data,
            spam_folds=not args.skip_spam_folds,
            limit_per_set=args.limit_per_set,
            n_jobs=args.jobs,
            progress=Progress(quiet=args.quiet),
        )
    except DatasetError as error:
        return _fail("evaluate", f"{error}; {DATASETS_HELP}")
    # Written before it is printed: a stdout that fails must not lose minutes of measuring.
    page = None if args.no_write else _write_evaluation(model, report, args)
    write_line(f"{model.stem}: evaluated in {report['seconds']} s")
    write_line(format_table(report))
    if page is not None:
        write_line(page)
    return 0


def _write_evaluation(model: Model, report: dict[str, Any], args: argparse.Namespace) -> str:
    """The report stored in the card and drawn beside it; the line that says where."""
    write_report(model, report)
    # Only here: matplotlib stays out of every other command, the serving ones above all.
    from classifier import report as pictures

    examples = pictures.Examples.read(args.seed, args.examples)
    written = pictures.write_evaluation(model, report, examples)
    return f"report: {written.page} (figures in {written.figures[0].parent})"


def _run_compare(model: Model, args: argparse.Namespace) -> int:
    named: str = args.compare
    if named.endswith(ARTIFACT_SUFFIX):
        artifact = Path(named)
    elif (args.models / f"{named}{ARTIFACT_SUFFIX}").is_file():
        artifact = args.models / f"{named}{ARTIFACT_SUFFIX}"
    else:
        # A bare version names the default model: "1.0.0" is civility-1.0.0.
        artifact = args.models / f"{DEFAULT_NAME}-{named}{ARTIFACT_SUFFIX}"
    try:
        old = Model.load(artifact)
    except ModelError as error:
        return _fail("evaluate", model_problem(error, args.models))
    report = compare(model, old, args.data, limit_per_set=args.limit_per_set)
    page = None if args.no_write else _write_comparison(model, report)  # as the full report
    write_line(format_comparison(report))
    if page is not None:
        write_line(page)
    return 0


def _write_comparison(model: Model, report: dict[str, Any]) -> str:
    from classifier import report as pictures

    written = pictures.write_comparison(model, report)
    return f"report: {written.page} (figures in {written.figures[0].parent})"


def _register_tune(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "tune",
        help="choose each label's head settings on validation rows kept apart from evaluation",
        description="Hold back a fifth of every training source, fit each label's candidate "
        "heads on the rest and print their mean validation ROC-AUC; the best are the settings "
        "classifier.labels.HEADS should hold. Then choose YouTube's weight for spam by leaving "
        "one video out (classifier.labels.YOUTUBE_SPAM_WEIGHT).",
    )
    parser.add_argument("--data", type=Path, required=True, help="the datasets folder")
    parser.add_argument(
        "--out", type=Path, default=Path("models/tuning.json"), help="where to write the report"
    )
    parser.add_argument(
        "--source-weights",
        action="store_true",
        help="also measure halving and doubling each toxicity source's weight",
    )
    parser.add_argument(
        "--limit-per-source",
        type=_positive_int,
        help="use at most this many rows of each source (quick checks and tests)",
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=2, help="candidates fitted in parallel"
    )
    add_quiet(parser)
    parser.set_defaults(handler=_run_tune)


def _run_tune(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        return _missing_datasets("tune", args.data)
    if (problem := _unwritable(args.out.parent)) is not None:
        return _fail("tune", f"cannot write {args.out}: {problem}")
    try:
        report = tune(
            args.data,
            limit_per_source=args.limit_per_source,
            source_weights=args.source_weights,
            n_jobs=args.jobs,
            progress=Progress(quiet=args.quiet),
        )
    except TuningError as error:
        return _fail("tune", str(error))
    except DatasetError as error:
        return _fail("tune", f"{error}; {DATASETS_HELP}")
    # Written before it is printed: a stdout that fails must not lose the tuning.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    write_line(format_report(report))
    write_line(f"wrote {args.out} ({report['seconds']} s)")
    return 0
