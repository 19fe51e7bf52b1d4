"""The domain functions that take access away and data out: list and revoke moderators, rotate a
site's api key, delete a site, erase one author's data. The admin API and the CLI call these.
"""

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from service.admin_store import AdminStore, PurgeStep
from service.labels import LabelLog
from service.moderation import Moderation
from service.moderation.tokens import API_KEY_DRAWS, new_api_key, sha256_hex
from service.path_ids import checked_id
from service.site_models import SiteModels
from service.times import Moment, from_ms


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModeratorEntry(_Answer):
    id: str
    name: str
    created_at: Moment
    last_used_at: Moment | None


class ModeratorList(_Answer):
    moderators: tuple[ModeratorEntry, ...]


class ApiKeyRotation(_Answer):
    """The new api key (shown once) and until when the previous one still works."""

    api_key: str
    previous_valid_until: Moment


class Erasure(_Answer):
    author_id: str
    comments_erased: int
    labels_erased: int


class Administration:
    def __init__(
        self,
        store: AdminStore,
        moderation: Moderation,
        labels: LabelLog,
        *,
        clock: Callable[[], float] = time.time,
        site_models: SiteModels | None = None,
    ) -> None:
        self.store = store
        self.moderation = moderation
        self.labels = labels
        self.site_models = site_models
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def list_moderators(self, site_id: str) -> ModeratorList:
        listed = await self.store.moderators(site_id)
        if listed is None:
            await self.moderation.get_site(site_id)  # raises the site's own NotFound
            listed = []
        return ModeratorList(
            moderators=tuple(
                ModeratorEntry(
                    id=entry.moderator.id,
                    name=entry.moderator.name,
                    created_at=entry.moderator.created_at,
                    last_used_at=entry.last_used_at,
                )
                for entry in listed
            )
        )

    async def revoke_moderator(self, site_id: str, moderator_id: str) -> None:
        """The moderator's token fails from now on, on every process; its claims are released."""
        await self.moderation.get_site(site_id)
        await self.store.revoke_moderator(site_id, moderator_id)
        await self.moderation.release(site_id, moderator_id, None)

    async def rotate_api_key(self, site_id: str, grace_seconds: int) -> ApiKeyRotation:
        await self.moderation.get_site(site_id)
        for _ in range(API_KEY_DRAWS):
            api_key = new_api_key()
            if await self.store.claim_api_key(site_id, sha256_hex(api_key)):
                break
        else:
            raise RuntimeError("no free api key after several draws")
        now = self._now_ms()
        valid_until = now + grace_seconds * 1000
        await self.store.rotate_api_key(site_id, sha256_hex(api_key), now, valid_until)
        self.moderation.forget_site(site_id)
        return ApiKeyRotation(api_key=api_key, previous_valid_until=from_ms(valid_until))

    async def delete_site(self, site_id: str) -> None:
        """The site, its moderators' tokens and api keys end now; its data is purged by
        ``purge_step`` calls (the worker makes them)."""
        await self.store.delete_site(site_id)
        self.moderation.forget_site(site_id)

    async def purge_step(self, site_id: str) -> PurgeStep:
        return await self.store.purge_step(site_id)

    async def reindex(self, site_id: str) -> int:
        """File the site's stored comments into the browse and reason indexes that came after
        them; how many comments were looked at."""
        await self.moderation.get_site(site_id)
        return await self.store.reindex(site_id)

    async def erase_author(self, site_id: str, author_id: str) -> Erasure:
        await self.moderation.get_site(site_id)
        checked_id(author_id, "author")
        # The erasure's mark is held anew after each step: one may outlast it.
        erased = await self.store.erase_author(site_id, author_id, self._now_ms())
        labels = await self.labels.forget_author(site_id, author_id)
        await self.store.hold_erasure(site_id, author_id)
        if self.site_models is not None:
            # Their rows leave the site model's training data, and its next fit goes without.
            await self.site_models.forget_author(site_id, author_id)
        # Requests that began before the end, and may hold what was erased, end within this.
        await self.store.hold_erasure(site_id, author_id)
        return Erasure(author_id=author_id, comments_erased=len(erased), labels_erased=labels)
