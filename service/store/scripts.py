"""The Lua scripts of ``service/lua`` run by sha on one Redis client, its failures as 503s."""

import ast
import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.asyncio.connection as redis_connection
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.errors import StoreUnavailable
from service.keys import KeySpace
from service.store.script_batches import ScriptBatches

RedisClient = aioredis.Redis | RedisCluster
"""A single server (or Sentinel-managed primary) or a Redis Cluster: the scripts run on both."""


UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    # A failover under way: a Cluster with a slot unserved or a primary down, a key migrating,
    # a Sentinel-named primary demoted to replica before the client follows.
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,
    # At its maxmemory (with noeviction, as the store needs), Redis refuses every write until
    # the worker's trims or the operator give it room.
    OutOfMemoryError,
)
"""Redis errors of a store that is away for now: the request may succeed when sent again."""
CANNOT_PERSIST = "MISCONF"
"""What Redis's refusal of writes starts with while it cannot persist (a full or failing disk, a
snapshot that failed): it takes them again once it can. redis-py has no class of its own for it."""
NO_REPLICAS = "NOREPLICAS"
"""What a primary set to write only with replicas behind it (``min-replicas-to-write``) answers
while too few are connected (one lost in a failover): it takes writes again once they are back.
No class of its own either."""
SCRIPT_BUSY = "BUSY "
"""What Redis answers every command while a script runs past ``busy-reply-threshold`` (one of
ours on a slow server, or another client's): it answers again once the script ends or is killed.
The space keeps out BUSYGROUP and BUSYKEY, which are answers about a key, not Redis being away."""
UNBLOCKED = "UNBLOCKED "
"""What Redis answers a blocking read (the event stream's XREAD) that it ends on becoming a
replica, a primary demoted in a failover: the read succeeds again on the new primary."""


IN_PIPELINE = re.compile(r"Command # \d+ \(.*\) of pipeline caused error: (.*)", re.DOTALL)
"""How redis-py rewrites the message of an error a pipeline (or transaction) raises: the failing
command, then Redis's reply, as the error's ``args`` tuple (the single-server client) or as is
(the Cluster client). The reply's own text is kept nowhere else."""


def is_unavailable(error: BaseException) -> bool:
    """Whether a Redis error is the store being away for now (down, unreachable, failing over,
    full, unable to persist or busy running a script) rather than a bug."""
    if isinstance(error, UNAVAILABLE) or closed_while_opening(error):
        return True
    return isinstance(error, ResponseError) and redis_reply(error).startswith(
        (CANNOT_PERSIST, NO_REPLICAS, SCRIPT_BUSY, UNBLOCKED)
    )


def redis_reply(error: RedisError) -> str:
    """Redis's whole error reply, the same whether it came alone or inside a pipeline, where
    redis-py puts the failing command before it, and with its first word, which redis-py keeps
    apart (``status_code``) where it has a class of its own for it (``OOM``, ``READONLY``,
    ``ERR``). An error Redis did not reply (a connection's) is its message."""
    reply = _reply_text(str(error))
    return f"{error.status_code} {reply}" if error.status_code else reply


def _reply_text(message: str) -> str:
    in_pipeline = IN_PIPELINE.fullmatch(message)
    if in_pipeline is None:
        return message
    reply = in_pipeline.group(1)
    if not reply.startswith("("):
        return reply
    try:
        args = ast.literal_eval(reply)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return reply
    return str(args[0]) if isinstance(args, tuple) and args else reply


def store_unavailable(error: BaseException) -> StoreUnavailable:
    """``StoreUnavailable`` caused by ``error`` (one ``is_unavailable`` accepts), saying what
    Redis replied whole."""
    said = redis_reply(error) if isinstance(error, RedisError) else None
    unavailable = StoreUnavailable(said=said)
    unavailable.__cause__ = error
    return unavailable


