"""The ``civility`` entry point stays light: multiprocessing runs it again in every worker."""

import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("aiohttp", "classifier", "pydantic", "redis", "sklearn", "service.commands")


def _loaded_after(statement: str) -> list[str]:
    check = (
        f"import json, sys\n{statement}\n"
        f"heavy = {HEAVY!r}\n"
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
        "    service.cli.main(['--help'])"
    )
    assert "service.commands" in loaded
    assert "aiohttp" in loaded
