"""Which model the API processes serve: the one the last reload announced.

``civility model activate`` only moves ``models/ACTIVE``; the API processes switch on a reload,
which keeps the model it loaded in Redis (``KeySpace.model_reloaded``). What scores beside them
(the site model refits, the second look) follows that model, so its outcome matches what the
verdicts read, and ``ACTIVE``'s only while no reload was ever announced (what the API processes
loaded at start).
"""

import asyncio
from pathlib import Path

from classifier.card import ARTIFACT_SUFFIX, card_path, read_card
from classifier.model import active_stem, artifact_checksum
from service.keys import KeySpace
from service.store.scripts import RedisClient, store_errors


async def served_stem(redis: RedisClient, keys: KeySpace, models_dir: Path) -> str:
    """The stem of the model the API processes serve."""
    with store_errors():
        announced = await redis.get(keys.model_reloaded())
    if announced:
        return str(announced)
    return await asyncio.to_thread(active_stem, models_dir)


def served_checksum(models_dir: Path, stem: str) -> str | None:
    """The artifact sha256 the card of ``stem`` records now; ``None`` when it cannot be read."""
    try:
        return artifact_checksum(read_card(card_path(models_dir / f"{stem}{ARTIFACT_SUFFIX}")))
    except (OSError, ValueError):
        return None


def trained_again(models_dir: Path, stem: str, checksum: str | None) -> bool:
    """Whether the artifact of ``stem`` is no longer the one loaded (``checksum``): the version
    was trained again (``--force``), and a reload to it serves the new one."""
    on_disk = served_checksum(models_dir, stem)
    return on_disk is not None and checksum is not None and on_disk != checksum
