"""What Akismet's ``usage-limit``, ``key-sites`` and ``get-stats`` report: a site's calls per month.

Akismet counts, per API key and month, the calls (comment-checks) and their outcomes, and the
corrections sent back (``submit-spam`` is spam it missed, ``submit-ham`` a false positive).
civility keeps the same counters per site in one hash per UTC month, kept about 13 months so a
year of ``key-sites`` months can be asked for.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import RedisClient, store_errors

Counter = Literal["api_calls", "spam", "ham", "missed_spam", "false_positives"]
COUNTERS: tuple[Counter, ...] = ("api_calls", "spam", "ham", "missed_spam", "false_positives")

KEEP_SECONDS = 400 * 86_400


def month_of(moment_ms: int) -> str:
    """The UTC month (``YYYY-MM``) of an epoch-milliseconds moment."""
    return datetime.fromtimestamp(moment_ms / 1000, UTC).strftime("%Y-%m")


class AkismetUsage:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)

    async def count(self, site: str, now_ms: int, *counters: Counter) -> None:
        key = self.keys.akismet_usage(site, month_of(now_ms))
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for counter in counters:
                    pipe.hincrby(key, counter, 1)
                pipe.expire(key, KEEP_SECONDS)
                await pipe.execute()

    async def month(self, site: str, month: str) -> Mapping[str, int]:
        with store_errors():
            stored = await self.redis.hgetall(self.keys.akismet_usage(site, month))
        return {counter: int(stored.get(counter, 0)) for counter in COUNTERS}
