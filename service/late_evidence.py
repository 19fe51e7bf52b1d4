"""Evidence spans worked out after intake has answered: a held comment's verdict does not wait.

Explaining a comment costs several times scoring it (its spans need every character's share of
each label's score, mapped back through normalisation), so intake stores the verdict with the
rules' own evidence (links, banned words) and this adds the model's spans once the scorer has
them; the moderator view shows them from then on, and the site's live events say so (the
consoles showing the comment mark them). They are stored only while the comment still holds the
text that was explained: a moderator's decision meanwhile keeps them, an edit does not.

At most ``limit`` explanations wait in one process: under a burst of held comments each pending
one holds its text and a task, and the scorer could not catch up with more anyway. One site holds
at most ``site_limit`` of them (a quarter by default), so a site whose comments are all held
cannot take every place from the others' held comments. Beyond either bound a comment's model
evidence is dropped (counted through ``on_dropped``); its verdict and the rules' evidence stand.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from service.errors import StoreUnavailable
from service.scorer import Scorer, Spans
from service.store import Store

log = logging.getLogger(__name__)


PENDING_LIMIT = 256
"""Explanations waiting at most in one process, by default: a few seconds of the scorer's work."""
SITE_SHARE = 4
"""By default one site holds at most 1 / ``SITE_SHARE`` of the places (and at least one)."""


class LateEvidence:
    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        now_ms: Callable[[], int],
        *,
        limit: int = PENDING_LIMIT,
        site_limit: int | None = None,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._scorer = scorer
        self._now_ms = now_ms
        self._limit = limit
        self._site_limit = max(1, limit // SITE_SHARE) if site_limit is None else site_limit
        self._on_dropped = on_dropped
        # The loop keeps only weak references to tasks; this set keeps each one alive.
        self._pending: set[asyncio.Task[None]] = set()
        self._pending_of: dict[str, int] = {}

    def explain(
        self,
        site_id: str,
        comment_id: str,
        text: str,
        text_hash: str,
        rule_evidence: Mapping[str, Sequence[tuple[int, int]]],
        labels: Sequence[str],
    ) -> None:
        """Explain ``labels`` in ``text`` and store their spans beside the rules' (which win
        for a label both name), unless the comment's text has changed by then, or ``limit``
        explanations (or ``site_limit`` of this site's) wait already."""
        waiting = self._pending_of.get(site_id, 0)
        if len(self._pending) >= self._limit or waiting >= self._site_limit:
            if self._on_dropped is not None:
                self._on_dropped()
            return

        async def attach() -> None:
            try:
                explained: Spans = await self._scorer.explain(text, site_id, labels)
                evidence = {**explained, **rule_evidence}
                await self._store.attach_evidence(
                    site_id, comment_id, text_hash, evidence, self._now_ms()
                )
            except StoreUnavailable as error:
                # The verdict stands either way, and the moderator still sees the rules'
                # evidence; an outage is one line, as the rest of the service says it.
                log.warning(
                    "evidence for comment %r of site %r was not stored: Redis is unavailable (%s)",
                    comment_id,
                    site_id,
                    error.why,
                )
            except Exception:
                log.warning(
                    "evidence for comment %r of site %r was not stored",
                    comment_id,
                    site_id,
                    exc_info=True,
                )

        task = asyncio.get_running_loop().create_task(attach())
        self._pending.add(task)
        self._pending_of[site_id] = waiting + 1
        task.add_done_callback(lambda done: self._finished(site_id, done))

    def _finished(self, site_id: str, task: "asyncio.Task[None]") -> None:
        self._pending.discard(task)
        left = self._pending_of[site_id] - 1
        if left:
            self._pending_of[site_id] = left
        else:
            del self._pending_of[site_id]

    async def settled(self) -> None:
        """Wait until every explanation asked for so far is stored (or has failed)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
