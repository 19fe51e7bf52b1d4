"""``civility labels export`` and ``civility model list|show|activate``: the loop from moderators'
decisions back to a new model version.

``labels export --site S`` writes the site's training labels (moderator decisions, compatibility
feedback) as JSON Lines to stdout, oldest first, from ``REDIS_URL`` or the running embedded
Valkey; ``civility train
--feedback`` folds such a file into a new version. ``model activate <version>`` marks a trained
version active after checking that it loads; running API processes switch to it on
``POST /v1/model:reload`` or SIGHUP.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from classifier.card import ARTIFACT_SUFFIX
from classifier.model import ArtifactMissingError, ModelError, activate, active_stem
from classifier.output import Sink, Stdout, until_the_reader_leaves, write_line
from classifier.progress import Progress, add_quiet
from classifier.versions import model_problem, stored_models
from service.admin_cli import StoreNotFoundError, store_settings
from service.connection import connect
from service.env_reader import SettingsError
from service.errors import StoreUnavailable
from service.interrupts import run_until_interrupted
from service.labels import LabelLog
from service.redis_url import without_credentials
from service.settings import Settings
from service.store import Store

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()
DEFAULT_MODEL_NAME = "civility"


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    labels = commands.add_parser("labels", help="training labels kept from decisions and feedback")
    labels_commands = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    export = labels_commands.add_parser(
        "export",
        help="write a site's labels as JSON Lines to stdout",
        description="Write every training label of the site, oldest first, one JSON object a "
        "line: id, site, text, labels, source, model, comment_id, reason, author, at.",
    )
    export.add_argument("--site", required=True, help="the site id")
    add_quiet(export)
    export.set_defaults(handler=export_command)

    model = commands.add_parser("model", help="manage the model versions in the models folder")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    activate_parser = model_commands.add_parser(
        "activate",
        help="mark a trained version active (running APIs switch on reload or SIGHUP)",
        description="Check that the version loads (card, checksum, scikit-learn version), then "
        "point models/ACTIVE at it. Running API processes switch on POST /v1/model:reload or "
        "SIGHUP.",
    )
    activate_parser.add_argument(
        "version", help="a version (1.1.0) or a model name (civility-1.1.0)"
    )
    models_default = Path(os.environ.get("CIVILITY_MODELS_DIR", "models"))
    models_help = "models folder (default: CIVILITY_MODELS_DIR or ./models)"
    activate_parser.add_argument("--models", type=Path, default=models_default, help=models_help)
    activate_parser.set_defaults(handler=activate_command)

    list_parser = model_commands.add_parser(
        "list", help="the versions in the models folder, the active one marked with *"
    )
    list_parser.add_argument("--models", type=Path, default=models_default, help=models_help)
    list_parser.set_defaults(handler=list_command)

    show_parser = model_commands.add_parser(
        "show", help="a version's card as JSON (default: the active version)"
    )
    show_parser.add_argument(
        "version", nargs="?", help="a version (1.1.0) or a model name (civility-1.1.0)"
    )
    show_parser.add_argument("--models", type=Path, default=models_default, help=models_help)
    show_parser.set_defaults(handler=show_command)


def export_command(args: argparse.Namespace) -> int:
    try:
        settings = store_settings()
    except (SettingsError, StoreNotFoundError) as error:
        print(f"civility labels export: {error}", file=sys.stderr)
        return 2
    try:
        with until_the_reader_leaves():
            return run_until_interrupted(
                _export(settings, args.site, Stdout(), Progress(quiet=args.quiet))
            )
        return 0
    except StoreUnavailable:
        print(
            "civility labels export: Redis at "
            f"{without_credentials(settings.redis_url or '')} does not answer",
            file=sys.stderr,
        )
        return 1


async def _export(settings: Settings, site: str, out: Sink, progress: Progress) -> int:
    connection = connect(settings)
    client, prefix = connection.client, connection.prefix
    try:
        if await Store(client, prefix=prefix).load_site(site) is None:
            print(f"civility labels export: no site {site!r}", file=sys.stderr)
            return 2
        with progress.counting("exporting labels", unit="label") as count:
            async for entry in LabelLog(client, prefix=prefix).export(site):
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
                count()
    finally:
        await connection.aclose()
    out.flush()
    return 0


def _stem(requested: str, models: Path) -> str:
    # A bare version names the default model: "1.1.0" is civility-1.1.0.
    named = (
        requested.startswith(f"{DEFAULT_MODEL_NAME}-")
        or (models / f"{requested}{ARTIFACT_SUFFIX}").is_file()
    )
    return requested if named else f"{DEFAULT_MODEL_NAME}-{requested}"


def list_command(args: argparse.Namespace) -> int:
    stored = stored_models(args.models)
    if not stored:
        print(f"civility model list: no models in {args.models}", file=sys.stderr)
        return 2
    for model in stored:
        card = model.card or {}
        created = card.get("created", "?")
        note = "" if model.card is not None else "  (card missing or unreadable)"
        write_line(f"{'*' if model.active else ' '} {model.stem:<28} {created}{note}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    models: Path = args.models
    try:
        stem = active_stem(models) if args.version is None else _stem(args.version, models)
    except ModelError as error:
        print(f"civility model show: {model_problem(error, models)}", file=sys.stderr)
        return 2
    found = [model for model in stored_models(models) if model.stem == stem]
    if not found:
        missing = ArtifactMissingError(
            f"model artifact {models / (stem + ARTIFACT_SUFFIX)} does not exist"
        )
        print(f"civility model show: {model_problem(missing, models)}", file=sys.stderr)
        return 2
    if found[0].card is None:
        print(f"civility model show: {stem} has no readable card", file=sys.stderr)
        return 2
    # A card is larger than a pipe holds: `| head` leaves before the end.
    with until_the_reader_leaves():
        write_line(json.dumps(found[0].card, indent=2, ensure_ascii=False))
    return 0


def activate_command(args: argparse.Namespace) -> int:
    models: Path = args.models
    stem = _stem(args.version, models)
    try:
        activate(models, stem)
    except ModelError as error:
        print(f"civility model activate: {model_problem(error, models)}", file=sys.stderr)
        return 2
    except OSError as error:
        # A models folder the user cannot write, such as the image's under its service user.
        problem = error.strerror or str(error)
        print(
            f"civility model activate: cannot mark {stem} active in {models}: {problem}",
            file=sys.stderr,
        )
        return 2
    write_line(
        f"{stem} is active in {models}; running API processes switch on "
        "POST /v1/model:reload or SIGHUP"
    )
    return 0
