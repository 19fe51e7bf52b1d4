"""Evidence spans worked out after intake has answered: a held comment's verdict does not wait.

Explaining a comment costs several times scoring it (its spans need every character's share of
each label's score, mapped back through normalisation), so intake stores the verdict with the
rules' own evidence (links, banned words) and this adds the model's spans once the scorer has
them; the moderator view shows them from then on. They are stored only while the comment is
still the version of the text that was explained.

At most ``limit`` explanations wait in one process: under a burst of held comments each pending
one holds its text and a task, and the scorer could not catch up with more anyway. Beyond the
bound a comment's model evidence is dropped (counted through ``on_dropped``); its verdict and the
rules' evidence stand.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from service.scorer import Scorer, Spans
from service.store import Store

log = logging.getLogger(__name__)


PENDING_LIMIT = 256
"""Explanations waiting at most in one process, by default: a few seconds of the scorer's work."""


class LateEvidence:
    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        *,
        limit: int = PENDING_LIMIT,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._scorer = scorer
        self._limit = limit
        self._on_dropped = on_dropped
        # The loop keeps only weak references to tasks; this set keeps each one alive.
        self._pending: set[asyncio.Task[None]] = set()

    def explain(
        self,
        site_id: str,
        comment_id: str,
        version: int,
        text: str,
        text_hash: str,
        rule_evidence: Mapping[str, Sequence[tuple[int, int]]],
    ) -> None:
        """Explain ``text`` and store its spans beside the rules' (which win for a label both
        name), unless the comment has moved on by then, or ``limit`` explanations wait already."""
        if len(self._pending) >= self._limit:
            if self._on_dropped is not None:
                self._on_dropped()
            return

        async def attach() -> None:
            try:
                explained: Spans = await self._scorer.explain(text)
                evidence = {**explained, **rule_evidence}
                await self._store.attach_evidence(site_id, comment_id, version, text_hash, evidence)
            except Exception:
                # The verdict stands, and the moderator still sees the rules' evidence.
                log.warning(
                    "evidence for comment %r of site %r was not stored",
                    comment_id,
                    site_id,
                    exc_info=True,
                )

        task = asyncio.get_running_loop().create_task(attach())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Wait until every explanation asked for so far is stored (or has failed)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
