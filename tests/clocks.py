"""The clock tests hand to the app and the workers: real time until a test moves it on, so a
lease, a backoff or a rotation window passes without waiting for it."""

import time


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
