"""Which model the API processes serve: the one the last reload announced.

``civility model activate`` only moves ``models/ACTIVE``; the API processes switch on a reload,
which keeps the model it loaded in Redis (``KeySpace.model_reloaded``). What scores beside them
(the site model refits, the second look) follows that model, so its outcome matches what the
verdicts read, and ``ACTIVE``'s only while no reload was ever announced (what the API processes
loaded at start).
"""

import asyncio
from pathlib import Path

from classifier.model import active_stem
from service.keys import KeySpace
from service.store.scripts import RedisClient, store_errors


async def served_stem(redis: RedisClient, keys: KeySpace, models_dir: Path) -> str:
    """The stem of the model the API processes serve."""
    with store_errors():
        announced = await redis.get(keys.model_reloaded())
    if announced:
        return str(announced)
    return await asyncio.to_thread(active_stem, models_dir)
