"""Verdict batches of several API processes scored together by one shared worker.

Each API process sends its verdict batches to a worker of its own; with two API processes on two
cores, each worker got batches of about six texts, a quarter of them a single text, and sat idle
most of the time, and a small batch costs several times more per text than a large one. So with
``CIVILITY_API_PROCESSES`` above 1 the first API process's verdict workers also listen in a folder
the ``serve`` parent made, and score the batches that wait together as one call
(``service.worker_processes``). The other API processes send their batches there first.

They keep verdict workers of their own and score there whenever the shared worker does not
answer: none listens yet, its socket broke (it died, or its owner stopped or reloaded it), it is
busy with this process's previous batch, or it refuses because it holds another model than the
one this process scores with (a reload reaching the processes one after the other). Nothing new
owns, restarts or reloads a worker: the shared one is its owner's, as before.
"""

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.api_processes import PROCESS_INDEX_VARIABLE, SHARE_DIR_VARIABLE
from service.worker_processes import (
    Workers,
    batched_columns,
    encode_call,
    read_answer,
    share_socket_paths,
)

RETRY_SECONDS = 1.0
"""How long a peer scores on its own workers before it looks for a shared worker again."""


@dataclass(frozen=True, slots=True)
class Sharing:
    """Where shared workers listen, and whether this process owns them or is a peer."""

    folder: Path
    owner: bool


def sharing_from_environment() -> Sharing | None:
    """This API process's part in sharing, as ``civility serve`` set it; None when it runs alone."""
    folder, index = os.environ.get(SHARE_DIR_VARIABLE), os.environ.get(PROCESS_INDEX_VARIABLE)
    if not folder or index is None:
        return None
    return Sharing(Path(folder), owner=index == "0")


class SharedFirst:
    """The ``Workers`` of a peer: a ``batchable`` call goes to a shared worker of ``name`` in
    ``folder`` when one answers, every other call and every call it does not take to ``own``."""

    def __init__(
        self,
        folder: Path,
        name: str,
        own: Workers,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._folder = folder
        self._name = name
        self._own = own
        self._clock = clock
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._next_look = 0.0
        # Set while no call is at the shared worker: closing waits for one that is.
        self._shared_idle = asyncio.Event()
        self._shared_idle.set()
        self.shared_calls = 0
        """Calls the shared worker answered (the rest went to this process's own workers)."""

    @property
    def pids(self) -> list[int]:
        return self._own.pids

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        if batched_columns(fn) is not None and self._shared_idle.is_set():
            # Busy from the first await: a second call meanwhile must not connect or send too.
            self._shared_idle.clear()
            try:
                connection = await self._connect()
                if connection is not None:
                    try:
                        value = await _call(connection, fn, args)
                    except Exception:
                        # Broken, or refused (another model): this call goes to our own workers.
                        self._drop()
                    except BaseException:
                        # Cancelled mid-call: its answer would reach the next call.
                        self._drop()
                        raise
                    else:
                        self.shared_calls += 1
                        return value
            finally:
                self._shared_idle.set()
        return await self._own.run(fn, *args)

    async def close(self) -> None:
        """Let a call at the shared worker finish (a reload drops no request), then stop."""
        await self._shared_idle.wait()
        self._drop()
        await self._own.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if self._connection is not None:
            return self._connection
        now = self._clock()
        if now < self._next_look:
            return None
        self._next_look = now + RETRY_SECONDS
        for path in share_socket_paths(self._folder, self._name):
            with contextlib.suppress(OSError):  # a socket left by a killed worker refuses
                self._connection = await asyncio.open_unix_connection(str(path))
                return self._connection
        return None

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection[1].close()
            self._connection = None


async def _call(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> Any:
    reader, writer = connection
    writer.write(encode_call(fn, args))
    await writer.drain()
    ok, value = await read_answer(reader)
    if ok:
        return value
    raise value
