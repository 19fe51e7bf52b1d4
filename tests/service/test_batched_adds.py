"""Marks asked for together share one SADD, a mark never rides a SADD already sent, and a
failed SADD fails every mark it carried."""

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from service.batched_adds import BatchedAdds
from service.errors import StoreUnavailable

KEY = "changed"


class Recorded:
    """SADDs to a real Redis, each one's members recorded."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.sent: list[list[str]] = []

    async def __call__(self, members: Sequence[str]) -> None:
        self.sent.append(list(members))
        await self.redis.sadd(KEY, *members)


async def test_marks_asked_for_together_share_one_sadd(redis_client: aioredis.Redis) -> None:
    send = Recorded(redis_client)
    adds = BatchedAdds(send)

    await asyncio.gather(*(adds.add(site) for site in ["a", "b", "a", "c"]))

    assert send.sent == [["a", "b", "c"]]
    assert await redis_client.smembers(KEY) == {"a", "b", "c"}


async def test_a_mark_asked_for_while_a_sadd_is_out_goes_in_the_next(
    redis_client: aioredis.Redis,
) -> None:
    sent_first = asyncio.Event()
    release_first = asyncio.Event()
    send = Recorded(redis_client)

    async def held(members: Sequence[str]) -> None:
        if not send.sent:
            sent_first.set()
            await release_first.wait()
        await send(members)

    adds = BatchedAdds(held)
    first = asyncio.create_task(adds.add("a"))
    await sent_first.wait()
    second = asyncio.create_task(adds.add("b"))
    third = asyncio.create_task(adds.add("a"))
    await asyncio.sleep(0)
    assert not second.done()
    release_first.set()
    await asyncio.gather(first, second, third)

    assert send.sent == [["a"], ["b", "a"]]


async def test_a_failed_sadd_fails_each_mark_it_carried_and_the_next_is_sent() -> None:
    calls: list[list[str]] = []

    async def failing(members: Sequence[str]) -> None:
        calls.append(list(members))
        if len(calls) == 1:
            raise StoreUnavailable()

    adds = BatchedAdds(failing)
    outcomes = await asyncio.gather(adds.add("a"), adds.add("b"), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [StoreUnavailable, StoreUnavailable]

    await adds.add("c")
    assert calls == [["a", "b"], ["c"]]


async def test_a_caller_gone_does_not_cancel_the_others_sadd(
    redis_client: aioredis.Redis,
) -> None:
    send = Recorded(redis_client)
    adds = BatchedAdds(send)
    gone = asyncio.create_task(adds.add("a"))
    staying = asyncio.create_task(adds.add("b"))
    await asyncio.sleep(0)
    gone.cancel()

    await staying
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert send.sent == [["a", "b"]]
    assert await redis_client.smembers(KEY) == {"a", "b"}
