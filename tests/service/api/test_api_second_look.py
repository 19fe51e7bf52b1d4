"""The second look end to end: signed intake through the real app, a small real model with its
semantic stage, the worker's own scoring process, and a real receiver for the webhook.

The site's hold threshold is set between a text's lexical and blended scores, so the lexical
verdict publishes it and the real blend holds it; the worker is driven pass by pass."""

import asyncio
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from classifier.card import ARTIFACT_SUFFIX
from classifier.model import Model, activate, active_stem, load_active
from classifier.site_model import EMBEDDING, SCORES, Head, LabelModel, score_features
from classifier.site_model_codec import encode
from service import signatures
from service.app import create_app
from service.keys import KeySpace
from service.scorer import SiteRef
from service.second_look import FAILURES_BEFORE_GIVING_UP, Blended, SecondLookWorker
from service.second_look_pool import PoolBlendScorer
from service.served_model import served_stem
from service.settings import SecondLookSettings, Settings
from service.site_models import Fitted, SiteModels
from service.times import iso
from service.worker import Worker
from tests.clocks import Clock
from tests.service.model_copies import copy_model, train_again
from tests.service.worker.support import FAST, Receiver, eventually

from .conftest import Client, CreateSite, PostSigned, SiteAccess, api_settings

# The first test here may train the run's small model with its semantic stage, or wait for the
# test process training it (a minute alone, several on a loaded machine): the default two minutes
# would fail it there.
pytestmark = pytest.mark.timeout(600)
KEYS = KeySpace("civ")
LOOK = SecondLookSettings(batch_size=16, lease_seconds=30.0, poll_seconds=0.01)
# Texts whose hostility is in their meaning more than in their words.
CANDIDATES = (
    "People like you are what is wrong with this country.",
    "Go back where you came from, nobody wants your kind here.",
    "Women like her should not be allowed to vote on anything.",
    "Someone should make sure he never gets home tonight.",
    "Those people breed like animals and ruin every town they move to.",
)
CIVIL = "The council should publish the figures before the vote on the budget."


