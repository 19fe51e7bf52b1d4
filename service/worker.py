"""The webhook worker: admits outbox events, leases due deliveries, POSTs them, settles them.

Any number of worker processes share the work through Redis alone. Admission reads each site's
outbox through one consumer group inside a script, so every event is recorded exactly once and
in order; attempts are leased, so an event whose worker died is attempted again when its lease
runs out. ``stop()`` (SIGTERM) stops taking work and lets the attempts in flight finish for up to
``drain_seconds``; any still running then are cancelled and handed back, due at once for another
worker and the cut attempt not counted. Delivery is therefore at least once: hosts drop
duplicates by event id.
"""

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import aiohttp
from redis.exceptions import ResponseError

from service import delivery
from service.admin_store import AdminStore
from service.compat import coral_graphql, coral_sync
from service.compat.coral_links import CoralCall, CoralIds, CoralLinks, keep_seconds
from service.connection import connect
from service.deliveries import DeliveryLog, Settle, WaitedOn
from service.egress import guarded_socket_factory
from service.errors import SiteNotFound, StoreUnavailable
from service.gauges import background_gauges
from service.keys import DEFAULT_PREFIX
from service.logs import log_events, status_line
from service.refit_process import background_refits
from service.retry import RetryPolicy
from service.second_look_process import background_second_look
from service.settings import DeliverySettings, Settings
from service.store import Store
from service.store.records import SiteRecord
from service.store.scripts import RedisClient

log = logging.getLogger(__name__)

