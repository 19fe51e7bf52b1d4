"""Script calls made together on one server, sent as one pipeline of EVALSHAs.

A script call of its own cost the API process redis-py's whole per-command path (the retry
wrapper, taking and giving back a pooled connection, a socket write and a read) and Redis a
read and a write of its own; at intake, many requests reach their script in the same event-loop
iteration. Here the calls made while a batch is being sent (or in the same iteration as the
first) go together in the next one, at most ``max_batch`` of them, on one connection and
without a transaction: each script stays atomic on its own, and each caller gets its own reply
or its own error. Only one batch is in flight at a time, so calls never overtake each other.

The pipeline runs EVALSHA itself rather than redis-py's registered scripts, whose pipeline asks
SCRIPT EXISTS before every batch: a NOSCRIPT reply (Redis restarted or its scripts flushed) loads
that script and sends the calls that got it again, in their order, NOSCRIPT meaning they did not
run.
"""

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

MAX_BATCH = 64
"""Enough for every request of a busy API process in one round trip, few enough that no reply
waits behind a long queue of others."""


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[str | int | float]
    reply: "asyncio.Future[Any]"


class ScriptBatches:
    def __init__(self, redis: aioredis.Redis, max_batch: int = MAX_BATCH) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._waiting: deque[_Call] = deque()
        self._sender: asyncio.Task[None] | None = None

    async def call(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        """The script's reply; raise its error, or what the batch that carried it raised."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Call(script, keys, args, reply))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_batches())
        # A caller going away cancels its own reply only: a call not yet sent is dropped, one
        # already sent runs, and the others' replies are set all the same.
        return await reply

    async def _send_batches(self) -> None:
        try:
            while self._waiting:
                batch: list[_Call] = []
                while self._waiting and len(batch) < self._max_batch:
                    call = self._waiting.popleft()
                    if not call.reply.done():
                        batch.append(call)
                if not batch:
                    continue
                try:
                    replies = await self._send(batch)
                except asyncio.CancelledError:  # the loop is shutting down
                    for call in batch:
                        call.reply.cancel()
                    raise
                except Exception as error:
                    for call in batch:
                        if not call.reply.done():
                            call.reply.set_exception(error)
                else:
                    for call, reply in zip(batch, replies, strict=True):
                        if call.reply.done():  # its caller went away meanwhile
                            continue
                        if isinstance(reply, Exception):
                            call.reply.set_exception(reply)
                        else:
                            call.reply.set_result(reply)
        finally:
            self._sender = None
            while self._waiting:
                self._waiting.popleft().reply.cancel()

    async def _send(self, batch: Sequence[_Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            scripts = {id(batch[index].script): batch[index].script for index in missing}
            for script in scripts.values():
                script.sha = await self._redis.script_load(script.script)
            again = await self._pipeline([batch[index] for index in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, calls: Sequence[_Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command(
                    "EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args
                )
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies
