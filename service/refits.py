"""Site model refits, in the worker: labels become rows, rows become a new site model version.

``Refits.absorb`` reads a site's new training labels (after its cursor), keeps each comment's
latest label as a row with the global model's scores and features of its text (so a refit
re-encodes nothing; ``service.site_fit``), and drops a row whose latest decision teaches nothing.
``Refits.refit`` fits the site's heads on its rows (the verdict's and, with a semantic stage, the
second look's) and stores the outcome; rows of another global model, or kept before the model had
a stage, are encoded again and kept. A site is refit
when enough labels arrived since its last fit or when ``POST .../model:refit`` asked for one.
It all runs in a process the worker starts for it (``background_refits``), never in an API
process. It fits on the model the API processes serve: the one the last reload announced
(``civility model activate`` alone switches nothing), or ``ACTIVE``'s while none was announced.
"""

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from classifier.model import Model, ModelError, load_active
from classifier.site_model import ADAPTED_LABELS, FitSettings
from service.connection import Connection, connect
from service.errors import StoreUnavailable
from service.keys import DEFAULT_PREFIX, KeySpace
from service.labels import LabelLog
from service.logs import log_events
from service.served_model import served_stem, trained_again
from service.settings import Settings, SiteModelSettings
from service.site_fit import encode_rows, fit_rows, in_use, stale
from service.site_models import Fitted, SiteModels
from service.store.scripts import RedisClient, store_errors
from service.times import iso

log = logging.getLogger(__name__)


