"""Worker processes the event loop talks to directly: one socket pair each, one call in flight.

``ProcessPoolExecutor`` hands every call through a queue-feeder thread, a management thread and
a ``multiprocessing.Queue``: at intake that hand-off was a quarter of the API process's CPU. Here
the loop writes a call as one length-prefixed pickle to an idle worker's socket and reads the
answer from the same socket, with no thread in between. The other end is always our own child,
so pickle is safe.

A worker that dies (the OOM killer, a crash in native code) is replaced; the call it was running
is sent once more, to another worker or to its replacement, and fails with ``WorkerDiedError``
if that one dies too, so a text that kills every worker cannot take the set down with it. One
that died while idle is replaced before a call is sent to it.

A set started with ``share_dir`` also serves other processes: each of its workers listens on a
unix socket there, and the calls of a ``batchable`` function that wait together, from its owner
and from those peers (``service.shared_scoring``), run as one call. That is how several API
processes score in one batch what each would have scored in a small one of its own.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import secrets
import selectors
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any, Protocol, TypeVar

from service.child_process import follow_parent, start_child

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
_PROTOCOL = 5
MAX_SOCKET_PATH_BYTES = 100
"""The longest unix socket path every platform binds (Linux allows 107 bytes, macOS 103)."""
STOP_SECONDS = 10.0
"""How long a worker has to exit once its socket is closed before it is killed."""


class WorkerDiedError(RuntimeError):
    """The worker process running a call ended before answering it."""


Call = TypeVar("Call", bound=Callable[..., Any])
_BATCHED_COLUMNS = "_batched_columns"


def batchable(columns: int) -> Callable[[Call], Call]:
    """Mark a worker function whose first ``columns`` arguments are parallel sequences (one item
    per text) and whose answer is a list with one item per text: calls of it that wait together
    in a shared worker, with equal other arguments, run as one call on the sequences joined."""

    def mark(fn: Call) -> Call:
        setattr(fn, _BATCHED_COLUMNS, columns)
        return fn

    return mark


def batched_columns(fn: Callable[..., Any]) -> int | None:
    """The ``columns`` ``batchable`` gave ``fn``; None when it was not marked."""
    columns: int | None = getattr(fn, _BATCHED_COLUMNS, None)
    return columns


def share_socket_paths(share_dir: Path, name: str) -> list[Path]:
    """The sockets of a set's shared workers in ``share_dir``, the newest first (a reload's
    workers come after the ones they replace)."""
    found = []
    for path in share_dir.glob(f"{name}-*.sock"):
        with contextlib.suppress(OSError):  # a worker removing its socket as we look
            found.append((path.stat().st_mtime_ns, path))
    return [path for _, path in sorted(found, reverse=True)]


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


def encode_call(fn: Callable[..., Any], args: Sequence[Any]) -> bytes:
    """A call as the worker reads it: its length, then the pickle of the function and its
    arguments."""
    payload = pickle.dumps((fn, tuple(args)), protocol=_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


async def read_answer(reader: asyncio.StreamReader) -> tuple[bool, Any]:
    """A worker's answer: whether the call returned, and what it returned or raised."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    answer: tuple[bool, Any] = pickle.loads(await reader.readexactly(size))
    return answer


def _send(channel: socket.socket, answer: tuple[bool, Any]) -> None:
    try:
        payload = pickle.dumps(answer, protocol=_PROTOCOL)
    except Exception:  # an exception or result that does not pickle: say what it was
        payload = pickle.dumps((False, RuntimeError(repr(answer[1]))), protocol=_PROTOCOL)
    channel.sendall(_HEADER.pack(len(payload)) + payload)


def _serve(
    channel: socket.socket,
    initializer: Callable[..., Any],
    initargs: Sequence[Any],
    share_path: str | None = None,
) -> None:
    """The child's whole life: start, say so (or why not), then answer calls until EOF."""
    follow_parent()
    try:
        ready = initializer(*initargs)
    except Exception as error:
        # The parent raises it in one line; a traceback here would come first and say less.
        _send(channel, (False, error))
        return
    if share_path is not None:
        # Listening before it says it is ready: a peer looking once it is finds the socket.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(share_path)
        listener.listen()
        _send(channel, (True, ready))
        _serve_shared(channel, listener, share_path)
        return
    _send(channel, (True, ready))
    while (request := _receive(channel)) is not None:
        fn, args = request
        _send(channel, _answer(fn, args))


