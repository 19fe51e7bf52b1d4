"""What waits for one lane of scoring workers, and what it sends next.

Intake has two lanes. Ordinary comments are scored in batches by the verdict workers. Comments
longer than ``LONG_TEXT_CHARS`` and every explanation go to the long lane, on workers of its
own: scoring a 20,000-character comment takes ~10 ms of a worker and explaining one ~3 ms, so a
site sending many of them would otherwise keep every other site's verdicts waiting behind its
work. With no workers of its own the long lane's work joins the ordinary queue, taking turns.

Within a lane the sites take turns (``fair_batch``) and a batch is bounded in characters, so a
site sending many comments at once delays another site's by about one batch, not by all of its
own.
"""

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeVar

from service.language import Detected
from service.scorer import Scored, SiteRef, Spans

LONG_TEXT_CHARS = 4_000
"""Comments longer than this are scored in the long lane: every one of the benchmark's real
comments is shorter, and one this long takes ~4 ms of a worker."""
BATCH_MAX_CHARS = 16_000
"""Characters of text one scoring batch holds at most (at least one text): scoring costs about
1 ms per 1,000, so a batch of long comments cannot keep the workers from others for long."""
EVIDENCE_MAX_CHARS = 2_000
"""Evidence spans are worked out on a comment's first characters only (99.3 % of the benchmark's
real comments are shorter)."""
EXPLAIN_BATCH_CHARS = 3_000
"""Characters one evidence batch holds at most (at least one text), between scoring batches."""

Read = tuple[Detected | None, Scored | None]
"""A text's language when it was asked for, and its scores unless that language is one the model
does not read."""
Waiting = tuple[str, SiteRef | None, "asyncio.Future[Read]", bool]
"""A text to score, its site, its answer, and whether its language is detected first."""
Explaining = tuple[str, SiteRef | None, "asyncio.Future[Spans]", tuple[str, ...] | None]
"""A text to explain, its site, who waits for its spans, and the labels to explain (None: all)."""
Queued = TypeVar("Queued", bound=tuple[str, SiteRef | None, *tuple[Any, ...]])


def fair_batch(
    waiting: Sequence[Queued], max_items: int, max_chars: int, turn: int = 0
) -> tuple[list[Queued], list[Queued]]:
    """The next batch and what stays waiting: one text of each site in turn (each site's in the
    order they came; ``turn`` rotates which site goes first), up to ``max_items`` texts and
    ``max_chars`` characters, at least one text. A site whose next text does not fit sits out
    the rest of the batch."""
    lanes: dict[str, deque[Queued]] = {}
    for item in waiting:
        lanes.setdefault(item[1][0] if item[1] is not None else "", deque()).append(item)
    order = list(lanes.values())
    shift = turn % len(order) if order else 0
    open_lanes = order[shift:] + order[:shift]
    batch: list[Queued] = []
    chars = 0
    while open_lanes and len(batch) < max_items:
        for lane in list(open_lanes):
            size = len(lane[0][0])
            if batch and (len(batch) >= max_items or chars + size > max_chars):
                open_lanes.remove(lane)
                continue
            batch.append(lane.popleft())
            chars += size
            if not lane:
                open_lanes.remove(lane)
    taken = {id(item) for item in batch}
    return batch, [item for item in waiting if id(item) not in taken]


class Lane:
    """One lane's queues (texts to score, texts to explain), its batches running and its timer.

    Explanations wait behind scoring: they go when no text waits to be scored or, under a steady
    load, after every scoring batch, so they neither starve nor hold up a verdict by more than
    one small batch. The sites take turns in both queues."""

    def __init__(self, workers: int, batch_max_items: int) -> None:
        self.workers = workers
        self.batch_max_items = batch_max_items
        self.waiting: list[Waiting] = []
        self.explaining: list[Explaining] = []
        self.running: set[asyncio.Task[None]] = set()
        self.timer: asyncio.TimerHandle | None = None
        self._turn = 0
        self._explain_turn = 0
        self._explain_next = False

    @property
    def busy(self) -> bool:
        """Every worker of the lane has a batch."""
        return len(self.running) >= self.workers

    @property
    def queued(self) -> bool:
        return bool(self.waiting or self.explaining)

    def take(self) -> tuple[list[Waiting], list[Explaining]]:
        """The next batch, taken off the queues: texts to score or texts to explain (the other
        list empty); both empty when nothing waits."""
        if self.explaining and (self._explain_next or not self.waiting):
            explains, self.explaining = fair_batch(
                self.explaining, len(self.explaining), EXPLAIN_BATCH_CHARS, self._explain_turn
            )
            self._explain_turn += 1
            self._explain_next = False
            return [], explains
        if self.waiting:
            batch, self.waiting = fair_batch(
                self.waiting, self.batch_max_items, BATCH_MAX_CHARS, self._turn
            )
            self._turn += 1
            self._explain_next = True
            return batch, []
        return [], []
