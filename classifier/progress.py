"""Progress of long commands, on stderr and only on a terminal: stdout stays the command's data
(JSON Lines, tables), and logs of a non-interactive run get no bar noise."""

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TextIO, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
# A step with no items to count still shows that it is alive, this often.
REFRESH_SECONDS = 1.0


class Progress:
    """Bars for a command; silent when ``quiet`` or when ``stream`` is not a terminal."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.shown = not quiet and self.stream.isatty()

    def over(self, items: Iterable[Item], description: str, *, unit: str = "it") -> Iterator[Item]:
        """``items``, counted on a bar while they are consumed."""
        if not self.shown:
            yield from items
            return
        total = len(items) if isinstance(items, Sized) else None
        with tqdm(
            items, desc=description, total=total, unit=unit, file=self.stream, dynamic_ncols=True
        ) as bar:
            yield from bar

    @contextlib.contextmanager
    def counting(self, description: str, *, unit: str = "it") -> Iterator[Callable[[], None]]:
        """A counter of items produced one by one (an async stream): call it once per item."""
        if not self.shown:
            yield lambda: None
            return
        with tqdm(desc=description, unit=unit, file=self.stream, dynamic_ncols=True) as bar:

            def count() -> None:
                bar.update(1)

            yield count

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """One long step with nothing to count: its name and the time it has taken so far."""
        if not self.shown:
            yield
            return
        with tqdm(
            total=1, desc=description, file=self.stream, bar_format="{desc}: {elapsed}"
        ) as bar:
            done = threading.Event()
            ticker = threading.Thread(target=_refresh, args=(bar, done), daemon=True)
            ticker.start()
            try:
                yield
            finally:
                done.set()
                ticker.join()
                bar.update(1)


def _refresh(bar: "tqdm[None]", done: threading.Event) -> None:
    while not done.wait(REFRESH_SECONDS):
        bar.refresh()


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (none is shown off a terminal)"
    )


QUIET = Progress(quiet=True)
"""For library calls: no bars unless a command asks for them."""