def _answer(fn: Callable[..., Any], args: Sequence[Any]) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except Exception as error:
        return False, error


def _serve_shared(owner: socket.socket, listener: socket.socket, path: str) -> None:
    """Answer the owner and the peers that connect to ``listener`` (at ``path``) until the owner
    closes its end; the peers are then let go (they score on their own workers)."""
    selector = selectors.DefaultSelector()
    selector.register(owner, selectors.EVENT_READ)
    selector.register(listener, selectors.EVENT_READ)
    peers: list[socket.socket] = []
    try:
        while True:
            waiting: list[tuple[socket.socket, Any]] = []
            for key, _ in selector.select():
                connection: socket.socket = key.fileobj  # type: ignore[assignment]
                if connection is listener:
                    peer, _ = listener.accept()
                    peers.append(peer)
                    selector.register(peer, selectors.EVENT_READ)
                    continue
                try:
                    request = _receive(connection)
                except Exception:
                    # A peer's broken message or connection ends that peer, not the worker.
                    if connection is owner:
                        raise
                    request = None
                if request is not None:
                    waiting.append((connection, request))
                elif connection is owner:
                    return
                else:
                    selector.unregister(connection)
                    peers.remove(connection)
                    connection.close()
            for group in _together(waiting):
                for connection, answer in _run_together(group):
                    # A peer gone meanwhile: the next select finds its end closed and drops it.
                    with contextlib.suppress(OSError):
                        _send(connection, answer)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        for connection in [listener, *peers]:
            connection.close()


def _together(
    waiting: Sequence[tuple[socket.socket, Any]],
) -> Iterator[list[tuple[socket.socket, Any]]]:
    """The waiting calls in groups that run as one: the calls of one ``batchable`` function with
    equal other arguments together, every other call alone; in the order they came."""
    groups: dict[Any, list[tuple[socket.socket, Any]]] = {}
    for index, (connection, (fn, args)) in enumerate(waiting):
        columns = batched_columns(fn)
        key: Any = index if columns is None else (fn, tuple(args[columns:]))
        try:
            hash(key)
        except TypeError:  # other arguments that cannot be compared: the call goes alone
            key = index
        groups.setdefault(key, []).append((connection, (fn, args)))
    yield from groups.values()


def _run_together(
    group: list[tuple[socket.socket, Any]],
) -> list[tuple[socket.socket, tuple[bool, Any]]]:
    fn, first_args = group[0][1]
    if len(group) == 1:
        return [(group[0][0], _answer(fn, first_args))]
    columns = batched_columns(fn)
    assert columns is not None, "only batchable calls are grouped"
    joined = [
        list(chain.from_iterable(args[column] for _, (_, args) in group))
        for column in range(columns)
    ]
    ok, value = _answer(fn, [*joined, *first_args[columns:]])
    if not ok:
        return [(connection, (False, value)) for connection, _ in group]
    answers = []
    start = 0
    for connection, (_, args) in group:
        end = start + len(args[0])
        answers.append((connection, (True, value[start:end])))
        start = end
    return answers


# In the parent.


