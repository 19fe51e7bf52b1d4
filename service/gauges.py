"""The figures /metrics shows per site, kept in one Redis hash so a scrape reads one key
whatever the number of sites.

Two writers keep the hash current. After every write to a site the API marks the site in a set
(the middleware; marks asked for together share one SADD), and a scrape, on any API process,
refreshes the marked sites first, at most ``SITES_PER_STEP`` of them: figures are right after
intake and decisions, also after a restart. The worker sweeps every site in the same bounded
steps, one every ``STEP_SECONDS``: it catches what the worker itself (second look, refits)
changed, and drops deleted sites. The hash is global, outside every site's hash tag, so it is
written beside the scripts, not by them (a script touches one site's slot only).
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from service.batched_adds import BatchedAdds
from service.connection import connect
from service.domain import Order, Queue
from service.errors import CivilityError
from service.keys import DEFAULT_PREFIX, KeySpace
from service.second_look_store import SecondLookLog, Totals
from service.settings import Settings
from service.site_models import SiteModels
from service.store.scripts import RedisClient, store_errors

STEP_SECONDS = 1.0
SITES_PER_STEP = 100
"""Sites one step reads at most, changed ones first: it bounds the work a step adds to Redis."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SiteFigures:
    queue_depths: dict[str, int]
    refits: dict[str, int]
    second_look: Totals

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> "SiteFigures":
        data: dict[str, Any] = json.loads(raw)
        look = data["second_look"]
        totals = Totals(
            **{**look, "delay_buckets": tuple((b, int(c)) for b, c in look["delay_buckets"])}
        )
        return cls(data["queue_depths"], data["refits"], totals)


class SiteGauges:
    def __init__(
        self,
        redis: RedisClient,
        site_models: SiteModels,
        second_looks: SecondLookLog,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)
        self.site_models = site_models
        self.second_looks = second_looks
        self._sweep: list[str] = []
        self._marks = BatchedAdds(self._add_changed)

    async def mark(self, site: str) -> None:
        """``site`` changed: the next scrape refreshes its figures. Marks asked for together
        share one SADD."""
        await self._marks.add(site)

    async def _add_changed(self, sites: Sequence[str]) -> None:
        with store_errors():
            await self.redis.sadd(self.keys.gauges_changed(), *sites)

    async def figures(self) -> dict[str, SiteFigures]:
        """Every site's figures as last refreshed: one read."""
        with store_errors():
            stored = cast(dict[str, str], await self.redis.hgetall(self.keys.gauges()))
        return {site: SiteFigures.from_json(raw) for site, raw in stored.items()}

    async def refresh_changed(self) -> None:
        """Refresh the marked sites, at most ``SITES_PER_STEP`` (the rest wait for the next
        scrape or the worker's sweep)."""
        with store_errors():
            taken = await self.redis.spop(self.keys.gauges_changed(), SITES_PER_STEP)
        await self.refresh(cast(list[str], taken or []))

    async def step(self) -> None:
        """The sweep's next ``SITES_PER_STEP`` sites; at each new round, drop deleted sites."""
        if not self._sweep:
            with store_errors():
                listed = await self.redis.smembers(self.keys.sites())
            known = cast(set[str], listed)
            stale = set(await self._gauged()) - known
            if stale:
                with store_errors():
                    await self.redis.hdel(self.keys.gauges(), *stale)
            self._sweep = sorted(known)
        batch = self._sweep[:SITES_PER_STEP]
        del self._sweep[:SITES_PER_STEP]
        await self.refresh(batch)

    async def refresh(self, sites: Sequence[str]) -> None:
        """Read ``sites``' figures again; a deleted site's are dropped."""
        if not sites:
            return
        unique = list(dict.fromkeys(sites))
        with store_errors():
            exists = await self.redis.smismember(self.keys.sites(), unique)
        kept = [site for site, there in zip(unique, exists, strict=True) if there]
        gone = [site for site, there in zip(unique, exists, strict=True) if not there]
        read: dict[Any, str] = {site: (await self._read(site)).to_json() for site in kept}
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                if read:
                    pipe.hset(self.keys.gauges(), mapping=read)
                if gone:
                    pipe.hdel(self.keys.gauges(), *gone)
                await pipe.execute()

    async def run(self, stopping: asyncio.Event) -> None:
        """Steps until ``stopping`` is set; a failing Redis only delays the figures."""
        while not stopping.is_set():
            try:
                await self.step()
            except CivilityError:
                log.warning("metrics figures not refreshed: the store is unavailable")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), STEP_SECONDS)

    async def _gauged(self) -> Iterable[str]:
        with store_errors():
            return cast(list[str], await self.redis.hkeys(self.keys.gauges()))

    async def _read(self, site: str) -> SiteFigures:
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for queue in Queue:
                    pipe.zcard(self.keys.queue_index(site, queue, Order.OLDEST))
                depths = await pipe.execute()
        return SiteFigures(
            queue_depths={q.value: int(d) for q, d in zip(Queue, depths, strict=True)},
            refits=await self.site_models.refit_counts(site),
            second_look=await self.second_looks.totals(site),
        )


@contextlib.asynccontextmanager
async def background_gauges(settings: Settings) -> AsyncIterator[SiteGauges]:
    """The sweep over every site, running in this event loop (the worker's) until the block
    ends: it catches what the worker and other API processes changed."""
    connection = connect(settings)
    prefix = connection.prefix
    gauges = SiteGauges(
        connection.client,
        SiteModels(connection.client, prefix=prefix),
        SecondLookLog(connection.client, prefix=prefix),
        prefix=prefix,
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(gauges.run(stopping))
    try:
        yield gauges
    finally:
        stopping.set()
        await task
        await connection.aclose()
