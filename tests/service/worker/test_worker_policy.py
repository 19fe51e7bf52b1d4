"""The retry schedule, the worker's settings, the payload, and the outbox trim bound."""

import asyncio
import logging
import random
from typing import ClassVar, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

from service import delivery
from service.connection import connect
from service.deliveries import GROUP, Admission, DeliveryLog
from service.domain import State
from service.env_reader import SettingsError
from service.errors import StoreUnavailable
from service.retry import RetryPolicy
from service.settings import DeliverySettings, Settings
from service.store import Store
from service.store.scripts import store_errors
from service.worker import Worker
from tests.ports import free_port

from .support import (
    FAST,
    KEYS,
    SITE,
    CreateSite,
    Events,
    Receiver,
    closed_port_url,
    eventually,
    in_state,
    now_ms,
)


def test_waits_are_full_jitter_under_a_doubling_capped_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=1.0, cap_seconds=20.0)
    rng = random.Random(7)

    assert [policy.ceiling(attempt) for attempt in range(1, 8)] == [1, 2, 4, 8, 16, 20, 20]
    for attempt in range(1, 12):
        waits = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert all(0.0 <= wait <= policy.ceiling(attempt) for wait in waits)
        # Full jitter: spread over the whole range, not bunched at the ceiling.
        ceiling = policy.ceiling(attempt)
        assert min(waits) < 0.2 * ceiling < 0.8 * ceiling < max(waits)


def test_retry_after_is_a_lower_bound_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=30.0)
    rng = random.Random(1)

    assert all(policy.delay(1, retry_after=12.0, rng=rng) >= 12.0 for _ in range(50))
    assert all(policy.delay(1, retry_after=500.0, rng=rng) == 30.0 for _ in range(50))
    now = 1_792_567_680.0  # Wed, 21 Oct 2026 07:28:00 GMT
    assert delivery.retry_after_seconds("120", now) == 120.0
    assert delivery.retry_after_seconds(None, now) is None
    assert delivery.retry_after_seconds("\u00b2", now) is None  # str.isdigit() says yes; float() no
    assert delivery.retry_after_seconds(" 7 ", now) == 7.0
    # The HTTP-date form, in each of the three formats HTTP allows, counts from now.
    assert delivery.retry_after_seconds("Wed, 21 Oct 2026 07:29:30 GMT", now) == 90.0
    assert delivery.retry_after_seconds("Wednesday, 21-Oct-26 07:29:30 GMT", now) == 90.0
    assert delivery.retry_after_seconds("Wed Oct 21 07:29:30 2026", now) == 90.0
    # A date that has come, or is no date: the backoff alone decides.
    assert delivery.retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now) is None
    assert delivery.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) is None
    assert delivery.retry_after_seconds("Wed, 32 Oct 2026 07:28:00 GMT", now) is None
    assert delivery.retry_after_seconds("soon", now) is None


def test_the_default_schedule_spans_about_a_day() -> None:
    policy = RetryPolicy()
    waits = range(1, policy.max_attempts)
    worst = sum(policy.ceiling(attempt) for attempt in waits)

    assert policy.max_attempts == 10
    assert 20 * 3600 < worst / 2 < 30 * 3600  # the mean of full jitter is half the ceiling
    assert not policy.exhausted(9)
    assert policy.exhausted(10)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"base_seconds": 10.0, "cap_seconds": 5.0}, "backoff needs 0 < base_seconds <= cap"),
        ({"base_seconds": 0.0}, "backoff needs 0 < base_seconds <= cap"),
    ],
)
def test_an_impossible_policy_is_refused(policy: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**policy)  # type: ignore[arg-type]


