"""The second look against a real Redis and a real receiver, driven pass by pass.

Comments are written by the store's own intake script, as intake writes them; the blend is a
scorer that returns the scores a test gives each text (the real semantic stage runs in the
end-to-end tests of ``tests/service/api/test_api_second_look.py``), and time is a clock the
test moves."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from service.domain import (
    Author,
    AuthorStatus,
    Order,
    Policy,
    Queue,
    Report,
    ReportReason,
    Site,
    State,
)
from service.scorer import SiteRef
from service.second_look import FAILURES_BEFORE_GIVING_UP, Blended, SecondLookWorker
from service.second_look_store import SecondLookLog
from service.settings import SecondLookSettings
from service.site_models import Fitted, SiteModels
from service.store import Store
from service.store.records import Observation, ReportWrite, SiteRecord
from service.times import from_ms
from service.transitions import REPORTED_EVENT_TYPE, Event, sources_argument
from service.worker_processes import WorkerDiedError
from tests.records import intake_write

from .support import KEYS, SITE, CreateSite, Events, Receiver, StartWorker, eventually

THRESHOLDS = {
    "spam": {"hold": 0.6, "reject": 0.95},
    "toxicity": {"hold": 0.5, "reject": 0.9},
}
CALM = {"spam": 0.05, "toxicity": 0.1}
HOSTILE = {"spam": 0.05, "toxicity": 0.7}
LEASE_SECONDS = 30.0
SETTINGS = SecondLookSettings(batch_size=8, lease_seconds=LEASE_SECONDS, poll_seconds=0.01)
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedBlend:
    """Blended scores by text (calm unless told; ``adapted`` for a text whose site model is
    named), a hook that runs while a batch scores, and texts that fail any batch they are in."""

    scores: dict[str, Mapping[str, float]] = field(default_factory=dict)
    adapted: dict[str, Mapping[str, float]] = field(default_factory=dict)
    during: Callable[[], Awaitable[None]] | None = None
    batches: list[list[str]] = field(default_factory=list)
    sites: list[list[SiteRef | None]] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)

    async def blend(
        self, texts: Sequence[str], sites: Sequence[SiteRef | None] | None = None
    ) -> Blended:
        self.batches.append(list(texts))
        refs = list(sites or [None] * len(texts))
        self.sites.append(refs)
        if self.during is not None:
            hook, self.during = self.during, None
            await hook()
        if self.unreadable.intersection(texts):
            raise ValueError("the encoder cannot read this text")
        scores: list[dict[str, float]] = []
        versions: list[int] = []
        for text, ref in zip(texts, refs, strict=True):
            own = ref is not None and text in self.adapted
            scores.append(dict(self.adapted[text] if own else self.scores.get(text, CALM)))
            versions.append(ref[1] if own and ref is not None else 0)
        return Blended(scores, "blend-test-1", THRESHOLDS, versions)

    def closing(self) -> None:
        self.closed = True

    async def close(self) -> None:
        return None

    closed: bool = False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def blend() -> ScriptedBlend:
    return ScriptedBlend()


@pytest.fixture
def looker(redis_client: aioredis.Redis, blend: ScriptedBlend, clock: Clock) -> SecondLookWorker:
    return SecondLookWorker(redis_client, blend, SETTINGS, prefix="civ", clock=clock)


Publish = Callable[..., Awaitable[None]]


@pytest.fixture
def publish(store: Store, clock: Clock) -> Publish:
    """A comment the lexical verdict published, as intake writes it."""
    return publisher(store, clock)


def publisher(store: Store, clock: Clock) -> Publish:
    async def write(
        comment_id: str,
        text: str,
        *,
        second_look: bool = True,
        state: State = State.APPROVED,
        author: str = "reader-1",
        author_status: AuthorStatus = AuthorStatus.ACTIVE,
        site: str = SITE,
    ) -> None:
        now = int(clock() * 1000)
        await store.write_intake(
            site,
            intake_write(
                comment_id,
                now,
                state,
                text=text,
                author=Author(id=author),
                scores={"spam": 0.05, "toxicity": 0.2},
                model="lexical-test-1",
                event_id=f"evt_intake_{comment_id}_{now}_{text_hash(text)}",
                assumed=Observation(
                    edit=bool(await store.redis.exists(KEYS.comment(site, comment_id))),
                    author_status=author_status,
                ),
                second_look=second_look,
            ),
        )

    return write


def text_hash(text: str) -> int:
    return sum(map(ord, text)) % 10_000


async def comment(redis_client: aioredis.Redis, comment_id: str) -> dict[str, str]:
    return cast(dict[str, str], await redis_client.hgetall(KEYS.comment(SITE, comment_id)))


async def backlog(redis_client: aioredis.Redis) -> int:
    return int(await redis_client.zcard(KEYS.second_look_queue(SITE)))


async def test_a_published_comment_the_blend_holds_goes_to_pending_and_the_host_hears_it(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    receiver: Receiver,
    start_worker: StartWorker,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(receiver.url)
    blend.scores["People like you are what is wrong here."] = HOSTILE
    await publish("c1", "People like you are what is wrong here.")
    await publish("c2", "The council should publish the budget.")
    assert await backlog(redis_client) == 2

    clock.now += 1.5
    assert await looker.work_once() == 2

    held, kept = await comment(redis_client, "c1"), await comment(redis_client, "c2")
    assert (held["state"], json.loads(held["reasons"])) == ("pending", ["SECOND_LOOK", "TOXIC"])
    assert (held["look_state"], json.loads(held["look_scores"])) == ("held", HOSTILE)
    assert held["decided_by"] == "auto:blend-test-1"
    assert held["version"] == "2"
    pending = KEYS.queue_index(SITE, Queue.PENDING, Order.OLDEST)
    assert await redis_client.zrange(pending, 0, -1) == ["c1"]
    assert (kept["state"], kept["look_state"], kept["version"]) == ("approved", "done", "1")
    assert json.loads(kept["look_scores"]) == CALM
    assert await backlog(redis_client) == 0
    stats = await redis_client.hgetall(KEYS.second_look_stats(SITE))
    assert (stats["looked"], stats["held"], stats["delay_ms"], stats["le:2.5"]) == (
        "2",
        "1",
        "3000",
        "2",
    )
    totals = await SecondLookLog(redis_client, "civ").totals(SITE)
    assert (totals.backlog, totals.looked, totals.held, totals.delay_seconds_sum) == (0, 2, 1, 3.0)
    buckets = dict(totals.delay_buckets)
    assert (buckets["1.0"], buckets["2.5"], buckets["+Inf"]) == (0, 2, 2)
    history = [
        json.loads(entry) for entry in await redis_client.lrange(KEYS.history(SITE, "c1"), 0, -1)
    ]
    assert [(entry["action"], entry["to_state"]) for entry in history] == [
        ("create", "approved"),
        ("second_look", "pending"),
    ]

    await start_worker()

    def held_event() -> list[dict[str, object]]:
        return [event for event in receiver.delivered() if event["type"] == "comment.held"]

    async def delivered() -> bool:
        return bool(held_event())

    await eventually(delivered, what="the comment.held event")
    assert held_event()[0]["comment"] == {
        "id": "c1",
        "article_id": "a1",
        "state": "pending",
        "reasons": ["SECOND_LOOK", "TOXIC"],
        "decided_by": "auto:blend-test-1",
        "version": 2,
    }


async def test_a_comment_a_moderator_decided_first_is_never_moved(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    await events.decide("c1", State.APPROVED, actor="mod_1")

    assert await looker.work_once() == 0

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["decided_by"], stored["look_state"]) == (
        "approved",
        "mod_1",
        "skipped",
    )
    assert blend.batches == []
    assert await backlog(redis_client) == 0


async def test_a_moderator_deciding_while_the_stage_reads_wins(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")

    async def moderator_approves() -> None:
        await events.decide("c1", State.APPROVED, actor="mod_1")

    blend.during = moderator_approves
    assert await looker.work_once() == 1

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["decided_by"], stored["look_state"]) == (
        "approved",
        "mod_1",
        "skipped",
    )
    assert await backlog(redis_client) == 0


async def test_an_edit_while_the_stage_reads_is_not_moved_by_the_stale_look(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE

    async def host_edits() -> None:
        await publish("c1", "A kinder second thought.")

    await publish("c1", "Hostile words.")
    blend.during = host_edits
    assert await looker.work_once() == 1

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["version"], stored["look_state"]) == (
        "approved",
        "2",
        "queued",
    )
    # The edit queued its own text, which the next pass reads.
    assert await backlog(redis_client) == 1
    assert await looker.work_once() == 1
    assert blend.batches == [["Hostile words."], ["A kinder second thought."]]
    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["look_state"]) == ("approved", "done")


async def test_an_edit_that_is_held_at_intake_leaves_the_queue(
    redis_client: aioredis.Redis, create_site: CreateSite, publish: Publish
) -> None:
    await create_site(None)
    await publish("c1", "First words.")
    await publish("c1", "Edited words.", state=State.PENDING)

    assert await backlog(redis_client) == 0
    assert "look_state" not in await comment(redis_client, "c1")


async def test_with_the_switch_off_nothing_is_queued(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    looker: SecondLookWorker,
    blend: ScriptedBlend,
) -> None:
    await create_site(None)
    await publish("c1", "Hostile words.", second_look=False)

    assert await backlog(redis_client) == 0
    assert await looker.work_once() == 0
    assert blend.batches == []
    assert "look_state" not in await comment(redis_client, "c1")


async def test_a_batch_a_killed_worker_took_is_taken_again_after_its_lease(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    # A worker takes the comment and dies before it records anything.
    taken = await SecondLookLog(redis_client, "civ").claim_all(
        [SITE], 8, int(LEASE_SECONDS * 1000), int(clock() * 1000)
    )
    assert [item.comment_id for item in taken[0][1]] == ["c1"]

    assert await looker.work_once() == 0
    clock.now += LEASE_SECONDS - 1
    assert await looker.work_once() == 0
    clock.now += 1
    assert await looker.work_once() == 1

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["look_state"]) == ("pending", "held")


async def test_one_sites_broken_queue_does_not_stop_the_others(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_site(None, site_id="broken")
    await redis_client.set(KEYS.second_look_queue("broken"), "not a queue")
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")

    with caplog.at_level(logging.ERROR, logger="service.second_look_store"):
        assert await looker.work_once() == 1

    [error] = [record.getMessage() for record in caplog.records]
    assert error.startswith("taking second looks of site 'broken' failed: WRONGTYPE")
    assert (await comment(redis_client, "c1"))["state"] == "pending"


async def test_a_trusted_author_is_held_only_over_a_reject_threshold(
    redis_client: aioredis.Redis,
    store: Store,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    await store.set_author_status(SITE, "regular", AuthorStatus.TRUSTED, None, "mod_1", 0)
    blend.scores["Sharp words."] = HOSTILE
    blend.scores["Vile words."] = {"spam": 0.05, "toxicity": 0.95}
    await publish("c1", "Sharp words.", author="regular", author_status=AuthorStatus.TRUSTED)
    await publish("c2", "Vile words.", author="regular", author_status=AuthorStatus.TRUSTED)

    assert await looker.work_once() == 2

    assert (await comment(redis_client, "c1"))["state"] == "approved"
    assert (await comment(redis_client, "c2"))["state"] == "pending"


async def test_a_backlog_is_shared_between_sites_in_batches(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    store: Store,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    for index in range(20):
        await publish(f"c{index}", f"Comment number {index}.")

    taken = [await looker.work_once() for _ in range(4)]

    assert taken == [8, 8, 4, 0]
    assert await backlog(redis_client) == 0


async def test_many_sites_each_get_a_turn_and_a_pass_takes_one_batch(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    clock: Clock,
) -> None:
    sites = ("alpha", "beta", "gamma")
    for site in sites:
        await create_site(None, site_id=site)
        for index in range(2):
            await publish(f"{site}-{index}", f"A remark {index} on {site}.", site=site)
    small = SecondLookWorker(
        redis_client,
        blend,
        SecondLookSettings(batch_size=2, lease_seconds=LEASE_SECONDS),
        prefix="civ",
        clock=clock,
    )

    # Never more than a batch a pass, so what a pass takes is looked at within its lease.
    assert [await small.work_once() for _ in range(4)] == [2, 2, 2, 0]

    assert [len(batch) for batch in blend.batches] == [2, 2, 2]
    firsts = {text.rsplit(" ", 1)[1] for batch in blend.batches[:2] for text in batch}
    assert firsts == {"alpha.", "beta.", "gamma."}
    for site in sites:
        assert await redis_client.zcard(KEYS.second_look_queue(site)) == 0


async def test_a_failing_pass_does_not_end_the_loop_and_its_comments_come_back(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")

    async def process_dies() -> None:
        raise RuntimeError("the scoring process died")

    blend.during = process_dies
    looker = SecondLookWorker(
        redis_client, blend, SETTINGS, prefix="civ", clock=clock, failure_pause_seconds=0.01
    )
    running = asyncio.create_task(looker.run())
    try:

        async def failed_once() -> bool:
            return len(blend.batches) == 1

        await eventually(failed_once, what="the failing pass")
        # Leased to the pass that failed, then taken again once the lease ends.
        assert await backlog(redis_client) == 1
        clock.now += LEASE_SECONDS

        async def held() -> bool:
            return (await comment(redis_client, "c1"))["state"] == "pending"

        await eventually(held, what="the second look after the failure")
        assert not running.done()
    finally:
        looker.stop()
        await running
    assert len(blend.batches) == 2


async def a_pass_reading(
    looker: SecondLookWorker, blend: ScriptedBlend, until: asyncio.Event
) -> "asyncio.Task[None]":
    """The worker running, its stage reading the batch in hand until ``until`` is set."""
    reading = asyncio.Event()

    async def reads() -> None:
        reading.set()
        await until.wait()

    blend.during = reads
    running = asyncio.create_task(looker.run())
    await reading.wait()
    return running


async def test_a_stop_cuts_the_pass_in_hand_short_at_the_drain_time_and_loses_nothing(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    running = await a_pass_reading(looker, blend, asyncio.Event())
    # No drain time: the stop does not wait for the batch the stage is reading.
    async with asyncio.timeout(10):
        await looker.stopped(running, drain_seconds=0.0)
    assert running.cancelled()
    assert blend.closed
    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["look_state"]) == ("approved", "queued")
    assert await backlog(redis_client) == 1
    # Handed back to its place in the queue, not left leased.
    queued_at = await redis_client.zscore(KEYS.second_look_queue(SITE), "c1")
    assert queued_at == int(stored["look_queued_at"])

    # The next start takes it at once, the clock still inside the lease it was taken under.
    again = SecondLookWorker(redis_client, blend, SETTINGS, prefix="civ", clock=clock)
    assert await again.work_once() == 1
    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["look_state"]) == ("pending", "held")


async def test_a_stop_hands_back_no_comment_another_worker_took_once_its_lease_ended(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    await publish("c1", "Calm words.")
    running = await a_pass_reading(looker, blend, asyncio.Event())
    # The stalled pass outlives its lease: another worker takes the comment.
    clock.now += LEASE_SECONDS
    other = SecondLookLog(redis_client, "civ")
    lease_ms = int(LEASE_SECONDS * 1000)
    now_ms = int(clock() * 1000)
    [(_, taken)] = await other.claim_all([SITE], 8, lease_ms, now_ms)
    assert [item.comment_id for item in taken] == ["c1"]
    async with asyncio.timeout(10):
        await looker.stopped(running, drain_seconds=0.0)
    assert running.cancelled()
    # Still the other worker's: nothing is due for a third until that lease ends.
    assert await other.claim_all([SITE], 8, lease_ms, now_ms) == [(1, [])]
    score = await redis_client.zscore(KEYS.second_look_queue(SITE), "c1")
    assert score == now_ms + lease_ms


async def test_a_stop_lets_the_pass_in_hand_finish_within_the_drain_time(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    finish = asyncio.Event()
    running = await a_pass_reading(looker, blend, finish)
    stopping = asyncio.create_task(looker.stopped(running, drain_seconds=600.0))
    await asyncio.sleep(0)  # one turn of the loop: the stop has begun, the stage still reads
    assert not stopping.done()
    finish.set()
    async with asyncio.timeout(10):
        await stopping
    assert running.done()
    assert not running.cancelled()
    assert not blend.closed
    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["look_state"]) == ("pending", "held")
    assert await backlog(redis_client) == 0


async def test_a_pass_that_fails_while_the_worker_stops_is_one_line_not_an_error(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_site(None)
    await publish("c1", "Calm words.")
    reading, fail = asyncio.Event(), asyncio.Event()

    async def process_ends() -> None:
        reading.set()
        await fail.wait()
        raise WorkerDiedError("second-look process 4242 exited (1) before answering")

    blend.during = process_ends
    running = asyncio.create_task(looker.run())
    await reading.wait()
    with caplog.at_level(logging.INFO, logger="service.second_look"):
        stopping = asyncio.create_task(looker.stopped(running, drain_seconds=600.0))
        await asyncio.sleep(0)  # one turn of the loop: the stop has begun, the stage still reads
        fail.set()
        async with asyncio.timeout(10):
            await stopping
    assert running.done()
    assert not running.cancelled()
    [record] = caplog.records
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert record.getMessage() == (
        "second look: the pass in hand failed as it stopped (second-look process 4242 exited "
        "(1) before answering); its comments come back when their lease ends"
    )
    # Leased to the pass that failed: the next start takes it once the lease ends.
    assert await backlog(redis_client) == 1


async def test_a_text_the_stage_cannot_read_is_given_up_and_its_batch_is_looked_at(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.unreadable.add("Unreadable words.")
    blend.scores["Hostile words."] = HOSTILE
    await publish("bad", "Unreadable words.")
    await publish("c1", "Hostile words.")

    assert await looker.work_once() == 2
    # The batch failed; each text alone then: the hostile one is held, the other counted.
    assert blend.batches[1:] == [["Unreadable words."], ["Hostile words."]]
    assert (await comment(redis_client, "c1"))["state"] == "pending"
    stored = await comment(redis_client, "bad")
    assert (stored["look_state"], stored["look_failures"]) == ("queued", "1")

    for attempt in range(2, FAILURES_BEFORE_GIVING_UP + 1):
        clock.now += LEASE_SECONDS
        await publish(f"c{attempt}", f"Calm words {attempt}.")
        assert await looker.work_once() == 2
        assert (await comment(redis_client, f"c{attempt}"))["look_state"] == "done"

    stored = await comment(redis_client, "bad")
    # Given up: it keeps the lexical verdict and leaves the queue.
    assert (stored["state"], stored["look_state"]) == ("approved", "failed")
    assert await backlog(redis_client) == 0
    totals = await SecondLookLog(redis_client, "civ").totals(SITE)
    assert (totals.failed, totals.looked, totals.held) == (1, 3, 1)


async def test_a_failure_of_every_text_alone_is_counted_against_none(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.unreadable.update({"First words.", "Second words."})
    await publish("c1", "First words.")
    await publish("c2", "Second words.")

    with pytest.raises(ValueError, match="cannot read"):
        await looker.work_once()
    # The model or its process, not a text: both come back after the lease, uncounted.
    assert len(blend.batches) == 3
    assert await backlog(redis_client) == 2
    for comment_id in ("c1", "c2"):
        stored = await comment(redis_client, comment_id)
        assert stored["look_state"] == "queued"
        assert "look_failures" not in stored


async def test_an_edit_starts_the_count_of_failures_again(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.unreadable.add("Unreadable words.")
    await publish("bad", "Unreadable words.")
    await publish("c1", "Calm words.")
    await looker.work_once()
    assert (await comment(redis_client, "bad"))["look_failures"] == "1"

    await publish("bad", "Readable words now.")

    stored = await comment(redis_client, "bad")
    assert (stored["look_state"], "look_failures" in stored) == ("queued", False)


async def test_on_a_cluster_each_site_is_looked_at_in_its_own_slot(
    cluster: RedisCluster, blend: ScriptedBlend, clock: Clock
) -> None:
    store = Store(cluster)
    publish = publisher(store, clock)
    sites = ("news", "blog", "forum", "shop")
    moment = from_ms(int(clock() * 1000))
    for site_id in sites:
        site = Site(
            id=site_id,
            name=site_id,
            callback_url=None,
            policy=Policy(),
            created_at=moment,
            updated_at=moment,
        )
        await store.create_site(SiteRecord(site, "whsec_cluster_tests", None, 0, f"k-{site_id}"))
        await publish("c1", f"Hostile words on {site_id}.", site=site_id)
        blend.scores[f"Hostile words on {site_id}."] = HOSTILE
    slots = {cluster.keyslot(KEYS.second_look_queue(site_id)) for site_id in sites}
    assert len(slots) > 1

    looker = SecondLookWorker(cluster, blend, SETTINGS, prefix="civ", clock=clock)
    assert await looker.work_once() == 4

    for site_id in sites:
        stored = await cluster.hgetall(KEYS.comment(site_id, "c1"))
        assert (stored["state"], stored["look_state"]) == ("pending", "held")


async def test_one_busy_site_among_quiet_ones_gets_a_whole_batch(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    for site in ("alpha", "beta", "gamma", SITE):
        await create_site(None, site_id=site)
    for index in range(10):
        await publish(f"c{index}", f"Comment number {index}.")

    assert [await looker.work_once() for _ in range(3)] == [8, 2, 0]
    assert [len(batch) for batch in blend.batches] == [8, 2]


async def test_a_site_with_its_own_second_look_model_is_looked_at_with_it(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    receiver: Receiver,
    publish: Publish,
    blend: ScriptedBlend,
    clock: Clock,
) -> None:
    await create_site(receiver.url)
    models = SiteModels(redis_client)
    looker = SecondLookWorker(
        redis_client, blend, SETTINGS, prefix="civ", clock=clock, site_models=models
    )
    # The site's moderators reject what the global blend finds calm.
    blend.adapted["Fine words about the mayor."] = HOSTILE
    await publish("c1", "Fine words about the mayor.")
    clock.now += 1.5
    assert await looker.work_once() == 1
    assert blend.sites[-1] == [None]
    assert (await comment(redis_client, "c1"))["look_state"] == "done"

    card = {"global_model": "blend-test-1", "why": "a test fit", "labels": {}}
    fitted = Fitted(card=card, weights=None, second_look="{}")
    assert await models.store_fit(SITE, fitted, "adapted") == 1
    await publish("c2", "Fine words about the mayor.")
    clock.now += 1.5
    assert await looker.work_once() == 1
    assert blend.sites[-1] == [(SITE, 1)]
    held = await comment(redis_client, "c2")
    assert (held["state"], held["look_state"]) == ("pending", "held")
    assert held["decided_by"] == "auto:blend-test-1+site.1"
    assert json.loads(held["look_scores"]) == HOSTILE


async def test_a_held_comment_leaves_the_reported_queue_and_its_authors_approvals(
    redis_client: aioredis.Redis,
    store: Store,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    now = int(clock() * 1000)
    report = Report(reporter_id="reader-2", reason=ReportReason.ABUSIVE, at=from_ms(now))
    await store.report(
        SITE,
        ReportWrite(
            comment_id="c1",
            report=report,
            threshold=1,
            now_ms=now,
            event_id="evt_report_c1",
            event_type=REPORTED_EVENT_TYPE,
            sources=sources_argument(Event.REPORT),
        ),
    )
    reported = KEYS.queue_index(SITE, Queue.REPORTED, Order.OLDEST)
    assert await redis_client.zrange(reported, 0, -1) == ["c1"]
    recent = KEYS.author_recent(SITE, "reader-1")
    assert await redis_client.zrange(recent, 0, -1) == ["a:c1"]

    assert await looker.work_once() == 1

    assert (await comment(redis_client, "c1"))["state"] == "pending"
    # Taken down: not a published comment readers report any more.
    assert await redis_client.zrange(reported, 0, -1) == []
    author = await redis_client.hgetall(KEYS.author(SITE, "reader-1"))
    assert (author["approved"], author["pending"]) == ("0", "1")
    assert await redis_client.zrange(recent, 0, -1) == []


async def test_a_look_at_a_comment_gone_while_the_stage_reads_leaves_the_queue(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")

    async def comment_expires() -> None:
        await redis_client.delete(KEYS.comment(SITE, "c1"))

    blend.during = comment_expires
    assert await looker.work_once() == 1

    assert await backlog(redis_client) == 0
    assert not await redis_client.exists(KEYS.comment(SITE, "c1"))


async def test_a_look_at_a_site_deleted_once_its_policy_was_read_writes_nothing(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    load_site = looker.store.load_site

    async def loaded_then_deleted(site_id: str) -> SiteRecord | None:
        record = await load_site(site_id)
        # The site goes (its purge under way) between reading its policy and applying the look.
        await redis_client.delete(KEYS.site(SITE))
        return record

    monkeypatch.setattr(looker.store, "load_site", loaded_then_deleted)
    outbox = await redis_client.xlen(KEYS.outbox(SITE))
    assert await looker.work_once() == 1

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["version"]) == ("approved", "1")
    assert await redis_client.xlen(KEYS.outbox(SITE)) == outbox
    assert not await redis_client.exists(KEYS.history(SITE, "c1"))


async def test_a_site_deleted_once_listed_counts_no_skipped_look(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    publish: Publish,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    await publish("c1", "Calm words.")
    await events.decide("c1", State.APPROVED, actor="mod_1")
    # The site goes after the worker listed it, its purge past the stats already.
    await redis_client.delete(KEYS.site(SITE), KEYS.second_look_stats(SITE))

    assert await looker.work_once() == 0

    assert not await redis_client.exists(KEYS.second_look_stats(SITE))


async def test_a_text_given_up_after_its_site_was_deleted_counts_no_failure(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
) -> None:
    await create_site(None)
    blend.unreadable.add("Unreadable words.")
    await publish("bad", "Unreadable words.")
    await publish("c1", "Calm words.")
    await redis_client.hset(
        KEYS.comment(SITE, "bad"), "look_failures", FAILURES_BEFORE_GIVING_UP - 1
    )

    async def deleted() -> None:
        # The site goes while the stage reads, its purge past the stats already.
        await redis_client.delete(KEYS.site(SITE), KEYS.second_look_stats(SITE))

    blend.during = deleted
    assert await looker.work_once() == 2

    assert not await redis_client.exists(KEYS.second_look_stats(SITE))


async def test_a_look_finished_after_its_lease_ended_does_not_hold_the_comment_again(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    publish: Publish,
    blend: ScriptedBlend,
    looker: SecondLookWorker,
    clock: Clock,
) -> None:
    await create_site(None)
    blend.scores["Hostile words."] = HOSTILE
    await publish("c1", "Hostile words.")
    assert await redis_client.pttl(KEYS.comment(SITE, "c1")) > 0
    other = SecondLookWorker(redis_client, blend, SETTINGS, prefix="civ", clock=clock)

    async def lease_ends_and_another_worker_holds_it() -> None:
        clock.now += LEASE_SECONDS
        assert await other.work_once() == 1

    blend.during = lease_ends_and_another_worker_holds_it
    assert await looker.work_once() == 1

    stored = await comment(redis_client, "c1")
    assert (stored["state"], stored["version"]) == ("pending", "2")
    history = await redis_client.lrange(KEYS.history(SITE, "c1"), 0, -1)
    assert [json.loads(entry)["action"] for entry in history] == ["create", "second_look"]
    stats = await redis_client.hgetall(KEYS.second_look_stats(SITE))
    assert (stats["held"], stats["skipped"]) == ("1", "1")
    # Held comments are kept until a moderator decides them.
    assert await redis_client.pttl(KEYS.comment(SITE, "c1")) == -1