class Refits:
    def __init__(
        self,
        redis: RedisClient,
        model: Model,
        settings: SiteModelSettings,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        models_dir: Path | None = None,
    ) -> None:
        """``models_dir``: follow the API processes to the model of its that they reload."""
        self.redis = redis
        self.models_dir = models_dir
        self.model = model
        self.settings = settings
        self.fit_settings = FitSettings(
            min_labels=settings.min_labels, min_positives=settings.min_positives
        )
        self.models = SiteModels(redis, prefix)
        self.labels = LabelLog(redis, prefix)
        self.keys = KeySpace(prefix)
        self._clock = clock

    async def absorb(self, site: str) -> int:
        """Turn the site's labels since the cursor into rows; returns labels since the last fit."""
        entries = [
            entry async for entry in self.labels.export(site, await self.models.cursor(site))
        ]
        if not entries:
            return await self.models.advance(site, await self.models.cursor(site) or "0-0", 0)
        latest: dict[str, dict[str, Any]] = {}
        for entry in entries:
            key = entry["comment_id"] or entry["id"]
            latest.pop(key, None)
            latest[key] = entry
        rows = await asyncio.to_thread(self._rows, latest)
        await self.models.put_rows(site, rows, {key: entry["id"] for key, entry in latest.items()})
        return await self.models.advance(site, entries[-1]["id"], len(entries))

    def _rows(self, entries: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
        rows: dict[str, dict[str, Any] | None] = {}
        taught = {
            key: {
                label: entry["labels"][label]
                for label in ADAPTED_LABELS
                if label in entry["labels"]
            }
            for key, entry in entries.items()
        }
        keys = [key for key, labels in taught.items() if labels]
        rows.update((key, None) for key, labels in taught.items() if not labels)
        for start in range(0, len(keys), 256):
            batch = keys[start : start + 256]
            texts = [entries[key]["text"] for key in batch]
            for key, text, scored in zip(batch, texts, encode_rows(self.model, texts), strict=True):
                rows[key] = {
                    "labels": taught[key],
                    "author": entries[key]["author"],
                    "text": text,
                    **scored,
                }
        return rows

    async def refit(self, site: str) -> int:
        """Fit the site's model on its rows and store the outcome; returns the active version."""
        await self.models.take_request(site)
        rows = await self.models.rows(site)
        active = await self.models.active(site)
        used: dict[str, set[str]] = {}
        if active:
            used = in_use((await self.models.version(site, active) or {}).get("card", {}))
        outdated = [key for key, row in rows.items() if stale(self.model, row)]
        if outdated:
            # Features of another global model mean other columns, and rows kept before the
            # model had a semantic stage have no embedding: encode those texts again, once.
            fresh = await asyncio.to_thread(self._encode_again, rows, outdated)
            await self.models.refresh_rows(
                site, {key: (rows[key], row) for key, row in fresh.items()}
            )
            rows = {**rows, **fresh}
        fitted = await asyncio.to_thread(self._fit, rows, used)
        outcome = "adapted" if fitted.adapted else "global"
        return await self.models.store_fit(site, fitted, outcome)

    def _encode_again(
        self, rows: Mapping[str, dict[str, Any]], keys: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        fresh: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 256):
            batch = keys[start : start + 256]
            encoded = encode_rows(self.model, [rows[key]["text"] for key in batch])
            fresh.update(
                (key, {**rows[key], **row}) for key, row in zip(batch, encoded, strict=True)
            )
        return fresh

    def _fit(self, rows: Mapping[str, dict[str, Any]], used: Mapping[str, set[str]]) -> Fitted:
        started = time.perf_counter()
        fitted = fit_rows(self.model, rows, self.fit_settings, used)
        created = iso(datetime.fromtimestamp(self._clock(), UTC))
        card = {
            "created_at": created,
            **fitted.card,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        return dataclasses.replace(fitted, card=card)

    async def sites(self) -> list[str]:
        with store_errors():
            return sorted(cast(set[str], await self.redis.smembers(self.keys.sites())))

    async def run_once(self) -> list[str]:
        """Absorb every site's new labels and refit the sites that are due; returns those."""
        await self._follow_served_model()
        wanted = await self.models.wanted()
        refitted = []
        for site in await self.sites():
            try:
                born = await self.models.born(site)
                if born is None:
                    continue  # deleted since the round began
                since = await self.absorb(site)
                if since >= self.settings.refit_every or site in wanted:
                    await self.refit(site)
                    refitted.append(site)
                if await self.models.born(site) != born:
                    # Deleted meanwhile: the purge may have passed before these writes.
                    await self.models.drop(site)
            except StoreUnavailable:
                raise  # every site's would fail: the round ends, and is tried again
            except Exception:
                # One site's failure, whether its labels were being made rows or its model fitted,
                # is counted and must not hold up the sites after it.
                log.exception("site %s: its site model refit failed; the other sites go on", site)
                await self.models.count_failure(site)
        return refitted

    async def _follow_served_model(self) -> None:
        # The API processes switch on a reload, not when ACTIVE moves: a site model fitted on
        # a model they do not serve yet would be dropped by every verdict. Rows then carry the
        # old model's features and a refit encodes their texts again with the new one.
        if self.models_dir is None:
            return
        try:
            stem = await served_stem(self.redis, self.keys, self.models_dir)
            if stem == self.model.stem and not await asyncio.to_thread(
                trained_again, self.models_dir, stem, self.model.checksum
            ):
                return
            self.model = await asyncio.to_thread(load_active, self.models_dir, stem=stem)
        except ModelError as error:
            log.warning("site model refits keep model %s: %s", self.model.stem, error)
            return
        # Site models of the previous global model no longer apply: fit them on the new one.
        for site in await self.sites():
            if await self.models.active(site):
                await self.models.request_refit(site)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.run_once()
            except StoreUnavailable as error:
                # An outage is one line a round, as the worker says it, not a traceback.
                log.warning("site model refits: Redis is unavailable (%s), trying again", error.why)
            except Exception:
                log.exception("site model refits failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.poll_seconds)


async def _starting_model(connection: Connection, settings: Settings) -> Model:
    try:
        stem = await served_stem(
            connection.client, KeySpace(connection.prefix), settings.models_dir
        )
    except StoreUnavailable:
        stem = None  # ACTIVE's until Redis answers; the first round then follows the served one
    return await asyncio.to_thread(load_active, settings.models_dir, stem=stem)


def refit_process(settings: Settings) -> None:
    log_events()
    asyncio.run(_refit_until_stopped(settings))


async def _refit_until_stopped(settings: Settings) -> None:
    # The worker asks this process to stop with SIGTERM, as does a SIGTERM sent to the whole
    # process group: it ends after the refit in hand. (A multiprocessing Event would deadlock the
    # worker's set() if this process died waiting on it.)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    # Held blocked until now (``follow_parent``): one sent meanwhile is taken here, not lost.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    connection = connect(settings)
    try:
        await _refit_with(connection, settings, stopped)
    finally:
        await connection.aclose()


async def _refit_with(connection: Connection, settings: Settings, stopped: asyncio.Event) -> None:
    try:
        model = await _starting_model(connection, settings)
    except ModelError as error:
        log.error("site model refits are off: %s", error)
        return
    if stopped.is_set():
        return
    refits = Refits(
        connection.client,
        model,
        settings.site_models,
        prefix=connection.prefix,
        models_dir=settings.models_dir,
    )
    log.info("site model refits running on model %s", model.stem)
    await refits.run(stopped)
