"""Each site's model in Redis: its versions, which one is active, rollback, and its rows.

A version is a JSON document (``card``; the label models of the verdict in ``weights`` and of the
second look in ``second_look``, see ``classifier.site_model_codec.encode``) under its own key; the
site's history is a stack of activations, newest first, where 0 stands for "the global model
alone". A refit that changes what the site runs on pushes onto it; a
rollback pops the head, so the site runs on what it ran on before the last change. API processes
read the active version at most a second old (``ActiveVersions``) and score with it; a verdict
names it in its model version, ``1.4.0+site.3``.

Rows are the site's labelled comments as a refit reads them (labels, author, text, the global
model's scores and features); each author's rows are indexed, so erasing an author drops them
from the next fit, and all of a site's keys sit in its hash tag, so deleting the site's keys
deletes them too.
"""

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from service.errors import Conflict
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import LuaScripts, RedisClient, store_errors

VERDICT_WEIGHTS = "weights"
"""A version's field with the verdict's label models (the second look's is ``second_look``)."""
REFRESH_BATCH = 200
"""Rows written per script call: a call holds Redis for as long as it runs."""
HISTORY = 10
"""Activations a site keeps: as many rollbacks in a row as it may need."""
GLOBAL = 0
ACTIVE_SECONDS = 1.0
"""How old an API process's view of a site's active version may be."""

SITE_MODEL_TAG = "+site."
OUTCOMES = ("adapted", "global", "failed")
"""How a refit ends: the site model in use, the site left on the global model, an error."""


GLOBAL_ARTIFACT = "global_artifact"
"""A card's field with the checksum of the global model's artifact it was fitted on."""


def fitted_on(card: Mapping[str, Any], version: str, checksum: str | None) -> bool:
    """Whether a site model card was fitted on the global model of ``version`` and artifact
    ``checksum``: its weights read that model's feature columns and no other's. A card from
    before the checksum was recorded is taken at its version."""
    if card.get("global_model") != version:
        return False
    fitted = card.get(GLOBAL_ARTIFACT)
    return fitted is None or checksum is None or fitted == checksum


def verdict_version(global_version: str, site_version: int) -> str:
    """The model version a verdict records: the global one, and the site's when one was used."""
    return f"{global_version}{SITE_MODEL_TAG}{site_version}" if site_version else global_version


VERDICT = "verdict"
SECOND_LOOK = "second_look"
"""Where a site model scores: intake's verdict (lexical features) and the second look's blend."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A refit's result, ready to store: the card, and the label models of each place that
    uses a site model (JSON, ``classifier.site_model_codec.encode``); ``None`` where none is
    used."""

    card: dict[str, Any]
    weights: str | None
    second_look: str | None = None

    @property
    def adapted(self) -> bool:
        return self.weights is not None or self.second_look is not None


