"""What the serving processes import: the report's plotting library is not among it."""

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_serving_never_loads_matplotlib() -> None:
    check = (
        "import sys, service.commands, service.app, service.scoring\n"
        "service.commands.build_parser()\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'matplotlib')\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"
