"""What the worker process tests run in the workers: nothing heavy to import there."""

import os
import signal
from pathlib import Path


def refuse(reason: str) -> None:
    raise ValueError(reason)


def echo(value: str) -> tuple[str, int]:
    return value, os.getpid()


def die_once(marker: str) -> int:
    """Killed the first time it runs (as the OOM killer would), answers the second."""
    if not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
