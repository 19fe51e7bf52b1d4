"""A command's output on stdout, and the error it ends in when stdout does not take it.

stdout may be closed (``>&-``), its reader gone (``| true``, ``| head``) or on a full disk
(``>/dev/full``). Output is flushed as it is written, so such a failure is met in the command,
which can say it in one line, and not at exit in a traceback.
"""

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Protocol


class OutputError(Exception):
    """stdout did not take the command's output."""

    def __init__(self, reason: str, *, reader_left: bool = False) -> None:
        super().__init__(f"cannot write to stdout ({reason})")
        self.reader_left = reader_left


class Sink(Protocol):
    """Where a command writes its output: ``Stdout``, or a test's ``io.StringIO``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...


class Stdout:
    """The process's stdout, raising ``OutputError`` where a write or flush fails."""

    def write(self, text: str, /) -> None:
        if sys.stdout is None:  # started with stdout closed: Python leaves it None
            raise OutputError("it is closed")
        try:
            sys.stdout.write(text)
        except OSError as error:
            raise _failed(error) from None

    def flush(self) -> None:
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
        except OSError as error:
            raise _failed(error) from None


def write_line(text: str) -> None:
    """One line (or lines) of the command's output on stdout, flushed."""
    out = Stdout()
    out.write(f"{text}\n")
    out.flush()


@contextlib.contextmanager
def until_the_reader_leaves() -> Iterator[None]:
    """For a command that only reads: a reader leaving early (``| head``) ends it quietly,
    while stdout failing otherwise is still an ``OutputError``."""
    try:
        yield
    except OutputError as error:
        if not error.reader_left:
            raise


def _failed(error: OSError) -> OutputError:
    # What is left in stdout's buffer would fail again at exit, in Python's own complaint.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    return OutputError(error.strerror or str(error), reader_left=isinstance(error, BrokenPipeError))
