"""Worker processes talked to over their own sockets: a worker that dies mid-call is replaced and
the call answered (retried once, then a clear error), one that died while idle is replaced before a
call reaches it, an initializer's error is raised as it was, a reload under load loses nothing,
stopping leaves no process behind, and a Ctrl-C or a SIGTERM to the whole process group while
a worker starts or works is left to the parent."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from classifier.model import Model, load_active
from service.scoring import PoolScorer, start_scorer
from service.worker_processes import WorkerDiedError, WorkerSet
from tests.service import worker_calls
from tests.service.start_gates import Gates

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
TEXTS = [
    "Thanks for the thoughtful article, I learned a lot.",
    "You are an idiot and everyone here knows it.",
    "The council should publish the budget before the vote.",
]


async def start(setup: str = "") -> tuple[WorkerSet, list[Any]]:
    """Two workers that run ``setup`` first; they find this module's functions, which pytest
    imports without putting the project on ``sys.path``."""
    code = f"import sys\nsys.path.insert(0, {str(PROJECT_ROOT)!r})\n{setup}"
    return await WorkerSet.start(2, exec, (code,), name="test")


def gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) for pid in pids)


@pytest.fixture
async def workers() -> AsyncIterator[WorkerSet]:
    pool, ready = await start()
    assert ready == [None, None]
    try:
        yield pool
    finally:
        await pool.close()


async def test_calls_go_to_idle_workers_and_their_errors_come_back_as_raised(
    workers: WorkerSet,
) -> None:
    answers = await asyncio.gather(*(workers.run(worker_calls.echo, str(n)) for n in range(10)))
    assert [value for value, _ in answers] == [str(n) for n in range(10)]
    assert {pid for _, pid in answers} <= set(workers.pids)
    with pytest.raises(ValueError, match="not this one"):
        await workers.run(worker_calls.refuse, "not this one")
    # The worker that raised answered: it serves the next call.
    assert (await workers.run(worker_calls.echo, "after"))[0] == "after"


async def test_a_worker_killed_mid_call_is_replaced_and_the_call_answered_by_another(
    workers: WorkerSet, tmp_path: Path
) -> None:
    before = set(workers.pids)

    answered_by = await workers.run(worker_calls.die_once, str(tmp_path / "killed"))

    assert (tmp_path / "killed").exists()  # the first attempt did run, and died
    await workers.replaced()
    assert len(workers.pids) == 2
    assert len(before - set(workers.pids)) == 1  # the dead one was replaced
    assert answered_by in workers.pids


async def test_a_call_that_kills_every_worker_it_reaches_fails_clearly_and_the_next_work(
    workers: WorkerSet,
) -> None:
    with pytest.raises(WorkerDiedError, match=r"test process \d+ was killed by signal 9"):
        await workers.run(worker_calls.die)

    answers = await asyncio.gather(*(workers.run(worker_calls.echo, str(n)) for n in range(4)))
    assert [value for value, _ in answers] == ["0", "1", "2", "3"]
    await workers.replaced()
    assert len(workers.pids) == 2


async def test_workers_killed_while_idle_are_replaced_before_a_call_reaches_them(
    workers: WorkerSet,
) -> None:
    pids = workers.pids
    processes = [psutil.Process(pid) for pid in pids]
    for process in processes:  # the OOM killer, between two calls
        process.kill()
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive

    # Two dead workers would have taken the call's first attempt and its one retry.
    value, answered_by = await workers.run(worker_calls.echo, "after")

    assert value == "after"
    assert answered_by not in pids
    await workers.replaced()
    assert len(workers.pids) == 2
    assert not set(pids) & set(workers.pids)


async def test_an_initializers_error_is_raised_and_no_worker_is_left() -> None:
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    with pytest.raises(ValueError, match="no model here"):
        await start("raise ValueError('no model here')")
    after = {child.pid for child in psutil.Process().children(recursive=True)}
    # The fork server may have started; no worker stays beside it.
    assert len(after - children) <= 1


async def test_a_caller_cancelled_once_handed_a_worker_gives_it_back(
    workers: WorkerSet,
) -> None:
    waiting: asyncio.Task[Any] | None = None

    async def busy(value: str) -> Any:
        answer = await workers.run(worker_calls.echo, value)
        # The same step in which this call's worker was handed to the waiting caller.
        assert waiting is not None
        waiting.cancel()
        return answer

    running = [asyncio.create_task(busy(value)) for value in ("a", "b")]
    await asyncio.sleep(0)  # both workers are busy
    waiting = asyncio.create_task(workers.run(worker_calls.echo, "c"))
    await asyncio.sleep(0)  # and a third caller waits for one
    await asyncio.gather(*running)
    with pytest.raises(asyncio.CancelledError):
        await waiting

    async with asyncio.timeout(30):
        answers = await asyncio.gather(*(workers.run(worker_calls.echo, v) for v in "de"))
    # Both workers are idle again: two calls at once go to two processes.
    assert {pid for _, pid in answers} == set(workers.pids)
    assert len(set(workers.pids)) == 2


async def test_closing_stops_every_worker_after_the_calls_made_finish() -> None:
    pool, _ = await start()
    pids = pool.pids
    running = [asyncio.create_task(pool.run(worker_calls.echo, str(n))) for n in range(6)]
    await asyncio.sleep(0)  # the calls are made before the close

    await pool.close()

    assert [value for value, _ in await asyncio.gather(*running)] == [str(n) for n in range(6)]
    assert gone(pids)
    with pytest.raises(WorkerDiedError, match="stopped"):
        await pool.run(worker_calls.echo, "late")


async def test_a_call_cut_short_once_the_set_is_closing_leaves_no_replacement_to_wait_for(
    tmp_path: Path,
) -> None:
    # Workers started from now on never finish starting: a replacement would hold up the close
    # for good.
    marker = tmp_path / "stuck-start"
    pool, _ = await start(
        f"import os, threading\nif os.path.exists({str(marker)!r}): threading.Event().wait()"
    )
    pids = pool.pids
    marker.touch()
    napping = asyncio.create_task(pool.run(worker_calls.nap, 600.0))
    await asyncio.sleep(0)  # the call is made
    pool.closing()
    napping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await napping
    async with asyncio.timeout(30):
        await pool.close()
    assert gone(pids)
    assert pool.pids == []


@pytest.fixture(scope="module")
def reference() -> Model:
    return load_active(MODELS_DIR, semantic=False)


@pytest.fixture
async def scorer() -> AsyncIterator[PoolScorer]:
    pool = await start_scorer(MODELS_DIR, workers=1, batch_max_items=1, batch_wait_seconds=0.0)
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_scoring_worker_killed_mid_batch_still_answers_and_the_next_batches_work(
    scorer: PoolScorer, reference: Model
) -> None:
    (pid,) = scorer.worker_pids
    batch = asyncio.create_task(scorer.score_with_model(TEXTS[1]))
    await asyncio.sleep(0)  # the batch is sent to the only worker
    os.kill(pid, signal.SIGKILL)

    scored = await batch
    rest = await asyncio.gather(*(scorer.score(text) for text in TEXTS))

    assert scored.scores == pytest.approx(reference.score([TEXTS[1]])[0], abs=1e-9)
    assert rest == [pytest.approx(scores, abs=1e-9) for scores in reference.score(TEXTS)]
    assert scorer.worker_pids != [pid]
    assert gone([pid])


async def test_a_reload_under_load_answers_every_text_and_stops_the_old_workers(
    scorer: PoolScorer, reference: Model
) -> None:
    old = scorer.worker_pids
    burst = [asyncio.create_task(scorer.score_with_model(text)) for text in TEXTS * 20]
    await asyncio.sleep(0)

    info = await scorer.reload(MODELS_DIR)
    burst += [asyncio.create_task(scorer.score_with_model(text)) for text in TEXTS * 20]
    scored = await asyncio.gather(*burst)

    assert info.version == reference.version
    assert {result.model_version for result in scored} == {reference.version}
    expected = reference.score(TEXTS) * 40
    assert [result.scores for result in scored] == [pytest.approx(e, abs=1e-9) for e in expected]
    assert gone(old)
    assert not set(old) & set(scorer.worker_pids)


async def test_closing_the_scorer_leaves_no_worker_process() -> None:
    pool = await start_scorer(MODELS_DIR, workers=2, batch_max_items=8, batch_wait_seconds=0.0)
    pids = pool.worker_pids
    assert len(pids) == 2
    assert not gone(pids)
    waiting = [asyncio.create_task(pool.score(text)) for text in TEXTS]
    await asyncio.sleep(0)

    await pool.close()

    assert len(await asyncio.gather(*waiting)) == len(TEXTS)
    assert gone(pids)


async def test_workers_carry_their_sets_name_where_ps_and_top_show_it(
    workers: WorkerSet,
) -> None:
    # They are the fork server's children and keep its command line: the name tells them
    # apart from it (and the intake benchmark counts their CPU by it).
    for pid in workers.pids:
        worker = psutil.Process(pid)
        assert worker.name() == "test"
        assert "multiprocessing.forkserver" in " ".join(worker.cmdline())
        assert psutil.Process(worker.ppid()).name() != "test"


def test_workers_find_their_initializers_module_imported_by_the_fork_server(
    tmp_path: Path,
) -> None:
    # In a process of its own: the fork server is started once per process, with the modules
    # named by the first set started there.
    log = tmp_path / "imports"
    script = (
        "import asyncio, json, os\n"
        "from service.worker_processes import WorkerSet\n"
        "from tests.service.import_probe import start\n"
        "async def main():\n"
        "    workers, pids = await WorkerSet.start(2, start, (), name='test')\n"
        "    await workers.close()\n"
        "    print(json.dumps({'parent': os.getpid(), 'workers': pids}))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CIVILITY_TEST_IMPORT_LOG": str(log)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    pids = json.loads(done.stdout)
    importers = [int(line) for line in log.read_text().split()]
    # The parent, then the fork server; never a worker, which inherits it.
    assert len(importers) == 2
    assert importers[0] == pids["parent"]
    assert not set(importers) & set(pids["workers"])
    assert len(set(pids["workers"])) == 2


# A parent with its own handlers for Ctrl-C and SIGTERM, as the service has, starting one worker
# whose fork server waits at the gate "fork server" while it imports its preloaded modules, whose
# worker waits at the gate "worker" while it unpickles its initializer's arguments, and whose call
# waits at the gate "call" while the worker unpickles it.
STOP_SIGNAL_SCRIPT = """
import asyncio, json, signal
from service.worker_processes import WorkerSet
from tests.service import worker_calls
from tests.service.start_gates import Gated

