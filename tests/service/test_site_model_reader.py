"""A scoring process reads a site's model version over its blocking client on every topology
``REDIS_URL`` names: one server, a cluster and the primary a Sentinel service names."""

import asyncio
import json

import numpy as np

from classifier.site_model import Head, LabelModel
from classifier.site_model_codec import encode
from service.keys import KeySpace
from service.site_model_reader import SiteModelReader
from service.site_models import SECOND_LOOK, VERDICT_WEIGHTS
from service.store.scripts import RedisClient
from tests.service.worker.support import closed_port_url

KEYS = KeySpace("civ")
GLOBAL = "1.6.0"
HEAD = Head(
    kind="words",
    columns=np.array([1, 3], dtype=np.int32),
    weights=np.array([0.5, -2.0], dtype=np.float32),
    intercept=0.25,
    width=4,
    scale=1.5,
    offset=-0.5,
)
MODELS = {"toxicity": LabelModel("toxicity", 0.75, ((HEAD, 0.4),))}


async def store_version(client: RedisClient, site: str, version: int, global_model: str) -> None:
    document = {"card": {"global_model": global_model}, VERDICT_WEIGHTS: encode(MODELS)}
    await client.set(KEYS.site_model(site, version), json.dumps(document))


async def test_a_site_model_version_is_read_on_each_topology(
    topology_client: RedisClient, topology_url: str
) -> None:
    await store_version(topology_client, "news", 3, GLOBAL)
    await store_version(topology_client, "blog", 1, "1.5.0")
    verdicts = SiteModelReader(topology_url, "civ", VERDICT_WEIGHTS, lambda: GLOBAL)
    looks = SiteModelReader(topology_url, "civ", SECOND_LOOK, lambda: GLOBAL)

    found = await asyncio.to_thread(verdicts.models_of, [("news", 3), ("blog", 1), ("news", 4)])

    [read] = (found[("news", 3)] or {}).values()
    assert (read.label, read.global_weight) == ("toxicity", 0.75)
    [(head, weight)] = read.heads
    assert weight == 0.4
    assert head.columns.tolist() == [1, 3]
    assert head.weights.tolist() == [0.5, -2.0]
    # Fitted on another global model, or no such version: the global model scores alone.
    assert found[("blog", 1)] is None
    assert found[("news", 4)] is None
    # A version without models for this place leaves it on the global model.
    assert await asyncio.to_thread(looks.models, ("news", 3)) is None


def test_an_unreachable_store_leaves_the_global_model_scoring() -> None:
    for scheme in ("redis", "redis+cluster", "redis+sentinel"):
        address = closed_port_url().removeprefix("http://").removesuffix("/hooks")
        url = f"{scheme}://{address}" + ("/civility" if scheme == "redis+sentinel" else "")
        reader = SiteModelReader(url, "civ", VERDICT_WEIGHTS, lambda: GLOBAL)
        assert reader.models(("news", 3)) is None, scheme