class _Worker:
    def __init__(
        self,
        process: ForkServerProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        share_path: str | None = None,
    ) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self._share_path = share_path

    @classmethod
    async def start(
        cls,
        context: ForkServerContext,
        name: str,
        initializer: Callable[..., Any],
        initargs: Sequence[Any],
        share_dir: Path | None = None,
    ) -> tuple["_Worker", Any]:
        """A started worker and what its initializer returned; raises what it raised. With
        ``share_dir``, it also serves peers on a socket of its own there."""
        parent_end, child_end = socket.socketpair()
        share_path = (
            None if share_dir is None else str(share_dir / f"{name}-{secrets.token_hex(4)}.sock")
        )
        if share_path is not None and len(share_path.encode()) > MAX_SOCKET_PATH_BYTES:
            log.warning("%s is too long a socket path: this worker is not shared", share_path)
            share_path = None
        process = context.Process(
            target=_serve,
            args=(child_end, initializer, tuple(initargs), share_path),
            name=name,
            daemon=True,
        )
        try:
            # Starting the fork server the first time imports the preloaded modules: not on
            # the loop.
            await asyncio.to_thread(start_child, process)
        finally:
            child_end.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker = cls(process, reader, writer, share_path)
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
        message = encode_call(fn, args)
        try:
            self._writer.write(message)
            await self._writer.drain()
        except ConnectionError as error:
            raise await self._died() from error
        ok, value = await self._answer()
        if ok:
            return value
        raise value

    async def _answer(self) -> tuple[bool, Any]:
        try:
            return await read_answer(self._reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise await self._died() from error

    async def _died(self) -> WorkerDiedError:
        await self._exited()
        self.clear_away()
        return WorkerDiedError(
            f"{self.process.name} process {self.process.pid} {self.how_it_ended()} before answering"
        )

    def clear_away(self) -> None:
        """Once it has exited: close our end, and remove its socket if it was shared."""
        if self._share_path is not None:
            # A killed worker could not remove its socket: peers would find it and be refused.
            with contextlib.suppress(OSError):
                os.unlink(self._share_path)
        self._writer.close()

    def how_it_ended(self) -> str:
        code = self.process.exitcode
        return (
            f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
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
    call to an idle one (waiting for one when all are busy). With ``share_dir``, each worker
    (a replacement too) also serves peers there."""

    def __init__(
        self,
        context: ForkServerContext,
        name: str,
        initializer: Callable[..., Any],
        initargs: Sequence[Any],
        share_dir: Path | None = None,
    ) -> None:
        self._context = context
        self._name = name
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._share_dir = share_dir
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._alive: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._burying: set[asyncio.Task[None]] = set()
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
        share_dir: Path | None = None,
    ) -> tuple["WorkerSet", list[Any]]:
        """Started workers and what each one's initializer returned; raises the first error
        (with every worker stopped)."""
        # forkserver: children start from a clean process that already imported ``preload`` and
        # the initializer's module (which each child would otherwise import to unpickle it: 0.25 s
        # and ~24 MB of its own for a scoring worker), so they neither inherit the event loop's
        # sockets nor pay those imports each. The first set started decides for the process.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([initializer.__module__, *preload])
        workers = cls(context, name, initializer, initargs, share_dir)
        started = await asyncio.gather(
            *(_Worker.start(context, name, initializer, initargs, share_dir) for _ in range(size)),
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
                    self._bury(worker)
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

    def closing(self) -> None:
        """Take no call and replace no worker from now on, ahead of ``close``: a call cut short
        meanwhile (its worker killed) needs no replacement, which ``close`` would wait for while
        it loads."""
        self._closed = True

    async def close(self) -> None:
        """Let calls already made finish, then stop every worker."""
        await self._quiet.wait()
        self._closed = True
        # A replacement being started is let finish (a process half started cannot be told
        # apart from one not started), then stopped with the others.
        await asyncio.gather(*self._starting, return_exceptions=True)
        alive, self._alive = list(self._alive), set()
        self._idle.clear()
        await asyncio.gather(*(worker.stop() for worker in alive), *self._burying)
        self._fail_waiters(WorkerDiedError(f"{self._name} workers stopped"))

    async def replaced(self) -> None:
        """Wait until the workers started to replace dead ones have started (or failed to)."""
        await asyncio.gather(*self._starting, return_exceptions=True)

    async def _acquire(self) -> _Worker:
        while self._idle:
            worker = self._idle.popleft()
            if worker.process.is_alive():
                return worker
            # Killed while idle (the OOM killer): not the call's doing, so it is replaced here
            # rather than use up the call's one retry, or two such workers would fail the call.
            log.warning(
                "%s process %s %s while idle", self._name, worker.process.pid, worker.how_it_ended()
            )
            self._alive.discard(worker)
            worker.clear_away()
            self._replace()
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

    def _bury(self, worker: _Worker) -> None:
        """Reap a killed worker and remove its shared socket once it has exited: ``close`` waits
        for this, so no process outlives the set."""

        async def bury() -> None:
            await worker.stop()
            worker.clear_away()

        task = asyncio.get_running_loop().create_task(bury())
        self._burying.add(task)
        task.add_done_callback(self._burying.discard)

    def _replace(self) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._start_replacement())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_replacement(self) -> None:
        try:
            worker, _ = await _Worker.start(
                self._context, self._name, self._initializer, self._initargs, self._share_dir
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