def test_worker_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CIVILITY_DELIVERY_TIMEOUT_SECONDS": "2.5",
            "CIVILITY_DELIVERY_MAX_ATTEMPTS": "4",
            "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS": "1",
            "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS": "60",
            "CIVILITY_DELIVERY_LEASE_SECONDS": "30",
            "CIVILITY_WORKER_CONCURRENCY": "4",
            "CIVILITY_WORKER_POLL_MS": "50",
            "CIVILITY_WORKER_DRAIN_SECONDS": "3",
            "CIVILITY_DELIVERED_RETENTION_SECONDS": "3600",
            "CIVILITY_DELIVERED_KEEP": "100",
            "CIVILITY_OUTBOX_KEEP": "500",
        }
    )
    assert settings.delivery == DeliverySettings(
        timeout_seconds=2.5,
        max_attempts=4,
        backoff_base_seconds=1.0,
        backoff_cap_seconds=60.0,
        lease_seconds=30.0,
        concurrency=4,
        poll_ms=50.0,
        drain_seconds=3.0,
        delivered_retention_seconds=3600,
        delivered_keep=100,
        outbox_keep=500,
    )
    assert Settings.from_env({}).delivery == DeliverySettings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CIVILITY_DELIVERY_TIMEOUT_SECONDS": "soon"},
            "CIVILITY_DELIVERY_TIMEOUT_SECONDS must be a number, not 'soon'",
        ),
        (
            {"CIVILITY_DELIVERY_MAX_ATTEMPTS": "0"},
            "CIVILITY_DELIVERY_MAX_ATTEMPTS must be between 1 and 100, not 0",
        ),
        (
            {"CIVILITY_DELIVERY_LEASE_SECONDS": "5"},
            "CIVILITY_DELIVERY_LEASE_SECONDS must be longer than CIVILITY_DELIVERY_TIMEOUT_SECONDS",
        ),
        (
            {
                "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS": "600",
                "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS": "60",
            },
            "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS must not exceed "
            "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS",
        ),
    ],
)
def test_bad_worker_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert str(error.value) == message


async def test_the_outbox_is_trimmed_only_below_what_was_admitted(
    redis_client: aioredis.Redis, log: DeliveryLog, create_site: CreateSite, events: Events
) -> None:
    await create_site("http://127.0.0.1:9/hooks")
    outbox = KEYS.outbox(SITE)
    for comment in range(6):
        await events.held(f"c{comment}")
    # No worker has run yet: without the group nothing counts as admitted.
    assert await log.trim_outbox(SITE, keep=1) == 0
    assert await redis_client.xlen(outbox) == 6

    assert (await log.admit(SITE, 4, now_ms())).read == 4
    before = await entry_ids(redis_client, outbox)
    assert await log.trim_outbox(SITE, keep=1) == 3
    # The last admitted entry and the two not yet admitted remain.
    assert await entry_ids(redis_client, outbox) == before[3:]
    assert (await log.admit(SITE, 10, now_ms())).read == 2
    assert await log.trim_outbox(SITE, keep=1) == 2
    assert await redis_client.xlen(outbox) == 1
    assert await log.trim_outbox(SITE, keep=5) == 0
    assert len(await redis_client.keys(KEYS.delivery(SITE, "*"))) == 6


OUTBOX_ENTRIES = 12
ADMITTED = 8


async def outbox_partly_admitted(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    admitted: int = ADMITTED,
) -> list[str]:
    """An outbox of 12 entries, the oldest ``admitted`` admitted; its entry ids, oldest first."""
    await create_site("http://127.0.0.1:9/hooks")
    for _ in range(OUTBOX_ENTRIES):
        # Entries naming no event are admitted (the group's cursor moves on) without a record.
        await redis_client.xadd(KEYS.outbox(SITE), {"type": "comment.approved", "site": SITE})
    assert (await log.admit(SITE, admitted, now_ms())).read == admitted
    return await entry_ids(redis_client, KEYS.outbox(SITE))


