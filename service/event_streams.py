"""How many event streams one API process keeps open at once, and how many of them one site may.

An open stream waits on ``XREAD BLOCK`` in a loop, so it holds one of the process's pooled Redis
connections almost all the time. Unbounded, a few hundred open consoles would take the whole pool
and every other request would wait for a connection until it answered 503; past the bound a new
stream is refused at once instead (``StreamsBusy``, 503 with Retry-After). The process's places
are shared by every site it serves, so one site (its moderators, or one moderator's many tabs)
holds at most its share of them and the other sites' consoles still go live.
"""

from service.errors import StreamsBusy


class StreamPlaces:
    """Places for the process's concurrent event streams. One event loop takes and gives them
    back, with no await between the check and the count, so no lock is needed."""

    def __init__(self, limit: int, per_site: int) -> None:
        self.limit = limit
        self.per_site = per_site
        self.taken = 0
        # Only sites with a stream open: a site's entry goes when its last stream ends, so the
        # map never outgrows the process's limit.
        self.by_site: dict[str, int] = {}

    def take(self, site: str) -> None:
        """Take a place for a stream of ``site`` about to start; ``StreamsBusy`` when none is
        free on the process or the site holds its share already."""
        held = self.by_site.get(site, 0)
        if held >= self.per_site:
            raise StreamsBusy(
                "this site holds as many event streams on this server as one site may "
                "(CIVILITY_EVENT_STREAMS_PER_SITE), retry later"
            )
        if self.taken >= self.limit:
            raise StreamsBusy(
                "this server holds as many event streams as it may "
                "(CIVILITY_EVENT_STREAMS_MAX), retry later"
            )
        self.taken += 1
        self.by_site[site] = held + 1

    def give_back(self, site: str) -> None:
        """The stream ended, however it did: closed, client gone, token revoked, server stopping."""
        self.taken -= 1
        held = self.by_site[site] - 1
        if held:
            self.by_site[site] = held
        else:
            del self.by_site[site]
