"""Intake takes a comment's language from a scorer that detects it with its batch, and detects
it in this process for a scorer that does not; either way a comment in a language the model
does not read is held unscored and its language stored."""

from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis

from service import language
from service.domain import SiteSpec, State, Submission
from service.language import Detected
from service.moderation import Moderation
from service.scorer import DetectingScorer, Scored, SiteRef
from service.store import Store

SITE = "news"
THRESHOLDS = {"toxicity": {"hold": 0.6, "reject": 0.95}}
GERMAN = (
    "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt."
)
ENGLISH = "The council should finally repair the bridge over the river before winter comes."


class PlainScorer:
    """Scores every text it is given; knows nothing of languages."""

    model_version = "test-1.0"

    def __init__(self) -> None:
        self.scored: list[str] = []

    async def score(self, text: str) -> dict[str, float]:
        self.scored.append(text)
        return {"toxicity": 0.99 if "idiot" in text else 0.01}

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        return {"toxicity": []}


class LanguageScorer(PlainScorer):
    """Detects languages as the scoring workers do (by keyword here, so a test can tell whose
    detection a verdict used) and scores only the texts the model reads."""

    async def score_with_model(self, text: str, site: SiteRef | None = None) -> Scored:
        return Scored(await self.score(text), self.model_version, THRESHOLDS)

    async def detect_and_score(
        self, text: str, site: SiteRef | None = None
    ) -> tuple[Detected, Scored | None]:
        detected = Detected("de", 0.99) if "Brücke" in text else Detected("en", 0.98)
        if not detected.supported:
            return detected, None
        return detected, await self.score_with_model(text, site)


def submission(comment_id: str, text: str) -> Submission:
    # An author per comment: a held comment of one author says nothing about another's.
    return Submission.model_validate(
        {"id": comment_id, "article": {"id": "a1"}, "author": {"id": comment_id}, "text": text}
    )


async def moderation_with(
    redis_client: aioredis.Redis, scorer: PlainScorer
) -> AsyncIterator[Moderation]:
    moderation = Moderation(Store(redis_client), scorer, THRESHOLDS)
    await moderation.create_site(SiteSpec(id=SITE, name="News"))
    yield moderation
    await moderation.evidence.settled()


@pytest.fixture
def detecting() -> LanguageScorer:
    return LanguageScorer()


@pytest.fixture
async def moderation(
    redis_client: aioredis.Redis, detecting: LanguageScorer
) -> AsyncIterator[Moderation]:
    async for moderation in moderation_with(redis_client, detecting):
        yield moderation


async def test_a_detecting_scorers_languages_decide_and_this_process_detects_nothing(
    moderation: Moderation, detecting: LanguageScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(detecting, DetectingScorer)

    def no_detection_here(text: str) -> Detected:
        raise AssertionError("intake detected a language in the serving process")

    monkeypatch.setattr(language, "detect", no_detection_here)

    held = (await moderation.ingest(SITE, submission("de1", GERMAN))).comment
    assert (held.state, held.reasons, held.scores, held.lang) == (
        State.PENDING,
        ("LANGUAGE",),
        {},
        "de",
    )
    published = (await moderation.ingest(SITE, submission("en1", ENGLISH))).comment
    assert (published.state, published.scores, published.lang) == (
        State.APPROVED,
        {"toxicity": 0.01},
        "en",
    )
    verdict, scored = await moderation.assess(SITE, GERMAN)
    assert (verdict.state, scored.scores, scored.model_version) == (State.PENDING, {}, "test-1.0")
    verdict, scored = await moderation.assess(SITE, "You idiot, " + ENGLISH)
    assert (verdict.state, scored.scores) == (State.REJECTED, {"toxicity": 0.99})
    assert detecting.scored == [ENGLISH, "You idiot, " + ENGLISH]


async def test_a_scorer_that_does_not_detect_has_languages_detected_here(
    redis_client: aioredis.Redis,
) -> None:
    scorer = PlainScorer()
    assert not isinstance(scorer, DetectingScorer)
    async for moderation in moderation_with(redis_client, scorer):
        held = (await moderation.ingest(SITE, submission("de1", GERMAN))).comment
        assert (held.state, held.reasons, held.scores, held.lang) == (
            State.PENDING,
            ("LANGUAGE",),
            {},
            "de",
        )
        published = (await moderation.ingest(SITE, submission("en1", ENGLISH))).comment
        assert (published.state, published.lang) == (State.APPROVED, "en")
        verdict, scored = await moderation.assess(SITE, GERMAN)
        assert (verdict.state, scored.scores) == (State.PENDING, {})
        assert scorer.scored == [ENGLISH]