@pytest.mark.parametrize("keep", [1, 3, 4, 5, 6, 7, 11, 12, 13])
async def test_the_trim_keeps_the_newest_entries_and_every_one_not_admitted(
    redis_client: aioredis.Redis, log: DeliveryLog, create_site: CreateSite, keep: int
) -> None:
    before = await outbox_partly_admitted(redis_client, log, create_site)
    waiting = OUTBOX_ENTRIES - ADMITTED
    removed = await log.trim_outbox(SITE, keep)
    # The newest `keep`, and never an entry not admitted yet (nor the last admitted one).
    kept = min(OUTBOX_ENTRIES, max(keep, waiting + 1))
    assert await entry_ids(redis_client, KEYS.outbox(SITE)) == before[-kept:]
    assert removed == OUTBOX_ENTRIES - kept


async def test_the_trim_keeps_entries_not_admitted_when_redis_cannot_tell_the_lag(
    redis_client: aioredis.Redis, log: DeliveryLog, create_site: CreateSite
) -> None:
    before = await outbox_partly_admitted(redis_client, log, create_site)
    outbox = KEYS.outbox(SITE)
    # An entry deleted after the group's position leaves Redis unable to count what waits.
    await redis_client.xdel(outbox, before[-1])
    assert (await redis_client.xinfo_groups(outbox))[0]["lag"] is None
    assert await log.trim_outbox(SITE, 2) == ADMITTED - 1
    assert await entry_ids(redis_client, outbox) == before[ADMITTED - 1 : -1]
    assert await log.trim_outbox(SITE, 2) == 0


async def test_an_understated_lag_never_costs_an_entry_not_admitted(
    redis_client: aioredis.Redis, log: DeliveryLog, create_site: CreateSite
) -> None:
    before = await outbox_partly_admitted(redis_client, log, create_site, admitted=2)
    outbox = KEYS.outbox(SITE)
    # Redis says one entry waits where ten do; trusted, MAXLEN 6 would remove four of them.
    await redis_client.xgroup_setid(outbox, GROUP, before[1], entries_read=OUTBOX_ENTRIES - 1)
    assert (await redis_client.xinfo_groups(outbox))[0]["lag"] == 1
    assert await log.trim_outbox(SITE, 6) == 1
    assert await entry_ids(redis_client, outbox) == before[1:]


async def entry_ids(redis_client: aioredis.Redis, stream: str) -> list[str]:
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(stream))
    return [entry_id for entry_id, _ in entries]


async def test_an_outbox_entry_that_names_no_event_is_skipped_not_stuck(
    redis_client: aioredis.Redis, log: DeliveryLog, create_site: CreateSite, events: Events
) -> None:
    await create_site("http://127.0.0.1:9/hooks")
    await redis_client.xadd(KEYS.outbox(SITE), {"type": "comment.approved", "site": SITE})
    held = await events.held("c1")

    assert (await log.admit(SITE, 10, now_ms())).read == 2

    assert await redis_client.keys(KEYS.delivery(SITE, "*")) == [KEYS.delivery(SITE, held)]
    assert await redis_client.xpending(KEYS.outbox(SITE), "deliveries") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_a_worker_outlives_an_unreachable_redis_and_still_stops_on_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = closed_port_url().replace("http://", "redis://").removesuffix("/hooks")
    connection = connect(Settings(redis_url=unreachable))
    worker = Worker(connection.client, FAST)
    running = asyncio.create_task(worker.run())
    try:

        async def warned() -> bool:
            return "Redis is unavailable" in caplog.text

        with caplog.at_level(logging.WARNING, logger="service.worker"):
            await eventually(warned, what="the outage to be logged")
        assert not running.done()
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
        await connection.aclose()


async def test_a_worker_says_why_redis_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    # Redis down, full (maxmemory) or unable to persist (MISCONF) each stop the worker: the log
    # line says which, so the operator need not guess.
    port = free_port()
    connection = connect(Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    worker = Worker(connection.client, FAST)
    running = asyncio.create_task(worker.run())

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "Redis is unavailable" in r.getMessage()]

    async def warned() -> bool:
        return bool(said())

    try:
        with caplog.at_level(logging.WARNING, logger="service.worker"):
            await eventually(warned, what="the outage to be logged")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
        await connection.aclose()
    assert f"Redis is unavailable (Error 111 connecting to 127.0.0.1:{port}." in said()[0]


