"""The second look's state in Redis: each site's queue of published comments, leases, results.

Intake appends a published comment to its site's queue inside the script that stores it
(``ingest.lua``), so a backlog here never slows intake. Workers find the sites the way webhook
deliveries do, from the site list, and take due comments of every site in one round trip; a
taken comment is leased, so one whose worker died is taken again when the lease ends (at least
once). The queue holds comment ids only (the text stays in the comment's hash), so it is never
trimmed: a backlog costs ~100 bytes a comment, and a comment that expires or is erased meanwhile
leaves the queue when it comes due. Each change is one Lua script over one site's keys.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from service.domain import AuthorStatus
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import LuaScripts, RedisClient, raise_unavailable, store_errors

log = logging.getLogger(__name__)

DELAY_BUCKETS_SECONDS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
"""The histogram of the delay from intake to the second look (the target is a few seconds)."""
OVERFLOW_BUCKET = "+Inf"


@dataclass(frozen=True, slots=True)
class Taken:
    """One comment a worker took from a site's queue, as it was when taken."""

    site: str
    comment_id: str
    version: str
    """The comment version it was queued at: the look applies only while it is unchanged."""
    text: str
    queued_at_ms: int
    author_status: AuthorStatus
    leased_until_ms: int
    """The end of the lease it was taken under, which is its due time in the queue until then:
    a hand-back finds by it that the comment is still this taker's."""


@dataclass(frozen=True, slots=True)
class Look:
    """What the worker concluded about one taken comment."""

    taken: Taken
    scores: Mapping[str, float]
    model: str
    reasons: Sequence[str]
    """Empty: it stays published; else why it is held (``SECOND_LOOK`` first)."""
    priority: float
    now_ms: int
    event_id: str
    event_type: str
    sources: str
    recent_window_ms: int
    retention_ms: int


@dataclass(frozen=True, slots=True)
class Totals:
    """One site's second-look figures, as the metrics show them."""

    backlog: int
    looked: int
    held: int
    skipped: int
    delay_seconds_sum: float
    delay_buckets: tuple[tuple[str, int], ...]
    """Cumulative counts per upper bound (seconds, then ``+Inf``), as Prometheus reads them."""
    failed: int = 0
    """Given up (the stage failed on the text alone); figures stored before it was counted
    lack it."""


def delay_bucket(delay_ms: int) -> str:
    """The stats field of the histogram bucket a delay falls into (non-cumulative)."""
    for bound in DELAY_BUCKETS_SECONDS:
        if delay_ms <= bound * 1000:
            return f"le:{bound:g}"
    return f"le:{OVERFLOW_BUCKET}"