@pytest.fixture(scope="session")
def semantic_models_dir(
    tiny_semantic_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A small real model with its semantic stage, active in a folder of its own."""
    models_dir = tmp_path_factory.mktemp("second-look-models")
    shutil.copytree(tiny_semantic_model_path.parent, models_dir, dirs_exist_ok=True)
    return models_dir


@pytest.fixture(scope="session")
def semantic_model(semantic_models_dir: Path) -> Model:
    model = load_active(semantic_models_dir)
    assert model.semantic is not None
    return model


@dataclasses.dataclass(frozen=True)
class Pick:
    text: str
    label: str
    lexical: float
    blended: float

    @property
    def between(self) -> float:
        return round((self.lexical + self.blended) / 2, 4)


@pytest.fixture(scope="session")
def raised(semantic_model: Model) -> Pick:
    """The candidate and toxicity label the semantic stage raises most over the lexical score."""
    lexical = semantic_model.score(CANDIDATES)
    blended = semantic_model.score_blended(CANDIDATES)
    picks = [
        Pick(text, label, lex[label], blend[label])
        for text, lex, blend in zip(CANDIDATES, lexical, blended, strict=True)
        for label in lex
        if label != "spam"
    ]
    best = max(picks, key=lambda pick: pick.blended - pick.lexical)
    assert best.blended - best.lexical > 0.01, picks
    return best


@pytest.fixture
def settings(redis_url: str, semantic_models_dir: Path) -> Settings:
    return dataclasses.replace(api_settings(redis_url), models_dir=semantic_models_dir)


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, redis_client: aioredis.Redis, clock: Clock
) -> Client:
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", target.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    try:
        yield target
    finally:
        await runner.cleanup()


@pytest.fixture
async def looker(
    redis_client: aioredis.Redis, settings: Settings, clock: Clock
) -> AsyncIterator[SecondLookWorker]:
    scorer = PoolBlendScorer(settings.models_dir, threads=1)
    try:
        yield SecondLookWorker(redis_client, scorer, LOOK, prefix="civ", clock=clock)
    finally:
        await scorer.close()


def comment_body(comment_id: str, text: str) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": "reader-1", "name": "Reader"},
        "text": text,
    }


async def comment(client: Client, site: SiteAccess, comment_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    response = await client.get(f"/v1/sites/{site['id']}/comments/{comment_id}", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_the_real_stage_holds_what_the_lexical_verdict_published(
    client: Client,
    admin: dict[str, str],
    create_site: CreateSite,
    post_signed: PostSigned,
    receiver: Receiver,
    looker: SecondLookWorker,
    redis_client: aioredis.Redis,
    semantic_model: Model,
    raised: Pick,
    clock: Clock,
) -> None:
    site = await create_site("news", hold={raised.label: raised.between})
    receiver.secret = site["webhook_secret"]
    response = await client.patch(
        "/v1/sites/news", json={"callback_url": receiver.url}, headers=admin
    )
    assert response.status == 200, await response.text()

    for comment_id, text in (("c1", raised.text), ("c2", CIVIL)):
        response = await post_signed(site, comment_body(comment_id, text))
        assert response.status == 202, await response.text()
        assert (await response.json())["state"] == "approved"
    queued = await comment(client, site, "c1")
    assert queued["second_look"]["state"] == "queued"
    assert queued["second_look"]["scores"] is None

    clock.advance(2.0)
    assert await looker.work_once() == 2

    held, kept = await comment(client, site, "c1"), await comment(client, site, "c2")
    assert held["state"] == "pending"
    assert held["reasons"][0] == "SECOND_LOOK"
    assert "TOXIC" in held["reasons"]
    expected = semantic_model.score_blended([raised.text, CIVIL])
    assert held["second_look"]["state"] == "held"
    assert held["second_look"]["scores"] == pytest.approx(expected[0])
    assert held["second_look"]["model"] == semantic_model.version
    assert held["history"][-1]["action"] == "second_look"
    assert kept["second_look"]["scores"] == pytest.approx(expected[1])
    # The moderators' queue shows it, with the blended scores beside the lexical ones.
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    response = await client.get("/v1/sites/news/queue", headers=headers)
    items = (await response.json())["items"]
    assert [(item["id"], item["second_look"]["state"]) for item in items] == [("c1", "held")]

    response = await client.get("/metrics")
    metrics = await response.text()
    assert 'civility_second_look_processed{site="news"} 2.0' in metrics
    assert 'civility_second_look_held{site="news"} 1.0' in metrics
    assert 'civility_second_look_backlog{site="news"} 0.0' in metrics
    # Each was looked at two seconds after intake, plus the time the scoring process took.
    assert 'civility_second_look_delay_seconds_bucket{le="1.0",site="news"} 0.0' in metrics
    assert 'civility_second_look_delay_seconds_bucket{le="+Inf",site="news"} 2.0' in metrics
    assert 'civility_second_look_delay_seconds_count{site="news"} 2.0' in metrics

    delivery = Worker(redis_client, FAST, prefix="civ")
    await delivery_pass_until(delivery, receiver)
    event = next(e for e in receiver.delivered() if e["type"] == "comment.held")
    assert event["comment"]["id"] == "c1"
    assert event["comment"]["reasons"] == held["reasons"]
    assert event["comment"]["state"] == "pending"


async def test_a_comment_the_second_look_holds_ages_in_the_queue_from_the_hold(
    client: Client,
    create_site: CreateSite,
    post_signed: PostSigned,
    looker: SecondLookWorker,
    raised: Pick,
    clock: Clock,
) -> None:
    site = await create_site("news", hold={raised.label: raised.between})
    month_ago = iso(datetime.fromtimestamp(clock() - 30 * 86_400, UTC))
    body = {**comment_body("c1", raised.text), "created_at": month_ago}
    assert (await (await post_signed(site, body)).json())["state"] == "approved"
    clock.advance(60)
    assert await looker.work_once() == 1
    assert (await comment(client, site, "c1"))["state"] == "pending"
    clock.advance(30)
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    stats = await (await client.get("/v1/sites/news/stats", headers=headers)).json()
    # Held a moment ago, not waiting since the comment was written a month back.
    assert 30 <= stats["oldest_ages_seconds"]["pending"] < 90


def site_raising(model: Model, text: str) -> LabelModel:
    """A second-look site model for toxicity whose embedding head fires on ``text`` alone, and
    whose head on the global scores weighs identity attacks (two logits above ``text``'s): the
    site's moderators reject what the global model finds civil."""
    assert model.semantic is not None
    vector = np.asarray(model.semantic.embed([text])[0], dtype=np.float32)
    head = Head(
        kind=EMBEDDING,
        columns=np.arange(vector.size, dtype=np.int32),
        weights=vector * 20,
        intercept=-10.0,
        width=vector.size,
        scale=1.0,
        offset=0.0,
    )
    attack = model.labels.index("identity_attack")
    logits = score_features(model.predict_matrix([text]))[0]
    scores = Head(
        kind=SCORES,
        columns=np.array([attack], dtype=np.int32),
        weights=np.array([1.0], dtype=np.float32),
        intercept=2.0 - float(logits[attack]),
        width=len(model.labels),
        scale=1.0,
        offset=0.0,
    )
    return LabelModel(label="toxicity", global_weight=0.4, heads=((head, 0.4), (scores, 0.2)))


async def test_the_second_look_holds_by_the_sites_own_model(
    client: Client,
    create_site: CreateSite,
    post_signed: PostSigned,
    redis_client: aioredis.Redis,
    redis_url: str,
    settings: Settings,
    semantic_model: Model,
    clock: Clock,
) -> None:
    news = await create_site("news", hold={"toxicity": 0.5})
    blog = await create_site("blog", hold={"toxicity": 0.5})
    site_model = site_raising(semantic_model, CIVIL)
    # A version whose site model scores only the second look: intake's verdict stays global.
    card = {"global_model": semantic_model.version, "why": "fitted for this test", "labels": {}}
    fitted = Fitted(card=card, weights=None, second_look=encode({"toxicity": site_model}))
    assert await SiteModels(redis_client).store_fit("news", fitted, "adapted") == 1
    for site, comment_id in ((news, "c1"), (blog, "b1")):
        response = await post_signed(site, comment_body(comment_id, CIVIL))
        assert response.status == 202, await response.text()
        verdict = await response.json()
        assert (verdict["state"], verdict["model"]) == ("approved", semantic_model.version)

    scorer = PoolBlendScorer(settings.models_dir, threads=1, redis_url=redis_url, prefix="civ")
    looker = SecondLookWorker(
        redis_client, scorer, LOOK, prefix="civ", clock=clock, site_models=SiteModels(redis_client)
    )
    try:
        clock.advance(2.0)
        assert await looker.work_once() == 2
    finally:
        await scorer.close()

    assert semantic_model.semantic is not None
    blended = semantic_model.score_blended([CIVIL])[0]
    vectors = {
        EMBEDDING: np.asarray(semantic_model.semantic.embed([CIVIL]), dtype=np.float64),
        SCORES: score_features(semantic_model.predict_matrix([CIVIL])),
    }
    adapted = float(site_model.adapt(np.array([blended["toxicity"]]), vectors)[0])
    assert blended["toxicity"] < 0.5 < adapted
    held, kept = await comment(client, news, "c1"), await comment(client, blog, "b1")
    assert held["state"] == "pending"
    assert held["reasons"] == ["SECOND_LOOK", "TOXIC"]
    assert held["second_look"]["state"] == "held"
    assert held["second_look"]["model"] == f"{semantic_model.version}+site.1"
    assert held["second_look"]["scores"]["toxicity"] == pytest.approx(adapted, rel=1e-4)
    assert held["second_look"]["scores"]["spam"] == pytest.approx(blended["spam"])
    assert kept["state"] == "approved"
    assert kept["second_look"]["state"] == "done"
    assert kept["second_look"]["model"] == semantic_model.version
    assert kept["second_look"]["scores"] == pytest.approx(blended)


async def delivery_pass_until(worker: Worker, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:

        async def held_delivered() -> bool:
            await worker.work_once(session)
            return any(event["type"] == "comment.held" for event in receiver.delivered())

        await eventually(held_delivered, what="the comment.held delivery")


async def test_a_comment_a_moderator_approved_first_is_left_alone(
    client: Client,
    create_site: CreateSite,
    post_signed: PostSigned,
    looker: SecondLookWorker,
    raised: Pick,
) -> None:
    site = await create_site("news", hold={raised.label: raised.between})
    await post_signed(site, comment_body("c1", raised.text))
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    response = await client.post(
        "/v1/sites/news/comments/c1/decision", json={"action": "approve"}, headers=headers
    )
    assert response.status == 200, await response.text()

    assert await looker.work_once() == 0

    stored = await comment(client, site, "c1")
    assert (stored["state"], stored["decided_by"]) == ("approved", site["moderator_id"])
    assert stored["second_look"]["state"] == "skipped"


async def test_the_second_look_scores_with_the_model_reloaded_not_the_one_activated(
    semantic_models_dir: Path, semantic_model: Model, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    shutil.copytree(semantic_models_dir, tmp_path, dirs_exist_ok=True)
    newer = copy_model(tmp_path, tmp_path, "9.0.0")
    keys = KeySpace("civ")
    scorer = PoolBlendScorer(
        tmp_path, threads=1, served=lambda: served_stem(redis_client, keys, tmp_path)
    )
    await redis_client.set(keys.model_reloaded(), active_stem(tmp_path))
    try:
        # Activated, not reloaded: the API processes still serve the model reloaded last.
        activate(tmp_path, newer)
        before = await scorer.blend([CIVIL])
        await redis_client.set(keys.model_reloaded(), newer)
        after = await scorer.blend([CIVIL])
    finally:
        await scorer.close()

    assert (before.model_version, after.model_version) == (semantic_model.version, "9.0.0")


async def test_the_second_look_follows_a_reload_of_a_version_trained_again(
    semantic_models_dir: Path, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    shutil.copytree(semantic_models_dir, tmp_path, dirs_exist_ok=True)
    keys = KeySpace("civ")
    stem = active_stem(tmp_path)
    scorer = PoolBlendScorer(
        tmp_path, threads=1, served=lambda: served_stem(redis_client, keys, tmp_path)
    )
    await redis_client.set(keys.model_reloaded(), stem)
    try:
        await scorer.blend([CIVIL])
        before = scorer.pids
        # `civility train --force` of the version served, and its reload: the same name.
        await asyncio.to_thread(train_again, tmp_path / f"{stem}{ARTIFACT_SUFFIX}")
        await scorer.blend([CIVIL])
        after = scorer.pids
    finally:
        await scorer.close()

    assert len(before) == len(after) == 1
    assert before != after


@dataclasses.dataclass
class BrokenOn:
    """The real stage, except that a batch holding ``text`` fails, as a text that breaks the
    encoder would."""

    scorer: PoolBlendScorer
    text: str

    async def blend(
        self, texts: Sequence[str], sites: Sequence[SiteRef | None] | None = None
    ) -> Blended:
        if self.text in texts:
            raise RuntimeError("the encoder failed on this text")
        return await self.scorer.blend(texts, sites)

    def closing(self) -> None:
        self.scorer.closing()

    async def close(self) -> None:
        await self.scorer.close()


async def test_a_comment_whose_text_breaks_the_stage_is_given_up_and_shows_it(
    client: Client,
    create_site: CreateSite,
    post_signed: PostSigned,
    redis_client: aioredis.Redis,
    settings: Settings,
    clock: Clock,
) -> None:
    site = await create_site("news")
    broken = "A text the encoder cannot read."
    scorer = BrokenOn(PoolBlendScorer(settings.models_dir, threads=1), broken)
    looker = SecondLookWorker(redis_client, scorer, LOOK, prefix="civ", clock=clock)
    await post_signed(site, comment_body("bad", broken))
    try:
        for attempt in range(FAILURES_BEFORE_GIVING_UP):
            # Each pass has a text of its own beside the broken one (a repeated text is held).
            text = f"{CIVIL} Point {attempt + 1} of the agenda."
            response = await post_signed(site, comment_body(f"c{attempt}", text))
            assert (await response.json())["state"] == "approved"
            assert await looker.work_once() == 2
            clock.advance(LOOK.lease_seconds)
    finally:
        await scorer.close()

    stored = await comment(client, site, "bad")
    assert (stored["state"], stored["second_look"]["state"]) == ("approved", "failed")
    assert stored["second_look"]["scores"] is None
    for attempt in range(FAILURES_BEFORE_GIVING_UP):
        assert (await comment(client, site, f"c{attempt}"))["second_look"]["state"] == "done"
    metrics = await (await client.get("/metrics")).text()
    assert 'civility_second_look_failed{site="news"} 1.0' in metrics
    assert 'civility_second_look_backlog{site="news"} 0.0' in metrics


@pytest.fixture
def switched_off(settings: Settings) -> Settings:
    return dataclasses.replace(settings, second_look=SecondLookSettings(enabled=False))


async def test_with_the_second_look_off_intake_queues_nothing(
    aiohttp_client: AiohttpClient,
    switched_off: Settings,
    redis_client: aioredis.Redis,
    admin: dict[str, str],
    raised: Pick,
) -> None:
    client = await aiohttp_client(create_app(switched_off))
    response = await client.post(
        "/v1/sites",
        json={"id": "news", "name": "News", "policy": {"flood_seconds_per_author": 0}},
        headers=admin,
    )
    created = await response.json()
    site: SiteAccess = {"id": "news", "webhook_secret": created["webhook_secret"]}
    raw = json.dumps(comment_body("c1", raised.text)).encode()
    response = await client.post(
        "/v1/sites/news/comments",
        data=raw,
        headers={
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(site["webhook_secret"], raw),
        },
    )
    assert response.status == 202, await response.text()
    assert "second_look" not in await response.json()
    assert await redis_client.zcard(KEYS.second_look_queue("news")) == 0


async def test_a_look_at_a_text_its_author_had_erased_meanwhile_changes_nothing(
    client: Client,
    admin: dict[str, str],
    create_site: CreateSite,
    post_signed: PostSigned,
    looker: SecondLookWorker,
    raised: Pick,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("news", hold={raised.label: raised.between})
    assert (await post_signed(site, comment_body("c1", raised.text))).status == 202
    blend = looker._blend_apart

    async def erased_while_scoring(*args: Any) -> Any:
        # The look has read the text; the author's erasure runs before it is applied.
        outcome = await blend(*args)
        erased = await client.post("/v1/sites/news/authors/reader-1:erase", headers=admin)
        assert erased.status == 200
        return outcome

    monkeypatch.setattr(looker, "_blend_apart", erased_while_scoring)
    await looker.work_once()

    stored = await comment(client, site, "c1")
    assert (stored["state"], stored["text"]) == ("approved", "")
    assert [entry["action"] for entry in stored["history"]] == ["create"]