@pytest.mark.parametrize(
    "failure",
    [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        ReadOnlyError("READONLY You can't write against a read only replica."),
        SlotNotCoveredError("slot 5161 is not covered by the cluster"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_redis_failing_over_is_redis_unavailable(failure: Exception) -> None:
    with pytest.raises(StoreUnavailable), store_errors():
        raise failure


class ClosedWhileOpening(aioredis.Connection):
    """A connection another task closes once its socket is open, before its handshake writes:
    as a Cluster client closes every connection of its nodes when one of them fails."""

    closing: ClassVar[set[asyncio.Task[None]]] = set()

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        self.closing.add(asyncio.create_task(self.disconnect(nowait=True)))


async def test_a_connection_closed_while_it_opens_is_redis_unavailable(redis_url: str) -> None:
    # redis-py's handshake then writes to no stream, an AttributeError of its own.
    client = aioredis.Redis.from_url(
        redis_url, socket_timeout=1.0, connection_class=ClosedWhileOpening
    )
    try:
        with pytest.raises(StoreUnavailable) as raised, store_errors():
            await client.get("key")
    finally:
        await client.aclose()
    assert isinstance(raised.value.__cause__, AttributeError)


def test_an_attribute_error_of_its_own_is_no_unavailable_redis() -> None:
    with pytest.raises(AttributeError), store_errors():
        raise AttributeError("no attribute 'writelines'", name="writelines", obj=None)


async def test_a_pass_that_fails_does_not_end_the_worker(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_site(receiver.url)
    real_sites = DeliveryLog.sites
    failures = [ResponseError("ERR an error no pass expects")]

    async def sites(self: DeliveryLog) -> list[str]:
        if failures:
            raise failures.pop()
        return await real_sites(self)

    monkeypatch.setattr(DeliveryLog, "sites", sites)
    worker = Worker(redis_client, FAST, prefix="civ", failure_pause_seconds=0.01)
    running = asyncio.create_task(worker.run())
    try:
        held = await events.held("c1")
        await eventually(in_state(redis_client, held, "delivered"), what="the delivery")
        assert not failures
        assert "the pass failed, trying again" in caplog.text
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)


async def test_admitting_every_site_at_once_reports_each_sites_work(
    log: DeliveryLog, create_site: CreateSite, store: Store
) -> None:
    await create_site("http://127.0.0.1:9/hooks", site_id="news")
    await create_site("http://127.0.0.1:9/hooks", site_id="blog")
    await create_site(None, site_id="quiet")
    news, blog = Events(store, "news"), Events(store, "blog")
    blog.count = 100
    for comment in ("c1", "c2"):
        await news.held(comment)
    await news.decide("c1", State.APPROVED)
    await blog.held("c1")

    first = await log.admit_all(["news", "blog", "quiet", "missing"], 2, now_ms())
    second = await log.admit_all(["news", "blog", "quiet", "missing"], 2, now_ms())

    # news: c1 and c2 are due, c1's approval waits behind its first event.
    assert first == [Admission(2, 2), Admission(1, 1), Admission(0, 0), Admission(0, 0)]
    assert second == [Admission(1, 2), Admission(0, 1), Admission(0, 0), Admission(0, 0)]


async def test_one_sites_broken_outbox_does_not_stop_the_others(
    redis_client: aioredis.Redis,
    log: DeliveryLog,
    create_site: CreateSite,
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_site("http://127.0.0.1:9/hooks")
    await create_site("http://127.0.0.1:9/hooks", site_id="broken")
    await redis_client.set(KEYS.outbox("broken"), "not a stream")
    await events.held("c1")

    with caplog.at_level(logging.ERROR, logger="service.deliveries"):
        admissions = await log.admit_all(["broken", SITE], 10, now_ms())

    assert admissions == [Admission(0, 0), Admission(1, 1)]
    assert "admitting the outbox of site 'broken' failed" in caplog.text
