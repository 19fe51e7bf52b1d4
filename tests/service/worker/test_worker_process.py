"""``civility worker`` processes: one killed mid-delivery loses nothing, SIGTERM drains, a refit
process that dies is started again, and one that gets a Ctrl-C as it starts runs on."""

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import cast

import psutil  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis

from service.domain import State
from service.refit_process import background_refits
from service.settings import Settings
from tests.service.start_gates import Gated, Gates

from .support import KEYS, SITE, CreateSite, Events, Receiver, eventually, in_state, record

CIVILITY = str(Path(sys.executable).with_name("civility"))
PROJECT_ROOT = Path(__file__).resolve().parents[3]
WORKER_ENV = {
    "CIVILITY_DELIVERY_TIMEOUT_SECONDS": "3",
    "CIVILITY_DELIVERY_LEASE_SECONDS": "4",
    "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS": "0.02",
    "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS": "0.1",
    "CIVILITY_WORKER_POLL_MS": "10",
    "CIVILITY_WORKER_DRAIN_SECONDS": "5",
    "CIVILITY_CALLBACK_ALLOW": "loopback",
}


class WorkerProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []

    async def line_containing(self, text: str, within: float = 30.0) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"worker exited before printing {text!r}: {self.output}")
                line = raw.decode().rstrip()
                self.output.append(line)
                if text in line:
                    return line

    async def exit_code(self, within: float) -> int:
        async with asyncio.timeout(within):
            return await self.process.wait()


SpawnWorker = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
def topology_url(redis_url: str) -> str:
    """Signals and crashes are the process's own business: these run on one server only, which
    keeps the Sentinel round of the worker suite short."""
    return redis_url


