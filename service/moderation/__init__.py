"""The domain functions the routes call, one per route.

``Moderation`` ties the pieces together: it scores with the ``Scorer``, asks the pure policy for
a verdict, and writes through the store's scripts. Secrets are generated here, shown once and
stored so that nothing readable leaks: api keys and moderator tokens only as sha256 hashes, the
webhook secret in the site's hash because verifying an HMAC needs the secret itself.
"""

import time
from collections.abc import Awaitable, Callable, Mapping

from service.labels import LabelLog
from service.language import Detected
from service.late_evidence import PENDING_LIMIT, LateEvidence
from service.moderation.authors import Authors
from service.moderation.base import CachedSite
from service.moderation.intake import Intake
from service.moderation.queue import QueueDesk
from service.moderation.sites import Sites
from service.scorer import DetectingScorer, ReloadableScorer, Scored, Scorer, SiteRef
from service.site_models import ActiveVersions
from service.store import Store


class Moderation(Sites, Intake, QueueDesk, Authors):
    """Every domain function, from the parts in this package, over one store and scorer."""

    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        thresholds: Mapping[str, Mapping[str, float]],
        *,
        site_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        labels: LabelLog | None = None,
        site_models: ActiveVersions | None = None,
        second_look: bool = False,
        evidence_limit: int = PENDING_LIMIT,
        on_evidence_dropped: Callable[[], None] | None = None,
    ) -> None:
        """``thresholds`` are the model's suggested ones; a site's policy may override them.

        Intake reads the site (secrets and policy) on every webhook, so it is cached in this
        process for ``site_cache_seconds``; changes made through this object apply at once.
        With ``labels``, every moderator decision is kept there as a training label; with
        ``site_models``, each site's texts are scored with its active site model. With
        ``second_look``, a comment published on the lexical verdict is queued for the semantic
        stage when the model that scored it has one. At most ``evidence_limit`` held comments
        wait for their model evidence; beyond, theirs is dropped and ``on_evidence_dropped``
        called."""
        self.store = store
        self.scorer = scorer
        self.thresholds = thresholds
        self.labels = labels
        self.site_models = site_models
        self.second_look = second_look
        self._clock = clock
        self.evidence = LateEvidence(
            store, scorer, self._now_ms, limit=evidence_limit, on_dropped=on_evidence_dropped
        )
        self._site_cache_seconds = site_cache_seconds
        self._sites: dict[str, CachedSite] = {}
        # Decided once: a Protocol isinstance check costs ~0.09 ms, on every comment.
        self._score: Callable[[str, SiteRef | None], Awaitable[Scored]] = (
            scorer.score_with_model
            if isinstance(scorer, ReloadableScorer)
            else self._score_naming_active_model
        )
        # A scorer that detects languages with its batches spares this process the detector.
        self._read: Callable[[str, SiteRef | None], Awaitable[tuple[Detected, Scored | None]]] = (
            scorer.detect_and_score
            if isinstance(scorer, DetectingScorer)
            else self._detect_then_score
        )
