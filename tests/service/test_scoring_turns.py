"""The scoring pool's turns: sites take turns within a batch, batches are bounded in characters,
and explanations take turns with scoring."""

import asyncio
from collections.abc import Callable
from typing import Any

from service.scorer import Scored, SiteRef
from service.scoring import (
    BATCH_MAX_CHARS,
    ModelInfo,
    PoolScorer,
    Waiting,
    fair_batch,
)


async def waiting(texts_and_sites: list[tuple[str, str | None]]) -> list[Waiting]:
    loop = asyncio.get_running_loop()
    items: list[Waiting] = []
    for text, site in texts_and_sites:
        ref: SiteRef | None = (site, 0) if site is not None else None
        future: asyncio.Future[Scored] = loop.create_future()
        items.append((text, ref, future))
    return items


def texts(items: list[Waiting]) -> list[str]:
    return [text for text, _, _ in items]


async def test_sites_take_turns_and_keep_their_own_order() -> None:
    queued = await waiting(
        [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("n1", None), ("b2", "b")]
    )

    batch, rest = fair_batch(queued, max_items=4, max_chars=1000)

    assert texts(batch) == ["a1", "b1", "n1", "a2"]
    assert texts(rest) == ["a3", "b2"]


async def test_a_batch_holds_at_most_its_characters_but_always_one_text() -> None:
    long = "x" * (BATCH_MAX_CHARS + 1)
    queued = await waiting([(long, "a"), (long, "a"), ("short", "b"), ("brief", "b")])

    batch, rest = fair_batch(queued, max_items=64, max_chars=BATCH_MAX_CHARS, turn=0)
    assert texts(batch) == [long]
    # The next turn starts with the other site: its texts go before the second long one.
    batch, rest = fair_batch(rest, max_items=64, max_chars=BATCH_MAX_CHARS, turn=1)
    assert texts(batch) == ["short", "brief"]
    assert texts(rest) == [long]


class RecordingPool:
    """Stands in for the worker processes: records each call and answers when the test says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], asyncio.Future[Any]]] = []

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls.append((fn.__name__, list(args[0]), future))
        return await future

    @property
    def pids(self) -> list[int]:
        return []

    async def close(self) -> None:
        pass

    def answer(self, index: int) -> None:
        name, texts, future = self.calls[index]
        if name == "_score_batch":
            future.set_result([({"toxicity": 0.1}, 0) for _ in texts])
        else:
            future.set_result([{"toxicity": []} for _ in texts])


async def turns() -> None:
    """Let the loop run the callbacks a finished call sets off (no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_explanations_take_turns_with_scoring_under_a_steady_load() -> None:
    pool = RecordingPool()
    info = ModelInfo("m", "1.0.0", ("toxicity",), {"toxicity": {"hold": 0.5}}, {})
    scorer = PoolScorer(pool, info, workers=1, batch_max_items=1, batch_wait_seconds=0.0)
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(scorer.score("first"))]
    await turns()
    tasks.append(asyncio.create_task(scorer.explain("held")))
    tasks += [asyncio.create_task(scorer.score(text)) for text in ("second", "third")]
    await turns()
    assert len(pool.calls) == 1  # the one worker is busy: nothing else is sent to it yet

    for index in range(4):
        pool.answer(index)
        await turns()
    await asyncio.gather(*tasks)

    # The explanation waited for the batch running when it came, then went before the texts
    # that were waiting with it, which went after it one by one.
    assert [(name, texts) for name, texts, _ in pool.calls] == [
        ("_score_batch", ["first"]),
        ("_explain_batch", ["held"]),
        ("_score_batch", ["second"]),
        ("_score_batch", ["third"]),
    ]
