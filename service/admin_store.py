"""Redis side of revocation and removal: moderators' listing and revocation, api-key rotation,
a site's deletion with its purge in bounded steps, and one author's erasure (their comments, the
flood and duplicate windows their comments hold, and the kept idempotent answers carrying them).

Writes to a site's own keys are Lua scripts in its hash slot; the global indexes (api keys,
tokens, the purge list) are plain commands outside it, ordered so that a failure half-way leaves
nothing usable: a deleted site is listed for purging before anything of it is removed.
"""

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio.cluster import RedisCluster

from service.domain import Moderator
from service.errors import NotFound, SiteNotFound, StoreUnavailable
from service.idempotency import RUNNING_MS
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import LuaScripts, RedisClient, store_errors
from service.times import from_ms

SCRIPTS = (
    "revoke_moderator",
    "delete_site",
    "erase_author",
    "erase_windows",
    "erase_answers",
)
MAX_PREVIOUS_API_KEYS = 4
"""Rotated-out api keys kept in their grace at once, as webhook secrets are; a fifth rotation
within one grace period ends the oldest early."""
SCAN_COUNT = 1_000
"""Keys one SCAN call looks at: it bounds the work of one purge or erasure step."""
ERASE_BATCH = 200
"""Comment hashes (or idempotency records) one erasure or reindex script call looks at."""


@dataclass(frozen=True, slots=True)
class ListedModerator:
    moderator: Moderator
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeStep:
    removed: int
    done: bool


