"""Redis stopped and restarted under the store: 503s meanwhile, no half writes, recovery in place.

These tests run their own throwaway ``redis-server`` (no persistence) on a free port, so they can
pause, kill and restart it without touching the server the rest of the suite shares.
"""

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.domain import Author, Order, Queue, QueueQuery, State
from service.errors import StoreUnavailable
from service.keys import KeySpace
from service.site_models import SiteModels
from service.store import Store
from service.store.records import DecisionWrite, IntakeWrite
from tests.ports import free_port
from tests.records import decision_write, intake_write, site_record

from .test_moderation import GatedScorer, gated_moderation, submission

SITE = "news"
NOW = 1_800_000_000_000
KEYS = KeySpace("civ")
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


class OwnRedis:
    """A redis-server process this test controls: started, paused, killed, restarted."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)


def own_redis_server() -> Iterator[OwnRedis]:
    """A fixture's body: a server of the test's own, running until the test ends (skipped where
    there is no ``redis-server``)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found on PATH")
    server = OwnRedis(binary)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.signal(signal.SIGCONT)
        server.kill()


async def quick_client(server: OwnRedis) -> AsyncIterator[aioredis.Redis]:
    """A fixture's body: a client of ``server`` that gives up on it quickly."""
    # One quick retry instead of redis-py's default ten with backoff keeps each failure short.
    client = aioredis.Redis(
        port=server.port,
        decode_responses=True,
        socket_timeout=0.3,
        socket_connect_timeout=0.3,
        retry=Retry(NoBackoff(), retries=1),
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    yield from own_redis_server()


@pytest.fixture
async def client(own_redis: OwnRedis) -> AsyncIterator[aioredis.Redis]:
    async for client in quick_client(own_redis):
        yield client


def intake(comment_id: str) -> IntakeWrite:
    return intake_write(
        comment_id,
        NOW,
        text_hash=f"hash-{comment_id}",
        author=Author(id="u1"),
        text=f"text of {comment_id}",
        lang=None,
        reasons=["PREMOD"],
        scores={"spam": 0.1},
        model="test-1",
        priority=0.1,
    )


def approve(comment_id: str) -> DecisionWrite:
    return decision_write(comment_id, NOW, actor="mod_x")


async def test_a_dead_redis_answers_store_unavailable_and_a_restart_recovers_in_place(
    own_redis: OwnRedis, client: aioredis.Redis
) -> None:
    store = Store(client)
    await store.create_site(site_record(SITE, NOW))
    await store.write_intake(SITE, intake("c1"))

    own_redis.kill()
    with pytest.raises(StoreUnavailable):
        await store.write_intake(SITE, intake("c2"))
    with pytest.raises(StoreUnavailable):
        await store.decide(SITE, approve("c1"))
    with pytest.raises(StoreUnavailable):
        await store.claim(SITE, "mod_x", Queue.PENDING, Order.PRIORITY, 1, 1_000, NOW)
    with pytest.raises(StoreUnavailable):
        await store.page(SITE, QueueQuery(), NOW)
    with pytest.raises(StoreUnavailable):
        await store.load_site(SITE)
    with pytest.raises(StoreUnavailable):
        await store.stats(SITE, NOW)

    own_redis.start()  # same port, empty: no data and no cached scripts
    [known] = await client.script_exists(store._scripts["ingest"].sha)
    assert not known
    await store.create_site(site_record(SITE, NOW))
    outcome, comment = await store.write_intake(SITE, intake("c3"))
    assert (outcome, comment.state) == ("created", State.PENDING)
    assert (await store.decide(SITE, approve("c3"))).state is State.APPROVED
    [known] = await client.script_exists(store._scripts["ingest"].sha)
    assert known


async def test_writes_cut_off_by_an_outage_are_whole_or_absent(
    own_redis: OwnRedis, client: aioredis.Redis
) -> None:
    store = Store(client)
    await store.create_site(site_record(SITE, NOW))
    await store.write_intake(SITE, intake("before"))  # the script is cached from here on
    ids = [f"c{index}" for index in range(20)]
    await asyncio.gather(*(client.ping() for _ in ids))  # open connections stay in the pool

    own_redis.signal(signal.SIGSTOP)  # requests reach the socket but get no answer
    results = await asyncio.gather(
        *(store.write_intake(SITE, intake(comment_id)) for comment_id in ids),
        return_exceptions=True,
    )
    assert all(isinstance(result, StoreUnavailable) for result in results)
    own_redis.signal(signal.SIGCONT)  # the server may now run what it had already received
    await client.ping()

    entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(KEYS.outbox(SITE)))
    events = [fields for _, fields in entries]
    queue = set(await client.zrange(KEYS.queue_index(SITE, Queue.PENDING, Order.PRIORITY), 0, -1))
    stored = 0
    for comment_id in ids:
        exists = bool(await client.exists(KEYS.comment(SITE, comment_id)))
        # A creation stays in the comment hash until the comment's first change.
        assert not await client.exists(KEYS.history(SITE, comment_id))
        published = [event for event in events if event["comment_id"] == comment_id]
        assert (len(published), comment_id in queue) == ((1, True) if exists else (0, False)), (
            comment_id
        )
        stored += exists
    pending = await client.hget(KEYS.author(SITE, "u1"), "pending")
    assert int(pending or 0) == stored + 1
    # And the store is usable again at once, with the same client.
    outcome, _ = await store.write_intake(SITE, intake("after"))
    assert outcome == "created"