def closed_while_opening(error: BaseException) -> bool:
    """Whether ``error`` is redis-py's connection closed by another task while it was opening.

    A Cluster client whose node failed closes every connection of its nodes, those still in
    their handshake too, and the handshake's next write then finds the connection's stream
    writer gone: an ``AttributeError`` on None rather than a ``ConnectionError``. Known only by
    that: None in place of the writer, raised inside redis-py's connection module."""
    if not isinstance(error, AttributeError) or error.obj is not None:
        return False
    if error.name is None or not hasattr(asyncio.StreamWriter, error.name):
        return False
    innermost = error.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    module = innermost.tb_frame.f_globals.get("__name__") if innermost is not None else None
    return module == redis_connection.__name__


def raise_unavailable(replies: Iterable[object]) -> None:
    """Raise the first of a pipeline's replies that is the store being away (``is_unavailable``).

    A pipeline run with ``raise_on_error=False`` hands each command's error back in its place,
    so one site's broken key does not cost the others their replies. A refusal of the store's
    (a failover's ``READONLY`` or ``NOREPLICAS``, ``OOM``, ``MISCONF``, ``BUSY``) comes back the
    same way, but says nothing about the keys of the command that met it: the whole call is the
    store being unavailable. Under ``store_errors`` it becomes ``StoreUnavailable``."""
    for reply in replies:
        if isinstance(reply, Exception) and is_unavailable(reply):
            raise reply


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn Redis being unavailable (down, unreachable, failing over) into ``StoreUnavailable``
    (503)."""
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise store_unavailable(error) from error
        raise


class LuaScripts:
    """Scripts of ``service/lua`` registered once and called by sha (loaded again on NOSCRIPT,
    so they survive a Redis restart); connection failures become 503s. On a single server,
    concurrent calls go together as one pipeline (``ScriptBatches``); a Cluster spreads them
    over its nodes and the replica WAIT needs each write's own connection, so those call one by
    one."""

    def __init__(
        self,
        redis: RedisClient,
        names: Sequence[str],
        *,
        with_library: bool,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        self._redis = redis
        self._replicas = replicas
        self._replica_wait_ms = replica_wait_ms
        if isinstance(redis, RedisCluster):
            decodes = redis.get_connection_kwargs().get("decode_responses")
        else:
            decodes = redis.connection_pool.connection_kwargs.get("decode_responses")
        if not decodes:
            raise ValueError("civility needs a Redis client created with decode_responses=True")
        lua = resources.files("service") / "lua"
        prelude = (lua / "_lib.lua").read_text(encoding="utf-8") + "\n" if with_library else ""
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(prelude + (lua / f"{name}.lua").read_text(encoding="utf-8"))
            for name in names
        }
        self._batches = (
            ScriptBatches(redis) if isinstance(redis, aioredis.Redis) and not replicas else None
        )

    def __getitem__(self, name: str) -> AsyncScript:
        return self._scripts[name]

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        with store_errors():
            if self._batches is not None:
                return await self._batches.call(self._scripts[name], keys, args)
            if not self._replicas:
                return await self._scripts[name](keys=keys, args=args)
            return await self._run_replicated(self._scripts[name], keys, args)

    async def _run_replicated(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        # WAIT counts the replicas holding the writes of its own connection, so the script and
        # the WAIT travel down one connection as a pipeline.
        assert isinstance(self._redis, aioredis.Redis)  # settings refuse WAIT on a cluster
        async with self._redis.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.wait(self._replicas, self._replica_wait_ms)
            result, replicated = await pipe.execute()
        if replicated < self._replicas:
            # Written on the primary only: a failover now could lose it, so it is not
            # acknowledged; the caller retries and the store's idempotency absorbs the repeat.
            raise StoreUnavailable(
                f"the write reached {replicated} of {self._replicas} replicas in "
                f"{self._replica_wait_ms} ms, retry later"
            )
        return result


class ScriptedStore:
    """What each part of the store works with: the client, its key space and its scripts."""

    redis: RedisClient
    keys: KeySpace
    _run: Callable[[str, Sequence[str], Sequence[str | int | float]], Awaitable[Any]]
