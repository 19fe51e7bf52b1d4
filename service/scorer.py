"""The interface the domain scores through, and what one score carries.

``service.scoring.PoolScorer`` implements it; the domain and tests depend only on this.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from service.language import Detected

Spans = dict[str, list[tuple[int, int]]]
SiteRef = tuple[str, int]
"""A site and the version of its site model (0: none) that should score its texts."""


class Scorer(Protocol):
    @property
    def model_version(self) -> str: ...

    async def score(self, text: str) -> dict[str, float]: ...

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> Spans:
        """The evidence spans in ``text`` of each of ``labels`` (every label: None); ``site``,
        the site that sent it, takes turns with the others."""
        ...


@dataclass(frozen=True, slots=True)
class Scored:
    """Scores with the model version that made them and that model's suggested thresholds."""

    scores: dict[str, float]
    model_version: str
    thresholds: Mapping[str, Mapping[str, float]]
    semantic: bool = False
    """The model has a semantic stage: a published verdict gets a second look."""


@runtime_checkable
class ReloadableScorer(Scorer, Protocol):
    """A scorer whose model can change while it serves: each result names the model that made
    it, so a verdict never records the version that happened to be active a moment later."""

    async def score_with_model(self, text: str, site: SiteRef | None = None) -> Scored: ...


@runtime_checkable
class DetectingScorer(ReloadableScorer, Protocol):
    """A scorer that detects a text's language where it scores it (in its worker processes, a
    batch at a time), so the serving process need not: detection was a fifth of its CPU at
    intake."""

    async def detect_and_score(
        self, text: str, site: SiteRef | None = None
    ) -> tuple[Detected, Scored | None]:
        """The text's language, and its scores when the model reads it (``supported``); None
        for a text in another language, which is not scored."""
        ...