async def test_evidence_an_outage_keeps_out_is_one_warning_line_without_a_traceback(
    own_redis: OwnRedis, client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    moderation = await gated_moderation(client, "A stupid idea")
    scorer = moderation.scorer
    assert isinstance(scorer, GatedScorer)
    held = await moderation.ingest(SITE, submission("c1", "A stupid idea"))
    assert held.comment.state is State.PENDING

    # Redis goes away while the held comment's evidence is worked out.
    own_redis.kill()
    with caplog.at_level(logging.WARNING, logger="service.late_evidence"):
        scorer.gate.set()
        await moderation.evidence.settled()

    [warning] = [record for record in caplog.records if record.name == "service.late_evidence"]
    assert (warning.levelno, warning.exc_info) == (logging.WARNING, None)
    assert warning.getMessage().startswith(
        "evidence for comment 'c1' of site 'news' was not stored: Redis is unavailable (Error 111 "
        f"connecting to localhost:{own_redis.port}."
    )


async def test_a_refusal_inside_a_pipeline_is_the_store_unavailable_and_writes_nothing(
    own_redis: OwnRedis, client: aioredis.Redis
) -> None:
    # The refusals redis-py has no class for are known by their first word, which it prefixes
    # with the failing command when the reply comes inside a pipeline (a replicated write's
    # script and WAIT, a transaction): NOREPLICAS here, a primary whose replica was lost.
    await Store(client).create_site(site_record(SITE, NOW))
    store = Store(client, replicas=1, replica_wait_ms=1)
    models = SiteModels(client)
    await models.advance(SITE, "0-1", 1)
    await client.config_set("min-replicas-to-write", "1")

    with pytest.raises(StoreUnavailable):
        await store.write_intake(SITE, intake("c1"))
    with pytest.raises(StoreUnavailable):
        await models.advance(SITE, "0-2", 1)

    assert not await client.exists(KEYS.comment(SITE, "c1"))
    assert not await client.exists(KEYS.outbox(SITE))
    assert await client.hgetall(KEYS.site_model_state(SITE)) == {
        "cursor": "0-1",
        "new_labels": "1",
    }


REFUSALS = {
    # At its maxmemory, with noeviction as the store needs it.
    "full": "OOM command not allowed when used memory > 'maxmemory'.",
    # A primary demoted to replica in a failover, before the client follows.
    "demoted": "READONLY You can't write against a read only replica.",
}


async def refuse_writes_as(client: aioredis.Redis, refusal: str) -> None:
    if refusal == "full":
        await client.config_set("maxmemory", "1")
    else:
        # A replica of a primary that never answers: it keeps its data and refuses writes.
        await client.replicaof("127.0.0.1", str(free_port()))


@pytest.mark.parametrize("refusal", list(REFUSALS))
@pytest.mark.parametrize("replicas", [0, 1], ids=["alone", "in-a-pipeline"])
async def test_store_unavailable_says_redis_s_whole_reply(
    client: aioredis.Redis, refusal: str, replicas: int
) -> None:
    # redis-py keeps apart the first word of a reply it has a class of its own for (OOM,
    # READONLY): the log said "command not allowed when used memory > 'maxmemory'", not what
    # refused it. A replicated write's script travels in a pipeline with its WAIT, where redis-py
    # puts the failing command before the reply.
    await Store(client).create_site(site_record(SITE, NOW))
    store = Store(client, replicas=replicas, replica_wait_ms=1)
    await refuse_writes_as(client, refusal)

    with pytest.raises(StoreUnavailable) as refused:
        await store.write_intake(SITE, intake("c1"))

    assert refused.value.why.startswith(f"{REFUSALS[refusal]} script: ")
