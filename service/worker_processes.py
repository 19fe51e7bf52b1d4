"""Worker processes the event loop talks to directly: one socket pair each, one call in flight.

``ProcessPoolExecutor`` hands every call through a queue-feeder thread, a management thread and
a ``multiprocessing.Queue``: at intake that hand-off was a quarter of the API process's CPU. Here
the loop writes a call as one length-prefixed pickle to an idle worker's socket and reads the
answer from the same socket, with no thread in between. The other end is always our own child,
so pickle is safe.

A worker that dies (the OOM killer, a crash in native code) is replaced; the call it was running
is sent once more, to another worker or to its replacement, and fails with ``WorkerDiedError``
if that one dies too, so a text that kills every worker cannot take the set down with it.
"""

import asyncio
import logging
import multiprocessing
import pickle
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any, Protocol

from service.child_process import follow_parent

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
_PROTOCOL = 5
STOP_SECONDS = 10.0
"""How long a worker has to exit once its socket is closed before it is killed."""


class WorkerDiedError(RuntimeError):
    """The worker process running a call ended before answering it."""


class Workers(Protocol):
    """What a caller needs of worker processes: run a call on one, stop them all."""

    @property
    def pids(self) -> list[int]: ...

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...

    async def close(self) -> None: ...


# In the child.


