"""When a failed webhook delivery is tried again: exponential backoff with full jitter.

The n-th retry waits a uniformly random time between zero and ``min(cap, base * 2**(n-1))``
("full jitter"): workers that failed together against one host spread their retries out instead
of returning in lockstep. With the defaults (10 attempts, base 6 minutes, cap 24 hours) the nine
waits add up to about a day on average and at most about two days.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 10
    base_seconds: float = 360.0
    cap_seconds: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("backoff needs 0 < base_seconds <= cap_seconds")

    def exhausted(self, attempts: int) -> bool:
        """Whether ``attempts`` tries were the last ones allowed (the event is dead-lettered)."""
        return attempts >= self.max_attempts

    def ceiling(self, attempts: int) -> float:
        """The longest wait after the ``attempts``-th failed try."""
        # The exponent is bounded so a large attempt count cannot overflow the float.
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempts - 1, 64))

    def delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``attempts``-th failed try; a receiver's ``Retry-After``
        is honoured as a lower bound, up to the cap."""
        draw = (rng or random).uniform(0.0, self.ceiling(attempts))
        if retry_after is not None:
            draw = max(draw, min(retry_after, self.cap_seconds))
        return draw