class SecondLookLog:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)
        self._scripts = LuaScripts(
            redis,
            ("second_look_claim", "second_look_fail", "second_look_hand_back"),
            with_library=False,
        )
        self._apply = LuaScripts(redis, ("second_look_apply",), with_library=True)

    async def sites(self) -> list[str]:
        with store_errors():
            members = await self.redis.smembers(self.keys.sites())
        return sorted(cast(set[str], members))

    def _claim_call(
        self, site: str, limit: int, lease_ms: int, now_ms: int
    ) -> tuple[list[str], list[str | int]]:
        keys = [self.keys.second_look_queue(site), self.keys.second_look_stats(site)]
        return keys, [self.keys.site_prefix(site), now_ms, limit, lease_ms]

    async def claim_all(
        self, sites: Sequence[str], limit: int, lease_ms: int, now_ms: int
    ) -> list[tuple[int, list[Taken]]]:
        """Up to ``limit`` due comments of each site, leased for ``lease_ms``, with each site's
        backlog; on one Redis server in a single round trip however many sites there are."""
        replies: list[Any] = []
        if isinstance(self.redis, RedisCluster):
            # A cluster pipeline cannot load scripts; each site is one call to its own node.
            for site in sites:
                keys, args = self._claim_call(site, limit, lease_ms, now_ms)
                try:
                    replies.append(await self._scripts.run("second_look_claim", keys, args))
                except ResponseError as error:
                    replies.append(error)
        else:
            script = self._scripts["second_look_claim"]
            with store_errors():
                async with self.redis.pipeline(transaction=False) as pipe:
                    for site in sites:
                        keys, args = self._claim_call(site, limit, lease_ms, now_ms)
                        await script(keys=keys, args=args, client=pipe)
                    replies = await pipe.execute(raise_on_error=False)
                # Redis refusing writes refuses every site's claim alike: the pass ends as the
                # store being away, not as each site's broken data, and claims next pass.
                raise_unavailable(replies)
        claims: list[tuple[int, list[Taken]]] = []
        for site, reply in zip(sites, replies, strict=True):
            if isinstance(reply, Exception):
                # One site's broken data must not stop every other site's second looks.
                log.error("taking second looks of site %r failed: %s", site, reply)
                claims.append((0, []))
                continue
            backlog, rows = reply
            claims.append(
                (
                    int(backlog),
                    [
                        Taken(
                            site,
                            row[0],
                            row[1],
                            row[2],
                            int(row[3]),
                            AuthorStatus(row[4]),
                            now_ms + lease_ms,
                        )
                        for row in rows
                    ],
                )
            )
        return claims

    async def apply(self, look: Look) -> str:
        """Record ``look``; the outcome: ``held``, ``looked``, ``skipped``, ``stale``, ``gone``."""
        taken = look.taken
        site = taken.site
        keys = [
            self.keys.comment(site, taken.comment_id),
            self.keys.history(site, taken.comment_id),
            self.keys.audit(site),
            self.keys.outbox(site),
            self.keys.second_look_queue(site),
            self.keys.second_look_stats(site),
        ]
        delay_ms = max(0, look.now_ms - taken.queued_at_ms)
        args: list[str | int | float] = [
            self.keys.site_prefix(site),
            site,
            taken.comment_id,
            taken.version,
            look.now_ms,
            json.dumps(look.scores),
            look.model,
            "1" if look.reasons else "0",
            json.dumps(list(look.reasons)),
            look.event_id,
            look.event_type,
            look.sources,
            repr(look.priority),
            look.recent_window_ms,
            delay_ms,
            delay_bucket(delay_ms),
            look.retention_ms,
        ]
        reply = await self._apply.run("second_look_apply", keys, args)
        return str(reply[0])

    async def fail(self, taken: Taken, give_up_after: int) -> str:
        """Count a failure of the stage on ``taken``'s text alone; the outcome: ``failed`` (the
        ``give_up_after``-th: it leaves the queue), ``again``, ``stale`` or ``gone``."""
        site = taken.site
        keys = [
            self.keys.comment(site, taken.comment_id),
            self.keys.second_look_queue(site),
            self.keys.second_look_stats(site),
            self.keys.site(site),
        ]
        args: list[str | int] = [taken.comment_id, taken.version, give_up_after]
        reply = await self._scripts.run("second_look_fail", keys, args)
        return str(reply[0])

    async def hand_back(self, items: Sequence[Taken]) -> int:
        """Make ``items``, taken but not looked at, due again at once where they were queued,
        each still under the lease it was taken with; how many were handed back."""
        leases: dict[tuple[str, int], list[str | int]] = {}
        for item in items:
            pairs = leases.setdefault((item.site, item.leased_until_ms), [])
            pairs += [item.comment_id, item.queued_at_ms]
        handed_back = 0
        for (site, leased_until_ms), pairs in leases.items():
            keys = [self.keys.second_look_queue(site)]
            args = [leased_until_ms, *pairs]
            reply = await self._scripts.run("second_look_hand_back", keys, args)
            handed_back += int(reply)
        return handed_back

    async def totals(self, site: str) -> Totals:
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcard(self.keys.second_look_queue(site))
                pipe.hgetall(self.keys.second_look_stats(site))
                backlog, stats = await pipe.execute()
        counts = cast(dict[str, str], stats)
        running = 0
        buckets: list[tuple[str, int]] = []
        for bound in DELAY_BUCKETS_SECONDS:
            running += int(counts.get(f"le:{bound:g}", 0))
            buckets.append((repr(float(bound)), running))  # Prometheus spells 1 as "1.0"
        running += int(counts.get(f"le:{OVERFLOW_BUCKET}", 0))
        buckets.append((OVERFLOW_BUCKET, running))
        return Totals(
            backlog=int(backlog),
            looked=int(counts.get("looked", 0)),
            held=int(counts.get("held", 0)),
            skipped=int(counts.get("skipped", 0)),
            failed=int(counts.get("failed", 0)),
            delay_seconds_sum=int(counts.get("delay_ms", 0)) / 1000,
            delay_buckets=tuple(buckets),
        )
