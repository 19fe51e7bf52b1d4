"""``civility labels export`` and ``civility model activate``: the loop from moderators' decisions
back to a new model version.

``labels export --site S`` writes the site's training labels (moderator decisions, compatibility
feedback) as JSON Lines to stdout, oldest first, from the Redis at ``REDIS_URL``; ``civility train
--feedback`` folds such a file into a new version. ``model activate <version>`` marks a trained
version active after checking that it loads; running API processes switch to it on
``POST /v1/model:reload`` or SIGHUP.
"""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from classifier.card import ARTIFACT_SUFFIX
from classifier.model import ModelError, activate
from service.connection import connect
from service.errors import StoreUnavailable
from service.labels import LabelLog
from service.settings import Settings, SettingsError
from service.store import Store

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()
DEFAULT_MODEL_NAME = "civility"


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    labels = commands.add_parser("labels", help="training labels kept from decisions and feedback")
    labels_commands = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    export = labels_commands.add_parser(
        "export",
        help="write a site's labels as JSON Lines to stdout (reads REDIS_URL)",
        description="Write every training label of the site, oldest first, one JSON object a "
        "line: id, site, text, labels, source, model, comment_id, reason, at.",
    )
    export.add_argument("--site", required=True, help="the site id")
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
    activate_parser.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("CIVILITY_MODELS_DIR", "models")),
        help="models folder (default: CIVILITY_MODELS_DIR or ./models)",
    )
    activate_parser.set_defaults(handler=activate_command)


def export_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"civility labels export: {error}", file=sys.stderr)
        return 2
    if settings.redis_url is None:
        print("civility labels export: REDIS_URL is required", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_export(settings, args.site, sys.stdout))
    except StoreUnavailable:
        print(
            f"civility labels export: Redis at {settings.redis_url} does not answer",
            file=sys.stderr,
        )
        return 1


async def _export(settings: Settings, site: str, out: TextIO) -> int:
    connection = connect(settings)
    client, prefix = connection.client, connection.prefix
    try:
        if await Store(client, prefix=prefix).load_site(site) is None:
            print(f"civility labels export: no site {site!r}", file=sys.stderr)
            return 2
        async for entry in LabelLog(client, prefix=prefix).export(site):
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    finally:
        await connection.aclose()
    out.flush()
    return 0


def activate_command(args: argparse.Namespace) -> int:
    requested: str = args.version
    models: Path = args.models
    # A bare version names the default model: "1.1.0" is civility-1.1.0.
    named = (
        requested.startswith(f"{DEFAULT_MODEL_NAME}-")
        or (models / f"{requested}{ARTIFACT_SUFFIX}").is_file()
    )
    stem = requested if named else f"{DEFAULT_MODEL_NAME}-{requested}"
    try:
        activate(models, stem)
    except ModelError as error:
        print(f"civility model activate: {error}", file=sys.stderr)
        return 2
    print(
        f"{stem} is active in {models}; running API processes switch on "
        "POST /v1/model:reload or SIGHUP"
    )
    return 0
