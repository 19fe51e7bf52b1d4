"""The second look: the semantic stage reads what the lexical verdict published, within seconds.

Intake decides on the lexical scores at once and queues each comment it publishes (when the
active model has a semantic stage and ``CIVILITY_SECOND_LOOK`` is on). The worker takes due
comments from every site's queue, scores them with the blend of both stages in a process of its
own (so it never takes CPU time from the intake scoring pool's processes or from the event loop
that delivers webhooks), applies the site's thresholds to the blend, and records the look: a
comment the blend holds goes to pending (reason ``SECOND_LOOK``, a ``comment.held`` event), any
other keeps its verdict and gets its blended scores. A second look never rejects: a person does.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from service import policy as rules
from service.domain import Policy, State
from service.errors import StoreUnavailable
from service.keys import DEFAULT_PREFIX
from service.moderation.tokens import new_event_id
from service.policy import Thresholds
from service.scorer import SiteRef
from service.second_look_store import Look, SecondLookLog, Taken
from service.settings import SecondLookSettings
from service.site_models import SiteModels, verdict_version
from service.store import Store
from service.store.records import SiteRules
from service.store.scripts import RedisClient
from service.transitions import EVENT_TYPES, Event, sources_argument

log = logging.getLogger(__name__)

REDIS_DOWN_PAUSE_SECONDS = 1.0
FAILED_PAUSE_SECONDS = 10.0
FAILURES_BEFORE_GIVING_UP = 3
"""Times the stage may fail on a comment's text alone before the comment is not looked at (it
keeps its lexical verdict): a text that breaks the stage is tried again, but not for ever."""


@dataclass(frozen=True, slots=True)
class Blended:
    """One batch's blended scores and the model (and its suggested thresholds) that made them;
    ``site_versions``: the site model version each text was scored with (0 or none: global)."""

    scores: list[dict[str, float]]
    model_version: str
    thresholds: Thresholds
    site_versions: list[int] | None = None


class BlendScorer(Protocol):
    """Scores texts with both stages blended (``Model.score_blended``), each text with its
    site's second-look model when ``sites`` names one (site id, active version)."""

    async def blend(
        self, texts: Sequence[str], sites: Sequence[SiteRef | None] | None = None
    ) -> Blended: ...

    def closing(self) -> None:
        """``close`` is coming: a batch cut short meanwhile needs no new scoring process."""

    async def close(self) -> None: ...


