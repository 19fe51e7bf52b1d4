"""A verdict worker shared by API processes: the batches waiting together run as one call, and a
peer scores on its own workers whenever the shared one cannot answer (none listens, it died or
stopped, it refuses the call), looking for it again a while later."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from service import scoring
from service.shared_scoring import RETRY_SECONDS, SharedFirst, Sharing, sharing_from_environment
from service.worker_processes import MAX_SOCKET_PATH_BYTES, WorkerDiedError, WorkerSet, _together
from tests.service import worker_calls

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
SETUP = f"import sys\nsys.path.insert(0, {str(PROJECT_ROOT)!r})\n"


class OwnWorkers:
    """A peer's own workers, standing in: answers every call here and counts them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closed = False

    @property
    def pids(self) -> list[int]:
        return [os.getpid()]

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        if self.closed:  # as a closed WorkerSet answers
            raise WorkerDiedError("own workers stopped")
        self.calls.append(fn.__name__)
        return "own"

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[WorkerSet]:
    """One worker that also serves peers in ``tmp_path``."""
    workers, _ = await WorkerSet.start(1, exec, (SETUP,), name="test", share_dir=tmp_path)
    try:
        yield workers
    finally:
        await workers.close()


Peer = Callable[..., tuple[SharedFirst, OwnWorkers]]


def sockets(folder: Path) -> list[Path]:
    return list(folder.glob("test-*.sock"))


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    """Makes peers (a folder, and a clock); every one is closed after the test."""
    made: list[SharedFirst] = []

    def make(folder: Path, clock: Clock | None = None) -> tuple[SharedFirst, OwnWorkers]:
        own = OwnWorkers()
        made.append(SharedFirst(folder, "test", own, clock=clock or Clock()))
        return made[-1], own

    yield make
    for shared_first in made:
        await shared_first.close()


async def test_batches_waiting_together_run_as_one_call_and_each_gets_its_own_answers(
    shared: WorkerSet, tmp_path: Path, peer: Peer
) -> None:
    (first, first_own), (second, second_own), (third, third_own) = (
        peer(tmp_path) for _ in range(3)
    )
    # The peers connect while the worker is free, then send while it is busy with its owner's
    # call: their calls wait together.
    assert await first.run(worker_calls.sizes, ["warm"], "t") == [("warm", 1, "t")]
    assert await second.run(worker_calls.sizes, ["warm"], "t") == [("warm", 1, "t")]
    assert await third.run(worker_calls.sizes, ["warm"], "u") == [("warm", 1, "u")]
    busy = asyncio.create_task(shared.run(worker_calls.nap, 1.0))
    await asyncio.sleep(0.2)

    answers = await asyncio.gather(
        first.run(worker_calls.sizes, ["a1", "a2"], "t"),
        second.run(worker_calls.sizes, ["b1"], "t"),
        third.run(worker_calls.sizes, ["c1"], "u"),  # other arguments: a call of its own
    )
    await busy

    assert list(answers) == [
        [("a1", 3, "t"), ("a2", 3, "t")],
        [("b1", 3, "t")],
        [("c1", 1, "u")],
    ]
    assert first_own.calls == second_own.calls == third_own.calls == []
    assert first.shared_calls == second.shared_calls == third.shared_calls == 2


async def test_a_peer_scores_on_its_own_workers_while_no_shared_worker_listens(
    tmp_path: Path, peer: Peer
) -> None:
    clock = Clock()
    alone, own = peer(tmp_path, clock)

    assert await alone.run(worker_calls.sizes, ["x"], "t") == "own"
    # A call that is not batchable never goes to the shared worker.
    assert await alone.run(worker_calls.echo, "y") == "own"
    assert own.calls == ["sizes", "echo"]

    workers, _ = await WorkerSet.start(1, exec, (SETUP,), name="test", share_dir=tmp_path)
    try:
        # It looks again only once a while has passed.
        assert await alone.run(worker_calls.sizes, ["x"], "t") == "own"
        clock.now += RETRY_SECONDS
        assert await alone.run(worker_calls.sizes, ["x"], "t") == [("x", 1, "t")]
    finally:
        await workers.close()
    await alone.close()
    assert own.closed


async def test_a_peers_second_call_meanwhile_goes_to_its_own_workers(
    shared: WorkerSet, tmp_path: Path, peer: Peer
) -> None:
    busy_peer, own = peer(tmp_path)

    answers = await asyncio.gather(
        busy_peer.run(worker_calls.sizes, ["a"], "t"), busy_peer.run(worker_calls.sizes, ["b"], "t")
    )

    assert list(answers) == [[("a", 1, "t")], "own"]
    assert own.calls == ["sizes"]


async def test_a_peer_closed_while_its_batch_is_at_the_shared_worker_gets_its_answer_first(
    shared: WorkerSet, tmp_path: Path, peer: Peer
) -> None:
    # What a reload does to the pool it replaces: the batch already sent must not be dropped.
    closing, own = peer(tmp_path)
    batch = asyncio.create_task(closing.run(worker_calls.slow_sizes, ["a", "b"], 0.5))
    await asyncio.sleep(0.1)

    await closing.close()

    assert await batch == [("a", 2), ("b", 2)]
    assert (own.calls, own.closed) == ([], True)


