"""The long lane on real workers: while its worker is held mid-work on another site's long
comments and evidence, an ordinary comment is scored at once by the verdict workers, and the
long comments get the same scores as the model gives them directly once it continues."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from classifier.model import Model, load_active
from service.scoring import PoolScorer, start_scorer
from service.scoring_lanes import EVIDENCE_MAX_CHARS, LONG_TEXT_CHARS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
SHORT = "Thanks for the thoughtful article, I learned a lot."
ABUSE = "You are an idiot and a liar, and everyone here knows it. "
LONG = (ABUSE * (20_000 // len(ABUSE) + 1))[:20_000]


@pytest.fixture(scope="module")
def reference() -> Model:
    return load_active(MODELS_DIR, semantic=False)


@pytest.fixture
async def scorer() -> AsyncIterator[PoolScorer]:
    scorer = await start_scorer(
        MODELS_DIR, workers=1, long_workers=1, batch_max_items=64, batch_wait_seconds=0.0
    )
    try:
        yield scorer
    finally:
        await scorer.close()


async def test_another_sites_comment_is_not_queued_behind_a_long_one(
    scorer: PoolScorer, reference: Model
) -> None:
    (long_worker,) = scorer.long_worker_pids
    assert len(scorer.worker_pids) == 2
    # Stopped, the long lane's worker stands for one busy with a long text for as long as the
    # test needs: nothing it holds can be answered until it continues.
    os.kill(long_worker, signal.SIGSTOP)
    try:
        flood = [asyncio.create_task(scorer.score_with_model(LONG, ("flood", 0))) for _ in range(3)]
        evidence = asyncio.create_task(scorer.explain(LONG, "flood"))
        async with asyncio.timeout(60):
            other = await scorer.score_with_model(SHORT, ("other", 0))
        held_up = [task.done() for task in [*flood, evidence]]
    finally:
        os.kill(long_worker, signal.SIGCONT)

    assert held_up == [False] * 4
    assert other.scores == pytest.approx(reference.score([SHORT])[0], abs=1e-9)
    scored = await asyncio.gather(*flood)
    expected = reference.score([LONG])[0]
    assert [result.scores for result in scored] == [pytest.approx(expected, abs=1e-9)] * 3
    assert await evidence == reference.explain(LONG[:EVIDENCE_MAX_CHARS], labels=reference.labels)


async def test_closing_answers_what_waits_in_both_lanes_and_stops_every_worker(
    scorer: PoolScorer, reference: Model
) -> None:
    pids = scorer.worker_pids
    texts = [SHORT, LONG, SHORT[:LONG_TEXT_CHARS], LONG[: LONG_TEXT_CHARS + 1]]
    waiting = [asyncio.create_task(scorer.score(text)) for text in texts]
    explaining = asyncio.create_task(scorer.explain(SHORT, "news"))
    await asyncio.sleep(0)  # every text is queued

    await scorer.close()

    assert await asyncio.gather(*waiting) == [
        pytest.approx(scores, abs=1e-9) for scores in reference.score(texts)
    ]
    assert await explaining == reference.explain(SHORT, labels=reference.labels)
    assert not any(psutil.pid_exists(pid) for pid in pids)


async def test_a_reload_replaces_the_long_lanes_workers_too(
    scorer: PoolScorer, reference: Model
) -> None:
    old = scorer.worker_pids
    during = asyncio.create_task(scorer.score_with_model(LONG))

    await scorer.reload(MODELS_DIR)
    after = await scorer.score_with_model(LONG)

    assert (await during).scores == pytest.approx(reference.score([LONG])[0], abs=1e-9)
    assert after.scores == pytest.approx(reference.score([LONG])[0], abs=1e-9)
    assert len(scorer.long_worker_pids) == 1
    assert not set(old) & set(scorer.worker_pids)
