"""What each part of Moderation works with: the store, cached sites, the clock, names."""

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from service.domain import ADMIN_ACTOR, Comment
from service.errors import ClaimConflict, SiteNotFound
from service.labels import LabelLog
from service.language import Detected
from service.late_evidence import LateEvidence
from service.scorer import Scored, Scorer, SiteRef
from service.site_models import ActiveVersions
from service.store import Store
from service.store.records import SiteRecord


@dataclass(slots=True)
class CachedSite:
    record: SiteRecord
    expires: float


class ModerationBase:
    """The state ``Moderation.__init__`` sets up, and the helpers every part uses."""

    store: Store
    scorer: Scorer
    thresholds: Mapping[str, Mapping[str, float]]
    labels: LabelLog | None
    site_models: ActiveVersions | None
    second_look: bool
    evidence: LateEvidence
    _clock: Callable[[], float]
    _site_cache_seconds: float
    _sites: dict[str, CachedSite]
    _score: Callable[[str, SiteRef | None], Awaitable[Scored]]
    _read: Callable[[str, SiteRef | None], Awaitable[tuple[Detected, Scored | None]]]

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _site_record(self, site_id: str) -> SiteRecord:
        cached = self._sites.get(site_id)
        if cached is not None and cached.expires > time.monotonic():
            return cached.record
        record = await self.store.load_site(site_id)
        if record is None:
            raise SiteNotFound(site_id)
        self._remember(record)
        return record

    def _remember(self, record: SiteRecord) -> None:
        if self._site_cache_seconds > 0:
            expires = time.monotonic() + self._site_cache_seconds
            self._sites[record.site.id] = CachedSite(record, expires)

    def forget_site(self, site_id: str) -> None:
        """Drop this process's cached copy of the site (after a change made elsewhere)."""
        self._sites.pop(site_id, None)

    async def _named(self, site_id: str, comments: Sequence[Comment]) -> tuple[Comment, ...]:
        """The comments with the names of the people who decided, claimed and changed them."""
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        return tuple(
            comment.model_copy(
                update={
                    "decided_by_name": names.get(comment.decided_by),
                    "claimed_by_name": names.get(comment.claimed_by or ""),
                    "history": None
                    if comment.history is None
                    else tuple(
                        entry.model_copy(update={"actor_name": names.get(entry.actor)})
                        for entry in comment.history
                    ),
                }
            )
            for comment in comments
        )

    async def _name_holder(self, site_id: str, conflict: ClaimConflict) -> None:
        # Whoever meets the conflict should read who holds the comment, not an id.
        holder = conflict.details["claimed_by"]
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        conflict.details = {**conflict.details, "claimed_by_name": names.get(holder)}
