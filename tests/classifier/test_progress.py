"""Progress bars: on a terminal's stderr only, never with ``--quiet``, never in stdout's data."""

import fcntl
import io
import json
import os
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from classifier.progress import Progress

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A pseudo-terminal: the stream a command writes to, and the descriptor to read it from."""
    reader, writer = os.openpty()
    # A terminal of 100 columns (a fresh pseudo-terminal reports none, and bars need a width).
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    stream = open(writer, "w")  # noqa: SIM115 - closed below
    try:
        yield stream, reader
    finally:
        stream.close()
        os.close(reader)


def _read_all(descriptor: int) -> str:
    chunks = []
    while select.select([descriptor], [], [], 0.5)[0]:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # the writer side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_sees_the_bar(terminal: tuple[TextIO, int]) -> None:
    stream, reader = terminal
    progress = Progress(stream=stream)
    assert list(progress.over(range(5), "reading datasets", unit="set")) == [0, 1, 2, 3, 4]
    with progress.step("fitting"):
        pass
    with progress.counting("exporting labels", unit="label") as count:
        count()
        count()
    stream.flush()
    shown = _read_all(reader)
    assert "reading datasets" in shown
    assert "5/5" in shown
    assert "fitting" in shown
    assert "exporting labels: 2label" in shown


def test_quiet_or_not_a_terminal_shows_nothing(terminal: tuple[TextIO, int]) -> None:
    stream, reader = terminal
    for progress in (Progress(stream=stream, quiet=True), Progress(stream=io.StringIO())):
        assert list(progress.over(iter("abc"), "reading datasets")) == ["a", "b", "c"]
        with progress.step("fitting"), progress.counting("exporting") as count:
            count()
    stream.flush()
    assert _read_all(reader) == ""
    piped = io.StringIO()
    list(Progress(stream=piped).over(range(3), "x"))
    assert piped.getvalue() == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_score_keeps_progress_out_of_its_json_lines(
    terminal: tuple[TextIO, int], quiet: bool
) -> None:
    stream, reader = terminal
    lines = "".join(json.dumps({"id": str(n), "text": f"comment {n}"}) + "\n" for n in range(300))
    done = subprocess.run(
        [sys.executable, "-m", "service", "score", *(["--quiet"] if quiet else [])],
        cwd=PROJECT_ROOT,
        input=lines.encode(),
        stdout=subprocess.PIPE,
        stderr=stream,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0
    written = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [entry["id"] for entry in written] == [str(n) for n in range(300)]
    shown = _read_all(reader)
    assert ("scoring" in shown and "300" in shown) is not quiet
