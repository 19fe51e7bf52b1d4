"""The Redis store: reads in pipelines, and every state change as one Lua script.

Scripts are registered once and called by sha, and loaded again when the server answers NOSCRIPT
(after a restart), so the store recovers without a new client. On a single server, script calls
made together go as one pipeline (``service.store.script_batches``). A script either runs whole or
not at all, and Redis connection errors surface as ``StoreUnavailable``.
"""

from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.reads import CommentReads
from service.store.scripts import LuaScripts, RedisClient
from service.store.sites import SiteQueries
from service.store.writes import CommentWrites

SCRIPTS = (
    "ingest",
    "attach_evidence",
    "decide",
    "claim",
    "claim_comment",
    "release",
    "page",
    "rotate_secret",
    "create_site",
    "update_site",
    "add_moderator",
    "put_article",
    "report",
    "author_status",
    "author_view",
    "touch_moderator",
)


class Store(SiteQueries, CommentWrites, CommentReads):
    """Sites, comments and authors of every site under one key prefix."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str = DEFAULT_PREFIX,
        *,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        """``replicas`` > 0 acknowledges a state change only once that many replicas hold it
        (Redis WAIT within ``replica_wait_ms``), else ``StoreUnavailable``."""
        self.redis = redis
        self.keys = KeySpace(prefix)
        self._scripts = LuaScripts(
            redis,
            SCRIPTS,
            with_library=True,
            replicas=replicas,
            replica_wait_ms=replica_wait_ms,
        )
        self._run = self._scripts.run
