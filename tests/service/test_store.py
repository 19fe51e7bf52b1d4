"""The store's scripts against a real Redis: every write is whole, atomic and where keys.py says."""

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from service.connection import connect
from service.domain import (
    ArticleSpec,
    Author,
    AuthorStatus,
    Comment,
    Moderator,
    Order,
    Policy,
    Queue,
    QueueQuery,
    Report,
    ReportReason,
    State,
)
from service.errors import (
    AlreadyExists,
    BadRequest,
    ClaimConflict,
    InvalidTransition,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
    VersionConflict,
)
from service.keys import KeySpace
from service.settings import Settings
from service.store import Store
from service.store.records import (
    ApiKeyTakenError,
    DecisionWrite,
    IntakeWrite,
    Observation,
    ReportWrite,
    SiteRecord,
    SiteRules,
    StaleContextError,
    Window,
)
from service.store.scripts import RedisClient
from service.times import from_ms, hour_bucket
from service.transitions import REPORTED_EVENT_TYPE, Event, sources_argument
from tests.records import ACTIONS, decision_write, intake_write, list_moderators, site_record
from tests.sentinel import SentinelSetup

SITE = "news"
NOW = 1_800_000_000_000
KEYS = KeySpace("civ")


@pytest.fixture
def redis_client(topology_client: RedisClient) -> RedisClient:
    """Every store test runs on one server, a Redis Cluster and a Sentinel service."""
    return topology_client


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    store = Store(redis_client, prefix="civ")
    await store.create_site(site_record(SITE, NOW))
    await list_moderators(store, SITE, "mod_x", "mod_y", "mod_z")
    return store


async def all_keys(client: RedisClient, pattern: str) -> list[str]:
    """KEYS over every primary of a cluster, or of the one server."""
    if isinstance(client, RedisCluster):
        found: list[str] = []
        for node in client.get_primaries():
            found += cast(list[str], await client.keys(pattern, target_nodes=node))
        return found
    return cast(list[str], await client.keys(pattern))


def intake(
    comment_id: str,
    *,
    text: str = "hello",
    state: State = State.PENDING,
    priority: float = 0.5,
    article: str = "a1",
    author: str = "u1",
    created_at: int = NOW,
    now: int = NOW,
    windows: Sequence[Window] = (),
    assumed: Observation | None = None,
    edited_at: int | None = None,
) -> IntakeWrite:
    return intake_write(
        comment_id,
        now,
        state,
        text=text,
        article_id=article,
        author=Author(id=author, name="Reader"),
        reasons=["SPAM"] if state is State.PENDING else [],
        scores={"spam": priority, "toxicity": 0.01},
        evidence={"spam": [(0, 2)]} if state is State.PENDING else {},
        model="test-1",
        priority=priority,
        created_at_ms=created_at,
        event_id=f"evt-{comment_id}-{text}",
        windows=windows,
        assumed=assumed or Observation(windows_taken=tuple(False for _ in windows)),
        edited_at_ms=edited_at,
    )


def decision(
    comment_id: str,
    target: State = State.APPROVED,
    *,
    actor: str = "mod_x",
    version: int | None = None,
    now: int = NOW + 1_000,
) -> DecisionWrite:
    action = ACTIONS[target]
    return decision_write(
        comment_id,
        now,
        target,
        actor=actor,
        expected_version=version,
        note="checked",
        event_id=f"evt-{comment_id}-{action}-{actor}-{now}",
    )


def queue_keys(
    site: str, queue: Queue, article: str, author: str, reasons: tuple[str, ...] = ("SPAM",)
) -> set[str]:
    """Every index a comment queued with ``reasons`` (the ``intake`` helper's) is filed under."""
    places: list[dict[str, str]] = [{}, {"article": article}, {"author": author}]
    scopes = places + [{"reason": reason, **place} for reason in reasons for place in places]
    return {KEYS.queue_index(site, queue, order, **scope) for order in Order for scope in scopes}


async def history(
    redis: aioredis.Redis, comment_id: str, site: str = SITE
) -> list[dict[str, object]]:
    return [
        json.loads(entry) for entry in await redis.lrange(KEYS.history(site, comment_id), 0, -1)
    ]


async def entries(store: Store, comment_id: str, site: str = SITE) -> int:
    """The changes a comment's history shows (its creation is kept in the comment hash until
    the first change, so the list alone does not count it)."""
    return len((await store.comment(site, comment_id, NOW)).history or ())


async def stream(redis: aioredis.Redis, key: str) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(key))
    return [fields for _, fields in entries]


async def outbox(redis: aioredis.Redis, site: str = SITE) -> list[dict[str, str]]:
    return await stream(redis, KEYS.outbox(site))