class AdminStore:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str = DEFAULT_PREFIX,
        *,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        """``replicas``: as for ``Store``, each change acknowledged once that many replicas
        hold it (a revocation, a rotation, a deletion or an erasure a failover undid would come
        back)."""
        self.redis = redis
        self.keys = KeySpace(prefix)
        waits = {"replicas": replicas, "replica_wait_ms": replica_wait_ms}
        self._run = LuaScripts(redis, SCRIPTS, with_library=False, **waits).run
        self._run_with_library = LuaScripts(
            redis, ("reindex", "rotate_api_key"), with_library=True, **waits
        ).run

    # ------------------------------------------------------------------ moderators

    async def moderators(self, site_id: str) -> list[ListedModerator] | None:
        """The site's moderators, oldest first; None when the site does not exist."""
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(self.keys.site(site_id))
                pipe.hgetall(self.keys.moderators(site_id))
                pipe.hgetall(self.keys.moderators_last_used(site_id))
                exists, listed, last_used = await pipe.execute()
        if not exists:
            return None
        entries = [
            ListedModerator(
                Moderator(
                    id=record["id"],
                    site_id=site_id,
                    name=record["name"],
                    created_at=from_ms(record["created_at"]),
                ),
                from_ms(last_used[moderator_id]) if moderator_id in last_used else None,
            )
            for moderator_id, record in ((key, json.loads(value)) for key, value in listed.items())
        ]
        return sorted(entries, key=lambda entry: (entry.moderator.created_at, entry.moderator.id))

    async def revoke_moderator(self, site_id: str, moderator_id: str) -> None:
        keys = [self.keys.moderators(site_id), self.keys.moderators_last_used(site_id)]
        stored = await self._run("revoke_moderator", keys, [moderator_id])
        if not stored:
            raise NotFound(f"moderator {moderator_id!r} not found")
        # Unlisting already refuses the token; removing its index is tidiness.
        if token_hash := json.loads(stored).get("token_hash"):
            with store_errors():
                await self.redis.delete(self.keys.moderator_token(token_hash))

    # ------------------------------------------------------------------ api keys

    async def claim_api_key(self, site_id: str, key_hash: str) -> bool:
        """Index a new key for the site; False when another site holds that key."""
        with store_errors():
            return bool(await self.redis.set(self.keys.api_key(key_hash), site_id, nx=True))

    async def rotate_api_key(
        self, site_id: str, key_hash: str, now_ms: int, previous_valid_until_ms: int
    ) -> None:
        """Make ``key_hash`` (claimed) the site's key; the old key's index ends with its grace,
        and the index of a key ended early (beyond ``MAX_PREVIOUS_API_KEYS``) at once."""
        keys = [self.keys.site(site_id)]
        args: list[str | int] = [key_hash, now_ms, previous_valid_until_ms, MAX_PREVIOUS_API_KEYS]
        reply = await self._run_with_library("rotate_api_key", keys, args)
        with store_errors():
            if not reply:
                await self.redis.delete(self.keys.api_key(key_hash))
                raise SiteNotFound(site_id)
            replaced, *ended = reply
            old_index = self.keys.api_key(replaced)
            if previous_valid_until_ms > now_ms:
                await self.redis.pexpireat(old_index, previous_valid_until_ms)
            else:
                await self.redis.delete(old_index)
            for ended_hash in ended:
                # One at a time: each index may live in another cluster slot.
                await self.redis.delete(self.keys.api_key(ended_hash))

    # ------------------------------------------------------------------ deletion

    async def delete_site(self, site_id: str) -> None:
        """Remove the site's record, moderators, tokens, api keys and its creation's kept answer
        now; list it for purging."""
        with store_errors():
            if not await self.redis.exists(self.keys.site(site_id)):
                raise SiteNotFound(site_id)
            await self.redis.hsetnx(self.keys.purges(), site_id, "0")
        keys = [self.keys.site(site_id), self.keys.moderators(site_id)]
        reply = await self._run("delete_site", keys, [])
        if not reply:
            raise SiteNotFound(site_id)
        split = reply.index("")
        api_keys, creation, moderators = reply[:split], reply[split + 1], reply[split + 2 :]
        tokens = [json.loads(stored).get("token_hash") for stored in moderators]
        globals_ = [self.keys.api_key(key) for key in api_keys]
        globals_ += [self.keys.moderator_token(token) for token in tokens if token]
        # The creation's kept answer holds the site's first credentials: a retry of it after
        # the deletion must not replay them (nor stop the site being created anew).
        globals_ += [self.keys.idempotency(None, creation)] if creation else []
        with store_errors():
            await self.redis.srem(self.keys.sites(), site_id)
            await self.redis.delete(*globals_)

    async def purging(self) -> list[str]:
        """Deleted sites whose keys are not all removed yet."""
        with store_errors():
            return sorted(cast(list[str], await self.redis.hkeys(self.keys.purges())))

    async def purge_step(self, site_id: str) -> PurgeStep:
        """Remove the next batch of a deleted site's keys (at most one SCAN's worth)."""
        purges = self.keys.purges()
        with store_errors():
            cursor = await self.redis.hget(purges, site_id)
            if cursor is None:
                return PurgeStep(0, True)
            pattern = f"{self.keys.site_prefix(site_id)}*"
            if isinstance(self.redis, RedisCluster):
                # Every key of the site is in one slot, so on one node: its SCAN, matched to
                # the site. (The slot's listing would name other sites' keys too: sites share
                # slots, 16,384 of them.)
                node = self.redis.get_node_from_key(self.keys.site(site_id))
                if node is None:
                    raise StoreUnavailable(f"no Cluster node serves site {site_id!r}'s slot")
                reply = await self.redis.scan(
                    int(cursor), match=pattern, count=SCAN_COUNT, target_nodes=node
                )
                # A cluster's SCAN answers with each node's cursor.
                cursors, found = cast(tuple[dict[str, int], list[bytes | str]], reply)
                next_cursor = int(cursors[node.name])
            else:
                next_cursor, found = await self.redis.scan(
                    int(cursor), match=pattern, count=SCAN_COUNT
                )
            if found:
                await self.redis.unlink(*found)
            if next_cursor == 0:
                await self.redis.hdel(purges, site_id)
                return PurgeStep(len(found), True)
            await self.redis.hset(purges, site_id, str(next_cursor))
        return PurgeStep(len(found), False)

    # ------------------------------------------------------------------ erasure

    async def erase_author(self, site_id: str, author_id: str, now_ms: int) -> list[str]:
        """Erase the author's text and details from every stored comment of theirs, then forget
        the windows their comments hold and the kept idempotent answers carrying their comments;
        the erased comments' ids.

        No index lists all of an author's comments (decided ones expire on their own), nor the
        windows and answers naming them, so the site's comment hashes, flood and duplicate
        windows and idempotency records are scanned, one bounded batch per script call. The
        answers go after the comments: a retry in between replays its answer, which is then
        forgotten, or runs again on erased data."""
        erased: list[str] = []
        remains = json.dumps({"id": author_id})
        prefix = self.keys.site_prefix(site_id)
        await self.hold_erasure(site_id, author_id)
        async for batch in self._scanned(f"{prefix}comment:*"):
            erased += await self._erase(batch, author_id, remains, now_ms)
            await self.hold_erasure(site_id, author_id)
        # A duplicate window names its author (and a hash of the text), an address's flood
        # window only the address: the comment it holds tells whose it is.
        windows = (
            self.keys.duplicate(site_id, _glob_escaped(author_id), "*"),
            self.keys.ip_flood(site_id, "*"),
        )
        for pattern in windows:
            async for batch in self._scanned(pattern):
                await self._run("erase_windows", batch, [prefix, author_id])
                await self.hold_erasure(site_id, author_id)
        async for batch in self._scanned(self.keys.idempotency(site_id, "*")):
            await self._run("erase_answers", batch, [author_id])
            await self.hold_erasure(site_id, author_id)
        return erased

    async def hold_erasure(self, site_id: str, author_id: str) -> None:
        """Mark the author's erasure running for a request's lifetime from now. A request that
        read their data before it was erased (a decision) may write it back after the erasure
        looked (its kept answer, its training label): while the mark lasts, those writes are
        refused."""
        with store_errors():
            await self.redis.set(self.keys.erasure(site_id, author_id), "1", px=RUNNING_MS)

    async def _scanned(self, pattern: str) -> AsyncIterator[list[str]]:
        """The keys matching ``pattern``, ERASE_BATCH at a time."""
        batch: list[str] = []
        with store_errors():
            async for key in self.redis.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(key)
                if len(batch) == ERASE_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def _erase(
        self, keys: Sequence[str], author_id: str, remains: str, now_ms: int
    ) -> list[str]:
        return cast(list[str], await self._run("erase_author", keys, [author_id, remains, now_ms]))

    # ------------------------------------------------------------------ reindexing

    async def reindex(self, site_id: str) -> int:
        """Add the site's stored comments to the browse and reason indexes they are missing from
        (comments stored before those indexes existed); returns how many comments were looked
        at. Scanned in bounded batches, one script call each; safe to run again."""
        looked = 0
        batch: list[str] = []
        pattern = f"{self.keys.site_prefix(site_id)}comment:*"
        prefix = self.keys.site_prefix(site_id)

        async def filed() -> int:
            reply = await self._run_with_library("reindex", batch, [prefix])
            if reply is None:
                raise SiteNotFound(site_id)
            return int(reply)

        with store_errors():
            async for key in self.redis.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(key)
                if len(batch) == ERASE_BATCH:
                    looked += await filed()
                    batch = []
            if batch:
                looked += await filed()
        return looked


def _glob_escaped(text: str) -> str:
    """``text`` matched literally in a SCAN pattern (an author id may hold ``*?[]\\``)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