async def main():
    stops = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stops.append, None)
    workers, ready = await WorkerSet.start(
        1, worker_calls.echo, (Gated("worker", "ready"),), name="test",
        preload=["tests.service.gated_preload"],
    )
    answer, pid = await workers.run(worker_calls.echo, Gated("call", "after"))
    await workers.close()
    print(json.dumps({
        "ready": ready[0][0], "answer": answer, "same": pid == ready[0][1], "stops": len(stops)
    }))

asyncio.run(main())
"""


@pytest.mark.parametrize("moment", ["fork server", "worker", "call"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_a_stop_signal_to_the_group_while_a_worker_starts_or_works_is_left_to_the_parent(
    moment: str, signum: signal.Signals, tmp_path: Path
) -> None:
    # Ctrl-C reaches the whole process group, and so does the SIGTERM of a supervisor stopping
    # the group (systemd, a container runtime): the fork server importing its preloaded modules,
    # a worker not yet running our code and a worker in a call too. None may die of it: a worker
    # would exit before answering, or its call go to another, and the service log that as it
    # stops.
    gates = Gates(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STOP_SIGNAL_SCRIPT,
        cwd=PROJECT_ROOT,
        env={**os.environ, **gates.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        output = asyncio.ensure_future(process.communicate())
        async with asyncio.timeout(120):
            for gate in ("fork server", "worker", "call"):
                reached = asyncio.ensure_future(gates.reached())
                await asyncio.wait({reached, output}, return_when=asyncio.FIRST_COMPLETED)
                if not reached.done():
                    reached.cancel()
                    raise AssertionError(f"ended before the {gate} gate: {output.result()[1]!r}")
                name, pid = reached.result()
                assert name == gate
                assert os.getpgid(pid) == process.pid
                if gate == moment:
                    os.killpg(process.pid, signum)
                gates.let_through()
            # A worker started again (one died) would stop at its gate: the script would not end.
            again = asyncio.ensure_future(gates.reached())
            await asyncio.wait({again, output}, return_when=asyncio.FIRST_COMPLETED)
            if again.done():
                raise AssertionError(f"a worker was started again: {again.result()}")
            again.cancel()
            out, err = await output
        assert process.returncode == 0, err.decode()
        # The parent kept its own handlers: the signal was its to act on.
        assert json.loads(out) == {"ready": "ready", "answer": "after", "same": True, "stops": 1}
        assert err == b""
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        gates.close()
