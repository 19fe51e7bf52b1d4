"""The recent-rejection rule lives in one place, the scripts' ``standing``: the author view reads
it by script and intake applies it, and both agree at each of the rule's boundaries."""

import dataclasses

import pytest
import redis.asyncio as aioredis

from service.domain import AuthorStatus, State
from service.store import Store
from service.store.records import SiteRules, StaleContextError
from tests.records import site_record
from tests.service.test_store import NOW, SITE, decision, intake

WINDOW_MS = 3_600_000
DECIDED_AT = NOW + 1_000


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    store = Store(redis_client, prefix="civ")
    await store.create_site(site_record(SITE, NOW))
    return store


async def decide_all(store: Store, outcomes: list[State], rules: SiteRules) -> None:
    """Held comments of author u1, then each decided as ``outcomes`` says, at DECIDED_AT."""
    for number in range(len(outcomes)):
        await store.write_intake(SITE, intake(f"c{number}"))
    for number, target in enumerate(outcomes):
        write = dataclasses.replace(decision(f"c{number}", target, now=DECIDED_AT), rules=rules)
        await store.decide(SITE, write)


async def intake_observes(store: Store, now_ms: int, rules: SiteRules) -> AuthorStatus:
    """The standing the ingest script finds for the author's next comment."""
    write = dataclasses.replace(intake("next", now=now_ms), rules=rules)
    try:
        await store.write_intake(SITE, write)
    except StaleContextError as stale:
        return stale.observed.author_status
    return AuthorStatus.ACTIVE


APPROVED, REJECTED, SPAM = State.APPROVED, State.REJECTED, State.SPAM


@pytest.mark.parametrize(
    ("outcomes", "rate", "minimum", "standing"),
    [
        # Exactly the threshold with exactly the minimum of decisions: premoderated.
        ([APPROVED, REJECTED], 0.5, 2, AuthorStatus.PREMOD),
        # Spam counts as a rejection.
        ([APPROVED, SPAM], 0.5, 2, AuthorStatus.PREMOD),
        # Just under the threshold.
        ([APPROVED, APPROVED, REJECTED], 0.5, 2, AuthorStatus.ACTIVE),
        # Every decision a rejection, but one short of the minimum.
        ([REJECTED], 0.5, 2, AuthorStatus.ACTIVE),
        # A rate of 0 turns the rule off.
        ([REJECTED, REJECTED], 0.0, 1, AuthorStatus.ACTIVE),
    ],
)
async def test_the_view_and_intake_agree_on_the_rules_boundaries(
    store: Store, outcomes: list[State], rate: float, minimum: int, standing: AuthorStatus
) -> None:
    rules = SiteRules(
        recent_window_ms=WINDOW_MS, premod_rejection_rate=rate, premod_min_decisions=minimum
    )
    await decide_all(store, outcomes, rules)
    author = await store.author(SITE, "u1", DECIDED_AT, rules)
    rejected = sum(1 for outcome in outcomes if outcome is not APPROVED)
    assert (author.recent_decided, author.recent_rejected) == (len(outcomes), rejected)
    assert author.standing is standing
    assert await intake_observes(store, DECIDED_AT, rules) is standing


@pytest.mark.parametrize(
    ("after_ms", "standing"),
    [(WINDOW_MS, AuthorStatus.PREMOD), (WINDOW_MS + 1, AuthorStatus.ACTIVE)],
)
async def test_a_decision_counts_until_the_window_has_passed_it(
    store: Store, after_ms: int, standing: AuthorStatus
) -> None:
    rules = SiteRules(recent_window_ms=WINDOW_MS, premod_rejection_rate=0.5, premod_min_decisions=1)
    await decide_all(store, [REJECTED], rules)
    author = await store.author(SITE, "u1", DECIDED_AT + after_ms, rules)
    assert author.standing is standing
    assert await intake_observes(store, DECIDED_AT + after_ms, rules) is standing


@pytest.mark.parametrize("status", [AuthorStatus.TRUSTED, AuthorStatus.BANNED])
async def test_a_status_a_moderator_set_outranks_the_rate(
    store: Store, status: AuthorStatus
) -> None:
    rules = SiteRules(recent_window_ms=WINDOW_MS, premod_rejection_rate=0.5, premod_min_decisions=1)
    await decide_all(store, [REJECTED, REJECTED], rules)
    await store.set_author_status(SITE, "u1", status, None, "admin", DECIDED_AT)
    author = await store.author(SITE, "u1", DECIDED_AT, rules)
    assert (author.standing, author.recent_rejected) == (status, 2)
    assert await intake_observes(store, DECIDED_AT, rules) is status


async def test_an_author_never_seen_is_active_with_no_fields(store: Store) -> None:
    author = await store.author(SITE, "nobody", NOW, SiteRules())
    assert (author.fields, author.recent_decided, author.standing) == ({}, 0, AuthorStatus.ACTIVE)
