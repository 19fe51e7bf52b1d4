"""``civility sites|moderators|secrets``: the admin API's site work from a shell.

Each action calls the same domain function (``Moderation``, ``Administration``) as its admin
route and prints the route's JSON answer, so the two never drift. The store is ``REDIS_URL``, or
else the embedded Valkey of the ``civility run`` serving ``CIVILITY_DATA_DIR`` (found through the
address it records there).
"""

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from classifier.card import ARTIFACT_SUFFIX, card_path, read_card
from classifier.model import ModelError, active_stem
from classifier.output import OutputError, write_line
from service.admin_store import AdminStore
from service.administration import Administration
from service.connection import connect, refuse_a_refused_redis_url
from service.domain import ModeratorSpec, SitePatch, SiteSpec
from service.embedded import running_url
from service.env_reader import SettingsError
from service.errors import CivilityError, ValidationFailed
from service.interrupts import run_until_interrupted
from service.labels import LabelLog
from service.moderation import Moderation
from service.path_ids import checked_id
from service.scorer import Spans
from service.settings import Settings
from service.store import Store

SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


@dataclass(frozen=True)
class Admin:
    """The domain objects the admin routes call, over one Redis client."""

    moderation: Moderation
    administration: Administration


Action = Callable[[Admin, argparse.Namespace, Settings], Awaitable[Any]]
Unseen = Callable[[Admin, argparse.Namespace, Any], Awaitable[str]]
"""Given an action's answer nobody saw, undoes the action where that is safe; says what it did,
or what the operator must do."""


class StoreNotFoundError(Exception):
    """Neither ``REDIS_URL`` nor a running ``civility run`` says where the store is, or its
    Redis does not answer."""


def store_url(settings: Settings) -> str:
    """``REDIS_URL``, else the address the ``civility run`` on ``CIVILITY_DATA_DIR`` recorded."""
    if settings.redis_url is not None:
        return settings.redis_url
    url = running_url(settings.data_dir)
    if url is None:
        raise StoreNotFoundError(
            f"no REDIS_URL, and no `civility run` serves CIVILITY_DATA_DIR {settings.data_dir}: "
            "set REDIS_URL, or start `civility run` (or run this from the folder it runs in)"
        )
    return url


def store_settings() -> Settings:
    """The service's settings, with the store's URL once its Redis answered; ``SettingsError``
    or ``StoreNotFoundError`` saying why not."""
    settings = Settings.from_env()
    settings = dataclasses.replace(settings, redis_url=store_url(settings))
    unanswered = refuse_a_refused_redis_url(settings)
    if unanswered is not None:
        # Said as `serve` says it; a command cannot wait for Redis to come up as the service does.
        raise StoreNotFoundError(unanswered)
    return settings


class _NoScoring:
    """Admin actions read and write sites and moderators only: nothing here scores a comment."""

    model_version = "none"

    async def score(self, text: str) -> dict[str, float]:
        raise RuntimeError("admin commands do not score comments")

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> Spans:
        raise RuntimeError("admin commands do not explain comments")


