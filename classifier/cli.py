"""Subcommands of ``civility`` that belong to the classifier: train, evaluate, tune, score."""

import argparse
import json
import sys
from pathlib import Path

from classifier import score_cli
from classifier.card import ARTIFACT_SUFFIX
from classifier.compare import compare, format_comparison
from classifier.evaluate import evaluate, format_table, write_report
from classifier.feedback import FeedbackError
from classifier.model import Model, ModelError, load_active
from classifier.train import DEFAULT_NAME, DEFAULT_VERSION, TrainOptions, train
from classifier.training_data import WeightFactor
from classifier.tune import format_report, tune

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    """Add the classifier's subcommands to the ``civility`` parser."""
    _register_train(commands)
    _register_evaluate(commands)
    _register_tune(commands)
    score_cli.register(commands)


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
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--version", default=DEFAULT_VERSION)
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
    parser.set_defaults(handler=_run_train)


def _weight_factor(text: str) -> WeightFactor:
    try:
        return WeightFactor.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run_train(args: argparse.Namespace) -> int:
    options = TrainOptions(
        name=args.name,
        version=args.version,
        limit_per_source=args.limit_per_source,
        n_jobs=args.jobs,
        activate=not args.no_activate,
        feedback=args.feedback,
        weight_factors=tuple(args.weight),
    )
    if not args.data.is_dir():
        print(f"civility train: datasets folder {args.data} does not exist", file=sys.stderr)
        return 2
    if args.feedback is not None and not args.feedback.is_file():
        print(f"civility train: feedback file {args.feedback} does not exist", file=sys.stderr)
        return 2
    try:
        artifact = train(args.data, args.out, options)
    except FeedbackError as error:
        print(f"civility train: {error}", file=sys.stderr)
        return 2
    print(f"trained {artifact} ({artifact.stat().st_size / 1e6:.1f} MB)")
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
    parser.add_argument("--jobs", type=_positive_int, default=2, help="labels fitted in parallel")
    parser.add_argument(
        "--limit-per-set",
        type=_positive_int,
        help="measure at most this many rows per set (quick checks; the report records it)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave the card")
    parser.add_argument(
        "--compare",
        metavar="OLD",
        help="instead of the full report, score OLD (a version, model name or artifact) and this "
        "model on the same held-out sets and print both",
    )
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        print(f"civility evaluate: datasets folder {args.data} does not exist", file=sys.stderr)
        return 2
    try:
        model = Model.load(args.model) if args.model else load_active(args.models)
    except ModelError as error:
        print(f"civility evaluate: {error}", file=sys.stderr)
        return 2
    if args.compare:
        return _run_compare(model, args)
    report = evaluate(
        model,
        args.data,
        spam_folds=not args.skip_spam_folds,
        limit_per_set=args.limit_per_set,
        n_jobs=args.jobs,
    )
    print(f"{model.stem}: evaluated in {report['seconds']} s")
    print(format_table(report))
    if not args.no_write:
        write_report(model, report)
    return 0


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
        print(f"civility evaluate: {error}", file=sys.stderr)
        return 2
    report = compare(model, old, args.data, limit_per_set=args.limit_per_set)
    print(format_comparison(report))
    return 0


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
    parser.set_defaults(handler=_run_tune)


def _run_tune(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        print(f"civility tune: datasets folder {args.data} does not exist", file=sys.stderr)
        return 2
    report = tune(
        args.data,
        limit_per_source=args.limit_per_source,
        source_weights=args.source_weights,
        n_jobs=args.jobs,
    )
    print(format_report(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({report['seconds']} s)")
    return 0
