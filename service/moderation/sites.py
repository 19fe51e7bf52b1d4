"""Sites, their secrets and api keys, and moderators with their tokens."""

import secrets
from collections.abc import Mapping

from pydantic import ValidationError

from service.domain import Moderator, SecretRotation, Site, SiteCredentials, SitePatch, SiteSpec
from service.errors import Conflict, SiteNotFound, ValidationFailed
from service.moderation.base import ModerationBase
from service.moderation.tokens import API_KEY_DRAWS, new_api_key, sha256_hex
from service.store.records import ApiKeyTakenError, SiteRecord
from service.times import from_ms, to_ms

# Each round of racing patches lets at least one write, so this bounds the patches in flight.
MAX_SITE_UPDATE_ATTEMPTS = 32


class Sites(ModerationBase):
    """Creating and changing sites and moderators; secrets shown once, stored hashed."""

    async def create_site(
        self, spec: SiteSpec, *, created_by_request: str | None = None
    ) -> tuple[Site, SiteCredentials]:
        """The new site and its credentials, which are shown only in this answer.
        ``created_by_request``: the digest of the keyed request creating it, whose kept answer
        the site's deletion ends."""
        for _ in range(API_KEY_DRAWS - 1):
            try:
                return await self._create_site(spec, new_api_key(), created_by_request)
            except ApiKeyTakenError:
                continue
        return await self._create_site(spec, new_api_key(), created_by_request)

    async def _create_site(
        self, spec: SiteSpec, api_key: str, created_by_request: str | None
    ) -> tuple[Site, SiteCredentials]:
        self._check_labels(spec.policy.hold, spec.policy.reject)
        now = from_ms(self._now_ms())
        credentials = SiteCredentials(
            webhook_secret=f"whsec_{secrets.token_urlsafe(32)}", api_key=api_key
        )
        site = Site(
            id=spec.id,
            name=spec.name,
            callback_url=spec.callback_url,
            policy=spec.policy,
            created_at=now,
            updated_at=now,
        )
        record = SiteRecord(
            site=site,
            webhook_secret=credentials.webhook_secret,
            previous_secret=None,
            previous_valid_until_ms=0,
            api_key_hash=sha256_hex(credentials.api_key),
            created_by_request=created_by_request,
        )
        await self.store.create_site(record)
        self._remember(record)
        return site, credentials

    async def get_site(self, site_id: str) -> Site:
        return (await self._site_record(site_id)).site

    async def update_site(self, site_id: str, patch: SitePatch) -> Site:
        # The policy is merged here, so a concurrent patch may land between read and write; the
        # write then refuses and the patch is merged again onto what that one wrote. The Coral
        # settings given are written with it, at once.
        coral = None
        if patch.coral is not None and patch.coral.model_fields_set:
            coral = patch.coral.model_dump(include=patch.coral.model_fields_set)
        for _ in range(MAX_SITE_UPDATE_ATTEMPTS):
            record = await self.store.load_site(site_id)
            if record is None:
                raise SiteNotFound(site_id)
            updated = self._patched(record.site, patch)
            if await self.store.update_site(updated, record.stored_policy, coral):
                break
        else:
            raise Conflict(f"site {site_id!r} kept changing; send the patch again")
        self._sites.pop(site_id, None)
        return updated

    def _patched(self, site: Site, patch: SitePatch) -> Site:
        changes: dict[str, object] = {"updated_at": from_ms(self._now_ms())}
        if patch.name is not None:
            changes["name"] = patch.name
        if "callback_url" in patch.model_fields_set:
            changes["callback_url"] = patch.callback_url
        if patch.policy is not None:
            self._check_labels(patch.policy.hold or {}, patch.policy.reject or {})
            try:
                changes["policy"] = patch.policy.apply(site.policy)
            except ValueError as error:  # pydantic's ValidationError of the merged policy
                raise _policy_error(error) from None
        return site.model_copy(update=changes)

    def _check_labels(self, hold: Mapping[str, float], reject: Mapping[str, float]) -> None:
        """A threshold for a label the model does not score would never apply: a typo said
        nothing and the site ran on the model's threshold. (Without a model's labels, as in an
        admin command that finds no active model's card, there is nothing to check against.)"""
        known = set(self.thresholds)
        if not known:
            return
        scored = ", ".join(sorted(known))
        unknown = [
            (f"policy.{kind}.{label}", f"the model scores no {label!r}; it scores {scored}")
            for kind, given in (("hold", hold), ("reject", reject))
            for label in given
            if label not in known
        ]
        if unknown:
            raise ValidationFailed(unknown)

    async def rotate_secret(self, site_id: str, grace_seconds: int) -> SecretRotation:
        now = self._now_ms()
        rotation = SecretRotation(
            webhook_secret=f"whsec_{secrets.token_urlsafe(32)}",
            previous_valid_until=from_ms(now + grace_seconds * 1000),
        )
        valid_until = to_ms(rotation.previous_valid_until)
        await self.store.rotate_secret(site_id, rotation.webhook_secret, now, valid_until)
        self._sites.pop(site_id, None)
        return rotation

    async def webhook_secrets(self, site_id: str) -> list[str]:
        """The secrets a signature may currently be made with; ``NotFound`` for no such site."""
        return (await self._site_record(site_id)).valid_secrets(self._now_ms())

    async def site_record(self, site_id: str) -> SiteRecord:
        """The site with its secrets (for the integrations that sign or call out); ``NotFound``
        for no such site."""
        return await self._site_record(site_id)

    async def site_for_api_key(self, api_key: str) -> Site | None:
        key_hash = sha256_hex(api_key)
        site_id = await self.store.site_id_for_api_key(key_hash)
        if site_id is None:
            return None
        record = await self.store.load_site(site_id)
        # The index is written before the site; only a key the site itself names counts.
        if record is None or not record.api_key_matches(key_hash, self._now_ms()):
            return None
        return record.site

    async def create_moderator(self, site_id: str, name: str) -> tuple[Moderator, str]:
        """The moderator and its bearer token (shown only here; stored as a sha256 hash)."""
        token = f"cmt_{secrets.token_urlsafe(32)}"
        moderator = Moderator(
            id=f"mod_{secrets.token_hex(8)}",
            site_id=site_id,
            name=name,
            created_at=from_ms(self._now_ms()),
        )
        await self.store.add_moderator(moderator, sha256_hex(token))
        return moderator, token

    async def moderator_for_token(self, token: str) -> Moderator | None:
        return await self.store.moderator_by_token_hash(sha256_hex(token), self._now_ms())


def _policy_error(error: ValueError) -> ValidationFailed:
    if isinstance(error, ValidationError):
        return ValidationFailed.from_pydantic(error, prefix="policy")
    return ValidationFailed([("policy", str(error))])