async def test_a_refused_call_goes_to_the_peers_own_workers(
    shared: WorkerSet, tmp_path: Path, peer: Peer
) -> None:
    clock = Clock()
    refused, own = peer(tmp_path, clock)

    assert await refused.run(worker_calls.refuse_all, ["x"]) == "own"
    assert own.calls == ["refuse_all"]
    clock.now += RETRY_SECONDS
    assert await refused.run(worker_calls.sizes, ["x"], "t") == [("x", 1, "t")]


async def test_a_shared_worker_that_dies_or_stops_leaves_the_peer_its_own_workers(
    tmp_path: Path, peer: Peer
) -> None:
    clock = Clock()
    workers, _ = await WorkerSet.start(1, exec, (SETUP,), name="test", share_dir=tmp_path)
    survivor, own = peer(tmp_path, clock)
    try:
        assert await survivor.run(worker_calls.sizes, ["x"], "t") == [("x", 1, "t")]
        # Killed while the peer's call waits for it: that call is answered by the peer's own.
        busy = asyncio.create_task(workers.run(worker_calls.nap, 0.8))
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(survivor.run(worker_calls.sizes, ["y"], "t"))
        await asyncio.sleep(0.1)
        (pid,) = workers.pids
        os.kill(pid, 9)
        assert await waiting == "own"
        await asyncio.gather(busy, return_exceptions=True)
        # Its replacement listens on a socket of its own, which the peer finds a while later.
        await workers.replaced()
        clock.now += RETRY_SECONDS
        assert await survivor.run(worker_calls.sizes, ["z"], "t") == [("z", 1, "t")]
    finally:
        await workers.close()
    # Stopped by its owner: the socket is gone and the peer's calls stay with it.
    assert sockets(tmp_path) == []
    clock.now += RETRY_SECONDS
    assert await survivor.run(worker_calls.sizes, ["w"], "t") == "own"
    assert own.calls == ["sizes", "sizes"]


async def test_a_verdict_worker_refuses_to_score_for_another_model_version(
    tmp_path: Path,
) -> None:
    owner, other = [
        await scoring.start_scorer(
            MODELS_DIR,
            workers=1,
            batch_max_items=8,
            batch_wait_seconds=0.0,
            sharing=Sharing(tmp_path, owner=owns),
        )
        for owns in (True, False)  # the owner first: the peer finds its worker at once
    ]
    try:
        text = "You are an idiot and everyone here knows it."
        expected = (await owner.score_with_model(text)).scores
        # The peer's verdicts come from the shared worker, the same scores as the owner's.
        assert (await other.score_with_model(text)).scores == expected
        shared_first = other._pool.workers
        assert isinstance(shared_first, SharedFirst)
        assert shared_first.shared_calls == 1
        with pytest.raises(scoring.OtherModelError, match=r"not 0\.0\.0-other"):
            await owner._pool.workers.run(
                scoring._read_batch, [text], [None], [False], "0.0.0-other"
            )
    finally:
        await other.close()
        await owner.close()


async def test_a_worker_whose_socket_path_would_be_too_long_works_unshared(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH_BYTES - len(str(tmp_path))))
    deep.mkdir()
    workers, _ = await WorkerSet.start(1, exec, (SETUP,), name="test", share_dir=deep)
    try:
        assert (await workers.run(worker_calls.echo, "x"))[0] == "x"
        assert sockets(deep) == []
    finally:
        await workers.close()


def test_the_process_index_decides_who_owns_the_shared_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CIVILITY_SHARED_SCORING_DIR", raising=False)
    monkeypatch.delenv("CIVILITY_API_PROCESS_INDEX", raising=False)
    assert sharing_from_environment() is None
    monkeypatch.setenv("CIVILITY_SHARED_SCORING_DIR", str(tmp_path))
    assert sharing_from_environment() is None  # started without an index: alone
    monkeypatch.setenv("CIVILITY_API_PROCESS_INDEX", "0")
    assert sharing_from_environment() == Sharing(tmp_path, owner=True)
    monkeypatch.setenv("CIVILITY_API_PROCESS_INDEX", "1")
    assert sharing_from_environment() == Sharing(tmp_path, owner=False)


def test_only_calls_of_one_batchable_function_with_equal_other_arguments_run_together() -> None:
    calls: list[tuple[Any, Any]] = [
        ("a", (worker_calls.sizes, (["1"], "t"))),
        ("b", (worker_calls.echo, ("x",))),
        ("c", (worker_calls.sizes, (["2", "3"], "t"))),
        ("d", (worker_calls.sizes, (["4"], "u"))),
        ("e", (worker_calls.sizes, (["5"], ["not", "hashable"]))),
        ("f", (worker_calls.echo, ("y",))),
    ]

    groups: list[list[Any]] = [[who for who, _ in group] for group in _together(calls)]

    assert groups == [["a", "c"], ["b"], ["d"], ["e"], ["f"]]