@pytest.fixture
async def spawn_worker(redis_url: str) -> AsyncIterator[SpawnWorker]:
    started: list[WorkerProcess] = []

    async def spawn(**overrides: str) -> WorkerProcess:
        env = {**os.environ, **WORKER_ENV, "REDIS_URL": redis_url, **overrides}
        env.pop("CIVILITY_ENV", None)
        process = await asyncio.create_subprocess_exec(
            CIVILITY,
            "worker",
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = WorkerProcess(process)
        started.append(worker)
        await worker.line_containing("delivering webhooks")
        return worker

    yield spawn
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()


async def test_a_worker_killed_mid_delivery_loses_nothing_and_keeps_order(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    spawn_worker: SpawnWorker,
) -> None:
    receiver.hang = asyncio.Event()
    await create_site(receiver.url)
    comments = [f"c{index}" for index in range(5)]
    expected: list[str] = []
    for comment in comments:
        expected.append(await events.held(comment))
    for target in (State.APPROVED, State.REJECTED):
        for comment in comments:
            expected.append(await events.decide(comment, target))

    doomed = await spawn_worker()
    await asyncio.wait_for(receiver.entered.wait(), 60)
    doomed.process.kill()
    assert await doomed.exit_code(10) == -signal.SIGKILL
    in_flight = [await record(redis_client, event_id) for event_id in expected[:5]]
    assert all(stored["state"] == "pending" and stored["lease"] for stored in in_flight)
    receiver.hang.set()

    await spawn_worker()
    for event_id in expected:
        await eventually(in_state(redis_client, event_id, "delivered"), 30, event_id)

    delivered_ids = {event["id"] for event in receiver.delivered()}
    assert delivered_ids == set(expected)
    versions: dict[str, list[int]] = defaultdict(list)
    for arrival in receiver.arrivals:
        versions[arrival.event["comment"]["id"]].append(arrival.event["comment"]["version"])
    for comment in comments:
        assert versions[comment] == sorted(versions[comment]), versions[comment]
        assert set(versions[comment]) == {1, 2, 3}


async def test_sigterm_finishes_the_delivery_in_flight_and_takes_no_more(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    spawn_worker: SpawnWorker,
) -> None:
    receiver.hang = asyncio.Event()
    await create_site(receiver.url)
    first = await events.held("c1")
    later = [await events.held("c2"), await events.held("c3")]
    worker = await spawn_worker(CIVILITY_WORKER_CONCURRENCY="1")
    await asyncio.wait_for(receiver.entered.wait(), 60)

    worker.process.send_signal(signal.SIGTERM)
    await worker.line_containing("finishing 1 deliveries in flight")
    receiver.hang.set()

    assert await worker.exit_code(10) == 0
    assert (await record(redis_client, first))["state"] == "delivered"
    for event_id in later:
        stored = await record(redis_client, event_id)
        assert (stored["state"], stored["attempts"]) == ("pending", "0")


async def test_sigterm_gives_up_on_a_hanging_delivery_after_the_drain_time(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
    spawn_worker: SpawnWorker,
) -> None:
    receiver.hang = asyncio.Event()
    await create_site(receiver.url)
    held = await events.held("c1")
    worker = await spawn_worker(
        # The drain of deliveries alone: the refit process's own stop is not measured here.
        CIVILITY_SITE_MODELS="off",
        CIVILITY_WORKER_DRAIN_SECONDS="0.5",
        CIVILITY_DELIVERY_TIMEOUT_SECONDS="20",
        CIVILITY_DELIVERY_LEASE_SECONDS="30",
    )
    await asyncio.wait_for(receiver.entered.wait(), 60)

    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exit_code(10) == 0
    assert time.monotonic() - started < 5

    # Handed back: due again at once for another worker, the cut attempt not counted.
    stored = await record(redis_client, held)
    assert (stored["state"], stored["attempts"], stored["lease"]) == ("pending", "0", "")
    due = await redis_client.zscore(KEYS.deliveries_due(SITE), held)
    assert due is not None
    assert due <= time.time() * 1000


async def test_sigterm_stops_the_refit_process_while_the_deliveries_drain(
    redis_url: str,
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    receiver: Receiver,
) -> None:
    # Side by side, so a worker stops within one drain time, not one for the deliveries and
    # then another for the refit in hand.
    receiver.hang = asyncio.Event()
    await create_site(receiver.url)
    held = await events.held("c1")
    env = {
        **os.environ,
        **WORKER_ENV,
        "REDIS_URL": redis_url,
        "CIVILITY_WORKER_DRAIN_SECONDS": "120",
        "CIVILITY_DELIVERY_TIMEOUT_SECONDS": "100",
        "CIVILITY_DELIVERY_LEASE_SECONDS": "110",
    }
    env.pop("CIVILITY_ENV", None)
    process = await asyncio.create_subprocess_exec(
        CIVILITY,
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    worker = WorkerProcess(process)
    try:
        await worker.line_containing("site model refits running", within=90)
        await asyncio.wait_for(receiver.entered.wait(), 60)
        [refits] = [
            child
            for child in psutil.Process(process.pid).children()
            if child.name() == "civility-refits"
        ]

        process.send_signal(signal.SIGTERM)
        await worker.line_containing("finishing 1 deliveries in flight")
        _, alive = await asyncio.to_thread(psutil.wait_procs, [refits], 30)
        assert not alive, "the refit process waited for the deliveries' drain"
        assert process.returncode is None  # still draining the delivery in flight

        receiver.hang.set()
        assert await worker.exit_code(30) == 0
        assert (await record(redis_client, held))["state"] == "delivered"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_to_the_whole_process_group_stops_the_worker_and_its_children(
    redis_url: str,
) -> None:
    # docker stop, systemd and timeout signal every process of the group at once: the worker's
    # children die first, and the worker must still stop without waiting on them.
    env = {**os.environ, **WORKER_ENV, "REDIS_URL": redis_url}
    env.pop("CIVILITY_ENV", None)
    process = await asyncio.create_subprocess_exec(
        CIVILITY,
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(process)
    try:
        # Once the refit process runs, it waits for the worker's word to stop.
        await worker.line_containing("site model refits running", within=90)
        os.killpg(process.pid, signal.SIGTERM)
        assert await worker.exit_code(30) == 0
        await eventually(lambda: _group_is_empty(process.pid), 10, "the group's children")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


async def _group_is_empty(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def _refit_processes() -> list[BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "civility-refits"]


async def test_a_refit_process_that_dies_is_logged_and_started_again(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    models = os.environ.get("CIVILITY_MODELS_DIR", str(PROJECT_ROOT / "models"))
    settings = Settings.from_env({"REDIS_URL": redis_url, "CIVILITY_MODELS_DIR": models})
    async with background_refits(settings, restart_pause=0):
        [first] = _refit_processes()
        first.kill()  # the OOM killer during a large fit

        async def started_again() -> bool:
            return any(p.pid != first.pid and p.is_alive() for p in _refit_processes())

        await eventually(started_again, 30, "a new refit process")
    assert (
        f"site model refit process {first.pid} was killed by SIGKILL; starting it again in 0 s"
        in caplog.text
    )


def _sigint_ignored(pid: int) -> bool:
    """Whether ``pid`` ignores SIGINT, with none blocked or waiting (``/proc/<pid>/status``)."""
    masks = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("SigIgn", "SigBlk", "SigPnd", "ShdPnd"):
            masks[name] = int(value, 16) & 1 << (signal.SIGINT - 1)
    return bool(masks["SigIgn"]) and not any(masks[name] for name in ("SigBlk", "SigPnd", "ShdPnd"))


async def test_a_ctrl_c_while_the_refit_process_starts_leaves_it_running(
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C reaches the whole process group, the refit process too, and a process spawned
    # takes seconds to import and unpickle what it runs: it died of one that came meanwhile,
    # and was logged as an error and started again. Here it waits while it unpickles its
    # settings, before anything of ours ran in it.
    gates = Gates(tmp_path)
    for name, value in gates.env.items():
        monkeypatch.setenv(name, value)
    # The process, spawned, imports the gate by its module's name on this process's
    # ``sys.path``, where pytest does not put the project.
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    models = Path(os.environ.get("CIVILITY_MODELS_DIR", str(PROJECT_ROOT / "models")))
    settings = Settings.from_env({"REDIS_URL": redis_url, "CIVILITY_MODELS_DIR": str(models)})
    settings = dataclasses.replace(settings, models_dir=cast(Path, Gated("refits", models)))
    try:
        with caplog.at_level(logging.INFO, logger="service.refit_process"):
            async with background_refits(settings, restart_pause=0):
                [refits] = _refit_processes()
                pid = refits.pid
                assert pid is not None
                async with asyncio.timeout(60):
                    assert await gates.reached() == ("refits", pid)
                os.kill(pid, signal.SIGINT)
                gates.let_through()

                async def ignores_it() -> bool:
                    assert refits.is_alive(), f"the refit process ended ({refits.exitcode})"
                    return _sigint_ignored(pid)

                await eventually(ignores_it, 60, "the refit process to ignore SIGINT")
                assert _refit_processes() == [refits]
    finally:
        gates.close()
    assert not caplog.records
