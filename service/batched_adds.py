"""Members added to one Redis set by many concurrent requests, in as few SADDs as they allow.

Every write to a site marks it in one global set (``service/gauges.py``): a SADD of its own cost
the API about as much CPU as a tenth of an intake. Here the members asked for while no SADD is
being prepared go together in the next one, and each caller returns once a SADD holding its
member has been answered. A member never joins a SADD already sent: that one may have reached
Redis before the caller's own write, and a reader taking the member in between would miss it.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

Send = Callable[[Sequence[str]], Awaitable[None]]


class BatchedAdds:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._members: dict[str, None] = {}
        """The members of the next SADD, in the order they were asked for."""
        self._next: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    async def add(self, member: str) -> None:
        """Return once ``member`` is in the set; raise what the SADD that carried it raised."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._members[member] = None
        batch = self._next
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_batches())
        # One caller going away must not cancel the others' SADD.
        await asyncio.shield(batch)

    async def _send_batches(self) -> None:
        try:
            while self._next is not None:
                batch, members = self._next, list(self._members)
                self._next, self._members = None, {}
                try:
                    await self._send(members)
                except asyncio.CancelledError:
                    batch.cancel()
                    raise
                except Exception as error:
                    batch.set_exception(error)
                    # Every caller may have gone; the failure is theirs to see, not the loop's.
                    batch.exception()
                else:
                    batch.set_result(None)
        finally:
            self._sender = None
            if self._next is not None:
                self._next.cancel()
                self._next, self._members = None, {}