class SecondLookWorker:
    """Takes due comments of every site, blends their scores and records each look.

    ``work_once`` is one pass; ``run`` repeats it until ``stop``. Any number of workers share
    the queues through Redis alone (a taken comment is leased to one of them)."""

    def __init__(
        self,
        redis: RedisClient,
        scorer: BlendScorer,
        settings: SecondLookSettings,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        new_event_id: Callable[[], str] = new_event_id,
        failure_pause_seconds: float = FAILED_PAUSE_SECONDS,
        site_models: SiteModels | None = None,
    ) -> None:
        """``site_models``: score each site's texts with its active second-look model."""
        self.log = SecondLookLog(redis, prefix)
        self.site_models = site_models
        self.store = Store(redis, prefix)
        self.scorer = scorer
        self.settings = settings
        self._clock = clock
        self._new_event_id = new_event_id
        self._failure_pause_seconds = failure_pause_seconds
        self._stopping = asyncio.Event()
        self._passes = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def stop(self) -> None:
        self._stopping.set()

    async def stopped(self, running: "asyncio.Task[None]", drain_seconds: float) -> None:
        """Stop ``running`` (this worker's ``run``) within ``drain_seconds``, the time the
        deliveries beside it get: the pass in hand finishes by then or is cut short. A pass cut
        short records nothing more, and hands what it took but did not record back to its
        site's queue, due at once for the next start or another worker (when Redis cannot be
        reached for that, it is taken again once its lease ends)."""
        self.stop()
        done, _ = await asyncio.wait({running}, timeout=drain_seconds)
        if done:
            return
        self.scorer.closing()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                taken = await self.work_once()
                pause = 0.0 if taken >= self.settings.batch_size else self.settings.poll_seconds
            except StoreUnavailable as error:
                log.warning("second look: Redis is unavailable (%s), trying again", error.why)
                pause = REDIS_DOWN_PAUSE_SECONDS
            except Exception as error:
                if self._stopping.is_set():
                    # Met while the service stops (its scoring process ended with it): no
                    # error to look into, and no next pass to announce.
                    log.info(
                        "second look: the pass in hand failed as it stopped (%s); its comments "
                        "come back when their lease ends",
                        error,
                    )
                    return
                # The model did not load or its process died: the comments taken come back when
                # their lease ends, and the deliveries beside this loop go on meanwhile.
                pause = self._failure_pause_seconds
                log.exception("second look failed, trying again in %g s", pause)
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)

    async def work_once(self) -> int:
        """Take up to one batch of due comments over every site, look at them, record each look;
        the number taken (a full batch means more may be waiting)."""
        sites = await self.log.sites()
        if not sites:
            return 0
        size = self.settings.batch_size
        # Each pass starts at another site, so a site with a backlog cannot starve the others.
        # A pass takes at most a batch, so every comment it takes is looked at well inside its
        # lease; with more sites than a batch holds, one comment from each of the next ``size``.
        # (Taking one from every site outlasted the lease with a few hundred sites due, and
        # another worker then looked at the same comments again.)
        step = size if len(sites) > size else 1
        start = self._passes * step % len(sites)
        self._passes += 1
        sites = (sites[start:] + sites[:start])[:size]
        per_site = max(1, size // len(sites))
        lease_ms = int(self.settings.lease_seconds * 1000)
        claims = await self.log.claim_all(sites, per_site, lease_ms, self._now_ms())
        taken = [item for _, items in claims for item in items]
        # Room the quiet sites left goes to those that filled their share: one busy site among
        # idle ones still gets a whole batch per pass.
        busy = [
            site for site, (_, items) in zip(sites, claims, strict=True) if len(items) == per_site
        ]
        room = size - len(taken)
        if busy and room > 0:
            busy = busy[:room]
            more = await self.log.claim_all(busy, room // len(busy), lease_ms, self._now_ms())
            taken += [item for _, items in more for item in items]
        if not taken:
            return 0
        unrecorded = list(taken)
        try:
            await self._look_at(taken, unrecorded)
        except asyncio.CancelledError:
            await self._hand_back(unrecorded)
            raise
        return len(taken)

    async def _hand_back(self, unrecorded: list[Taken]) -> None:
        """A pass cut short by a stop gives back what it did not record, so the next worker
        takes it at once rather than when the lease ends (a minute by default)."""
        if not unrecorded:
            return
        try:
            handed_back = await self.log.hand_back(unrecorded)
        except StoreUnavailable as error:
            log.warning(
                "second look: %d comments taken but not looked at could not be handed back "
                "(%s); they are taken again when their lease ends",
                len(unrecorded),
                error.why,
            )
            return
        log.info("second look: %d comments taken but not looked at handed back", handed_back)

    async def _look_at(self, taken: list[Taken], unrecorded: list[Taken]) -> None:
        """Blend ``taken``'s scores and record each look, taking each recorded comment (or its
        counted failure) out of ``unrecorded``."""
        policies: dict[str, Policy | None] = {}
        versions = await self._site_versions({item.site for item in taken})
        refs: list[SiteRef | None] = [
            (item.site, versions[item.site]) if versions.get(item.site) else None for item in taken
        ]
        scored, failed = await self._blend_apart(taken, refs)
        for item in failed:
            outcome = await self.log.fail(item, FAILURES_BEFORE_GIVING_UP)
            unrecorded.remove(item)
            log.warning(
                "second look of comment %r of site %r failed on its text alone (%s)",
                item.comment_id,
                item.site,
                "given up: it stays published" if outcome == "failed" else outcome,
            )
        for part, blended in scored:
            used = blended.site_versions or [0] * len(part)
            for item, scores, site_version in zip(part, blended.scores, used, strict=True):
                if item.site not in policies:
                    record = await self.store.load_site(item.site)
                    policies[item.site] = record.site.policy if record is not None else None
                site_policy = policies[item.site]
                if site_policy is None:
                    unrecorded.remove(item)
                    continue  # the site is being deleted; its purge removes the queue
                model = verdict_version(blended.model_version, site_version)
                await self.log.apply(self._look(item, scores, model, blended, site_policy))
                unrecorded.remove(item)

    async def _blend_apart(
        self, taken: list[Taken], refs: list[SiteRef | None]
    ) -> tuple[list[tuple[list[Taken], Blended]], list[Taken]]:
        """The batch blended, in parts, and the texts that failed alone.

        When the batch fails, each text is blended by itself, so one text the stage cannot read
        does not keep the rest of every batch it lands in from their look: the texts that fail
        alone while another is scored are that text's failures. When none is scored, the
        failure is not a text's (the model or its process) and is raised: the batch comes back
        when its lease ends and nothing is counted against its comments."""
        try:
            return [(taken, await self.scorer.blend([item.text for item in taken], refs))], []
        except Exception as error:
            if len(taken) == 1:
                raise
            batch_error = error
        scored: list[tuple[list[Taken], Blended]] = []
        failed: list[Taken] = []
        for item, ref in zip(taken, refs, strict=True):
            try:
                scored.append(([item], await self.scorer.blend([item.text], [ref])))
            except Exception:
                failed.append(item)
        if not scored:
            raise batch_error
        return scored, failed

    async def _site_versions(self, sites: set[str]) -> dict[str, int]:
        if self.site_models is None:
            return {}
        return {site: await self.site_models.active(site) for site in sorted(sites)}

    def _look(
        self,
        item: Taken,
        scores: Mapping[str, float],
        model: str,
        blended: Blended,
        site_policy: Policy,
    ) -> Look:
        reasons = rules.second_look_reasons(
            scores, blended.thresholds, site_policy, item.author_status
        )
        site_rules = SiteRules.of(site_policy)
        return Look(
            taken=item,
            scores=dict(scores),
            model=model,
            reasons=[reason.value for reason in reasons],
            priority=rules.priority(scores),
            now_ms=self._now_ms(),
            event_id=self._new_event_id(),
            event_type=EVENT_TYPES[State.PENDING],
            sources=sources_argument(Event.SECOND_LOOK),
            recent_window_ms=site_rules.recent_window_ms,
            retention_ms=site_rules.retention_ms,
        )