async def test_the_first_change_writes_the_creation_before_itself_once(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    await store.write_intake(SITE, intake("c2"))
    # c2 as stored before creations stayed in the hash: its list already holds the creation.
    created = (await store.comment(SITE, "c2", NOW)).history or ()
    await redis_client.rpush(
        KEYS.history(SITE, "c2"), json.dumps({**created[0].model_dump(mode="json"), "at": NOW})
    )

    for comment_id in ("c1", "c2"):
        await store.decide(SITE, decision(comment_id))
        entries = await history(redis_client, comment_id)
        assert [(e["action"], e["from_state"], e["to_state"]) for e in entries] == [
            ("create", None, "pending"),
            ("approve", "pending", "approved"),
        ], comment_id
        assert (entries[0]["version"], entries[0]["at"]) == (1, NOW)
        assert entries[0]["actor"] == "auto:test-1"


async def test_create_writes_comment_queues_history_audit_outbox_and_counters(
    store: Store, redis_client: aioredis.Redis
) -> None:
    outcome, comment = await store.write_intake(SITE, intake("c1", priority=0.7))

    assert outcome == "created"
    assert (comment.id, comment.state, comment.version) == ("c1", State.PENDING, 1)
    assert comment.decided_by == "auto:test-1"
    assert comment.evidence == {"spam": ((0, 2),)}
    for key in queue_keys(SITE, Queue.PENDING, "a1", "u1"):
        assert await redis_client.zscore(key, "c1") is not None, key
    oldest = KEYS.queue_index(SITE, Queue.PENDING, Order.OLDEST)
    assert await redis_client.zscore(oldest, "c1") == NOW
    priority = KEYS.queue_index(SITE, Queue.PENDING, Order.PRIORITY)
    assert await redis_client.zscore(priority, "c1") == 0.7
    # The creation is read from the comment hash: no list until the comment's first change.
    assert await history(redis_client, "c1") == []
    [entry] = (await store.comment(SITE, "c1", NOW)).history or ()
    assert entry.model_dump(exclude_none=True) == {
        "version": 1,
        "at": from_ms(NOW),
        "actor": "auto:test-1",
        "action": "create",
        "to_state": State.PENDING,
        "reasons": ("SPAM",),
        "model": "test-1",
    }
    [audit] = await stream(redis_client, KEYS.audit(SITE))
    assert (audit["comment_id"], audit["action"], audit["to_state"]) == ("c1", "create", "pending")
    [event] = await outbox(redis_client)
    assert event["event_id"] == "evt-c1-hello"
    assert (event["type"], event["comment_id"], event["state"]) == ("comment.held", "c1", "pending")
    assert (event["version"], event["site"]) == ("1", SITE)
    author = await redis_client.hgetall(KEYS.author(SITE, "u1"))
    assert (author["pending"], author["first_seen"], author["last_seen"]) == (
        "1",
        str(NOW),
        str(NOW),
    )
    stats = await redis_client.hgetall(KEYS.stats(SITE))
    assert stats == {"auto": "1", "auto:pending": "1"}
    hourly = KEYS.hourly_stats(SITE, hour_bucket(NOW))
    assert await redis_client.hget(hourly, "auto") == "1"
    assert await redis_client.ttl(hourly) > 7 * 24 * 3600


async def test_a_moderators_decision_moves_the_authors_counts_not_when_they_last_wrote(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    await store.decide(SITE, decision("c1", now=NOW + 60_000))
    author = await redis_client.hgetall(KEYS.author(SITE, "u1"))
    assert (author["pending"], author["approved"]) == ("0", "1")
    assert (author["first_seen"], author["last_seen"]) == (str(NOW), str(NOW))


async def test_every_key_a_script_writes_is_named_by_keys_py(
    store: Store, redis_client: aioredis.Redis
) -> None:
    windows = [Window(KEYS.author_flood(SITE, "u1"), 60_000, new_only=True)]
    await store.write_intake(SITE, intake("c1", windows=windows))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)
    await store.write_intake(SITE, intake("c2"))
    # Decided under an Idempotency-Key: the decision is remembered by its event id.
    keyed = replace(decision("c2", actor="mod_y"), remember_ms=60_000)
    await store.decide(SITE, keyed)

    expected = {
        KEYS.sites(),
        KEYS.site(SITE),
        KEYS.api_key("hash-of-news"),
        KEYS.comment(SITE, "c1"),
        KEYS.comment(SITE, "c2"),
        KEYS.comment_text(SITE, "c1"),
        KEYS.comment_text(SITE, "c2"),
        KEYS.history(SITE, "c2"),  # c1 has not changed since its creation: no list yet
        KEYS.article(SITE, "a1"),
        KEYS.author(SITE, "u1"),
        KEYS.author_recent(SITE, "u1"),
        KEYS.author_flood(SITE, "u1"),
        KEYS.lease(SITE, "c1"),
        KEYS.claims(SITE, "mod_x"),
        KEYS.audit(SITE),
        KEYS.outbox(SITE),
        KEYS.stats(SITE),
        KEYS.hourly_stats(SITE, hour_bucket(NOW)),
        KEYS.decided(SITE, keyed.event_id),
        # The moderators the fixture lists, and their tokens' index.
        KEYS.moderators(SITE),
        *(KEYS.moderator_token(f"token-of-{SITE}-{name}") for name in ("mod_x", "mod_y", "mod_z")),
        *queue_keys(SITE, Queue.PENDING, "a1", "u1"),
        *(
            KEYS.comments(SITE, state, **scope)
            for state in (State.PENDING, State.APPROVED)
            for scope in ({}, {"article": "a1"}, {"author": "u1"})
        ),
    }
    assert set(await all_keys(redis_client, "*")) == expected
    site_keys = {key for key in expected if not key.startswith("civ:token:")} - {
        KEYS.sites(),
        KEYS.api_key("hash-of-news"),
    }
    assert all(key.startswith("civ:{news}:") for key in site_keys)


async def test_redelivery_with_the_same_text_changes_nothing(
    store: Store, redis_client: aioredis.Redis
) -> None:
    _, first = await store.write_intake(SITE, intake("c1"))
    outcome, again = await store.write_intake(SITE, intake("c1", now=NOW + 5_000))

    assert outcome == "unchanged"
    assert again == first
    assert await entries(store, "c1") == 1
    assert len(await outbox(redis_client)) == 1
    assert await redis_client.hget(KEYS.author(SITE, "u1"), "pending") == "1"


@pytest.mark.parametrize(
    ("text", "edited_at"),
    [("v1", None), ("v1", NOW), ("v0", NOW + 999), ("v3", NOW + 1_000)],
    ids=["the first text", "the first text dated", "an older edit", "an edit of the same time"],
)
async def test_a_text_dated_no_later_than_the_stored_edit_changes_nothing(
    store: Store, redis_client: aioredis.Redis, text: str, edited_at: int | None
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1"))
    edit = intake(
        "c1", text="v2", now=NOW + 2_000, edited_at=NOW + 1_000, assumed=Observation(edit=True)
    )
    _, edited = await store.write_intake(SITE, edit)
    late = intake(
        "c1", text=text, now=NOW + 3_000, edited_at=edited_at, assumed=Observation(edit=True)
    )
    outcome, stored = await store.write_intake(SITE, late)

    assert outcome == "unchanged"
    assert stored == edited
    assert (stored.text, stored.version, stored.edited_at) == ("v2", 2, from_ms(NOW + 1_000))
    assert len(await outbox(redis_client)) == 2
    newer = intake(
        "c1", text="v3", now=NOW + 4_000, edited_at=NOW + 1_001, assumed=Observation(edit=True)
    )
    outcome, stored = await store.write_intake(SITE, newer)
    assert (outcome, stored.text, stored.edited_at) == ("edited", "v3", from_ms(NOW + 1_001))


async def test_twenty_concurrent_deliveries_of_one_id_create_one_comment(
    store: Store, redis_client: aioredis.Redis
) -> None:
    results = await asyncio.gather(*(store.write_intake(SITE, intake("c1")) for _ in range(20)))

    outcomes = sorted(outcome for outcome, _ in results)
    assert outcomes == ["created"] + ["unchanged"] * 19
    assert {comment.version for _, comment in results} == {1}
    assert await entries(store, "c1") == 1
    assert len(await outbox(redis_client)) == 1
    assert await redis_client.hget(KEYS.author(SITE, "u1"), "pending") == "1"
    assert await redis_client.hget(KEYS.stats(SITE), "auto") == "1"


async def test_an_edit_is_moderated_again_and_moves_queues_and_counters(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1", state=State.PENDING))
    outcome, edited = await store.write_intake(
        SITE,
        intake(
            "c1",
            text="v2",
            state=State.APPROVED,
            created_at=NOW + 9,
            now=NOW + 10,
            assumed=Observation(edit=True),
        ),
    )

    assert outcome == "edited"
    assert (edited.text, edited.state, edited.version) == ("v2", State.APPROVED, 2)
    assert edited.created_at == from_ms(NOW)  # the original creation time is kept
    assert edited.updated_at == from_ms(NOW + 10)
    for key in queue_keys(SITE, Queue.PENDING, "a1", "u1"):
        assert not await redis_client.exists(key)
    entries = await history(redis_client, "c1")
    assert [(e["action"], e["from_state"], e["to_state"]) for e in entries] == [
        ("create", None, "pending"),
        ("edit", "pending", "approved"),
    ]
    assert [event["type"] for event in await outbox(redis_client)] == [
        "comment.held",
        "comment.approved",
    ]
    author = await redis_client.hgetall(KEYS.author(SITE, "u1"))
    assert (author["pending"], author["approved"]) == ("0", "1")


async def test_a_comment_marked_spam_emits_comment_spam_and_an_edit_moderates_it_again(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1", state=State.PENDING))
    marked = await store.decide(SITE, decision("c1", State.SPAM, now=NOW + 1))
    assert (marked.state, marked.version) == (State.SPAM, 2)

    outcome, edited = await store.write_intake(
        SITE,
        intake("c1", text="v2", state=State.APPROVED, now=NOW + 2, assumed=Observation(edit=True)),
    )

    assert outcome == "edited"
    assert (edited.text, edited.state, edited.version) == ("v2", State.APPROVED, 3)
    assert [event["type"] for event in await outbox(redis_client)] == [
        "comment.held",
        "comment.spam",
        "comment.approved",
    ]
    entries = await history(redis_client, "c1")
    assert [(e["action"], e["from_state"], e["to_state"]) for e in entries] == [
        ("create", None, "pending"),
        ("spam", "pending", "spam"),
        ("edit", "spam", "approved"),
    ]
    author = await redis_client.hgetall(KEYS.author(SITE, "u1"))
    assert (author["spam"], author["approved"]) == ("0", "1")


async def test_an_edit_cannot_move_a_comment_to_another_article_or_author(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1"))
    before = await redis_client.hgetall(KEYS.comment(SITE, "c1"))

    with pytest.raises(ValidationFailed) as moved:
        await store.write_intake(SITE, intake("c1", text="v2", article="a2"))
    assert moved.value.details == [
        {"field": "article.id", "message": "an existing comment cannot move to another article"}
    ]
    with pytest.raises(ValidationFailed) as author:
        await store.write_intake(SITE, intake("c1", text="v2", author="u2"))
    assert [detail["field"] for detail in author.value.details] == ["author.id"]
    with pytest.raises(ValidationFailed) as both:
        await store.write_intake(SITE, intake("c1", text="v2", article="a2", author="u2"))
    assert [detail["field"] for detail in both.value.details] == ["article.id", "author.id"]
    assert await redis_client.hgetall(KEYS.comment(SITE, "c1")) == before
    assert len(await outbox(redis_client)) == 1


async def test_an_edit_drops_the_reports_of_the_text_it_replaces(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1", state=State.APPROVED))
    report = Report(reporter_id="u2", reason=ReportReason.ABUSIVE, at=from_ms(NOW + 1))
    await store.report(
        SITE,
        ReportWrite(
            comment_id="c1",
            report=report,
            threshold=1,
            now_ms=NOW + 1,
            event_id="evt-c1-report",
            event_type=REPORTED_EVENT_TYPE,
            sources=sources_argument(Event.REPORT),
        ),
    )
    reported = KEYS.queue_index(SITE, Queue.REPORTED, Order.OLDEST)
    assert await redis_client.zrange(reported, 0, -1) == ["c1"]

    edit = intake(
        "c1", text="v2", state=State.APPROVED, now=NOW + 2, assumed=Observation(edit=True)
    )
    outcome, _ = await store.write_intake(SITE, edit)

    assert outcome == "edited"
    for key in queue_keys(SITE, Queue.REPORTED, "a1", "u1", ("REPORTED",)):
        assert not await redis_client.exists(key)
    assert not await redis_client.exists(KEYS.reports(SITE, "c1"))
    assert not await redis_client.hexists(KEYS.comment(SITE, "c1"), "reports")


async def test_an_edit_keeps_nothing_of_the_old_texts_scores_evidence_or_lease(
    store: Store, redis_client: aioredis.Redis
) -> None:
    flood = KEYS.author_flood(SITE, "u1")
    windows = [Window(flood, 5_000, new_only=True)]
    await store.write_intake(SITE, intake("c1", text="v1", windows=windows))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)
    assert await redis_client.get(flood) == "c1"

    # The flood window the comment itself holds is not another comment's.
    edit = intake(
        "c1",
        text="v2",
        state=State.APPROVED,
        now=NOW + 1,
        windows=windows,
        assumed=Observation(edit=True, windows_taken=(False,)),
    )
    outcome, _ = await store.write_intake(SITE, replace(edit, scores={"spam": 0.1}))

    assert outcome == "edited"
    stored = cast(dict[str, str], await redis_client.hgetall(KEYS.comment(SITE, "c1")))
    assert {field for field in stored if field.startswith("score:")} == {"score:spam"}
    assert "evidence" not in stored
    assert (await store.comment(SITE, "c1", NOW + 1)).evidence == {}
    # Decided by the model, it is no longer a moderator's to hold.
    assert not await redis_client.exists(KEYS.lease(SITE, "c1"))


async def test_an_edit_from_a_state_the_edit_sources_leave_out_writes_nothing(
    store: Store, redis_client: aioredis.Redis
) -> None:
    # Every state may be edited today; the script still applies the sources it is given, so a
    # narrower edit rule in transitions.py needs no change to it.
    await store.write_intake(SITE, intake("c1", text="v1", state=State.APPROVED))
    before = await redis_client.hgetall(KEYS.comment(SITE, "c1"))
    edit = intake(
        "c1", text="v2", state=State.APPROVED, now=NOW + 1, assumed=Observation(edit=True)
    )

    with pytest.raises(InvalidTransition):
        await store.write_intake(SITE, replace(edit, edit_sources=State.PENDING.value))

    assert await redis_client.hgetall(KEYS.comment(SITE, "c1")) == before
    assert await redis_client.get(KEYS.comment_text(SITE, "c1")) == "v1"


async def test_a_decided_verdict_expires_after_the_retention_and_a_held_one_is_kept(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", state=State.APPROVED))
    await store.write_intake(SITE, intake("c2", state=State.PENDING))

    retention_ms = SiteRules().retention_ms
    for key in (KEYS.comment(SITE, "c1"), KEYS.comment_text(SITE, "c1")):
        assert retention_ms - 60_000 < await redis_client.pttl(key) <= retention_ms
    for key in (KEYS.comment(SITE, "c2"), KEYS.comment_text(SITE, "c2")):
        assert await redis_client.pttl(key) == -1


async def test_a_published_verdict_waits_for_a_second_look_only_while_the_stage_is_on(
    store: Store, redis_client: aioredis.Redis
) -> None:
    published = intake("c1", state=State.APPROVED)
    await store.write_intake(SITE, published)
    await store.write_intake(SITE, replace(published, comment_id="c2", second_look=True))

    assert await redis_client.zrange(KEYS.second_look_queue(SITE), 0, -1) == ["c2"]
    assert not await redis_client.hexists(KEYS.comment(SITE, "c1"), "look_state")


async def test_window_keys_hold_the_comment_id_with_native_expiry(
    store: Store, redis_client: aioredis.Redis
) -> None:
    flood = KEYS.author_flood(SITE, "u1")
    await store.write_intake(SITE, intake("c1", windows=[Window(flood, 5_000, new_only=True)]))

    assert await redis_client.get(flood) == "c1"
    assert 0 < await redis_client.pttl(flood) <= 5_000


async def test_claims_are_disjoint_in_queue_order_and_atomic(store: Store) -> None:
    for index, priority in enumerate([0.1, 0.9, 0.5, 0.7, 0.3]):
        await store.write_intake(SITE, intake(f"c{index}", priority=priority))

    first, second = await asyncio.gather(
        store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 3, 60_000, NOW),
        store.claim(SITE, "mod_y", Queue.PENDING, Order.PRIORITY, 3, 60_000, NOW),
    )

    claimed = [comment.id for comment in first] + [comment.id for comment in second]
    assert sorted(claimed) == ["c0", "c1", "c2", "c3", "c4"]
    # Whoever ran first took the three riskiest, in order: the two claims go out together, and a
    # Cluster client's may reach Redis in either order.
    assert sorted([len(first), len(second)]) == [2, 3]
    riskiest = first if len(first) == 3 else second
    assert [comment.id for comment in riskiest] == ["c1", "c3", "c2"]
    assert {comment.claimed_by for comment in first} == {"mod_x"}
    assert await store.claim(SITE, "mod_z", Queue.PENDING, Order.PRIORITY, 3, 60_000, NOW) == []


async def test_claims_follow_the_oldest_order_too(store: Store) -> None:
    for index, queued in enumerate([30, 10, 20]):
        await store.write_intake(SITE, intake(f"c{index}", now=NOW + queued))

    claimed = await store.claim(SITE, "mod_x", Queue.PENDING, Order.OLDEST, 2, 60_000, NOW)

    assert [comment.id for comment in claimed] == ["c1", "c2"]


async def test_a_claimed_comment_is_decided_only_by_its_holder_until_the_lease_ends(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    [claimed] = await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)
    assert claimed.lease_until == from_ms(NOW + 60_000)

    with pytest.raises(ClaimConflict) as conflict:
        await store.decide(SITE, decision("c1", actor="mod_y"))
    assert conflict.value.details["claimed_by"] == "mod_x"
    assert await redis_client.hget(KEYS.comment(SITE, "c1"), "version") == "1"

    # The lease is a native expiry: once Redis drops it, the comment is free again. An expiry
    # time already past (1 ms after the epoch) makes Redis expire the key at once.
    assert await redis_client.pexpireat(KEYS.lease(SITE, "c1"), 1)
    assert not await redis_client.exists(KEYS.lease(SITE, "c1"))
    [reclaimed] = await store.claim(SITE, "mod_y", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)
    assert reclaimed.id == "c1"
    with pytest.raises(ClaimConflict):
        await store.decide(SITE, decision("c1", actor="mod_x"))
    decided = await store.decide(SITE, decision("c1", actor="mod_y"))
    assert decided.state is State.APPROVED
    assert not await redis_client.exists(KEYS.lease(SITE, "c1"))
    assert await redis_client.zscore(KEYS.claims(SITE, "mod_y"), "c1") is None


@pytest.mark.parametrize(
    ("in_flight", "target", "carried_back"),
    [
        # The call ended before the decision was recorded, which its end could not see.
        ("", State.REJECTED, True),
        # Still in flight: its end (coral_answered.lua) sees the decision.
        ("1799999999000", State.REJECTED, False),
        # Coral's status is the call's: nothing of Coral's to carry back.
        ("", State.APPROVED, False),
    ],
)
async def test_corals_decision_made_during_a_call_that_ended_since_is_noted_to_go_back(
    store: Store,
    redis_client: aioredis.Redis,
    in_flight: str,
    target: State,
    carried_back: bool,
) -> None:
    await store.write_intake(SITE, intake("c1"))
    link = KEYS.coral_link(SITE, "c1")
    await redis_client.hset(link, mapping={"origin": "coral", "in_flight": in_flight})
    during = (1_799_999_999_000, "APPROVED")
    write = replace(decision("c1", target, actor="coral"), coral_call=during)

    decided = await store.decide(SITE, write)

    noted = await redis_client.hget(link, "resend_version")
    assert noted == (str(decided.version) if carried_back else None)


async def test_corals_decision_writes_no_link_gone_with_its_comment(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    write = replace(decision("c1", State.REJECTED, actor="coral"), coral_call=(1, "APPROVED"))

    await store.decide(SITE, write)

    assert not await redis_client.exists(KEYS.coral_link(SITE, "c1"))


async def test_release_gives_back_only_the_callers_leases(
    store: Store, redis_client: aioredis.Redis
) -> None:
    for index in range(3):
        await store.write_intake(SITE, intake(f"c{index}", priority=index / 10))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 2, 60_000, NOW)
    await store.claim(SITE, "mod_y", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)

    # One id given releases that one only; the others stay claimed.
    assert await store.release(SITE, "mod_x", ["c2"], NOW) == ["c2"]
    assert await store.release(SITE, "mod_x", ["c0", "c2"], NOW) == []
    assert await redis_client.get(KEYS.lease(SITE, "c0")) == "mod_y"
    assert await store.release(SITE, "mod_x", None, NOW) == ["c1"]
    assert await store.release(SITE, "mod_x", None, NOW) == []
    assert await store.release(SITE, "mod_x", [], NOW) == []
    assert await redis_client.get(KEYS.lease(SITE, "c0")) == "mod_y"
    # Nothing is left in the moderator's claims, and each lease given back is in the audit.
    assert await redis_client.zrange(KEYS.claims(SITE, "mod_x"), 0, -1) == []
    audit = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.audit(SITE)))
    released = [fields for _, fields in audit if fields.get("action") == "release"]
    assert [(entry["comment_id"], entry["actor"]) for entry in released] == [
        ("c2", "mod_x"),
        ("c1", "mod_x"),
    ]
    assert {entry["at"] for entry in released} == {str(NOW)}


async def test_a_claim_on_a_queue_longer_than_one_page_takes_exactly_what_was_asked(
    store: Store, redis_client: aioredis.Redis
) -> None:
    # The script walks the queue 100 ids at a time; 150 comments span two pages.
    for index in range(150):
        await store.write_intake(SITE, intake(f"c{index:03}", priority=index / 1000))

    claimed = await store.claim(SITE, "mod_x", Queue.PENDING, Order.OLDEST, 3, 60_000, NOW)

    assert len(claimed) == 3
    assert await redis_client.zcard(KEYS.claims(SITE, "mod_x")) == 3
    # Past the first page: the first 100 are leased to another moderator.
    await store.claim(SITE, "mod_y", Queue.PENDING, Order.PRIORITY, 100, 60_000, NOW)
    later = await store.claim(SITE, "mod_z", Queue.PENDING, Order.PRIORITY, 2, 60_000, NOW)
    assert [comment.id for comment in later] == ["c049", "c048"]


async def test_every_lease_of_a_moderator_stays_in_the_claims_index_until_it_ends(
    store: Store, redis_client: aioredis.Redis
) -> None:
    for index in range(2):
        await store.write_intake(SITE, intake(f"c{index}", priority=index / 10))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW + 1_000)

    assert await redis_client.zscore(KEYS.claims(SITE, "mod_x"), "c1") == NOW + 60_000
    assert sorted(await store.release(SITE, "mod_x", None, NOW)) == ["c0", "c1"]
    assert not await redis_client.exists(KEYS.lease(SITE, "c0"), KEYS.lease(SITE, "c1"))


async def test_a_claim_drops_the_moderators_ended_leases_from_the_index(
    store: Store, redis_client: aioredis.Redis
) -> None:
    for index in range(2):
        await store.write_intake(SITE, intake(f"c{index}", priority=index / 10))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 3_000, NOW)

    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW + 10_000)

    # c1's lease ended at NOW + 3000 by the clock the script was given; the index forgets it.
    assert await redis_client.zrange(KEYS.claims(SITE, "mod_x"), 0, -1) == ["c0"]


