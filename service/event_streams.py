"""How many event streams one API process keeps open at once, how many of them one site may and
how many one moderator of the site may.

An open stream waits on ``XREAD BLOCK`` in a loop, so it holds one of the process's pooled Redis
connections almost all the time. Unbounded, a few hundred open consoles would take the whole pool
and every other request would wait for a connection until it answered 503; past the bound a new
stream is refused at once instead (``StreamsBusy``, 503 with Retry-After). The process's places
are shared by every site it serves, so one site (its moderators, or one moderator's many tabs)
holds at most its share of them and the other sites' consoles still go live; within the site's
share, one moderator's console tabs hold at most theirs, so the site's other moderators go live too.
"""

from typing import TypeVar

from service.errors import StreamsBusy

K = TypeVar("K")


class StreamPlaces:
    """Places for the process's concurrent event streams. One event loop takes and gives them
    back, with no await between the check and the count, so no lock is needed."""

    def __init__(self, limit: int, per_site: int, per_moderator: int) -> None:
        self.limit = limit
        self.per_site = per_site
        self.per_moderator = per_moderator
        self.taken = 0
        # Only sites and moderators with a stream open: an entry goes when its last stream ends,
        # so neither map outgrows the process's limit.
        self.by_site: dict[str, int] = {}
        self.by_moderator: dict[tuple[str, str], int] = {}

    def take(self, site: str, moderator: str) -> None:
        """Take a place for a stream of ``site`` read by ``moderator`` (the admin's actor id for
        the admin) about to start; ``StreamsBusy`` when none is free on the process or the site
        or the moderator holds their share already."""
        mine = self.by_moderator.get((site, moderator), 0)
        if mine >= self.per_moderator:
            raise StreamsBusy(
                "this moderator holds as many event streams of this site on this server as one "
                "moderator may (CIVILITY_EVENT_STREAMS_PER_MODERATOR), retry later"
            )
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
        self.by_moderator[(site, moderator)] = mine + 1

    def give_back(self, site: str, moderator: str) -> None:
        """The stream ended, however it did: closed, client gone, token revoked, server stopping."""
        self.taken -= 1
        _less(self.by_site, site)
        _less(self.by_moderator, (site, moderator))


def _less(counts: dict[K, int], key: K) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]
