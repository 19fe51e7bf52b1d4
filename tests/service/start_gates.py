"""Gates a starting process stops at, so that a test can press Ctrl-C at that very moment.

At a gate the process writes the gate's name and its own id to the FIFO ``reached`` in the
folder named by ``CIVILITY_TEST_GATES``, then waits, blocked in a read of the FIFO ``through``,
until the test lets it through. The test holds both FIFOs open for reading and writing from the
start: neither side's open ever blocks, and a process that dies at a gate leaves nothing hung.

The side of the processes imports nothing but ``os``: it runs in fork servers and in processes
still unpickling what they were started with."""

import asyncio
import os
from pathlib import Path
from typing import Any

FOLDER_VARIABLE = "CIVILITY_TEST_GATES"


def wait_at(name: str, value: Any = None) -> Any:
    """Say that this process reached gate ``name``, wait until let through, return ``value``."""
    folder = os.environ[FOLDER_VARIABLE]
    with open(os.path.join(folder, "reached"), "w", encoding="utf-8") as reached:
        reached.write(f"{name} {os.getpid()}\n")
    with open(os.path.join(folder, "through"), "rb", buffering=0) as through:
        through.read(1)
    return value


class Gated:
    """``value`` as it is unpickled: the process unpickling it waits at gate ``name`` first."""

    def __init__(self, name: str, value: Any = None) -> None:
        self.name = name
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[str, Any]]:
        return wait_at, (self.name, self.value)


class Gates:
    """The test's side of the gates in ``folder``: which process reached which gate, and letting
    it through."""

    def __init__(self, folder: Path) -> None:
        os.mkfifo(folder / "reached")
        os.mkfifo(folder / "through")
        self.env = {FOLDER_VARIABLE: str(folder)}
        self._reached = os.open(folder / "reached", os.O_RDWR | os.O_NONBLOCK)
        self._through = os.open(folder / "through", os.O_RDWR)
        self._said = b""

    async def reached(self) -> tuple[str, int]:
        """The next gate a process reached, and that process's id."""
        loop = asyncio.get_running_loop()
        while b"\n" not in self._said:
            readable = asyncio.Event()
            loop.add_reader(self._reached, readable.set)
            try:
                await readable.wait()
            finally:
                loop.remove_reader(self._reached)
            self._said += os.read(self._reached, 4096)
        line, _, self._said = self._said.partition(b"\n")
        name, _, pid = line.decode().rpartition(" ")
        return name, int(pid)

    def let_through(self) -> None:
        """Let the process waiting at a gate go on."""
        os.write(self._through, b".")

    def close(self) -> None:
        os.close(self._reached)
        os.close(self._through)
