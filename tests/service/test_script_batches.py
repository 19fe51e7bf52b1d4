"""Script calls made together go as one pipeline, and each caller still gets its own reply or
error: mixed intake outcomes, scripts flushed from Redis, a dead server, a caller gone."""

import asyncio
import socket
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from service.domain import Author, State
from service.errors import StoreUnavailable, ValidationFailed
from service.keys import KeySpace
from service.store import Store
from service.store.records import IntakeWrite, StaleContextError
from service.store.script_batches import ScriptBatches
from tests.records import intake_write, site_record

SITE = "news"
NOW = 1_800_000_000_000
KEYS = KeySpace("civ")
ECHO = "return {KEYS[1], ARGV[1]}"
FAILS = "return redis.error_reply('refused: ' .. ARGV[1])"


class Pipelines:
    """The client's pipelines, each one's number of commands as it was executed."""

    def __init__(self, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.executing = asyncio.Event()
        original = redis.pipeline

        def counted(transaction: bool = True, shard_hint: Any = None) -> Pipeline:
            pipe = original(transaction=transaction, shard_hint=shard_hint)
            execute = pipe.execute

            async def recorded(raise_on_error: bool = True) -> list[Any]:
                self.sizes.append(len(pipe))
                self.executing.set()
                return await execute(raise_on_error=raise_on_error)

            monkeypatch.setattr(pipe, "execute", recorded)
            return pipe

        monkeypatch.setattr(redis, "pipeline", counted)


@pytest.fixture
def pipelines(redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> Pipelines:
    return Pipelines(redis_client, monkeypatch)


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    store = Store(redis_client, prefix="civ")
    await store.create_site(site_record(SITE, NOW))
    return store


def intake(comment_id: str, text: str = "hello", article: str = "a1") -> IntakeWrite:
    return intake_write(
        comment_id,
        NOW,
        text=text,
        article_id=article,
        author=Author(id="u1"),
        event_id=f"evt-{comment_id}-{text}",
    )


async def loaded(redis: aioredis.Redis, source: str) -> AsyncScript:
    """A script already in Redis's cache, so a batch's first round trip runs it."""
    script = redis.register_script(source)
    await redis.script_load(source)
    return script


async def outbox_comments(redis: aioredis.Redis) -> list[str]:
    entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(KEYS.outbox(SITE)))
    return [fields["comment_id"] for _, fields in entries]


async def test_concurrent_intakes_go_as_one_pipeline_each_with_its_own_outcome(
    store: Store, redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    await store.write_intake(SITE, intake("known"))
    await store.write_intake(SITE, intake("edited", text="v1"))
    pipelines.sizes.clear()

    results = await asyncio.gather(
        store.write_intake(SITE, intake("new-1")),
        store.write_intake(SITE, intake("known")),
        store.write_intake(SITE, intake("known", text="v2", article="a2")),
        store.write_intake(SITE, intake("edited", text="v2")),
        store.write_intake(SITE, intake("new-2")),
        return_exceptions=True,
    )

    assert pipelines.sizes == [5]
    created, unchanged, moved, stale, created_too = results
    assert isinstance(created, tuple)
    assert (created[0], created[1].id, created[1].state) == ("created", "new-1", State.PENDING)
    assert isinstance(unchanged, tuple)
    assert (unchanged[0], unchanged[1].id, unchanged[1].text) == ("unchanged", "known", "hello")
    assert isinstance(moved, ValidationFailed)
    assert [detail["field"] for detail in moved.details] == ["article.id"]
    assert isinstance(stale, StaleContextError)
    assert stale.observed.edit
    assert isinstance(created_too, tuple)
    assert (created_too[0], created_too[1].id) == ("created", "new-2")
    assert await outbox_comments(redis_client) == ["known", "edited", "new-1", "new-2"]
    assert await redis_client.get(KEYS.comment_text(SITE, "edited")) == "v1"
    assert await redis_client.hget(KEYS.comment(SITE, "known"), "article_id") == "a1"


async def test_scripts_flushed_from_redis_are_loaded_again_and_the_batch_runs_once(
    store: Store, redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    await store.write_intake(SITE, intake("before"))
    await redis_client.script_flush()
    pipelines.sizes.clear()

    results = await asyncio.gather(*(store.write_intake(SITE, intake(f"c{n}")) for n in range(4)))

    assert [outcome for outcome, _ in results] == ["created"] * 4
    # Every call got NOSCRIPT (so none ran), then all four went again after one SCRIPT LOAD.
    assert pipelines.sizes == [4, 4]
    assert await redis_client.script_exists(store._scripts["ingest"].sha) == [True]
    assert await outbox_comments(redis_client) == ["before", "c0", "c1", "c2", "c3"]
    assert await redis_client.hget(KEYS.author(SITE, "u1"), "pending") == "5"


async def test_only_the_calls_that_got_noscript_are_sent_again(
    redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    counter = redis_client.register_script("return redis.call('INCR', KEYS[1])")
    echo = redis_client.register_script(ECHO)
    batches = ScriptBatches(redis_client)
    assert await batches.call(counter, ["count"], []) == 1
    await redis_client.script_flush()
    await redis_client.script_load(counter.script)
    pipelines.sizes.clear()

    replies = await asyncio.gather(
        batches.call(counter, ["count"], []),
        batches.call(echo, ["k"], ["v"]),
        batches.call(counter, ["count"], []),
    )

    assert list(replies) == [2, ["k", "v"], 3]
    assert pipelines.sizes == [3, 1]
    assert await redis_client.get("count") == "3"


async def test_a_script_error_fails_its_own_caller_only(
    redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    echo = await loaded(redis_client, ECHO)
    fails = await loaded(redis_client, FAILS)
    batches = ScriptBatches(redis_client)

    replies = await asyncio.gather(
        batches.call(echo, ["a"], ["1"]),
        batches.call(fails, [], ["no"]),
        batches.call(echo, ["b"], [2]),
        return_exceptions=True,
    )

    assert pipelines.sizes == [3]
    first, failed, last = replies
    assert first == ["a", "1"]
    assert isinstance(failed, ResponseError)
    assert "refused: no" in str(failed)
    assert last == ["b", "2"]


async def test_batches_hold_at_most_their_bound_and_keep_the_calls_order(
    redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    append = await loaded(redis_client, "return redis.call('RPUSH', KEYS[1], ARGV[1])")
    batches = ScriptBatches(redis_client, max_batch=2)

    replies = await asyncio.gather(*(batches.call(append, ["list"], [n]) for n in range(5)))

    assert replies == [1, 2, 3, 4, 5]
    assert pipelines.sizes == [2, 2, 1]
    assert await redis_client.lrange("list", 0, -1) == ["0", "1", "2", "3", "4"]


async def test_calls_made_while_a_batch_is_out_go_together_in_the_next(
    redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    echo = await loaded(redis_client, ECHO)
    batches = ScriptBatches(redis_client)
    first = asyncio.create_task(batches.call(echo, ["a"], [1]))
    await pipelines.executing.wait()  # the first batch is on its way
    later = [asyncio.create_task(batches.call(echo, [key], [2])) for key in ("b", "c", "d")]

    assert await first == ["a", "1"]
    assert await asyncio.gather(*later) == [["b", "2"], ["c", "2"], ["d", "2"]]
    assert pipelines.sizes == [1, 3]


async def test_a_caller_gone_before_its_batch_left_is_dropped_and_the_others_answered(
    store: Store, redis_client: aioredis.Redis
) -> None:
    calls = {name: asyncio.create_task(store.write_intake(SITE, intake(name))) for name in "abc"}
    await asyncio.sleep(0)  # all three are waiting for the same batch
    calls["b"].cancel()

    assert (await calls["a"])[0] == "created"
    assert (await calls["c"])[0] == "created"
    with pytest.raises(asyncio.CancelledError):
        await calls["b"]
    assert await outbox_comments(redis_client) == ["a", "c"]
    assert not await redis_client.exists(KEYS.comment(SITE, "b"))


async def test_a_caller_gone_while_its_batch_is_out_does_not_take_the_others_replies(
    redis_client: aioredis.Redis, pipelines: Pipelines
) -> None:
    append = await loaded(redis_client, "return redis.call('RPUSH', KEYS[1], ARGV[1])")
    batches = ScriptBatches(redis_client)
    calls = [asyncio.create_task(batches.call(append, ["list"], [n])) for n in range(3)]
    await pipelines.executing.wait()
    calls[1].cancel()

    assert await calls[0] == 1
    assert await calls[2] == 3
    with pytest.raises(asyncio.CancelledError):
        await calls[1]
    # Sent before its caller left, the call ran; the next batch goes as usual.
    assert await redis_client.lrange("list", 0, -1) == ["0", "1", "2"]
    assert await batches.call(append, ["list"], [3]) == 4
    assert pipelines.sizes == [3, 1]


async def test_an_unreachable_server_fails_every_caller_of_the_batch_with_a_503() -> None:
    with socket.socket() as bound:
        # Bound but not listening: every connection attempt is refused at once.
        bound.bind(("127.0.0.1", 0))
        client = aioredis.Redis(
            port=bound.getsockname()[1],
            decode_responses=True,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), retries=1),
        )
        try:
            store = Store(client, prefix="civ")
            results = await asyncio.gather(
                *(store.write_intake(SITE, intake(f"c{n}")) for n in range(5)),
                return_exceptions=True,
            )
        finally:
            await client.aclose()
    assert all(isinstance(result, StoreUnavailable) for result in results), results
    causes = [result.__cause__ for result in results if isinstance(result, StoreUnavailable)]
    assert all(isinstance(cause, RedisConnectionError) for cause in causes)
