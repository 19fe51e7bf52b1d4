"""The ``civility`` entry point stays light: multiprocessing runs it again in every worker."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from service.cli import main
from service.commands import MODULES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("aiohttp", "classifier", "pydantic", "redis", "sklearn", "service.commands")


def _loaded_after(statement: str, heavy: Sequence[str] = HEAVY) -> list[str]:
    check = (
        f"import json, sys\n{statement}\n"
        f"heavy = {tuple(heavy)!r}\n"
        "print(json.dumps(sorted({name for name in sys.modules for top in heavy "
        "if name == top or name.startswith(top + '.')})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_the_entry_point_loads_no_command() -> None:
    assert _loaded_after("import service.cli") == []


def test_the_entry_point_loads_the_commands_when_it_runs() -> None:
    # The same check fails when the commands are not reached: the test above means something.
    loaded = _loaded_after(
        "import contextlib, io, service.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    service.cli.main(['--help'])",
        (*HEAVY, *MODULES),
    )
    assert "service.commands" in loaded
    # The help lists every command: each command's module registered its own.
    assert set(MODULES) <= set(loaded)


@pytest.mark.parametrize(
    ("argv", "unused"),
    [
        (["score", "--help"], ["aiohttp", "redis", "pydantic", "service.settings"]),
        (["sites", "--help"], ["aiohttp", "classifier.cli", "service.serve_cli"]),
        (["model", "list", "--help"], ["aiohttp", "classifier.cli", "service.serve_cli"]),
        # The serving part, with the web stack and the model's libraries, only where it serves.
        (["serve", "--help"], ["aiohttp", "sklearn", "service.serving", "classifier.cli"]),
    ],
    ids=["score", "sites", "model list", "serve"],
)
def test_a_command_loads_its_own_modules_not_the_other_commands(
    argv: list[str], unused: list[str]
) -> None:
    """`civility --help` above loads them all."""
    statement = (
        "import contextlib, io, service.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    service.cli.main({argv!r})"
    )
    assert _loaded_after(statement, unused) == []


# A command that leaves what a normal exit finishes: an atexit handler, a temporary folder its
# finalizer removes, a daemon child multiprocessing ends, and more output than a pipe holds still
# in stdout's buffer. An object of the script's own says whether the modules were torn down.
ENDING = """
import atexit, multiprocessing, os, sys, tempfile, time
import service.cli

class Witness:
    def __del__(self, write=os.write):
        write(2, b"torn down\\n")

witness = Witness()
folder = tempfile.TemporaryDirectory()
atexit.register(lambda: print("atexit ran", file=sys.stderr))
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), daemon=True)
child.start()

def command(argv=None):
    print(folder.name, child.pid)
    print("x" * 200_000)
    return 3

service.cli.main = command
service.cli.entry()
"""


def _unbuffered_off() -> dict[str, str]:
    """The environment without PYTHONUNBUFFERED, so stdout buffers as it does for a user."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def test_the_command_ends_once_its_exit_work_is_done_without_tearing_the_modules_down() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENDING],
        cwd=PROJECT_ROOT,
        env=_unbuffered_off(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    first, rest = done.stdout.split("\n", 1)
    folder, pid = first.split()
    try:
        assert done.returncode == 3
        assert rest == "x" * 200_000 + "\n"
        assert done.stderr == "atexit ran\n"
        assert not Path(folder).exists()
        assert not Path(f"/proc/{pid}").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


@pytest.mark.parametrize(
    ("argv", "status"), [(["--help"], 0), (["sites", "--help"], 0), (["no-such-command"], 2)]
)
def test_the_command_s_status_and_output_come_out_whole_through_a_pipe(
    argv: list[str], status: int
) -> None:
    """argparse ends these through SystemExit, which the entry takes for the status it carries."""
    out, err = io.StringIO(), io.StringIO()
    expected: object
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            expected = main(argv)
        except SystemExit as stop:
            expected = stop.code
    assert expected == status
    done = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        cwd=PROJECT_ROOT,
        env=_unbuffered_off(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (status, out.getvalue(), err.getvalue())