def model_thresholds(models_dir: Path) -> dict[str, dict[str, float]]:
    """The active model's thresholds by label, read from its card alone: a policy may name only
    labels the model scores, as the admin routes check, and loading the model would take
    seconds. Without a readable card there is nothing to check a policy against."""
    try:
        card = read_card(card_path(models_dir / f"{active_stem(models_dir)}{ARTIFACT_SUFFIX}"))
        return {
            str(label): {str(kind): float(value) for kind, value in levels.items()}
            for label, levels in card["thresholds"].items()
        }
    except (ModelError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


@contextlib.asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[Admin]:
    connection = connect(settings)
    client, prefix = connection.client, connection.prefix
    try:
        # No site cache: each command is one short process and must see the stored state.
        labels = LabelLog(client, prefix=prefix)
        waits = {
            "replicas": settings.redis_wait_replicas,
            "replica_wait_ms": settings.redis_wait_ms,
        }
        moderation = Moderation(
            Store(client, prefix=prefix, **waits),
            _NoScoring(),
            thresholds=model_thresholds(settings.models_dir),
            site_cache_seconds=0,
            labels=labels,
        )
        store = AdminStore(client, prefix=prefix, **waits)
        yield Admin(moderation, Administration(store, moderation, labels))
    finally:
        await connection.aclose()


def _validated(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise ValidationFailed.from_pydantic(error) from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _problem(error: CivilityError) -> str:
    if isinstance(error, ValidationFailed) and error.details:
        fields = "; ".join(f"{item['field']}: {item['message']}" for item in error.details)
        return f"{error.message}: {fields}"
    return error.message


def run_action(
    name: str, action: Action, args: argparse.Namespace, unseen: Unseen | None = None
) -> int:
    """Run one admin action against the store and print its JSON answer; errors in one line.
    ``unseen`` undoes the action when its answer, holding what is shown only there, could not
    be written."""
    try:
        settings = store_settings()
    except (SettingsError, StoreNotFoundError) as error:
        print(f"civility {name}: {error}", file=sys.stderr)
        return 2
    try:
        answer = _on_store(settings, lambda admin: action(admin, args, settings))
    except CivilityError as error:
        print(f"civility {name}: {_problem(error)}", file=sys.stderr)
        return 2 if error.status < 500 else 1
    try:
        write_line(json.dumps(answer, indent=2, ensure_ascii=False))
    except OutputError as error:
        if unseen is None:
            raise
        undone = _undone(settings, args, answer, unseen)
        print(f"civility {name}: {error}; {undone}", file=sys.stderr)
        return 1
    return 0


def _on_store(settings: Settings, work: Callable[[Admin], Awaitable[Any]]) -> Any:
    async def act() -> Any:
        async with _admin(settings) as admin:
            return await work(admin)

    return run_until_interrupted(act())


def _undone(settings: Settings, args: argparse.Namespace, answer: Any, unseen: Unseen) -> str:
    """What ``unseen`` did, or why it could not."""
    try:
        return str(_on_store(settings, lambda admin: unseen(admin, args, answer)))
    except CivilityError as error:
        return f"undoing it failed too ({_problem(error)})"


def _handler(
    name: str, action: Action, unseen: Unseen | None = None
) -> Callable[[argparse.Namespace], int]:
    return lambda args: run_action(name, action, args, unseen)


# ---------------------------------------------------------------------- actions


async def create_site(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    fields: dict[str, Any] = {"id": args.site, "name": args.name}
    if args.callback_url is not None:
        fields["callback_url"] = args.callback_url
    if args.policy is not None:
        fields["policy"] = args.policy
    site, credentials = await admin.moderation.create_site(_validated(SiteSpec, fields))
    return {**site.to_json(), **credentials.model_dump()}


async def remove_unseen_site(admin: Admin, args: argparse.Namespace, _: Any) -> str:
    """The site just created, whose webhook secret and api key are shown nowhere else: deleted,
    and purged here rather than by a worker, so that its id can be created again at once."""
    await admin.administration.delete_site(args.site)
    while not (await admin.administration.purge_step(args.site)).done:
        pass
    return (
        f"site {args.site!r} is removed again, as nobody saw its webhook secret and api key: "
        "create it again"
    )


async def show_site(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    return (await admin.moderation.get_site(args.site)).to_json()


async def update_site(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    fields: dict[str, Any] = {}
    if args.name is not None:
        fields["name"] = args.name
    if args.no_callback:
        fields["callback_url"] = None
    elif args.callback_url is not None:
        fields["callback_url"] = args.callback_url
    if args.policy is not None:
        fields["policy"] = args.policy
    if not fields:
        raise ValidationFailed([], "nothing to change: give --name, --callback-url or --policy")
    return (await admin.moderation.update_site(args.site, _validated(SitePatch, fields))).to_json()


async def delete_site(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    await admin.administration.delete_site(args.site)
    return {"deleted": args.site}


async def reindex_site(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    return {"site": args.site, "comments": await admin.administration.reindex(args.site)}


async def rotate_secret(admin: Admin, args: argparse.Namespace, s: Settings) -> Any:
    if args.api_key:
        rotated = await admin.administration.rotate_api_key(args.site, s.secret_grace_seconds)
        return rotated.model_dump(mode="json")
    rotation = await admin.moderation.rotate_secret(args.site, s.secret_grace_seconds)
    return rotation.model_dump(mode="json")


async def unseen_rotation(_: Admin, args: argparse.Namespace, answer: Any) -> str:
    """Nothing is undone: putting the previous secret back would make it current again without
    end, when the rotation was made to end it (perhaps as it leaked); a rotation may have ended
    the oldest of the grace list for good; and an api key's index, in another slot than the
    site, already expires. Rotating again with no grace ends the unseen one alone."""
    lost, previous = ("api key", "is accepted") if args.api_key else ("webhook secret", "verifies")
    flag = " --api-key" if args.api_key else ""
    return (
        f"the site's {lost} is now a new one nobody saw, and the previous one {previous} only "
        f"until {answer['previous_valid_until']}: before then run "
        f"`CIVILITY_SECRET_GRACE_SECONDS=0 civility secrets rotate {args.site}{flag}`, which "
        "ends the unseen one at once and prints the next"
    )


async def add_moderator(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    spec = _validated(ModeratorSpec, {"name": args.name})
    moderator, token = await admin.moderation.create_moderator(args.site, spec.name)
    return {**moderator.model_dump(mode="json"), "token": token}


async def revoke_unseen_moderator(admin: Admin, args: argparse.Namespace, answer: Any) -> str:
    """The moderator just added, whose token is shown nowhere else."""
    await admin.administration.revoke_moderator(args.site, answer["id"])
    return f"moderator {answer['id']!r} is revoked again, as nobody saw its token: add it again"


async def list_moderators(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    return (await admin.administration.list_moderators(args.site)).model_dump(mode="json")


async def revoke_moderator(admin: Admin, args: argparse.Namespace, _: Settings) -> Any:
    await admin.administration.revoke_moderator(args.site, checked_id(args.moderator, "moderator"))
    return {"revoked": args.moderator}


# ---------------------------------------------------------------------- parsers


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    _register_sites(commands)
    _register_moderators(commands)
    _register_secrets(commands)


def _register_sites(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    sites = commands.add_parser("sites", help="create, read and change sites (as the admin API)")
    actions = sites.add_subparsers(dest="sites_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create a site; prints its webhook secret and api key (shown only here)",
        description="Create a site as POST /v1/sites does and print the answer, with the "
        "webhook secret and api key that are never shown again.",
    )
    create.add_argument("site", help="the new site's id")
    create.add_argument("--name", required=True, help="a name people recognise")
    create.add_argument("--callback-url", help="where decision webhooks are sent")
    create.add_argument(
        "--policy", type=_json_object, help="the policy as a JSON object (default: the defaults)"
    )
    create.set_defaults(handler=_handler("sites create", create_site, remove_unseen_site))

    show = actions.add_parser("show", help="print a site and its policy")
    show.add_argument("site", help="the site id")
    show.set_defaults(handler=_handler("sites show", show_site))

    update = actions.add_parser(
        "update",
        help="change a site's name, callback URL or policy fields",
        description="Change a site as PATCH /v1/sites/{site} does: the policy fields given "
        "replace the site's, the others are kept.",
    )
    update.add_argument("site", help="the site id")
    update.add_argument("--name", help="the new name")
    callback = update.add_mutually_exclusive_group()
    callback.add_argument("--callback-url", help="the new callback URL")
    callback.add_argument(
        "--no-callback", action="store_true", help="remove the callback URL (no webhooks)"
    )
    update.add_argument(
        "--policy", type=_json_object, help='policy fields as a JSON object, e.g. {"mode": "pre"}'
    )
    update.set_defaults(handler=_handler("sites update", update_site))

    delete = actions.add_parser(
        "delete",
        help="delete a site: it, its tokens and api keys end at once; a worker purges its data",
        description="Delete as DELETE /v1/sites/{site} does; a running `civility worker` (or "
        "`civility run`) then purges the site's data in bounded steps.",
    )
    delete.add_argument("site", help="the site id")
    delete.set_defaults(handler=_handler("sites delete", delete_site))

    reindex = actions.add_parser(
        "reindex",
        help="file a site's older comments into the browse and reason indexes",
        description="Comments stored before the browse listing and the queue's reason filter "
        "existed are missing from them until their next change; this adds them (safe to run "
        "again, in bounded steps).",
    )
    reindex.add_argument("site", help="the site id")
    reindex.set_defaults(handler=_handler("sites reindex", reindex_site))


def _register_moderators(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    moderators = commands.add_parser("moderators", help="a site's moderators and their tokens")
    actions = moderators.add_subparsers(dest="moderators_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a moderator; prints the bearer token (shown only here)"
    )
    add.add_argument("site", help="the site id")
    add.add_argument("--name", required=True, help="the moderator's name")
    add.set_defaults(handler=_handler("moderators add", add_moderator, revoke_unseen_moderator))

    listed = actions.add_parser(
        "list", help="a site's moderators, with when each token was last used"
    )
    listed.add_argument("site", help="the site id")
    listed.set_defaults(handler=_handler("moderators list", list_moderators))

    revoke = actions.add_parser(
        "revoke", help="revoke a moderator: the token answers 401 at once, its claims are released"
    )
    revoke.add_argument("site", help="the site id")
    revoke.add_argument("moderator", help="the moderator id (mod_...)")
    revoke.set_defaults(handler=_handler("moderators revoke", revoke_moderator))


def _register_secrets(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    secrets = commands.add_parser("secrets", help="rotate a site's secrets")
    actions = secrets.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate",
        help="issue a new webhook secret; the previous one stays valid for the grace period",
        description="Rotate as POST /v1/sites/{site}/secrets:rotate does; the previous secret "
        "verifies for CIVILITY_SECRET_GRACE_SECONDS more.",
    )
    rotate.add_argument("site", help="the site id")
    rotate.add_argument(
        "--api-key",
        action="store_true",
        help="rotate the api key (Perspective, Akismet) instead of the webhook secret",
    )
    rotate.set_defaults(handler=_handler("secrets rotate", rotate_secret, unseen_rotation))