ADMIT_BATCH = 100
TRIM_INTERVAL_SECONDS = 30.0
REDIS_DOWN_PAUSE_SECONDS = 1.0
FAILED_PASS_PAUSE_SECONDS = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        redis: RedisClient,
        settings: DeliverySettings,
        *,
        prefix: str = DEFAULT_PREFIX,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        failure_pause_seconds: float = FAILED_PASS_PAUSE_SECONDS,
    ) -> None:
        self.settings = settings
        self._failure_pause_seconds = failure_pause_seconds
        self.deliveries = DeliveryLog(redis, prefix)
        self.store = Store(redis, prefix)
        self.removals = AdminStore(redis, prefix)
        self.coral_links = CoralLinks(redis, prefix)
        self.policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            base_seconds=settings.backoff_base_seconds,
            cap_seconds=settings.backoff_cap_seconds,
        )
        self.name = name or worker_name()
        self._clock = clock
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        # Each attempt's site and leased record: what a drain hands back if it is cut short.
        self._in_flight: dict[asyncio.Task[None], tuple[str, Mapping[str, str]]] = {}
        self._batches = itertools.count()
        self._passes = itertools.count()
        self._trimmed_at = 0.0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def stop(self) -> None:
        """Take no more work; ``run`` returns once the attempts in flight are drained."""
        self._stopping.set()
        self._wake.set()

    async def stopping(self) -> None:
        """Wait until ``stop`` is called."""
        await self._stopping.wait()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.settings.concurrency,
            socket_factory=guarded_socket_factory(self.settings.callback_allow),
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                while not self._stopping.is_set():
                    self._wake.clear()
                    try:
                        busy = await self.work_once(session)
                        pause = 0.0 if busy else self.settings.poll_ms / 1000
                    except StoreUnavailable as error:
                        log.warning(
                            "worker %s: Redis is unavailable (%s), trying again",
                            self.name,
                            error.why,
                        )
                        pause = REDIS_DOWN_PAUSE_SECONDS
                    except Exception:
                        # Whatever one pass met, the attempts in flight and the next passes go
                        # on: a loop that ended here would stop every webhook while the API
                        # kept taking comments.
                        log.exception("worker %s: the pass failed, trying again", self.name)
                        pause = self._failure_pause_seconds
                    if self.in_flight >= self.settings.concurrency:
                        await self._until_slots_free()
                    elif pause:
                        # A finished attempt wakes the loop early: it frees a slot.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), pause)
            finally:
                await self._drain()

    async def _until_slots_free(self) -> None:
        # Refilling after every finished attempt would cost a pass over every site per event;
        # waiting until a quarter of the slots are free lets one pass lease a batch.
        mark = self.settings.concurrency - max(1, self.settings.concurrency // 4)
        while self.in_flight > mark and not self._stopping.is_set():
            self._wake.clear()
            await self._wake.wait()

    async def work_once(self, session: aiohttp.ClientSession) -> bool:
        """One pass over every site: admit new events, start the due attempts that fit.
        True when there was work, so the next pass should follow at once."""
        sites = await self.deliveries.sites()
        if sites:
            # Each pass starts at another site, so free slots are shared between sites fairly.
            start = next(self._passes) % len(sites)
            sites = sites[start:] + sites[:start]
        admissions = await self.deliveries.admit_all(sites, ADMIT_BATCH, self._now_ms())
        busy = any(admission.read >= ADMIT_BATCH for admission in admissions)
        for site, admission in zip(sites, admissions, strict=True):
            if self._stopping.is_set():
                break
            if not admission.due:
                continue
            free = self.settings.concurrency - self.in_flight
            if free <= 0:
                busy = True
                continue
            try:
                busy |= await self._start_due(session, site, free)
            except ResponseError as error:
                # One site's broken data must not stop every other site's deliveries.
                log.error(
                    "worker %s: leasing deliveries of site %r failed: %s", self.name, site, error
                )
        await self._trim(sites)
        busy |= await self.purge_once()
        return busy

    async def purge_once(self) -> bool:
        """One bounded step of each deleted site's purge; True while any purge has more."""
        more = False
        for site in await self.removals.purging():
            step = await self.removals.purge_step(site)
            if step.done:
                log.info("worker %s: site %r is purged", self.name, site)
            more |= not step.done
        return more

    async def _start_due(self, session: aiohttp.ClientSession, site: str, free: int) -> bool:
        """Lease up to ``free`` due deliveries of ``site`` and start them; True if it took all."""
        token = f"{self.name}:{next(self._batches)}"
        lease_ms = int(self.settings.lease_seconds * 1000)
        leased = await self.deliveries.lease(site, free, lease_ms, token, self._now_ms())
        if leased:
            # Read once per batch and never cached: a fixed callback URL or a rotated secret
            # applies to the very next attempt (a redelivery right after a fix succeeds).
            target = await self.store.load_site(site)
            for record in leased:
                self._start(site, record, self._attempt(session, site, target, record))
        return len(leased) == free

    def _start(
        self, site: str, record: Mapping[str, str], attempt: Coroutine[Any, Any, None]
    ) -> None:
        task = asyncio.create_task(attempt)
        self._in_flight[task] = (site, record)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        site: str,
        target: SiteRecord | None,
        record: Mapping[str, str],
    ) -> None:
        try:
            await self._deliver(session, site, target, record)
        except StoreUnavailable:
            # The lease runs out and the attempt is made again; nothing is lost.
            log.warning("worker %s: could not record delivery %s", self.name, record["id"])
        except Exception:
            log.exception("worker %s: delivery %s failed unexpectedly", self.name, record["id"])

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        site: str,
        site_record: SiteRecord | None,
        record: Mapping[str, str],
    ) -> None:
        # The delivery timeout, which the settings keep below the lease: an attempt that outlived
        # its lease would run beside another worker's, and a later decision could overtake it.
        coral = (
            coral_graphql.endpoint_of(site_record, self.settings.timeout_seconds)
            if site_record is not None
            else None
        )
        link = await self.coral_links.of(site, record["comment_id"]) if coral else None
        waited_on: WaitedOn | None = None
        if coral is not None and link is not None:
            # A comment from Coral: its decisions go back to Coral, not to a callback URL.
            keep = keep_seconds(site_record) if site_record is not None else 0

            async def relink(ids: CoralIds) -> None:
                with contextlib.suppress(SiteNotFound):
                    now_ms = self._now_ms()
                    await self.coral_links.link(site, record["comment_id"], ids, keep, now_ms)

            version, decided_at = int(record["version"]), int(record["created_at"])
            calling = ""

            async def current(status: str) -> bool:
                nonlocal calling
                try:
                    found = await self.coral_links.current(
                        site, record["comment_id"], version, status, decided_at
                    )
                except SiteNotFound:
                    # The attempt goes on as before: its settle records nothing either.
                    return True
                if found:
                    calling = status
                return found

            started_ms = self._now_ms()
            outcome = await coral_sync.deliver(session, coral, record, link, relink, current)
            last_try = outcome.final or self.policy.exhausted(int(record["attempts"]))
            waiting = outcome.error in coral_sync.WAITING
            # A replaced decision was given up in the same step as it was found replaced, and
            # what reached Coral since, a later decision's, stays noted.
            replaced = outcome.error == coral_sync.SUPERSEDED
            # A last try that waited is given up by the settle, unless a webhook linked the ids
            # during it (see ``waited_on``).
            reached = outcome.delivered and not replaced
            if calling:
                # Ended, answered or not, in one step with what Coral's webhooks then echo (see
                # ``CoralDesk.webhook``) once it is done with.
                answered = outcome.delivered and outcome.status is not None
                call = CoralCall(calling, started_ms, self._now_ms())
                with contextlib.suppress(SiteNotFound):
                    await self.coral_links.answered(
                        site,
                        record["comment_id"],
                        version,
                        calling,
                        decided_at,
                        call if answered else None,
                        outcome.delivered or last_try,
                    )
            elif coral_sync.needs_coral(record) and (reached or (last_try and not waiting)):
                # Delivered without a call, or given up: Coral's webhooks about decisions made
                # before this one are echoes from now on; or Coral's own decisions count again.
                with contextlib.suppress(SiteNotFound):
                    await self.coral_links.sent(site, record["comment_id"], decided_at, keep)
            if waiting:
                # A webhook linking Coral's ids during this attempt left it to itself: its
                # retry is due at once if they changed since it read them, even after its
                # last try, since what it waited for has come.
                last_try_of = decided_at if last_try else None
                waited_on = self.coral_links.waited_on(
                    site, record["comment_id"], link, last_try_of
                )
        elif site_record is None or not site_record.site.callback_url:
            outcome = delivery.Outcome(delivered=False, error="the site has no callback URL")
        else:
            outcome = await delivery.post(
                session,
                site_record.site.callback_url,
                # Within a rotation's grace period the old secret signs too, so a host that has
                # not switched yet still accepts every event.
                site_record.valid_secrets(self._now_ms()),
                delivery.payload(site, record),
                self.settings.timeout_seconds,
                # Each attempt is signed when it is sent, by the clock every schedule reads.
                self._clock(),
            )
        attempts = int(record["attempts"])
        now_ms = self._now_ms()
        next_attempt_ms = None
        if outcome.delivered:
            result = Settle.DELIVERED
        elif outcome.final:
            result = Settle.GIVEN_UP
        elif self.policy.exhausted(attempts):
            result = Settle.FAILED
        else:
            result = Settle.RETRY
            retry_after = delivery.retry_after_seconds(outcome.retry_after, now_ms / 1000)
            wait = self.policy.delay(attempts, retry_after)
            next_attempt_ms = now_ms + int(wait * 1000)
        settled = await self.deliveries.settle(
            site,
            record,
            result,
            now_ms=now_ms,
            next_attempt_ms=next_attempt_ms,
            status=outcome.status,
            error=outcome.error,
            delivered_ttl_ms=self.settings.delivered_retention_seconds * 1000,
            delivered_keep=self.settings.delivered_keep,
            waited_on=waited_on,
        )
        if settled is None:
            log.info(
                "worker %s: %s was not settled: its lease ran out or its site is gone",
                self.name,
                record["id"],
            )
        elif settled is not Settle.DELIVERED:
            log.info(
                "worker %s: %s %s (attempt %d): %s",
                self.name,
                "will retry" if settled is Settle.RETRY else "dead-lettered",
                record["id"],
                attempts,
                outcome.error,
            )

    async def _trim(self, sites: list[str]) -> None:
        now = self._clock()
        # A clock set back counts as due: the trim is not put off by however far it went back.
        if 0 <= now - self._trimmed_at < TRIM_INTERVAL_SECONDS:
            return
        for site in sites:
            try:
                await self.deliveries.trim_outbox(site, self.settings.outbox_keep)
            except ResponseError as error:
                log.error("worker %s: trimming the outbox of %r failed: %s", self.name, site, error)
        # Only once it was done: a trim the store refused (StoreUnavailable ends the pass here)
        # is tried again on the next pass, not 30 s later.
        self._trimmed_at = now

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        log.info("worker %s: draining %d deliveries", self.name, len(self._in_flight))
        in_flight = dict(self._in_flight)
        _, unfinished = await asyncio.wait(set(in_flight), timeout=self.settings.drain_seconds)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if not unfinished:
            return
        log.warning(
            "worker %s: %d deliveries still running after %g s were cancelled; "
            "they are handed back to be attempted again at once",
            self.name,
            len(unfinished),
            self.settings.drain_seconds,
        )
        # Not left to their leases: a rolling restart would delay each of them by one.
        await asyncio.gather(*(self._hand_back(*in_flight[task]) for task in unfinished))

    async def _hand_back(self, site: str, record: Mapping[str, str]) -> None:
        """Make a delivery cut short due at once, its attempt not counted; a settle that won the
        race (or a lease already lost) leaves it as it is."""
        try:
            await self.deliveries.settle(
                site,
                record,
                Settle.HAND_BACK,
                now_ms=self._now_ms(),
                delivered_ttl_ms=self.settings.delivered_retention_seconds * 1000,
                delivered_keep=self.settings.delivered_keep,
            )
        except Exception as error:
            log.warning(
                "worker %s: could not hand %s back (%s); its lease lets another worker retry it",
                self.name,
                record["id"],
                error,
            )


