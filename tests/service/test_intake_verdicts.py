"""The intake path's scores and verdicts are the reference model's, on real comments.

Intake scores in worker processes, many concurrent comments micro-batched into one call, with
scikit-learn's input checks switched off; the reference is ``Model.score`` on one text at a time
in this process. Every fast path of the intake (batching, the workers' settings, vectorised
features) must leave each comment's scores within 1e-9 and its state under the default policy
the same.

Languages are detected in the workers too, a batch at a time: each text's must be what this
process detects, and a text in a language the model does not read must come back unscored.
"""

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from classifier.datasets import load_source
from classifier.model import Model, load_active
from service import language
from service import policy as rules
from service.domain import Policy
from service.scoring import PoolScorer, start_scorer
from service.scoring_lanes import EVIDENCE_MAX_CHARS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
SOURCES = ("c3-constructive-comments-corpus", "civil-comments-sample")
PER_SOURCE = 150


@pytest.fixture(scope="module")
def texts(datasets_dir: Path) -> list[str]:
    """Real comments at their real lengths (a fixed draw), plus each source's longest."""
    chooser = random.Random(14)
    drawn: list[str] = []
    for name in SOURCES:
        records = [r for split in load_source(datasets_dir, name).splits.values() for r in split]
        drawn += [r.text for r in chooser.sample(records, PER_SOURCE)]
        drawn += sorted((r.text for r in records), key=len)[-2:]
    return drawn


@pytest.fixture
async def scorer() -> AsyncIterator[PoolScorer]:
    pool = await start_scorer(MODELS_DIR, workers=1, batch_max_items=64, batch_wait_seconds=0.002)
    try:
        yield pool
    finally:
        await pool.close()


async def test_intake_scores_and_states_equal_the_reference_model(
    scorer: PoolScorer, texts: list[str]
) -> None:
    scored = await asyncio.gather(*(scorer.score_with_model(text) for text in texts))
    reference: Model = await asyncio.to_thread(load_active, MODELS_DIR, semantic=False)
    assert {result.model_version for result in scored} == {reference.version}
    policy = Policy()
    states: dict[str, list[str]] = {"intake": [], "reference": []}
    for text, fast in zip(texts, scored, strict=True):
        (slow,) = reference.score([text])
        assert fast.scores.keys() == slow.keys()
        for label, value in slow.items():
            assert fast.scores[label] == pytest.approx(value, abs=1e-9, rel=0), (label, text)
        context = rules.PolicyContext(text=text)
        states["intake"].append(
            rules.decide(fast.scores, context, policy, fast.thresholds).state.value
        )
        states["reference"].append(
            rules.decide(slow, context, policy, reference.thresholds).state.value
        )
    assert states["intake"] == states["reference"]
    # Real comments reach more than one verdict, so the comparison covers a held path too.
    assert len(set(states["reference"])) > 1


async def test_explanations_are_the_models_and_read_the_first_characters_only(
    scorer: PoolScorer,
) -> None:
    abuse = "You are an idiot and a moron. "
    short = abuse * 3
    long = abuse + "A calm and reasonable remark about the bridge. " * 80 + abuse * 10
    assert long.rindex(abuse) > EVIDENCE_MAX_CHARS
    model = await asyncio.to_thread(load_active, MODELS_DIR, semantic=False)

    spans = await asyncio.gather(*(scorer.explain(text) for text in (short, long)))
    scores = await asyncio.gather(*(scorer.score(text) for text in (short, long)))

    assert spans[0] == model.explain(short, labels=model.labels)
    assert spans[1] == model.explain(long[:EVIDENCE_MAX_CHARS], labels=model.labels)
    assert spans[1]["toxicity"]
    assert max(end for found in spans[1].values() for _, end in found) <= EVIDENCE_MAX_CHARS
    whole = model.explain(long, labels=model.labels)
    assert max(end for found in whole.values() for _, end in found) > EVIDENCE_MAX_CHARS
    assert scores == [model.score([text])[0] for text in (short, long)]


OTHER_LANGUAGES = (
    "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt.",
    "Le conseil municipal doit enfin réparer le pont avant l'arrivée de l'hiver, disent-ils.",
    "Правительство должно наконец отремонтировать мост через реку до начала зимы, потому что"
    " иначе его закроют и людям придётся ездить в объезд.",
)


async def test_languages_detected_with_the_batch_are_this_process_and_only_readable_texts_scored(
    scorer: PoolScorer, texts: list[str]
) -> None:
    everything = [*texts, *OTHER_LANGUAGES]
    # Asked in turn, so batches hold texts whose language is asked and texts whose is not.
    asked, not_asked = [], []
    for text in everything:
        asked.append(asyncio.create_task(scorer.detect_and_score(text)))
        not_asked.append(asyncio.create_task(scorer.score_with_model(text)))
    read = await asyncio.gather(*asked)
    plain = await asyncio.gather(*not_asked)
    unscored = 0
    for text, (detected, scored), alone in zip(everything, read, plain, strict=True):
        assert detected == language.detect(text), text[:80]
        if not detected.supported:
            assert scored is None, text[:80]
            unscored += 1
            continue
        assert scored is not None, text[:80]
        assert (scored.model_version, scored.thresholds) == (alone.model_version, alone.thresholds)
        assert scored.scores.keys() == alone.scores.keys()
        for label, value in alone.scores.items():
            assert scored.scores[label] == pytest.approx(value, abs=1e-9, rel=0), (label, text)
    assert unscored >= len(OTHER_LANGUAGES)
