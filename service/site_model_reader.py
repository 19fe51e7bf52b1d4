"""Site model versions as a scoring process reads them: from Redis, once per version.

The intake scoring workers and the second look's scoring process run no event loop; each reads a
site's version over a blocking connection of its own (one server, a cluster or the primary
Sentinel names, as ``REDIS_URL`` says) the first time a text of that site comes with it, and
keeps it (versions never change, only which one is active).
"""

import json
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import redis
from redis.exceptions import RedisClusterException

from classifier.model import Model
from classifier.site_model import Features, LabelModel, adapt_matrix
from classifier.site_model_codec import decode
from service.connection import BlockingClient, connect_blocking
from service.keys import KeySpace
from service.scorer import SiteRef
from service.site_models import fitted_on

KEPT = 256
"""Versions a process keeps before it reads them anew."""


class SiteModelReader:
    """The label models one place (``weights``: the verdict, ``second_look``) takes from each
    site model version, for the global model ``global_version()`` names."""

    def __init__(
        self,
        url: str,
        prefix: str,
        place: str,
        global_version: Callable[[], str],
        global_checksum: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``global_checksum``: the global model's artifact sha256, told apart from another
        model of the same version by it."""
        self.url = url
        self.keys = KeySpace(prefix)
        self.place = place
        self.global_version = global_version
        self.global_checksum = global_checksum
        self._client: BlockingClient | None = None
        self._read: dict[SiteRef, dict[str, LabelModel] | None] = {}

    def models_of(self, sites: Iterable[SiteRef]) -> dict[SiteRef, dict[str, LabelModel] | None]:
        return {site: self.models(site) for site in sites}

    def models(self, site: SiteRef) -> dict[str, LabelModel] | None:
        """The version's label models for this place; ``None`` when it has none, was fitted on
        another global model, or cannot be read (the text is then scored by the global model,
        and what is recorded says so)."""
        if site in self._read:
            return self._read[site]
        try:
            if self._client is None:
                self._client = connect_blocking(self.url, socket_timeout=2.0)
            stored = self._client.get(self.keys.site_model(*site))
            document = json.loads(stored) if stored else None
            # Fitted on another global model's features, its weights would read other columns.
            usable = document is not None and fitted_on(
                document["card"], self.global_version(), self.global_checksum()
            )
            text = document.get(self.place) if usable and document is not None else None
            # A version whose site model scores only the other place leaves this one global.
            models = (decode(text) if text else None) or None
        except (
            redis.RedisError,
            RedisClusterException,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ):
            return None  # not remembered: Redis may answer the next batch
        if len(self._read) >= KEPT:
            self._read.clear()
        self._read[site] = models
        return models


def adapt_by_site(
    matrix: npt.NDArray[np.float64],
    labels: Sequence[str],
    sites: Sequence[SiteRef | None],
    found: Mapping[SiteRef, Mapping[str, LabelModel] | None],
    features: Mapping[str, Features],
) -> tuple[npt.NDArray[np.float64], list[int]]:
    """``matrix`` (texts x labels) with each text's site model put in where ``found`` has one,
    and the site model version each text was scored with (0: the global model alone)."""
    adapted = matrix.copy()
    versions = [0] * len(sites)
    for site, models in found.items():
        if not models:
            continue
        rows = [row for row, of in enumerate(sites) if of == site]
        if not rows:
            continue
        # A batch wholly this site's (a batch of one always is) keeps its features as they
        # are: picking rows out of the sparse ones costs scipy more than the site model does.
        picked = (
            features
            if len(rows) == len(sites)
            else {kind: part[rows] for kind, part in features.items()}
        )
        adapted[rows] = adapt_matrix(matrix[rows], labels, models, picked)
        for row in rows:
            versions[row] = site[1]
    return adapted, versions


def score_by_site(
    model: Model,
    texts: Sequence[str],
    sites: Sequence[SiteRef | None],
    found: Mapping[SiteRef, Mapping[str, LabelModel] | None],
) -> list[tuple[dict[str, float], int]]:
    """Each text's scores by ``model`` with its site's model put in where ``found`` has one, and
    the site model version that made them (0: the global model alone): a verdict's scoring."""
    if not any(found.values()):
        return [(scores, 0) for scores in model.score(texts)]
    matrix, features = model.predict_with_features(texts)
    adapted, versions = adapt_by_site(matrix, model.labels, sites, found, features)
    return [
        (dict(zip(model.labels, map(float, row), strict=True)), version)
        for row, version in zip(adapted, versions, strict=True)
    ]