def _read_exactly(channel: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    read = 0
    while read < size:
        count = channel.recv_into(view[read:])
        if count == 0:
            return None
        read += count
    return bytes(buffer)


def _receive(channel: socket.socket) -> Any:
    header = _read_exactly(channel, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    payload = _read_exactly(channel, size)
    return None if payload is None else pickle.loads(payload)


def _send(channel: socket.socket, answer: tuple[bool, Any]) -> None:
    try:
        payload = pickle.dumps(answer, protocol=_PROTOCOL)
    except Exception:  # an exception or result that does not pickle: say what it was
        payload = pickle.dumps((False, RuntimeError(repr(answer[1]))), protocol=_PROTOCOL)
    channel.sendall(_HEADER.pack(len(payload)) + payload)


def _serve(
    channel: socket.socket, initializer: Callable[..., Any], initargs: Sequence[Any]
) -> None:
    """The child's whole life: start, say so (or why not), then answer calls until EOF."""
    follow_parent()
    try:
        ready = initializer(*initargs)
    except Exception as error:
        # The parent raises it in one line; a traceback here would come first and say less.
        _send(channel, (False, error))
        return
    _send(channel, (True, ready))
    while (request := _receive(channel)) is not None:
        fn, args = request
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except Exception as error:
            answer = (False, error)
        _send(channel, answer)


# In the parent.


class _Worker:
    def __init__(
        self,
        process: ForkServerProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer

    @classmethod
    async def start(
        cls,
        context: ForkServerContext,
        name: str,
        initializer: Callable[..., Any],
        initargs: Sequence[Any],
    ) -> tuple["_Worker", Any]:
        """A started worker and what its initializer returned; raises what it raised."""
        parent_end, child_end = socket.socketpair()
        process = context.Process(
            target=_serve, args=(child_end, initializer, tuple(initargs)), name=name, daemon=True
        )
        try:
            # Starting the fork server the first time imports the preloaded modules: not on
            # the loop.
            await asyncio.to_thread(process.start)
        finally:
            child_end.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker = cls(process, reader, writer)
        try:
            ok, value = await worker._answer()
        except BaseException:
            worker.kill()
            raise
        if not ok:
            await worker.stop()
            raise value
        return worker, value

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        payload = pickle.dumps((fn, args), protocol=_PROTOCOL)
        try:
            self._writer.write(_HEADER.pack(len(payload)) + payload)
            await self._writer.drain()
        except ConnectionError as error:
            raise await self._died() from error
        ok, value = await self._answer()
        if ok:
            return value
        raise value

    async def _answer(self) -> tuple[bool, Any]:
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            answer: tuple[bool, Any] = pickle.loads(await self._reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise await self._died() from error
        return answer

    async def _died(self) -> WorkerDiedError:
        await self._exited()
        code = self.process.exitcode
        how = (
            f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
        )
        self._writer.close()
        return WorkerDiedError(
            f"{self.process.name} process {self.process.pid} {how} before answering"
        )

    def kill(self) -> None:
        self._writer.close()
        self.process.kill()

    async def stop(self) -> None:
        """Close its socket (it exits at EOF); kill it if it has not exited in time."""
        self._writer.close()
        if not await self._exited():
            self.process.kill()
            await self._exited()

    async def _exited(self) -> bool:
        """Whether it exited within ``STOP_SECONDS`` (then reaped)."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        sentinel = self.process.sentinel

        def done() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(sentinel, done)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await exited
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(sentinel)
        self.process.join()  # returns at once: reaps it and sets its exit code
        return True


class WorkerSet:
    """``size`` worker processes, each started by ``initializer(*initargs)``; ``run`` sends a
    call to an idle one (waiting for one when all are busy)."""

    def __init__(
        self,
        context: ForkServerContext,
        name: str,
        initializer: Callable[..., Any],
        initargs: Sequence[Any],
    ) -> None:
        self._context = context
        self._name = name
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._alive: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._calls = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._closed = False

    @classmethod
    async def start(
        cls,
        size: int,
        initializer: Callable[..., Any],
        initargs: Sequence[Any],
        *,
        name: str,
        preload: Sequence[str] = (),
    ) -> tuple["WorkerSet", list[Any]]:
        """Started workers and what each one's initializer returned; raises the first error
        (with every worker stopped)."""
        # forkserver: children start from a clean process that already imported ``preload``,
        # so they neither inherit the event loop's sockets nor pay those imports each.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        workers = cls(context, name, initializer, initargs)
        started = await asyncio.gather(
            *(_Worker.start(context, name, initializer, initargs) for _ in range(size)),
            return_exceptions=True,
        )
        failed = [result for result in started if isinstance(result, BaseException)]
        for result in started:
            if not isinstance(result, BaseException):
                workers._alive.add(result[0])
                workers._idle.append(result[0])
        if failed:
            await workers.close()
            raise failed[0]
        return workers, [result[1] for result in started if not isinstance(result, BaseException)]

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._alive if worker.process.pid is not None]

    async def run(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """``fn(*args)`` in a worker, sent once more if that worker dies."""
        self._calls += 1
        self._quiet.clear()
        try:
            for attempt in range(2):
                worker = await self._acquire()
                try:
                    result = await worker.call(fn, args)
                except WorkerDiedError:
                    self._alive.discard(worker)
                    self._replace()
                    if attempt:
                        raise
                    log.warning("%s worker died; its call goes to another", self._name)
                    continue
                except asyncio.CancelledError:
                    # Its answer would come to the next call: this worker is done.
                    self._alive.discard(worker)
                    self._replace()
                    worker.kill()
                    raise
                except BaseException:
                    self._release(worker)  # the call's own error: the worker answered
                    raise
                self._release(worker)
                return result
            raise AssertionError("unreachable")
        finally:
            self._calls -= 1
            if not self._calls:
                self._quiet.set()

    async def close(self) -> None:
        """Let calls already made finish, then stop every worker."""
        await self._quiet.wait()
        self._closed = True
        # A replacement being started is let finish (a process half started cannot be told
        # apart from one not started), then stopped with the others.
        await asyncio.gather(*self._starting, return_exceptions=True)
        alive, self._alive = list(self._alive), set()
        self._idle.clear()
        await asyncio.gather(*(worker.stop() for worker in alive))
        self._fail_waiters(WorkerDiedError(f"{self._name} workers stopped"))

    async def replaced(self) -> None:
        """Wait until the workers started to replace dead ones have started (or failed to)."""
        await asyncio.gather(*self._starting, return_exceptions=True)

    async def _acquire(self) -> _Worker:
        if self._idle:
            return self._idle.popleft()
        if self._closed:
            raise WorkerDiedError(f"{self._name} workers stopped")
        if not self._alive and not self._starting:
            self._replace()  # the last replacement failed: try again rather than wait forever
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Handed a worker, then cancelled before it resumed: the worker goes to the next
            # caller, or it would never be idle again.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())
            raise

    def _release(self, worker: _Worker) -> None:
        if worker not in self._alive:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _replace(self) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._start_replacement())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_replacement(self) -> None:
        try:
            worker, _ = await _Worker.start(
                self._context, self._name, self._initializer, self._initargs
            )
        except Exception as error:
            log.error("a %s worker could not be started: %s", self._name, error)
            if not self._alive and len(self._starting) <= 1:
                self._fail_waiters(WorkerDiedError(f"no {self._name} worker could start: {error}"))
            return
        self._alive.add(worker)
        self._release(worker)

    def _fail_waiters(self, error: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
