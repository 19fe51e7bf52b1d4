"""Ctrl-C in the commands that work on the store, raised where the command is."""

import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_until_interrupted(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with Ctrl-C a ``KeyboardInterrupt`` at once, as in the other
    commands.

    ``asyncio.run`` turns the first Ctrl-C into a cancellation of ``main``, which Python 3.11's
    ``asyncio.wait_for`` swallows when what it waits on has finished meanwhile: redis-py sends
    each command under one, so a Ctrl-C that came while the command wrote a line or worked between
    two Redis commands was lost, and the command went on. ``asyncio.run`` keeps a handler it did
    not install."""
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        return asyncio.run(main)
    finally:
        signal.signal(signal.SIGINT, previous)
