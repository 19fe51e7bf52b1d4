"""How many event streams one API process keeps open at once.

An open stream waits on ``XREAD BLOCK`` in a loop, so it holds one of the process's pooled Redis
connections almost all the time. Unbounded, a few hundred open consoles would take the whole pool
and every other request would wait for a connection until it answered 503; past the bound a new
stream is refused at once instead (``StreamsBusy``, 503 with Retry-After).
"""

from service.errors import StreamsBusy


class StreamPlaces:
    """Places for the process's concurrent event streams. One event loop takes and gives them
    back, with no await between the check and the count, so no lock is needed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def take(self) -> None:
        """Take a place for a stream about to start; ``StreamsBusy`` when none is free."""
        if self.taken >= self.limit:
            raise StreamsBusy()
        self.taken += 1

    def give_back(self) -> None:
        """The stream ended, however it did: closed, client gone, token revoked, server stopping."""
        self.taken -= 1
