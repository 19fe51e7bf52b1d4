"""The store's sites and moderators: their records, secrets and tokens."""

import json
from collections.abc import Mapping
from typing import cast

from service.domain import Moderator, Policy, Site
from service.errors import AlreadyExists, BadRequest, SiteBeingDeleted, SiteNotFound
from service.store.records import ApiKeyTakenError, SiteRecord
from service.store.rows import flatten, text_fields
from service.store.scripts import ScriptedStore, store_errors
from service.times import from_ms, to_ms

MAX_PREVIOUS_SECRETS = 4
"""Rotated-out secrets kept in their grace at once; a fifth rotation within one grace period
ends the oldest early (every valid secret signs each webhook, and headers carry at most 8)."""


class SiteQueries(ScriptedStore):
    """Sites with their secrets and api keys, and the moderators' tokens."""

    async def create_site(self, record: SiteRecord) -> None:
        """Write the site; ``AlreadyExists`` if the id is taken, ``ApiKeyTakenError`` if the key is.

        The api-key index lives outside the site's hash slot, so it is written first: if the
        site write then fails, the index points at a key nobody was ever shown (harmless, and
        ``site_id_for_api_key`` checks it against the site's own hash)."""
        site = record.site
        with store_errors():
            if await self.redis.exists(self.keys.site(site.id)):
                raise AlreadyExists(f"site {site.id!r} already exists")
            if await self.redis.hexists(self.keys.purges(), site.id):
                raise SiteBeingDeleted(site.id)
            if not await self.redis.set(self.keys.api_key(record.api_key_hash), site.id, nx=True):
                raise ApiKeyTakenError("another site has this api key")
            # The site list (also outside every slot) is how webhook workers find sites.
            await self.redis.sadd(self.keys.sites(), site.id)
        fields: dict[str, str | int] = {
            "id": site.id,
            "name": site.name,
            "callback_url": site.callback_url or "",
            "policy": site.policy.model_dump_json(),
            "webhook_secret": record.webhook_secret,
            "previous_secret": "",
            "previous_valid_until": 0,
            "api_key_hash": record.api_key_hash,
            "created_at": to_ms(site.created_at),
            "updated_at": to_ms(site.updated_at),
        }
        if record.created_by_request:
            fields["created_by_request"] = record.created_by_request
        created = await self._run("create_site", [self.keys.site(site.id)], flatten(fields))
        if not created:
            with store_errors():
                await self.redis.delete(self.keys.api_key(record.api_key_hash))
            raise AlreadyExists(f"site {site.id!r} already exists")

    async def load_site(self, site_id: str) -> SiteRecord | None:
        with store_errors():
            fields = text_fields(await self.redis.hgetall(self.keys.site(site_id)))
        if not fields:
            return None
        return SiteRecord(
            site=Site(
                id=fields["id"],
                name=fields["name"],
                callback_url=fields["callback_url"] or None,
                policy=Policy.model_validate_json(fields["policy"]),
                created_at=from_ms(fields["created_at"]),
                updated_at=from_ms(fields["updated_at"]),
            ),
            webhook_secret=fields["webhook_secret"],
            previous_secret=fields.get("previous_secret") or None,
            previous_valid_until_ms=int(fields.get("previous_valid_until") or 0),
            api_key_hash=fields["api_key_hash"],
            coral_signing_secret=fields.get("coral_signing_secret") or None,
            coral_webhook_secret=fields.get("coral_webhook_secret") or None,
            coral_graphql_url=fields.get("coral_graphql_url") or None,
            coral_access_token=fields.get("coral_access_token") or None,
            stored_policy=fields["policy"],
            previous_api_key_hash=fields.get("previous_api_key_hash") or None,
            previous_api_key_valid_until_ms=int(fields.get("previous_api_key_valid_until") or 0),
            previous_secrets=tuple(
                (str(secret), int(until_ms))
                for secret, until_ms in json.loads(fields.get("previous_secrets") or "[]")
            ),
            previous_api_keys=tuple(
                (str(key_hash), int(until_ms))
                for key_hash, until_ms in json.loads(fields.get("previous_api_keys") or "[]")
            ),
        )

    async def update_site(
        self, site: Site, read_policy: str, coral: Mapping[str, str | None] | None = None
    ) -> bool:
        """Write ``site``'s settings, and the Coral Talk settings given (``coral_<name>`` fields,
        ``None`` removes one), if its stored policy is still ``read_policy`` (as stored, the one
        the new policy was merged from); False when another update changed it meanwhile.
        ``BadRequest``, writing nothing, when Coral's GraphQL URL or access token would be left
        without the other."""
        fields: dict[str, str | int] = {
            "name": site.name,
            "callback_url": site.callback_url or "",
            "policy": site.policy.model_dump_json(),
            "updated_at": to_ms(site.updated_at),
        }
        for name, value in (coral or {}).items():
            fields[f"coral_{name}"] = value or ""
        guard = ["policy", read_policy]
        written = await self._run(
            "update_site", [self.keys.site(site.id)], [*guard, *flatten(fields)]
        )
        if written == 0:
            raise SiteNotFound(site.id)
        if isinstance(written, str):
            # Alone, either one would send each decision towards Coral and fail it for a day.
            missing = written.removeprefix("coral_")
            given = "access_token" if missing == "graphql_url" else "graphql_url"
            raise BadRequest(
                f"coral.{missing} is required with coral.{given}: civility needs both to apply "
                "its decisions in Coral"
            )
        return bool(written == 1)

    async def rotate_secret(
        self, site_id: str, new_secret: str, now_ms: int, previous_valid_until_ms: int
    ) -> None:
        keys = [self.keys.site(site_id)]
        args: list[str | int] = [new_secret, now_ms, previous_valid_until_ms, MAX_PREVIOUS_SECRETS]
        if not await self._run("rotate_secret", keys, args):
            raise SiteNotFound(site_id)

    async def site_id_for_api_key(self, api_key_hash: str) -> str | None:
        with store_errors():
            site_id = await self.redis.get(self.keys.api_key(api_key_hash))
        return cast(str | None, site_id)

    async def add_moderator(self, moderator: Moderator, token_hash: str) -> None:
        """Index the token first (outside the site's slot), then add the moderator to the site;
        a token whose second step failed was never shown to anyone."""
        record: dict[str, str | int] = {
            "id": moderator.id,
            "site_id": moderator.site_id,
            "name": moderator.name,
            "created_at": to_ms(moderator.created_at),
        }
        token_key = self.keys.moderator_token(token_hash)
        with store_errors():
            await self.redis.hset(token_key, items=flatten(record))
        keys = [self.keys.site(moderator.site_id), self.keys.moderators(moderator.site_id)]
        # The token hash lets a revocation (or the site's deletion) remove the token's index.
        listed = json.dumps({**record, "token_hash": token_hash})
        if not await self._run("add_moderator", keys, [moderator.id, listed]):
            with store_errors():
                await self.redis.delete(token_key)
            raise SiteNotFound(moderator.site_id)

    async def moderator_by_token_hash(self, token_hash: str, now_ms: int) -> Moderator | None:
        """The token's moderator while it is listed on its site (noting the use), else None.

        Read from Redis on every call, never cached: a revocation applies at once everywhere."""
        with store_errors():
            fields = text_fields(await self.redis.hgetall(self.keys.moderator_token(token_hash)))
        if not fields:
            return None
        site_id = fields["site_id"]
        keys = [self.keys.moderators(site_id), self.keys.moderators_last_used(site_id)]
        if not await self._run("touch_moderator", keys, [fields["id"], now_ms]):
            return None
        return Moderator(
            id=fields["id"],
            site_id=fields["site_id"],
            name=fields["name"],
            created_at=from_ms(fields["created_at"]),
        )

    async def moderator_names(self, site_id: str) -> dict[str, str]:
        """Each moderator's name by id, as people should read ``decided_by`` and ``claimed_by``."""
        with store_errors():
            stored = text_fields(await self.redis.hgetall(self.keys.moderators(site_id)))
        return {moderator_id: json.loads(record)["name"] for moderator_id, record in stored.items()}