class SiteModels:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)
        self._scripts = LuaScripts(
            redis,
            ("site_model_rows_refresh", "site_model_rows_put", "site_model_rollback"),
            with_library=False,
        )

    async def active(self, site: str) -> int:
        with store_errors():
            value = await self.redis.hget(self.keys.site_model_state(site), "active")
        return int(value) if value else GLOBAL

    async def version(self, site: str, version: int) -> dict[str, Any] | None:
        with store_errors():
            stored = await self.redis.get(self.keys.site_model(site, version))
        return json.loads(stored) if stored else None

    async def state(self, site: str) -> dict[str, Any]:
        """What ``GET /v1/sites/{site}/model`` shows."""
        keys = self.keys
        with store_errors():
            fields = cast(dict[str, str], await self.redis.hgetall(keys.site_model_state(site)))
            history = [
                int(v) for v in await self.redis.lrange(keys.site_model_history(site), 0, -1)
            ]
            rows = int(await self.redis.hlen(keys.site_model_rows(site)))
        active = int(fields.get("active") or GLOBAL)
        card = (await self.version(site, active) or {}).get("card") if active else None
        last_fit = json.loads(fields["last_fit"]) if fields.get("last_fit") else None
        why = (card or last_fit or {}).get("why", "no fit yet")
        return {
            "adapted": card is not None,
            "active": card,
            "why": why,
            "labels": {"rows": rows, "since_last_fit": int(fields.get("new_labels") or 0)},
            "last_fit": last_fit,
            "history": history,
            "refits": _refits(fields),
        }

    async def refit_counts(self, site: str) -> dict[str, int]:
        with store_errors():
            fields = await self.redis.hmget(
                self.keys.site_model_state(site), [f"refits:{o}" for o in OUTCOMES]
            )
        return {outcome: int(value or 0) for outcome, value in zip(OUTCOMES, fields, strict=True)}

    async def request_refit(self, site: str) -> None:
        with store_errors():
            await self.redis.sadd(self.keys.site_models_refit(), site)

    async def wanted(self) -> set[str]:
        with store_errors():
            return cast(set[str], await self.redis.smembers(self.keys.site_models_refit()))

    async def store_fit(self, site: str, fitted: Fitted, outcome: str) -> int:
        """Record a refit's outcome; with weights, store the version and make it active.

        Returns the active version afterwards. A fit that leaves the site on the global model
        pushes an activation only when the site was using a site model."""
        keys = self.keys
        state = keys.site_model_state(site)
        card = dict(fitted.card)
        with store_errors():
            active = await self.active(site)
            target = GLOBAL
            if fitted.adapted:
                target = await self._next_number(site)
                card["version"] = target
                document = json.dumps(
                    {
                        "card": card,
                        VERDICT_WEIGHTS: fitted.weights or "{}",
                        SECOND_LOOK: fitted.second_look or "{}",
                    }
                )
                await self.redis.set(keys.site_model(site, target), document)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    state,
                    mapping={"active": str(target), "last_fit": json.dumps(card), "new_labels": 0},
                )
                pipe.hincrby(state, f"refits:{outcome}", 1)
                if target != active:
                    pipe.lpush(keys.site_model_history(site), str(target))
                await pipe.execute()
            await self._trim_history(site)
        return target

    async def _next_number(self, site: str) -> int:
        # Sites fitted before the numbers were kept apart counted in their state hash.
        counted = int(await self.redis.hget(self.keys.site_model_state(site), "next") or 0)
        number = int(await self.redis.hincrby(self.keys.site_model_numbers(), site, 1))
        if number <= counted:
            number = counted + 1
            await self.redis.hset(self.keys.site_model_numbers(), site, str(number))
        return number

    async def count_failure(self, site: str) -> None:
        state = self.keys.site_model_state(site)
        with store_errors():
            await self.redis.hincrby(state, "refits:failed", 1)

    async def take_request(self, site: str) -> None:
        """A refit of the site begins: its request is answered. Taken before the fit reads the
        rows, so a request made meanwhile (an erasure's, a moderator's) stays for the next."""
        with store_errors():
            await self.redis.srem(self.keys.site_models_refit(), site)

    async def rollback(self, site: str) -> int:
        """Return the site to what it ran on before its last change; returns the version now
        active (0: the global model). Raises ``Conflict`` when there is nothing to go back to."""
        keys = self.keys
        script_keys = [keys.site_model_history(site), keys.site_model_state(site)]
        versions = keys.site_model(site, 0).removesuffix("0")
        restored = int(await self._scripts.run("site_model_rollback", script_keys, [versions]))
        if restored < 0:
            raise Conflict("the site has no site model change to roll back")
        return restored

    async def _trim_history(self, site: str) -> None:
        key = self.keys.site_model_history(site)
        dropped = [int(v) for v in await self.redis.lrange(key, HISTORY, -1)]
        if not dropped:
            return
        await self.redis.ltrim(key, 0, HISTORY - 1)
        kept = {int(v) for v in await self.redis.lrange(key, 0, -1)}
        doomed = [self.keys.site_model(site, v) for v in set(dropped) - kept if v != GLOBAL]
        if doomed:
            await self.redis.delete(*doomed)

    async def born(self, site: str) -> str | None:
        """When the site was created; None when it does not exist. A refit that finds it changed
        after writing knows the site was deleted (and perhaps created again) meanwhile."""
        with store_errors():
            return cast(str | None, await self.redis.hget(self.keys.site(site), "created_at"))

    async def drop(self, site: str) -> None:
        """Delete the site's model keys: what a refit wrote for a site deleted meanwhile, which
        must neither outlive the purge nor pass to a site created again under its id."""
        keys = self.keys
        with store_errors():
            # Every version a fit stores goes onto the history (trimming deletes the rest).
            numbers = await self.redis.lrange(keys.site_model_history(site), 0, -1)
            rows = await self.redis.hvals(keys.site_model_rows(site))
            authors = {json.loads(row).get("author") for row in rows}
            doomed = [
                keys.site_model_state(site),
                keys.site_model_history(site),
                keys.site_model_rows(site),
            ]
            doomed += [keys.site_model(site, int(n)) for n in set(numbers) if int(n)]
            doomed += [keys.site_model_author_rows(site, author) for author in authors if author]
            await self.redis.delete(*doomed)

    # -- rows
    async def put_rows(
        self,
        site: str,
        rows: Mapping[str, dict[str, Any] | None],
        entries: Mapping[str, str] | None = None,
    ) -> None:
        """Write (or, for ``None``, delete) labelled rows by their key; with ``entries`` (row
        key -> the label entry it was made from), a row only while its entry is in the log."""
        keys = self.keys
        removed = [key for key, row in rows.items() if row is None]
        written = [(key, row) for key, row in rows.items() if row is not None]
        with store_errors():
            if removed:
                await self.redis.hdel(keys.site_model_rows(site), *removed)
        script_keys = [keys.site_model_rows(site), keys.labels(site)]
        authors = keys.site_model_author_rows(site, "")
        for start in range(0, len(written), REFRESH_BATCH):
            args: list[str | int | float] = [authors]
            for key, row in written[start : start + REFRESH_BATCH]:
                entry = (entries or {}).get(key, "")
                args += [key, entry, row.get("author") or "", json.dumps(row)]
            await self._scripts.run("site_model_rows_put", script_keys, args)

    async def rows(self, site: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with store_errors():
            async for key, value in self.redis.hscan_iter(
                self.keys.site_model_rows(site), count=500
            ):
                found[key] = json.loads(value)
        return found

    async def refresh_rows(
        self, site: str, rows: Mapping[str, tuple[dict[str, Any], dict[str, Any]]]
    ) -> int:
        """Write back rows a refit encoded again, by key (the row as read, the row now), each
        only while it is still the row that was read; returns how many were written."""
        written = 0
        keys = [self.keys.site_model_rows(site)]
        pending = list(rows.items())
        for start in range(0, len(pending), REFRESH_BATCH):
            args: list[str | int | float] = []
            for key, (read, fresh) in pending[start : start + REFRESH_BATCH]:
                # ``rows`` decoded what ``put_rows`` encoded: encoding it again gives that text.
                digest = hashlib.sha1(json.dumps(read).encode(), usedforsecurity=False)
                args += [key, digest.hexdigest(), json.dumps(fresh)]
            written += int(await self._scripts.run("site_model_rows_refresh", keys, args))
        return written

    async def forget_author(self, site: str, author_id: str) -> int:
        """Drop the author's rows from the site's next fit; returns how many there were."""
        index = self.keys.site_model_author_rows(site, author_id)
        with store_errors():
            keys = list(await self.redis.smembers(index))
            if keys:
                await self.redis.hdel(self.keys.site_model_rows(site), *keys)
            await self.redis.delete(index)
        if keys:
            await self.request_refit(site)
        return len(keys)

    async def cursor(self, site: str) -> str | None:
        with store_errors():
            value = await self.redis.hget(self.keys.site_model_state(site), "cursor")
        return cast(str | None, value) or None

    async def advance(self, site: str, cursor: str, labels: int) -> int:
        """Move the label cursor past ``labels`` new ones; returns the labels since the last fit."""
        state = self.keys.site_model_state(site)
        with store_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(state, "cursor", cursor)
                pipe.hincrby(state, "new_labels", labels)
                _, count = await pipe.execute()
        return int(count)


class ActiveVersions:
    """Each site's active site model version as this process last read it, at most
    ``max_age`` seconds ago: the cheap check intake makes before it scores."""

    def __init__(
        self,
        models: SiteModels,
        *,
        max_age: float = ACTIVE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.max_age = max_age
        self._clock = clock
        self._seen: dict[str, tuple[int, float]] = {}
        self._reading: dict[str, asyncio.Future[int]] = {}

    async def of(self, site: str) -> int:
        seen = self._seen.get(site)
        now = self._clock()
        if seen is not None and now - seen[1] < self.max_age:
            return seen[0]
        # One read per site at a time: a burst of intake waits for it instead of repeating it.
        reading = self._reading.get(site)
        if reading is None:
            reading = asyncio.ensure_future(self.models.active(site))
            self._reading[site] = reading
            reading.add_done_callback(lambda _: self._reading.pop(site, None))
        version = await asyncio.shield(reading)
        self._seen[site] = (version, now)
        return version

    def forget(self, site: str) -> None:
        """Read the site's version anew next time (this process changed it)."""
        self._seen.pop(site, None)


def _refits(fields: Mapping[str, str]) -> dict[str, int]:
    return {outcome: int(fields.get(f"refits:{outcome}") or 0) for outcome in OUTCOMES}
