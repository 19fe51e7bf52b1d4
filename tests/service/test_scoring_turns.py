"""The scoring pool's turns: sites take turns within a batch, batches are bounded in characters,
explanations take turns with scoring and between sites, and long texts and explanations go to
the long lane's workers when it has its own."""

import asyncio
from collections.abc import Callable
from typing import Any

from service.scorer import SiteRef
from service.scoring import ModelInfo, PoolScorer
from service.scoring_lanes import (
    BATCH_MAX_CHARS,
    EVIDENCE_MAX_CHARS,
    LONG_TEXT_CHARS,
    Read,
    Waiting,
    fair_batch,
)


async def waiting(texts_and_sites: list[tuple[str, str | None]]) -> list[Waiting]:
    loop = asyncio.get_running_loop()
    items: list[Waiting] = []
    for text, site in texts_and_sites:
        ref: SiteRef | None = (site, 0) if site is not None else None
        future: asyncio.Future[Read] = loop.create_future()
        items.append((text, ref, future, False))
    return items


def texts(items: list[Waiting]) -> list[str]:
    return [text for text, _, _, _ in items]


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
        if name == "_read_batch":
            future.set_result([(None, ({"toxicity": 0.1}, 0)) for _ in texts])
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
        ("_read_batch", ["first"]),
        ("_explain_batch", ["held"]),
        ("_read_batch", ["second"]),
        ("_read_batch", ["third"]),
    ]


def calls(pool: RecordingPool) -> list[tuple[str, list[str]]]:
    return [(name, texts) for name, texts, _ in pool.calls]


async def test_long_texts_and_explanations_leave_the_verdict_workers_to_the_others() -> None:
    short_pool, long_pool = RecordingPool(), RecordingPool()
    info = ModelInfo("m", "1.0.0", ("toxicity",), {"toxicity": {"hold": 0.5}}, {})
    scorer = PoolScorer(
        short_pool, info, workers=1, long_pool=long_pool, batch_max_items=8, batch_wait_seconds=0
    )
    long = "x" * max(LONG_TEXT_CHARS + 1, BATCH_MAX_CHARS // 2 + 1)  # one to a batch
    flood = [asyncio.create_task(scorer.score_with_model(long, ("flood", 0))) for _ in range(2)]
    evidence = asyncio.create_task(scorer.explain("held", "flood"))
    await turns()
    other = asyncio.create_task(scorer.score_with_model("short", ("other", 0)))
    await turns()

    # The long lane's worker has the first long text; the other site's text went to the verdict
    # worker at once, not behind the long texts and the explanation.
    assert calls(long_pool) == [("_read_batch", [long])]
    assert calls(short_pool) == [("_read_batch", ["short"])]
    short_pool.answer(0)
    await turns()
    assert other.done()
    assert not any(task.done() for task in [*flood, evidence])

    for index in range(3):
        long_pool.answer(index)
        await turns()
    await asyncio.gather(*flood, evidence)
    assert calls(long_pool) == [
        ("_read_batch", [long]),
        ("_explain_batch", ["held"]),
        ("_read_batch", [long]),
    ]


async def test_explanations_take_turns_between_sites() -> None:
    pool = RecordingPool()
    info = ModelInfo("m", "1.0.0", ("toxicity",), {"toxicity": {"hold": 0.5}}, {})
    scorer = PoolScorer(pool, info, workers=1, batch_max_items=8, batch_wait_seconds=0.0)
    # Each as long as the evidence reads, so one explanation fills a batch.
    texts = {name: name.ljust(EVIDENCE_MAX_CHARS, ".") for name in ("a1", "a2", "a3", "b1")}
    tasks = [asyncio.create_task(scorer.explain(texts[name], name[0])) for name in texts]
    await turns()

    for index in range(4):
        pool.answer(index)
        await turns()
    await asyncio.gather(*tasks)

    # The first went at once; then b's went before a's others, not after them.
    assert [texts[0][:2] for _, texts in calls(pool)] == ["a1", "b1", "a2", "a3"]


class LabelledPool(RecordingPool):
    """Records the labels each explanation batch asks for and gives each label a span of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[list[str]] = []

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        self.labels.append(list(args[1]))
        return [{label: [(0, index + 1)] for label in args[1]} for index, _ in enumerate(args[0])]


async def test_a_batch_explains_the_labels_its_texts_ask_for_and_each_text_gets_its_own() -> None:
    pool = LabelledPool()
    labels = ("spam", "toxicity", "insult", "threat")
    info = ModelInfo("m", "1.0.0", labels, {}, {})
    scorer = PoolScorer(pool, info, workers=1, batch_max_items=8, batch_wait_seconds=0.0)
    # The first goes alone at once; the other three wait for it and go together.
    first = asyncio.create_task(scorer.explain("a", "s1", ["toxicity"]))
    rest = [
        asyncio.create_task(scorer.explain(text, "s1", asked))
        for text, asked in (("b", ["insult", "toxicity"]), ("c", None), ("d", ["spam"]))
    ]
    results = await asyncio.gather(first, *rest)

    assert pool.labels == [["toxicity"], list(labels)]
    assert results == [
        {"toxicity": [(0, 1)]},
        {"insult": [(0, 1)], "toxicity": [(0, 1)]},
        {label: [(0, 2)] for label in labels},
        {"spam": [(0, 3)]},
    ]
