"""The domain functions end to end on a real Redis, with a scorer double that scores by keyword."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.admin_store import AdminStore
from service.domain import (
    Action,
    ArticleSpec,
    AuthorStatus,
    AuthorStatusChange,
    BulkDecision,
    ClaimRequest,
    Decision,
    Policy,
    PolicyPatch,
    QueueQuery,
    SitePatch,
    SiteSpec,
    State,
    Submission,
)
from service.errors import ClaimConflict, Conflict, NotFound, ValidationFailed, VersionConflict
from service.keys import KeySpace
from service.moderation import Moderation
from service.store import Store
from service.store.records import IntakeWrite
from tests.records import list_moderators
from tests.seed import seed_article

SITE = "news"
KEYS = KeySpace("civ")
THRESHOLDS = {
    "spam": {"hold": 0.5, "reject": 0.9},
    "toxicity": {"hold": 0.6, "reject": 0.95},
}


class KeywordScorer:
    """Stands in for the model: scores chosen per text, and counts how often it is asked."""

    model_version = "test-1.0"

    def __init__(self) -> None:
        self.scored = 0
        self.explained = 0

    async def score(self, text: str) -> dict[str, float]:
        self.scored += 1
        lowered = text.lower()
        return {
            "spam": 0.97 if "pills" in lowered else 0.6 if "offer" in lowered else 0.02,
            "toxicity": 0.99 if "idiot" in lowered else 0.7 if "stupid" in lowered else 0.03,
        }

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        self.explained += 1
        return {"spam": [(0, min(len(text), 4))]}


@pytest.fixture
def scorer() -> KeywordScorer:
    return KeywordScorer()


@pytest.fixture
async def moderation(
    redis_client: aioredis.Redis, scorer: KeywordScorer
) -> AsyncIterator[Moderation]:
    moderation = Moderation(Store(redis_client), scorer, THRESHOLDS)
    await moderation.create_site(SiteSpec(id=SITE, name="News"))
    await list_moderators(moderation.store, SITE, "mod_1")
    yield moderation
    # Evidence of held comments is stored after intake answers: done before Redis is flushed.
    await moderation.evidence.settled()


def submission(
    comment_id: str, text: str, *, author: str = "u1", article: str = "a1", ip: str | None = None
) -> Submission:
    return Submission.model_validate(
        {
            "id": comment_id,
            "article": {"id": article},
            "author": {"id": author, "ip": ip},
            "text": text,
        }
    )


def seed_comments() -> list[dict[str, Any]]:
    comments: list[dict[str, Any]] = seed_article()["comments"]
    return comments


async def test_the_seed_comments_are_published_under_the_default_policy(
    moderation: Moderation, scorer: KeywordScorer
) -> None:
    for seed in seed_comments():
        result = await moderation.ingest(
            SITE,
            submission(seed["id"], seed["text"], author=seed["author"]["id"], article="seed"),
        )
        assert (result.created, result.comment.state) == (True, State.APPROVED)
        assert result.comment.reasons == ()
    assert scorer.explained == 0  # evidence is only worked out for comments not published


@pytest.mark.parametrize(
    ("text", "state", "reasons"),
    [
        ("Cheap pills here", State.SPAM, ("SPAM",)),
        ("You idiot", State.REJECTED, ("TOXIC",)),
        ("A stupid idea", State.PENDING, ("TOXIC",)),
        ("Special offer inside", State.PENDING, ("SPAM",)),
    ],
)
async def test_obvious_spam_and_abuse_are_stopped_with_reasons_and_evidence(
    moderation: Moderation, scorer: KeywordScorer, text: str, state: State, reasons: tuple[str, ...]
) -> None:
    comment = (await moderation.ingest(SITE, submission("c1", text))).comment
    await moderation.evidence.settled()

    assert (comment.state, comment.reasons) == (state, reasons)
    assert (await moderation.get_comment(SITE, "c1")).evidence == {"spam": ((0, 4),)}
    assert comment.model == "test-1.0"
    assert comment.decided_by == "auto:test-1.0"
    assert scorer.explained == 1


class GatedScorer(KeywordScorer):
    """Explains a text in ``gated`` only once the test opens its gate; the spans are the whole
    text, as toxicity."""

    def __init__(self, gated: str) -> None:
        super().__init__()
        self.gated = gated
        self.gate = asyncio.Event()

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        self.explained += 1
        if text == self.gated:
            await self.gate.wait()
        return {"toxicity": [(0, len(text))]}


async def gated_moderation(redis_client: aioredis.Redis, gated: str) -> Moderation:
    moderation = Moderation(Store(redis_client), GatedScorer(gated), THRESHOLDS)
    await moderation.create_site(SiteSpec(id=SITE, name="News"))
    return moderation


async def test_a_held_verdict_does_not_wait_for_its_evidence(
    redis_client: aioredis.Redis,
) -> None:
    moderation = await gated_moderation(redis_client, "A stupid idea")
    scorer = moderation.scorer
    assert isinstance(scorer, GatedScorer)

    held = await moderation.ingest(SITE, submission("c1", "A stupid idea"))

    assert held.comment.state is State.PENDING
    assert (await moderation.get_comment(SITE, "c1")).evidence == {}
    scorer.gate.set()
    await moderation.evidence.settled()
    assert (await moderation.get_comment(SITE, "c1")).evidence == {"toxicity": ((0, 13),)}


class ClosedGateScorer(GatedScorer):
    """Explains no text until the test opens the gate."""

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        self.explained += 1
        await self.gate.wait()
        return {"toxicity": [(0, len(text))]}


def bounded_evidence(
    redis_client: aioredis.Redis,
) -> tuple[Moderation, ClosedGateScorer, list[None]]:
    """Moderation with eight places for evidence, a scorer that explains nothing until its gate
    opens, and the list each dropped explanation is counted in."""
    scorer = ClosedGateScorer("")
    dropped: list[None] = []
    moderation = Moderation(
        Store(redis_client),
        scorer,
        THRESHOLDS,
        evidence_limit=8,
        on_evidence_dropped=lambda: dropped.append(None),
    )
    return moderation, scorer, dropped


async def test_evidence_past_the_bound_is_dropped_and_counted_and_nothing_else_is_lost(
    redis_client: aioredis.Redis,
) -> None:
    # Eight places for evidence: one site may hold a quarter of them, 2.
    moderation, scorer, dropped = bounded_evidence(redis_client)
    await moderation.create_site(SiteSpec(id=SITE, name="News"))
    texts = [f"A stupid idea number {n}" for n in range(5)]

    held = [
        (await moderation.ingest(SITE, submission(f"c{n}", text, author=f"u{n}"))).comment
        for n, text in enumerate(texts)
    ]
    await asyncio.sleep(0)  # the two explanations under way reach the scorer

    assert [(c.state, c.reasons) for c in held] == [(State.PENDING, ("TOXIC",))] * 5
    assert (scorer.explained, len(dropped)) == (2, 3)
    scorer.gate.set()
    await moderation.evidence.settled()
    stored = [await moderation.get_comment(SITE, f"c{n}") for n in range(5)]
    assert [c.evidence for c in stored] == [
        {"toxicity": ((0, len(texts[0])),)},
        {"toxicity": ((0, len(texts[1])),)},
        {},
        {},
        {},
    ]
    assert [(c.state, c.reasons, c.text) for c in stored] == [
        (State.PENDING, ("TOXIC",), text) for text in texts
    ]
    # Once the waiting ones are stored, the next held comment is explained again.
    await moderation.ingest(SITE, submission("c5", "Another stupid idea", author="u5"))
    await moderation.evidence.settled()
    assert (await moderation.get_comment(SITE, "c5")).evidence == {"toxicity": ((0, 19),)}
    assert len(dropped) == 3


async def test_a_site_whose_comments_are_all_held_leaves_room_for_another_sites_evidence(
    redis_client: aioredis.Redis,
) -> None:
    moderation, scorer, dropped = bounded_evidence(redis_client)
    for site in ("loud", "quiet"):
        await moderation.create_site(SiteSpec(id=site, name=site))

    for n in range(4):
        await moderation.ingest("loud", submission(f"c{n}", f"A stupid idea {n}", author=f"u{n}"))
    await moderation.ingest("quiet", submission("c0", "A stupid reply", author="u0"))
    await asyncio.sleep(0)  # the explanations under way reach the scorer

    # Two of the loud site's four wait (a quarter of the places); the quiet site's still gets one.
    assert (scorer.explained, len(dropped)) == (3, 2)
    scorer.gate.set()
    await moderation.evidence.settled()
    loud = [(await moderation.get_comment("loud", f"c{n}")).evidence for n in range(4)]
    assert [bool(evidence) for evidence in loud] == [True, True, False, False]
    quiet = await moderation.get_comment("quiet", "c0")
    assert quiet.evidence == {"toxicity": ((0, 14),)}


async def test_evidence_of_a_text_edited_meanwhile_is_not_stored(
    redis_client: aioredis.Redis,
) -> None:
    first, edit = "A stupid idea", "A stupid idea, truly stupid"
    moderation = await gated_moderation(redis_client, first)
    scorer = moderation.scorer
    assert isinstance(scorer, GatedScorer)
    await moderation.ingest(SITE, submission("c1", first))
    await moderation.ingest(SITE, submission("c1", edit))
    edit_spans = {"toxicity": ((0, len(edit)),)}
    # The edit's spans are stored first (its explanation is not held back) ...
    for _ in range(10_000):
        if (await moderation.get_comment(SITE, "c1")).evidence == edit_spans:
            break
    # ... and the first text's, which arrive later, must not replace them.
    scorer.gate.set()
    await moderation.evidence.settled()

    stored = await moderation.get_comment(SITE, "c1")
    assert (stored.version, stored.evidence) == (2, edit_spans)


async def quick_decision(moderation: Moderation, how: str) -> None:
    """Decide the held comment c1 of author u1 the way ``how`` names."""
    if how == "decision":
        await moderation.decide(SITE, "c1", Decision(action=Action.APPROVE), "mod_1")
    elif how == "bulk":
        bulk = BulkDecision.model_validate({"decisions": [{"id": "c1", "action": "approve"}]})
        assert [outcome.ok for outcome in await moderation.decide_many(SITE, bulk, "mod_1")] == [
            True
        ]
    else:
        ban = AuthorStatusChange(status=AuthorStatus.BANNED, reject_pending=True)
        outcome = await moderation.set_author_status(SITE, "u1", ban, "mod_1")
        assert outcome.rejected == ("c1",)


@pytest.mark.parametrize("how", ["decision", "bulk", "ban"])
async def test_evidence_arriving_after_a_quick_decision_is_stored(
    redis_client: aioredis.Redis, how: str
) -> None:
    text = "A stupid idea"
    moderation = await gated_moderation(redis_client, text)
    scorer = moderation.scorer
    assert isinstance(scorer, GatedScorer)
    await moderation.ingest(SITE, submission("c1", text))

    # The moderator decides before the spans are worked out: the text they explain is unchanged.
    await quick_decision(moderation, how)
    scorer.gate.set()
    await moderation.evidence.settled()

    stored = await moderation.get_comment(SITE, "c1")
    assert (stored.version, stored.evidence) == (2, {"toxicity": ((0, len(text)),)})


async def test_evidence_is_stored_only_on_the_text_it_explains(
    moderation: Moderation, redis_client: aioredis.Redis
) -> None:
    await moderation.ingest(SITE, submission("c1", "Special offer inside"))
    await moderation.evidence.settled()
    store, spans = moderation.store, {"spam": [(8, 13)]}
    text_hash = hashlib.sha256(b"Special offer inside").hexdigest()
    edited_hash = hashlib.sha256(b"Special offer inside, edited").hexdigest()

    assert not await store.attach_evidence(SITE, "c1", edited_hash, spans, 0)
    assert not await store.attach_evidence(SITE, "gone", text_hash, spans, 0)
    assert (await moderation.get_comment(SITE, "c1")).evidence == {"spam": ((0, 4),)}
    # A decision changes the version, not the text the spans describe.
    await moderation.decide(SITE, "c1", Decision(action=Action.REJECT), "mod_1")
    assert await store.attach_evidence(SITE, "c1", text_hash, spans, 0)
    assert (await moderation.get_comment(SITE, "c1")).evidence == {"spam": ((8, 13),)}
    # An erased comment has no text left to mark.
    await AdminStore(redis_client).erase_author(SITE, "u1", 0)
    assert not await store.attach_evidence(SITE, "c1", text_hash, spans, 0)
    assert (await moderation.get_comment(SITE, "c1")).evidence == {}


async def test_redelivery_returns_the_stored_comment_unchanged(
    moderation: Moderation, redis_client: aioredis.Redis
) -> None:
    first = await moderation.ingest(SITE, submission("c1", "Special offer"))
    again = await moderation.ingest(SITE, submission("c1", "Special offer"))

    assert (first.created, again.created) == (True, False)
    assert again.comment == first.comment
    assert len((await moderation.get_comment(SITE, "c1")).history or ()) == 1


async def test_twenty_concurrent_deliveries_create_one_comment(
    moderation: Moderation, redis_client: aioredis.Redis
) -> None:
    results = await asyncio.gather(
        *(moderation.ingest(SITE, submission("c1", "Same text")) for _ in range(20))
    )

    assert sum(result.created for result in results) == 1
    assert {result.comment.version for result in results} == {1}
    assert await redis_client.xlen(KEYS.outbox(SITE)) == 1
    assert len((await moderation.get_comment(SITE, "c1")).history or ()) == 1


async def test_an_edit_is_moderated_again(moderation: Moderation) -> None:
    await moderation.ingest(SITE, submission("c1", "Nice article"))
    edited = await moderation.ingest(SITE, submission("c1", "Nice article, buy pills"))

    assert (edited.created, edited.edited) == (True, True)
    assert (edited.comment.state, edited.comment.version) == (State.SPAM, 2)
    history = (await moderation.get_comment(SITE, "c1")).history
    assert history is not None
    assert [(entry.action, entry.to_state) for entry in history] == [
        ("create", State.APPROVED),
        ("edit", State.SPAM),
    ]


async def test_an_edit_cannot_move_the_comment(moderation: Moderation) -> None:
    await moderation.ingest(SITE, submission("c1", "Nice article"))
    with pytest.raises(ValidationFailed) as error:
        await moderation.ingest(SITE, submission("c1", "Edited", article="a2", author="u2"))
    assert [detail["field"] for detail in error.value.details] == ["article.id", "author.id"]
    assert (await moderation.get_comment(SITE, "c1")).text == "Nice article"


async def test_flood_and_duplicate_windows(
    moderation: Moderation, redis_client: aioredis.Redis
) -> None:
    first = await moderation.ingest(SITE, submission("c1", "First words"))
    quick = await moderation.ingest(SITE, submission("c2", "Second words"))
    copy = await moderation.ingest(SITE, submission("c3", "  FIRST   words "))

    assert first.comment.state is State.APPROVED
    assert (quick.comment.state, quick.comment.reasons) == (State.PENDING, ("FLOOD",))
    assert copy.comment.reasons == ("DUPLICATE", "FLOOD")
    assert 0 < await redis_client.pttl(KEYS.author_flood(SITE, "u1")) <= 10_000
    edit = await moderation.ingest(SITE, submission("c1", "First words, corrected"))
    assert (edit.edited, edit.comment.state) == (True, State.APPROVED)  # an edit is no flood

    # The windows are native expiries: once Redis drops them the author may post again. An
    # expiry time already past (1 ms after the epoch) makes Redis expire each key at once.
    windows = await redis_client.keys(KEYS.site_prefix(SITE) + "flood:*")
    assert windows
    for key in windows:
        assert await redis_client.pexpireat(key, 1)
    later = await moderation.ingest(SITE, submission("c4", "Much later"))
    assert later.comment.state is State.APPROVED


async def test_a_copy_hidden_by_invisible_or_look_alike_characters_is_a_duplicate(
    moderation: Moderation,
) -> None:
    await moderation.update_site(SITE, SitePatch(policy=PolicyPatch(flood_seconds_per_author=0)))
    await moderation.ingest(SITE, submission("c1", "Buy my book today"))
    copies = [
        "Buy my\u200b book today\ufeff",
        "Ｂｕｙ ｍｙ ｂｏｏｋ ｔｏｄａｙ",
        "Buy my book\u00a0today",
    ]
    for number, text in enumerate(copies, start=2):
        copy = await moderation.ingest(SITE, submission(f"c{number}", text))
        assert copy.comment.reasons == ("DUPLICATE",), text
        assert copy.comment.text == text


async def test_flood_per_address(moderation: Moderation) -> None:
    await moderation.update_site(SITE, SitePatch(policy=PolicyPatch(flood_seconds_per_ip=30)))
    await moderation.ingest(SITE, submission("c1", "One", author="u1", ip="192.0.2.7"))
    other_author = await moderation.ingest(
        SITE, submission("c2", "Two", author="u2", ip="192.0.2.7")
    )

    assert other_author.comment.reasons == ("FLOOD",)


async def test_article_settings_and_author_status_feed_the_policy(
    moderation: Moderation, redis_client: aioredis.Redis
) -> None:
    await moderation.put_article(SITE, "closed", ArticleSpec(id="closed", closed=True))
    await moderation.put_article(SITE, "premod", ArticleSpec(id="premod", premod=True))
    await redis_client.hset(KEYS.author(SITE, "troll"), "status", AuthorStatus.BANNED.value)

    closed = await moderation.ingest(SITE, submission("c1", "Hi", article="closed", author="a"))
    premod = await moderation.ingest(SITE, submission("c2", "Hi", article="premod", author="b"))
    banned = await moderation.ingest(SITE, submission("c3", "Hi", author="troll"))

    assert (closed.comment.state, closed.comment.reasons) == (State.REJECTED, ("ARTICLE_CLOSED",))
    assert (premod.comment.state, premod.comment.reasons) == (State.PENDING, ("PREMOD",))
    assert (banned.comment.state, banned.comment.reasons) == (State.REJECTED, ("AUTHOR_BANNED",))


async def test_new_authors_are_held_until_a_comment_of_theirs_is_approved(
    moderation: Moderation,
) -> None:
    patch = SitePatch(policy=PolicyPatch(new_author_min_approved=1, flood_seconds_per_author=0))
    await moderation.update_site(SITE, patch)

    held = await moderation.ingest(SITE, submission("c1", "My first comment"))
    assert (held.comment.state, held.comment.reasons) == (State.PENDING, ("NEW_AUTHOR",))
    await moderation.decide(SITE, "c1", Decision(action=Action.APPROVE), "mod_1")
    second = await moderation.ingest(SITE, submission("c2", "My second comment"))
    assert second.comment.state is State.APPROVED


async def test_site_policy_overrides_model_thresholds_at_once(moderation: Moderation) -> None:
    await moderation.update_site(SITE, SitePatch(policy=PolicyPatch(reject={"spam": 0.99})))
    relaxed = await moderation.ingest(SITE, submission("c1", "Cheap pills"))
    assert (relaxed.comment.state, relaxed.comment.reasons) == (State.PENDING, ("SPAM",))

    site = await moderation.get_site(SITE)
    assert site.policy.reject == {"spam": 0.99}
    assert site.policy.max_links == Policy().max_links  # untouched fields are kept


async def test_an_invalid_policy_patch_names_the_field_and_changes_nothing(
    moderation: Moderation,
) -> None:
    await moderation.update_site(SITE, SitePatch(policy=PolicyPatch(reject={"spam": 0.8})))
    with pytest.raises(ValidationFailed) as error:
        await moderation.update_site(SITE, SitePatch(policy=PolicyPatch(hold={"spam": 0.9})))
    [detail] = error.value.details
    assert detail["field"] == "policy"
    assert "above its reject threshold" in detail["message"]
    assert (await moderation.get_site(SITE)).policy.hold == {}


async def test_site_updates_and_unknown_sites(moderation: Moderation) -> None:
    updated = await moderation.update_site(
        SITE, SitePatch(name="The News", callback_url="https://news.example/hook")
    )
    assert (updated.name, updated.callback_url) == ("The News", "https://news.example/hook")
    cleared = await moderation.update_site(SITE, SitePatch.model_validate({"callback_url": None}))
    assert (cleared.name, cleared.callback_url) == ("The News", None)
    for call in (
        moderation.get_site("nosuch"),
        moderation.update_site("nosuch", SitePatch(name="x")),
        moderation.webhook_secrets("nosuch"),
        moderation.ingest("nosuch", submission("c1", "Hi")),
        moderation.stats("nosuch"),
        moderation.rotate_secret("nosuch", 60),
        moderation.create_moderator("nosuch", "M"),
    ):
        with pytest.raises(NotFound):
            await call


async def test_secrets_are_shown_once_and_stored_only_as_needed(
    redis_client: aioredis.Redis, scorer: KeywordScorer
) -> None:
    moderation = Moderation(Store(redis_client), scorer, THRESHOLDS)
    site, credentials = await moderation.create_site(SiteSpec(id="blog", name="Blog"))
    moderator, token = await moderation.create_moderator("blog", "Ann")

    assert "secret" not in json.dumps(site.to_json())
    assert await moderation.webhook_secrets("blog") == [credentials.webhook_secret]
    assert await moderation.site_for_api_key(credentials.api_key) == site
    assert await moderation.site_for_api_key("ck_wrong") is None
    assert await moderation.moderator_for_token(token) == moderator
    assert await moderation.moderator_for_token("cmt_wrong") is None
    # The api key and the token never reach Redis in the clear; only hashes do.
    stored: list[object] = []
    for key in await redis_client.keys("*"):
        kind = await redis_client.type(key)
        if kind == "hash":
            stored.append(await redis_client.hgetall(key))
        elif kind == "string":
            stored.append(await redis_client.get(key))
    dump = json.dumps(stored)
    assert credentials.api_key not in dump
    assert token not in dump


async def test_rotation_keeps_the_old_secret_for_the_grace_period(
    redis_client: aioredis.Redis, scorer: KeywordScorer
) -> None:
    now = [1_800_000_000.0]
    moderation = Moderation(Store(redis_client), scorer, THRESHOLDS, clock=lambda: now[0])
    _, credentials = await moderation.create_site(SiteSpec(id="blog", name="Blog"))

    rotation = await moderation.rotate_secret("blog", grace_seconds=60)
    assert await moderation.webhook_secrets("blog") == [
        rotation.webhook_secret,
        credentials.webhook_secret,
    ]
    now[0] += 60
    assert await moderation.webhook_secrets("blog") == [rotation.webhook_secret]


async def test_queue_claim_decide_and_undo(moderation: Moderation) -> None:
    for index, text in enumerate(["A stupid idea", "Special offer", "Stupid offer"]):
        await moderation.ingest(SITE, submission(f"c{index}", text, author=f"u{index}"))
    page = await moderation.list_queue(SITE, QueueQuery())
    # c2 and c0 share the top risk (0.7): the higher id comes first.
    assert [comment.id for comment in page.items] == ["c2", "c0", "c1"]

    claimed = await moderation.claim(SITE, "mod_1", ClaimRequest(limit=2, lease_seconds=30))
    assert [comment.id for comment in claimed] == ["c2", "c0"]
    with pytest.raises(ClaimConflict):
        await moderation.decide(SITE, "c0", Decision(action=Action.APPROVE), "mod_2")
    assert await moderation.release(SITE, "mod_1", ["c2"]) == ["c2"]

    approved = await moderation.decide(
        SITE, "c0", Decision(action=Action.APPROVE, version=1, note="fine"), "mod_1"
    )
    assert (approved.state, approved.version, approved.decided_by) == (State.APPROVED, 2, "mod_1")
    with pytest.raises(VersionConflict):
        await moderation.decide(SITE, "c0", Decision(action=Action.SPAM, version=1), "mod_2")
    undone = await moderation.decide(
        SITE, "c0", Decision(action=Action.REJECT, reason="Off topic", version=2), "mod_2"
    )
    assert (undone.state, undone.reasons) == (State.REJECTED, ("Off topic",))
    full = await moderation.get_comment(SITE, "c0")
    assert full.history is not None
    assert [entry.actor for entry in full.history] == ["auto:test-1.0", "mod_1", "mod_2"]
    assert "history" in full.to_json()
    remaining = await moderation.list_queue(SITE, QueueQuery())
    assert [comment.id for comment in remaining.items] == ["c2", "c1"]


async def test_bulk_decisions_report_each_item(moderation: Moderation) -> None:
    await moderation.ingest(SITE, submission("c1", "Special offer"))
    await moderation.ingest(SITE, submission("c2", "Another offer", author="u2"))
    bulk = BulkDecision.model_validate(
        {
            "decisions": [
                {"id": "c1", "action": "approve"},
                {"id": "c2", "action": "spam", "version": 7},
                {"id": "missing", "action": "reject"},
            ]
        }
    )

    outcomes = await moderation.decide_many(SITE, bulk, "mod_1")

    assert [(outcome.id, outcome.ok) for outcome in outcomes] == [
        ("c1", True),
        ("c2", False),
        ("missing", False),
    ]
    assert outcomes[0].comment is not None
    assert outcomes[0].comment.state is State.APPROVED
    assert outcomes[1].error is not None
    assert outcomes[1].error["code"] == "version_conflict"
    assert outcomes[2].error is not None
    assert outcomes[2].error["code"] == "not_found"
    assert (await moderation.get_comment(SITE, "c2")).state is State.PENDING


async def test_stats_count_queue_and_decisions(moderation: Moderation) -> None:
    await moderation.ingest(SITE, submission("c1", "Special offer"))
    await moderation.ingest(SITE, submission("c2", "Nice", author="u2"))
    await moderation.decide(SITE, "c1", Decision(action=Action.APPROVE), "mod_1")
    await moderation.ingest(SITE, submission("c3", "Special offer again", author="u3"))

    stats = await moderation.stats(SITE)

    assert stats.queue_depths == {"pending": 1, "reported": 0}
    assert stats.oldest_pending_age_seconds is not None
    assert 0 <= stats.oldest_pending_age_seconds < 60
    assert (stats.decisions["auto"], stats.decisions["moderator"]) == (3, 1)
    assert stats.decisions_per_hour[0].auto == 3
    assert stats.to_json()["queue_depths"] == {"pending": 1, "reported": 0}


async def test_comments_of_one_site_are_invisible_to_another(moderation: Moderation) -> None:
    await moderation.create_site(SiteSpec(id="blog", name="Blog"))
    await list_moderators(moderation.store, "blog", "mod_1")
    await moderation.ingest(SITE, submission("c1", "Special offer"))

    with pytest.raises(NotFound):
        await moderation.get_comment("blog", "c1")
    with pytest.raises(NotFound):
        await moderation.decide("blog", "c1", Decision(action=Action.APPROVE), "mod_1")
    assert (await moderation.list_queue("blog", QueueQuery())).items == ()
    assert await moderation.claim("blog", "mod_1", ClaimRequest()) == []


async def test_intake_gives_up_on_a_context_that_keeps_changing(
    moderation: Moderation, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = moderation.store.write_intake
    article = KEYS.article(SITE, "a1")

    async def write_after_someone_flips_the_article(site_id: str, write: IntakeWrite) -> Any:
        closed = await redis_client.hget(article, "closed")
        await redis_client.hset(article, "closed", "0" if closed == "1" else "1")
        return await real_write(site_id, write)

    monkeypatch.setattr(moderation.store, "write_intake", write_after_someone_flips_the_article)
    with pytest.raises(Conflict, match="kept changing"):
        await moderation.ingest(SITE, submission("c1", "Hello"))
    assert not await redis_client.exists(KEYS.comment(SITE, "c1"))