async def test_of_concurrent_decisions_on_one_version_exactly_one_wins(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    targets = [State.APPROVED, State.REJECTED, State.SPAM] * 4
    results = await asyncio.gather(
        *(
            store.decide(SITE, decision("c1", target, actor=f"mod_{i}", version=1))
            for i, target in enumerate(targets)
        ),
        return_exceptions=True,
    )

    winners = [result for result in results if isinstance(result, Comment)]
    losers = [result for result in results if isinstance(result, VersionConflict)]
    assert (len(winners), len(losers)) == (1, len(targets) - 1)
    assert {loser.details["current_version"] for loser in losers} == {2}
    assert winners[0].version == 2
    assert len(await history(redis_client, "c1")) == 2
    assert len(await outbox(redis_client)) == 2


async def test_undo_is_a_new_decision_and_history_keeps_every_change(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    await store.decide(SITE, decision("c1", State.APPROVED, version=1, now=NOW + 1))
    undone = await store.decide(SITE, decision("c1", State.REJECTED, version=2, now=NOW + 2))

    assert (undone.state, undone.version, undone.reasons) == (State.REJECTED, 3, ("OFF_TOPIC",))
    comment = await store.comment(SITE, "c1", NOW + 3)
    assert comment.history is not None
    assert [(h.version, h.action, h.from_state, h.to_state) for h in comment.history] == [
        (1, "create", None, State.PENDING),
        (2, "approve", State.PENDING, State.APPROVED),
        (3, "reject", State.APPROVED, State.REJECTED),
    ]
    assert comment.history[2].note == "checked"
    assert [event["type"] for event in await outbox(redis_client)] == [
        "comment.held",
        "comment.approved",
        "comment.rejected",
    ]
    author = await redis_client.hgetall(KEYS.author(SITE, "u1"))
    assert (author["pending"], author["approved"], author["rejected"]) == ("0", "0", "1")
    assert await redis_client.hget(KEYS.stats(SITE), "moderator") == "2"


async def test_deciding_an_unknown_comment_is_not_found_and_writes_nothing(
    store: Store, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(NotFound):
        await store.decide(SITE, decision("missing"))
    assert not await redis_client.exists(KEYS.comment(SITE, "missing"), KEYS.outbox(SITE))


async def test_sites_are_isolated(store: Store, redis_client: aioredis.Redis) -> None:
    await store.create_site(site_record("blog", NOW))
    await store.write_intake(SITE, intake("c1", text="news text"))
    await store.write_intake("blog", intake("c1", text="blog text"))
    await store.decide("blog", decision("c1", State.SPAM))

    news = await store.comment(SITE, "c1", NOW)
    blog = await store.comment("blog", "c1", NOW)
    assert (news.text, news.state, news.version) == ("news text", State.PENDING, 1)
    assert (blog.text, blog.state, blog.version) == ("blog text", State.SPAM, 2)
    news_page = await store.page(SITE, QueueQuery(), NOW)
    blog_page = await store.page("blog", QueueQuery(), NOW)
    assert [c.text for c in news_page.items] == ["news text"]
    assert blog_page.items == ()
    assert len(await outbox(redis_client, SITE)) == 1
    assert len(await outbox(redis_client, "blog")) == 2


async def collect(store: Store, query: QueueQuery) -> list[str]:
    seen: list[str] = []
    while True:
        page = await store.page(SITE, query, NOW)
        seen += [comment.id for comment in page.items]
        if page.next_cursor is None:
            return seen
        query = query.model_copy(update={"cursor": page.next_cursor})


async def test_queue_pages_follow_priority_then_id_and_oldest_order(store: Store) -> None:
    priorities = {"c1": 0.5, "c2": 0.9, "c3": 0.5, "c4": 0.1, "c5": 0.5, "c6": 0.7}
    for index, (comment_id, priority) in enumerate(priorities.items()):
        await store.write_intake(SITE, intake(comment_id, priority=priority, now=NOW - index))

    by_priority = await collect(store, QueueQuery(limit=2))
    assert by_priority == ["c2", "c6", "c5", "c3", "c1", "c4"]
    oldest = await collect(store, QueueQuery(order=Order.OLDEST, limit=4))
    assert oldest == ["c6", "c5", "c4", "c3", "c2", "c1"]


async def test_paging_is_stable_under_concurrent_inserts_and_removals(store: Store) -> None:
    for index in range(6):
        await store.write_intake(SITE, intake(f"c{index}", priority=0.5 - index / 100))

    first = await store.page(SITE, QueueQuery(limit=3), NOW)
    assert [c.id for c in first.items] == ["c0", "c1", "c2"]
    # Meanwhile: a riskier comment arrives (before the cursor), one after it, one is decided.
    await store.write_intake(SITE, intake("new-high", priority=0.9))
    await store.write_intake(SITE, intake("new-low", priority=0.01))
    await store.decide(SITE, decision("c3"))
    rest = await collect(store, QueueQuery(limit=3, cursor=first.next_cursor))

    assert rest == ["c4", "c5", "new-low"]


async def test_queue_filters_by_article_and_author(store: Store) -> None:
    await store.write_intake(SITE, intake("c1", article="a1", author="u1"))
    await store.write_intake(SITE, intake("c2", article="a2", author="u1"))
    await store.write_intake(SITE, intake("c3", article="a2", author="u2"))

    # Equal priorities: the highest id first, as Redis walks a sorted set backwards.
    assert await collect(store, QueueQuery(article="a2", limit=1)) == ["c3", "c2"]
    assert await collect(store, QueueQuery(author="u1", order=Order.OLDEST)) == ["c1", "c2"]


async def test_bad_cursors_are_refused(store: Store) -> None:
    for index in range(3):
        await store.write_intake(SITE, intake(f"c{index}"))
    page = await store.page(SITE, QueueQuery(limit=1), NOW)
    assert page.next_cursor is not None

    with pytest.raises(BadRequest, match="different queue"):
        await store.page(SITE, QueueQuery(order=Order.OLDEST, cursor=page.next_cursor), NOW)
    for garbage in ["not-base64!!", "eyJ4IjogMX0", "e30"]:
        with pytest.raises(BadRequest, match="invalid cursor"):
            await store.page(SITE, QueueQuery(cursor=garbage), NOW)
    # Scores Python reads as floats but Redis refuses as a range bound.
    for score in ["nan", "inf", "1_0", " 1", "0x10"]:
        forged = {"q": "pending", "o": "priority", "a": None, "u": None, "s": score, "i": "c1"}
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(BadRequest, match="invalid cursor"):
            await store.page(SITE, QueueQuery(cursor=cursor), NOW)


async def test_page_shows_who_holds_a_claim(store: Store) -> None:
    await store.write_intake(SITE, intake("c1"))
    await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 60_000, NOW)

    [item] = (await store.page(SITE, QueueQuery(), NOW)).items
    assert item.claimed_by == "mod_x"
    assert item.lease_until is not None
    assert set(item.to_json()) >= {"claimed_by", "lease_until"}


async def test_stats_report_depths_oldest_age_and_decisions(store: Store) -> None:
    # Written long before, c1 waits from its intake at NOW: a minute by the stats' time.
    await store.write_intake(SITE, intake("c1", created_at=NOW - 3_600_000))
    await store.write_intake(SITE, intake("c2", created_at=NOW - 5_000))
    await store.write_intake(SITE, intake("c3", state=State.APPROVED))
    await store.decide(SITE, decision("c2", State.SPAM))

    stats = await store.stats(SITE, NOW + 60_000)

    assert stats.queue_depths == {"pending": 1, "reported": 0}
    assert stats.oldest_pending_age_seconds == 60.0
    assert stats.decisions["auto"] == 3
    assert stats.decisions["moderator"] == 1
    assert stats.decisions["moderator:spam"] == 1
    assert len(stats.decisions_per_hour) == 24
    this_hour = stats.decisions_per_hour[0]
    assert (this_hour.auto, this_hour.moderator) == (3, 1)
    assert this_hour.hour == datetime.strptime(hour_bucket(NOW), "%Y%m%d%H").replace(tzinfo=UTC)


async def test_a_site_id_is_taken_once(store: Store, redis_client: aioredis.Redis) -> None:
    with pytest.raises(AlreadyExists):
        await store.create_site(site_record(SITE, NOW, secret="other"))
    record = await store.load_site(SITE)
    assert record is not None
    assert record.webhook_secret == "whsec_test"
    assert await store.site_id_for_api_key("hash-of-news") == SITE


async def test_an_api_key_is_one_sites_only(store: Store, redis_client: aioredis.Redis) -> None:
    taken = SiteRecord(site_record("blog", NOW).site, "whsec_blog", None, 0, "hash-of-news")
    with pytest.raises(ApiKeyTakenError):
        await store.create_site(taken)
    assert await store.load_site("blog") is None
    assert await store.site_id_for_api_key("hash-of-news") == SITE


async def test_rotation_keeps_the_previous_secret_until_the_deadline(store: Store) -> None:
    await store.rotate_secret(SITE, "whsec_new", NOW, NOW + 1_000)
    record = await store.load_site(SITE)

    assert record is not None
    assert record.valid_secrets(NOW + 999) == ["whsec_new", "whsec_test"]
    assert record.valid_secrets(NOW + 1_000) == ["whsec_new"]
    with pytest.raises(NotFound):
        await store.rotate_secret("nosuch", "x", NOW, NOW)


async def test_a_rotation_records_its_time_and_drops_a_secret_whose_grace_ends_then(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.rotate_secret(SITE, "whsec_second", NOW, NOW + 1_000)
    await store.rotate_secret(SITE, "whsec_third", NOW + 1_000, NOW + 2_000)
    fields = await redis_client.hgetall(KEYS.site(SITE))
    # whsec_test's grace ended at the second rotation: it is not kept, even for the count.
    assert json.loads(fields["previous_secrets"]) == [["whsec_second", NOW + 2_000]]
    assert (fields["previous_secret"], fields["previous_valid_until"]) == (
        "whsec_second",
        str(NOW + 2_000),
    )
    assert fields["updated_at"] == str(NOW + 1_000)


async def test_a_rotation_keeps_a_previous_secret_stored_before_the_list_existed(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await redis_client.hset(
        KEYS.site(SITE), mapping={"previous_secret": "whsec_old", "previous_valid_until": NOW + 500}
    )
    await redis_client.hdel(KEYS.site(SITE), "previous_secrets")
    await store.rotate_secret(SITE, "whsec_new", NOW, NOW + 1_000)
    record = await store.load_site(SITE)
    assert record is not None
    assert record.valid_secrets(NOW + 499) == ["whsec_new", "whsec_test", "whsec_old"]


async def test_a_second_rotation_keeps_the_first_secret_until_its_own_deadline(
    store: Store,
) -> None:
    await store.rotate_secret(SITE, "whsec_second", NOW, NOW + 1_000)
    await store.rotate_secret(SITE, "whsec_third", NOW + 500, NOW + 1_500)
    record = await store.load_site(SITE)

    assert record is not None
    assert record.valid_secrets(NOW + 999) == ["whsec_third", "whsec_second", "whsec_test"]
    assert record.valid_secrets(NOW + 1_000) == ["whsec_third", "whsec_second"]
    assert record.valid_secrets(NOW + 1_500) == ["whsec_third"]
    # Expired secrets are dropped at the next rotation; at most four previous ones are kept.
    for number in range(6):
        await store.rotate_secret(SITE, f"whsec_{number}", NOW + 2_000, NOW + 9_000)
    record = await store.load_site(SITE)
    assert record is not None
    assert record.valid_secrets(NOW + 2_000) == [
        "whsec_5",
        "whsec_4",
        "whsec_3",
        "whsec_2",
        "whsec_1",
    ]


async def test_a_site_update_writes_only_over_the_policy_it_was_merged_from(store: Store) -> None:
    record = await store.load_site(SITE)
    assert record is not None
    stricter = record.site.model_copy(update={"policy": Policy(max_links=0)})
    assert await store.update_site(stricter, read_policy=record.stored_policy)
    # A second write merged from the same, now outdated, read must not land.
    looser = record.site.model_copy(update={"policy": Policy(max_links=9)})
    assert not await store.update_site(looser, read_policy=record.stored_policy)
    reloaded = await store.load_site(SITE)
    assert reloaded is not None
    assert reloaded.site.policy.max_links == 0


async def test_writes_to_a_missing_site_create_nothing(
    store: Store, redis_client: aioredis.Redis
) -> None:
    missing = site_record("nosuch", NOW).site
    with pytest.raises(NotFound):
        await store.update_site(missing, read_policy=missing.policy.model_dump_json())
    moderator = Moderator(id="mod_1", site_id="nosuch", name="M", created_at=from_ms(NOW))
    with pytest.raises(NotFound):
        await store.add_moderator(moderator, "token-hash")
    assert await all_keys(redis_client, "civ:{nosuch}:*") == []
    assert await store.moderator_by_token_hash("token-hash", 0) is None


async def test_a_token_left_indexed_after_its_moderator_is_unlisted_authenticates_no_one(
    store: Store, redis_client: aioredis.Redis
) -> None:
    moderator = Moderator(id="mod_1", site_id=SITE, name="M", created_at=from_ms(NOW))
    await store.add_moderator(moderator, "token-hash")
    assert await store.moderator_by_token_hash("token-hash", NOW) == moderator
    # Revocation unlists first; were the token's index then left behind, the listing decides.
    await redis_client.hdel(KEYS.moderators(SITE), "mod_1")
    assert await redis_client.exists(KEYS.moderator_token("token-hash")) == 1
    assert await store.moderator_by_token_hash("token-hash", NOW + 1) is None
    assert await redis_client.hgetall(KEYS.moderators_last_used(SITE)) == {"mod_1": str(NOW)}


async def test_put_article_replaces_its_settings(
    store: Store, redis_client: aioredis.Redis
) -> None:
    spec = ArticleSpec(id="a1", url="https://example.com/a", title="A", closed=True, premod=True)
    await store.put_article(SITE, "a1", spec, NOW)
    article = await store.put_article(SITE, "a1", ArticleSpec(id="a1", premod=True), NOW + 1)

    assert (article.closed, article.premod, article.url) == (False, True, None)
    assert await redis_client.hgetall(KEYS.article(SITE, "a1")) == {
        "id": "a1",
        "closed": "0",
        "premod": "1",
        "updated_at": str(NOW + 1),
    }


async def test_the_store_refuses_a_client_that_returns_bytes(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            Store(client)
    finally:
        await client.aclose()


async def test_a_retried_decision_is_applied_once(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    write = decision("c1", State.SPAM)

    first = await store.decide(SITE, write)
    retried = await store.decide(SITE, write)  # same event id: a client retry after a timeout

    assert retried == first
    assert first.version == 2
    assert len(await history(redis_client, "c1")) == 2
    assert len(await outbox(redis_client)) == 2


async def test_a_retried_decision_sent_with_its_version_is_found_made(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1"))
    write = decision("c1", State.SPAM, version=1)

    first = await store.decide(SITE, write)
    # The retry still names version 1, which the first call moved past: only its event id tells
    # that the change asked for is the one already made, not a decision on a stale view.
    retried = await store.decide(SITE, write)

    assert retried == first
    assert len(await outbox(redis_client)) == 2


async def test_a_verdict_for_another_context_is_not_written(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.put_article(SITE, "a1", ArticleSpec(id="a1", closed=True, premod=True), NOW)
    await redis_client.hset(KEYS.author(SITE, "u1"), mapping={"status": "premod", "approved": 4})
    flood = KEYS.author_flood(SITE, "u1")
    await redis_client.set(flood, "older-comment")

    with pytest.raises(StaleContextError) as stale:
        await store.write_intake(SITE, intake("c1", windows=[Window(flood, 5_000, True)]))

    assert stale.value.observed == Observation(
        edit=False,
        author_status=AuthorStatus.PREMOD,
        author_approved=4,
        article_closed=True,
        article_premod=True,
        windows_taken=(True,),
    )
    assert not await redis_client.exists(KEYS.comment(SITE, "c1"), KEYS.outbox(SITE))
    assert await redis_client.get(flood) == "older-comment"
    # Decided again for what was observed, the same write goes through.
    outcome, _ = await store.write_intake(
        SITE, intake("c1", windows=[Window(flood, 5_000, True)], assumed=stale.value.observed)
    )
    assert outcome == "created"


async def test_an_edit_assumed_new_is_sent_back_as_an_edit(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await store.write_intake(SITE, intake("c1", text="v1"))
    with pytest.raises(StaleContextError) as stale:
        await store.write_intake(SITE, intake("c1", text="v2"))
    assert stale.value.observed.edit
    assert await redis_client.get(KEYS.comment_text(SITE, "c1")) == "v1"
    assert await entries(store, "c1") == 1


async def test_flood_windows_are_set_for_new_comments_only(
    store: Store, redis_client: aioredis.Redis
) -> None:
    flood = KEYS.author_flood(SITE, "u1")
    duplicate = KEYS.duplicate(SITE, "u1", "text-hash")
    windows = [Window(flood, 5_000, new_only=True), Window(duplicate, 5_000, new_only=False)]
    await store.write_intake(SITE, intake("c1", text="v1", windows=windows))
    await redis_client.delete(flood, duplicate)

    edit = Observation(edit=True, windows_taken=(False, False))
    await store.write_intake(SITE, intake("c1", text="v2", windows=windows, assumed=edit))

    assert not await redis_client.exists(flood)
    assert await redis_client.get(duplicate) == "c1"


async def test_a_sentinel_failover_mid_run_loses_no_acknowledged_comment(
    redis_sentinel: SentinelSetup,
) -> None:
    settings = Settings(redis_url=redis_sentinel.url, redis_wait_replicas=1, redis_wait_ms=500)
    connection = connect(settings)
    store = Store(connection.client, connection.prefix, replicas=1, replica_wait_ms=500)
    acknowledged: list[str] = []
    refused = 0
    failed_over = asyncio.Event()

    async def write_until_failed_over() -> None:
        number = 0
        # Keep writing through the failover and 20 comments past it.
        while not failed_over.is_set():
            number += await write(f"c{number}")
        for _ in range(20):
            number += await write(f"c{number}")

    async def write(comment_id: str) -> int:
        nonlocal refused
        while True:
            try:
                await store.write_intake(SITE, intake(comment_id))
            except StoreUnavailable:
                refused += 1
                await asyncio.sleep(0.01)  # the old primary is going away; try it again
                continue
            acknowledged.append(comment_id)
            return 1

    try:
        await connection.client.flushdb()
        await store.create_site(site_record(SITE, NOW))
        before = redis_sentinel.primary_port()
        writer = asyncio.create_task(write_until_failed_over())
        await asyncio.to_thread(redis_sentinel.failover)
        failed_over.set()
        await writer
        after = redis_sentinel.primary_port()
        assert after != before
        with redis.Redis(port=after, decode_responses=True) as primary:
            missing = [c for c in acknowledged if not primary.exists(KEYS.comment(SITE, c))]
        assert missing == []
        assert len(acknowledged) >= 20
    finally:
        await connection.client.flushdb()
        await connection.aclose()


async def test_a_write_fewer_replicas_hold_than_required_is_not_acknowledged(
    redis_sentinel: SentinelSetup,
) -> None:
    connection = connect(Settings(redis_url=redis_sentinel.url))
    # The set-up has one replica, so two never acknowledge; the one gets half a second, which
    # a loaded machine's replica may need.
    store = Store(connection.client, connection.prefix, replicas=2, replica_wait_ms=500)
    try:
        await connection.client.flushdb()
        await Store(connection.client).create_site(site_record(SITE, NOW))
        with pytest.raises(StoreUnavailable) as refused:
            await store.write_intake(SITE, intake("c1"))
        assert refused.value.message == "the write reached 1 of 2 replicas in 500 ms, retry later"
        # Written on the primary all the same: a retry finds it and changes nothing.
        outcome, comment = await Store(connection.client).write_intake(SITE, intake("c1"))
        assert (outcome, comment.version) == ("unchanged", 1)
    finally:
        await connection.client.flushdb()
        await connection.aclose()
