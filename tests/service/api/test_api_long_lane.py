"""The default scoring set-up through the API: a long comment and a held comment's evidence go to
the long lane's own worker, and what they give is what the model gives."""

import dataclasses
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from classifier.model import Model, load_active
from service.appkeys import MODERATION, SCORER
from service.scoring_lanes import LONG_TEXT_CHARS
from service.settings import Settings
from tests.service.api.conftest import api_settings

Client = TestClient[web.Request, web.Application]

ABUSE = "You are a pathetic idiot and a liar, shut up you moron."
CIVIL = "The council's decision on the bridge deserves a second look; the costs were not shown. "


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return dataclasses.replace(api_settings(redis_url), scoring_long_workers=1)


@pytest.fixture
def model(settings: Settings) -> Model:
    return load_active(settings.models_dir, semantic=False)


def comment(comment_id: str, text: str) -> dict[str, Any]:
    return {"id": comment_id, "article": {"id": "a1"}, "author": {"id": "r1"}, "text": text}


async def test_long_comments_and_evidence_take_the_long_lane_with_the_models_results(
    client: Client, create_site: Any, post_signed: Any, moderator: Any, model: Model
) -> None:
    scorer = client.app[SCORER]
    (long_worker,) = scorer.long_worker_pids
    assert long_worker not in scorer.worker_pids[: -len(scorer.long_worker_pids)]
    site = await create_site("news")

    long_text = CIVIL * (LONG_TEXT_CHARS // len(CIVIL) + 1)
    response = await post_signed(site, comment("long", long_text))
    assert response.status == 202
    verdict = await response.json()
    (expected,) = model.score([long_text])
    assert verdict["scores"] == pytest.approx(expected, abs=1e-9)

    response = await post_signed(site, comment("abuse", ABUSE))
    held = await response.json()
    assert held["state"] != "approved", held
    await client.app[MODERATION].evidence.settled()
    shown = await (
        await client.get("/v1/sites/news/comments/abuse", headers=moderator(site))
    ).json()
    explained = model.explain(ABUSE)
    labels = [label for label in shown["evidence"] if label in explained]
    assert labels, shown["evidence"]  # the model's spans, not only the rules'
    for label in labels:
        assert shown["evidence"][label] == [list(span) for span in explained[label]]


async def test_evidence_explains_the_labels_that_reached_their_hold_limit_and_only_those(
    client: Client, create_site: Any, post_signed: Any, moderator: Any, model: Model
) -> None:
    site = await create_site("news", mode="pre")
    (scores,) = model.score([ABUSE])
    flagged = {label for label, score in scores.items() if score >= model.thresholds[label]["hold"]}
    assert flagged
    assert flagged != set(model.labels)

    assert (await post_signed(site, comment("abuse", ABUSE))).status == 202
    assert (await post_signed(site, comment("civil", CIVIL))).status == 202
    await client.app[MODERATION].evidence.settled()

    def evidence(comment_id: str) -> Any:
        return client.get(f"/v1/sites/news/comments/{comment_id}", headers=moderator(site))

    shown = (await (await evidence("abuse")).json())["evidence"]
    explained = model.explain(ABUSE, labels=sorted(flagged))
    assert set(shown) == flagged
    assert shown == {label: [list(span) for span in spans] for label, spans in explained.items()}
    # Held for the pre-moderation alone, every score under its limit: no model evidence.
    civil = await (await evidence("civil")).json()
    assert (civil["state"], civil["evidence"]) == ("pending", {})
