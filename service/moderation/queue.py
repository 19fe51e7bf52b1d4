"""What moderators read and hold: queue pages, comments, live events, stats and claims."""

from service.domain import (
    ADMIN_ACTOR,
    ClaimRequest,
    Comment,
    CommentClaimRequest,
    CommentQuery,
    QueuePage,
    QueueQuery,
    SiteStats,
)
from service.errors import ClaimConflict
from service.events import LiveEvent, live_event
from service.idempotency import KEEP_MS, batch_id
from service.moderation.base import ModerationBase
from service.store.records import DAY_MS


class QueueDesk(ModerationBase):
    """Listings named for people to read, and the leases moderators take on comments."""

    async def list_queue(self, site_id: str, query: QueueQuery) -> QueuePage:
        await self._site_record(site_id)
        page = await self.store.page(site_id, query, self._now_ms())
        return page.model_copy(update={"items": await self._named(site_id, page.items)})

    async def list_comments(self, site_id: str, query: CommentQuery) -> QueuePage:
        """Comments in one state, the latest decided first (the console's browse view)."""
        policy = (await self._site_record(site_id)).site.policy
        page = await self.store.comments(
            site_id, query, self._now_ms(), retention_ms=policy.retention_days * DAY_MS
        )
        return page.model_copy(update={"items": await self._named(site_id, page.items)})

    async def get_comment(self, site_id: str, comment_id: str) -> Comment:
        await self._site_record(site_id)
        [comment] = await self._named(
            site_id, [await self.store.comment(site_id, comment_id, self._now_ms())]
        )
        return comment

    async def stats(self, site_id: str) -> SiteStats:
        await self._site_record(site_id)
        return await self.store.stats(site_id, self._now_ms())

    async def latest_event_id(self, site_id: str) -> str:
        """Where a new event stream of the site starts: after everything already recorded."""
        await self._site_record(site_id)
        return await self.store.latest_event_id(site_id)

    async def require_site(self, site_id: str) -> None:
        """``NotFound`` once the site is gone (cached like every other read of the site)."""
        await self._site_record(site_id)

    async def events_after(
        self, site_id: str, after_id: str, *, block_ms: int
    ) -> tuple[str, list[LiveEvent]]:
        """The site's changes and claims after ``after_id``, waiting up to ``block_ms`` (more
        than 0) for one; and the id to continue from."""
        entries = await self.store.events_after(site_id, after_id, block_ms=block_ms)
        if not entries:
            return after_id, []
        names = {ADMIN_ACTOR: ADMIN_ACTOR, **await self.store.moderator_names(site_id)}
        return entries[-1][0], [live_event(entry_id, fields, names) for entry_id, fields in entries]

    async def claim(
        self,
        site_id: str,
        moderator_id: str,
        request: ClaimRequest,
        *,
        batch_seed: str | None = None,
    ) -> list[Comment]:
        """Up to ``request.limit`` unclaimed comments in queue order, of one article or author
        and of one reason when the request names them, leased to the caller.

        ``batch_seed`` (a request's idempotency seed) names the batch on every retry of the
        request, so a retry after an unknown outcome answers the comments the first call leased
        that the caller still holds, and leases no second batch."""
        await self._site_record(site_id)
        claimed = await self.store.claim(
            site_id,
            moderator_id,
            request.queue,
            request.order,
            request.limit,
            request.lease_seconds * 1000,
            self._now_ms(),
            article=request.article,
            author=request.author,
            reason=request.reason.value if request.reason else None,
            batch_id="" if batch_seed is None else batch_id(batch_seed),
            remember_ms=0 if batch_seed is None else KEEP_MS,
        )
        return list(await self._named(site_id, claimed))

    async def claim_comment(
        self, site_id: str, moderator_id: str, comment_id: str, request: CommentClaimRequest
    ) -> Comment:
        """Lease one chosen queued comment to the caller; ClaimConflict names who holds it."""
        await self._site_record(site_id)
        try:
            claimed = await self.store.claim_comment(
                site_id, moderator_id, comment_id, request.lease_seconds * 1000, self._now_ms()
            )
        except ClaimConflict as conflict:
            await self._name_holder(site_id, conflict)
            raise
        [named] = await self._named(site_id, [claimed])
        return named

    async def release(self, site_id: str, moderator_id: str, ids: list[str] | None) -> list[str]:
        await self._site_record(site_id)
        return await self.store.release(site_id, moderator_id, ids, self._now_ms())