@contextlib.asynccontextmanager
async def delivering(settings: Settings, worker: Worker) -> AsyncIterator[None]:
    """``worker`` delivering, with what runs beside it (site model refits, the second look, the
    gauges), until the block ends. Then all of them stop at once: the deliveries in flight, the
    refit in hand and the second look's batch in hand each get the drain time side by side, not
    one after the other."""
    async with contextlib.AsyncExitStack() as started:
        beside = []
        for context in (
            background_refits(settings),
            background_second_look(settings),
            background_gauges(settings),
        ):
            stop = contextlib.AsyncExitStack()
            # Stopped by the block below; by this one only if a later start fails.
            started.push_async_callback(stop.aclose)
            await stop.enter_async_context(context)
            beside.append(stop)
        running = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            worker.stop()
            await asyncio.gather(running, *(stop.aclose() for stop in reversed(beside)))


@contextlib.asynccontextmanager
async def background_worker(settings: Settings) -> AsyncIterator[Worker]:
    """A worker, and what runs beside it, in this event loop until the block ends (then it
    drains and stops)."""
    connection = connect(settings)
    worker = Worker(connection.client, settings.delivery, prefix=connection.prefix)
    try:
        async with delivering(settings, worker):
            yield worker
    finally:
        await connection.aclose()


async def run_until_signalled(settings: Settings) -> None:
    """``civility worker``: deliver until SIGTERM or SIGINT, then drain and stop."""
    log_events()
    connection = connect(settings)
    worker = Worker(connection.client, settings.delivery, prefix=connection.prefix)
    drain_seconds = settings.delivery.drain_seconds

    def stop(signum: signal.Signals) -> None:
        worker.stop()
        status_line(
            f"civility worker {worker.name}: {signum.name}, finishing {worker.in_flight} "
            f"deliveries in flight (at most {drain_seconds:g} s)"
        )

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    status_line(f"civility worker {worker.name} delivering webhooks")
    try:
        async with delivering(settings, worker):
            await worker.stopping()
    finally:
        await connection.aclose()
    status_line(f"civility worker {worker.name} stopped")
