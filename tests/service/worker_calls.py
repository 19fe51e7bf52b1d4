"""What the worker process tests run in the workers: nothing heavy to import there."""

import os
import signal
import time
from pathlib import Path

from service.worker_processes import batchable


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


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@batchable(1)
def sizes(items: list[str], tag: str) -> list[tuple[str, int, str]]:
    """Each item with the size of the call it ran in."""
    return [(item, len(items), tag) for item in items]


@batchable(1)
def slow_sizes(items: list[str], seconds: float) -> list[tuple[str, int]]:
    time.sleep(seconds)
    return [(item, len(items)) for item in items]


@batchable(1)
def refuse_all(items: list[str]) -> list[str]:
    raise ValueError("not this model")
