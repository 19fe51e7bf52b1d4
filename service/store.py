"""The Redis store: reads in pipelines, and every state change as one Lua script.

Scripts are registered once and called by sha; redis-py reloads one transparently when the server
answers NOSCRIPT (after a restart), so the store recovers without a new client. A script either
runs whole or not at all, and Redis connection errors surface as ``StoreUnavailable``.
"""

import json
import math
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import cursors
from service.domain import (
    Article,
    ArticleSpec,
    Author,
    AuthorStatus,
    Comment,
    CommentArticle,
    CommentQuery,
    HistoryEntry,
    HourlyDecisions,
    Moderator,
    Order,
    Policy,
    Queue,
    QueuePage,
    QueueQuery,
    Report,
    ReportOutcome,
    SecondLook,
    SecondLookState,
    Site,
    SiteStats,
    State,
)
from service.errors import (
    AlreadyExists,
    BadRequest,
    ClaimConflict,
    InvalidTransition,
    NotFound,
    StoreUnavailable,
    ValidationFailed,
    VersionConflict,
)
from service.keys import DEFAULT_PREFIX, KeySpace

SCRIPTS = (
    "ingest",
    "decide",
    "claim",
    "claim_comment",
    "release",
    "page",
    "rotate_secret",
    "create_site",
    "update_existing",
    "add_moderator",
    "put_article",
    "report",
    "author_status",
    "touch_moderator",
)
HOURS_OF_STATS = 24
MAX_PREVIOUS_SECRETS = 4
"""Rotated-out secrets kept in their grace at once; a fifth rotation within one grace period
ends the oldest early (every valid secret signs each webhook, and headers carry at most 8)."""
DAY_MS = 86_400_000
_DEFAULT_POLICY = Policy()

RedisClient = aioredis.Redis | RedisCluster
"""A single server (or Sentinel-managed primary) or a Redis Cluster: the scripts run on both."""
_IMMUTABLE = {
    "article.id": "an existing comment cannot move to another article",
    "author.id": "an existing comment cannot change its author",
}


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn Redis connection failures into ``StoreUnavailable`` (503)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise StoreUnavailable() from error


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(value: str | int | float) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def hour_bucket(now_ms: int) -> str:
    return from_ms(now_ms).strftime("%Y%m%d%H")


class ApiKeyTakenError(Exception):
    """A new site's api key is already another site's (a new key must be drawn)."""


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """A site as stored, secrets included; only the domain layer sees this."""

    site: Site
    webhook_secret: str
    previous_secret: str | None
    previous_valid_until_ms: int
    api_key_hash: str
    coral_signing_secret: str | None = None
    coral_webhook_secret: str | None = None
    coral_graphql_url: str | None = None
    coral_access_token: str | None = None
    stored_policy: str = ""
    """The policy exactly as stored, which a policy update must still find to write."""
    previous_api_key_hash: str | None = None
    previous_api_key_valid_until_ms: int = 0
    previous_secrets: tuple[tuple[str, int], ...] = ()
    """Every rotated-out secret still in its grace period, oldest first, with its deadline."""

    def api_key_matches(self, key_hash: str, now_ms: int) -> bool:
        """``key_hash`` is the site's api key, or the one it replaced while its grace lasts."""
        current = secrets.compare_digest(self.api_key_hash, key_hash)
        previous = self.previous_api_key_hash is not None and secrets.compare_digest(
            self.previous_api_key_hash, key_hash
        )
        return current or (previous and now_ms < self.previous_api_key_valid_until_ms)

    def valid_secrets(self, now_ms: int) -> list[str]:
        """The current secret, then the previous ones whose own grace has not ended, newest
        first."""
        previous = self.previous_secrets or (
            ((self.previous_secret, self.previous_valid_until_ms),) if self.previous_secret else ()
        )
        return [self.webhook_secret] + [
            secret for secret, until_ms in reversed(previous) if now_ms < until_ms
        ]


@dataclass(frozen=True, slots=True)
class SiteRules:
    """The parts of a site's policy the state-change scripts apply themselves: how long decided
    comments are kept, and the recent-rejection rule for authors."""

    retention_ms: int = _DEFAULT_POLICY.retention_days * DAY_MS
    recent_window_ms: int = _DEFAULT_POLICY.author_recent_days * DAY_MS
    premod_rejection_rate: float = _DEFAULT_POLICY.author_premod_rejection_rate
    premod_min_decisions: int = _DEFAULT_POLICY.author_premod_min_decisions

    @classmethod
    def of(cls, policy: Policy) -> "SiteRules":
        return cls(
            retention_ms=policy.retention_days * DAY_MS,
            recent_window_ms=policy.author_recent_days * DAY_MS,
            premod_rejection_rate=policy.author_premod_rejection_rate,
            premod_min_decisions=policy.author_premod_min_decisions,
        )


@dataclass(frozen=True, slots=True)
class AuthorRecord:
    """An author's stored counters and status, and its decisions within the recent window."""

    fields: Mapping[str, str]
    recent_decided: int
    recent_rejected: int


@dataclass(frozen=True, slots=True)
class Observation:
    """The context a verdict is decided for: the ingest script checks it before it writes.

    ``windows_taken`` has one flag per window key of the write, in order: whether another
    comment holds it (the author or address posted within the flood interval, or the same text
    within the duplicate window)."""

    edit: bool = False
    author_status: AuthorStatus = AuthorStatus.ACTIVE
    author_approved: int = 0
    article_closed: bool = False
    article_premod: bool = False
    windows_taken: tuple[bool, ...] = ()

    def signature(self, min_approved: int) -> str:
        """The form the ingest script observes; the new-author rule only needs the threshold."""
        flags = [self.author_approved >= min_approved, self.article_closed, self.article_premod]
        flags += self.windows_taken
        kind = "edit" if self.edit else "new"
        return ",".join([kind, self.author_status.value, *("1" if flag else "0" for flag in flags)])

    @classmethod
    def observed(cls, signature: str, approved: str) -> "Observation":
        kind, status, _, closed, premod, *windows = signature.split(",")
        return cls(
            edit=kind == "edit",
            author_status=AuthorStatus(status),
            author_approved=int(approved),
            article_closed=closed == "1",
            article_premod=premod == "1",
            windows_taken=tuple(flag == "1" for flag in windows),
        )


class StaleContextError(Exception):
    """The ingest script found another context than the verdict assumed, and wrote nothing."""

    def __init__(self, observed: Observation) -> None:
        super().__init__("intake context changed")
        self.observed = observed


@dataclass(frozen=True, slots=True)
class Window:
    """A key set to the comment id for ``ttl_ms`` (flood intervals, duplicate windows).

    ``new_only`` windows are set for a new comment but not for an edit."""

    key: str
    ttl_ms: int
    new_only: bool


@dataclass(frozen=True, slots=True)
class IntakeWrite:
    comment_id: str
    text_hash: str
    article_id: str
    parent_id: str | None
    author: Author
    text: str
    lang: str | None
    state: State
    reasons: Sequence[str]
    scores: Mapping[str, float]
    evidence: Mapping[str, Sequence[tuple[int, int]]]
    model: str
    priority: float
    created_at_ms: int
    now_ms: int
    event_id: str
    event_type: str
    edit_sources: str
    windows: Sequence[Window]
    assumed: Observation
    min_approved: int
    rules: SiteRules = SiteRules()
    second_look: bool = False
    """Queue the comment for the semantic stage if the verdict publishes it."""
    article_title: str | None = None
    article_url: str | None = None
    """The article's title and url as this intake gives them (none: keep the stored ones)."""


@dataclass(frozen=True, slots=True)
class DecisionWrite:
    comment_id: str
    target: State
    action: str
    actor: str
    expected_version: int | None
    reasons: Sequence[str]
    note: str | None
    now_ms: int
    event_id: str
    event_type: str
    sources: str
    rules: SiteRules = SiteRules()


@dataclass(frozen=True, slots=True)
class ReportWrite:
    comment_id: str
    report: Report
    threshold: int
    now_ms: int
    event_id: str
    event_type: str
    sources: str


class LuaScripts:
    """Scripts of ``service/lua`` registered once and called by sha (redis-py loads a script
    again on NOSCRIPT, so they survive a Redis restart); connection failures become 503s."""

    def __init__(
        self,
        redis: RedisClient,
        names: Sequence[str],
        *,
        with_library: bool,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        self._redis = redis
        self._replicas = replicas
        self._replica_wait_ms = replica_wait_ms
        if isinstance(redis, RedisCluster):
            decodes = redis.get_connection_kwargs().get("decode_responses")
        else:
            decodes = redis.connection_pool.connection_kwargs.get("decode_responses")
        if not decodes:
            raise ValueError("civility needs a Redis client created with decode_responses=True")
        lua = resources.files("service") / "lua"
        prelude = (lua / "_lib.lua").read_text(encoding="utf-8") + "\n" if with_library else ""
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(prelude + (lua / f"{name}.lua").read_text(encoding="utf-8"))
            for name in names
        }

    def __getitem__(self, name: str) -> AsyncScript:
        return self._scripts[name]

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        with store_errors():
            if not self._replicas:
                return await self._scripts[name](keys=keys, args=args)
            return await self._run_replicated(self._scripts[name], keys, args)

    async def _run_replicated(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        # WAIT counts the replicas holding the writes of its own connection, so the script and
        # the WAIT travel down one connection as a pipeline.
        assert isinstance(self._redis, aioredis.Redis)  # settings refuse WAIT on a cluster
        async with self._redis.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.wait(self._replicas, self._replica_wait_ms)
            result, replicated = await pipe.execute()
        if replicated < self._replicas:
            # Written on the primary only: a failover now could lose it, so it is not
            # acknowledged; the caller retries and the store's idempotency absorbs the repeat.
            raise StoreUnavailable(
                f"the write reached {replicated} of {self._replicas} replicas in "
                f"{self._replica_wait_ms} ms, retry later"
            )
        return result


class Store:
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

    # ------------------------------------------------------------------ sites

    async def create_site(self, record: SiteRecord) -> None:
        """Write the site; ``AlreadyExists`` if the id is taken, ``ApiKeyTakenError`` if the key is.

        The api-key index lives outside the site's hash slot, so it is written first: if the
        site write then fails, the index points at a key nobody was ever shown (harmless, and
        ``site_id_for_api_key`` checks it against the site's own hash)."""
        site = record.site
        with store_errors():
            if await self.redis.exists(self.keys.site(site.id)):
                raise AlreadyExists(f"site {site.id!r} already exists")
            if await self.redis.hexists(self.keys.purges(), site.id):
                raise AlreadyExists(f"site {site.id!r} is still being deleted; try again later")
            if not await self.redis.set(self.keys.api_key(record.api_key_hash), site.id, nx=True):
                raise ApiKeyTakenError("another site has this api key")
            # The site list (also outside every slot) is how webhook workers find sites.
            await self.redis.sadd(self.keys.sites(), site.id)
        fields: dict[str, str | int] = {
            "id": site.id,
            "name": site.name,
            "callback_url": site.callback_url or "",
            "policy": site.policy.model_dump_json(),
            "webhook_secret": record.webhook_secret,
            "previous_secret": "",
            "previous_valid_until": 0,
            "api_key_hash": record.api_key_hash,
            "created_at": to_ms(site.created_at),
            "updated_at": to_ms(site.updated_at),
        }
        created = await self._run("create_site", [self.keys.site(site.id)], _flatten(fields))
        if not created:
            with store_errors():
                await self.redis.delete(self.keys.api_key(record.api_key_hash))
            raise AlreadyExists(f"site {site.id!r} already exists")

    async def load_site(self, site_id: str) -> SiteRecord | None:
        with store_errors():
            fields = _texts(await self.redis.hgetall(self.keys.site(site_id)))
        if not fields:
            return None
        return SiteRecord(
            site=Site(
                id=fields["id"],
                name=fields["name"],
                callback_url=fields["callback_url"] or None,
                policy=Policy.model_validate_json(fields["policy"]),
                created_at=from_ms(fields["created_at"]),
                updated_at=from_ms(fields["updated_at"]),
            ),
            webhook_secret=fields["webhook_secret"],
            previous_secret=fields.get("previous_secret") or None,
            previous_valid_until_ms=int(fields.get("previous_valid_until") or 0),
            api_key_hash=fields["api_key_hash"],
            coral_signing_secret=fields.get("coral_signing_secret") or None,
            coral_webhook_secret=fields.get("coral_webhook_secret") or None,
            coral_graphql_url=fields.get("coral_graphql_url") or None,
            coral_access_token=fields.get("coral_access_token") or None,
            stored_policy=fields["policy"],
            previous_api_key_hash=fields.get("previous_api_key_hash") or None,
            previous_api_key_valid_until_ms=int(fields.get("previous_api_key_valid_until") or 0),
            previous_secrets=tuple(
                (str(secret), int(until_ms))
                for secret, until_ms in json.loads(fields.get("previous_secrets") or "[]")
            ),
        )

    async def update_site(self, site: Site, read_policy: str) -> bool:
        """Write ``site``'s settings if its stored policy is still ``read_policy`` (as stored,
        the one the new policy was merged from); False when another update changed it
        meanwhile."""
        fields: dict[str, str | int] = {
            "name": site.name,
            "callback_url": site.callback_url or "",
            "policy": site.policy.model_dump_json(),
            "updated_at": to_ms(site.updated_at),
        }
        guard = ["policy", read_policy]
        written = await self._run(
            "update_existing", [self.keys.site(site.id)], [*guard, *_flatten(fields)]
        )
        if written == 0:
            raise NotFound(f"site {site.id!r} not found")
        return bool(written == 1)

    async def set_coral_settings(self, site_id: str, settings: Mapping[str, str | None]) -> None:
        """Set (or with ``None`` remove) Coral Talk settings (``coral_<name>`` fields)."""
        fields = ["", ""]
        for name, value in settings.items():
            fields += [f"coral_{name}", value or ""]
        if not await self._run("update_existing", [self.keys.site(site_id)], fields):
            raise NotFound(f"site {site_id!r} not found")

    async def rotate_secret(
        self, site_id: str, new_secret: str, now_ms: int, previous_valid_until_ms: int
    ) -> None:
        keys = [self.keys.site(site_id)]
        args: list[str | int] = [new_secret, now_ms, previous_valid_until_ms, MAX_PREVIOUS_SECRETS]
        if not await self._run("rotate_secret", keys, args):
            raise NotFound(f"site {site_id!r} not found")

    async def site_id_for_api_key(self, api_key_hash: str) -> str | None:
        with store_errors():
            site_id = await self.redis.get(self.keys.api_key(api_key_hash))
        return cast(str | None, site_id)

    async def add_moderator(self, moderator: Moderator, token_hash: str) -> None:
        """Index the token first (outside the site's slot), then add the moderator to the site;
        a token whose second step failed was never shown to anyone."""
        record: dict[str, str | int] = {
            "id": moderator.id,
            "site_id": moderator.site_id,
            "name": moderator.name,
            "created_at": to_ms(moderator.created_at),
        }
        token_key = self.keys.moderator_token(token_hash)
        with store_errors():
            await self.redis.hset(token_key, items=_flatten(record))
        keys = [self.keys.site(moderator.site_id), self.keys.moderators(moderator.site_id)]
        # The token hash lets a revocation (or the site's deletion) remove the token's index.
        listed = json.dumps({**record, "token_hash": token_hash})
        if not await self._run("add_moderator", keys, [moderator.id, listed]):
            with store_errors():
                await self.redis.delete(token_key)
            raise NotFound(f"site {moderator.site_id!r} not found")

    async def moderator_by_token_hash(self, token_hash: str, now_ms: int) -> Moderator | None:
        """The token's moderator while it is listed on its site (noting the use), else None.

        Read from Redis on every call, never cached: a revocation applies at once everywhere."""
        with store_errors():
            fields = _texts(await self.redis.hgetall(self.keys.moderator_token(token_hash)))
        if not fields:
            return None
        site_id = fields["site_id"]
        keys = [self.keys.moderators(site_id), self.keys.moderators_last_used(site_id)]
        if not await self._run("touch_moderator", keys, [fields["id"], now_ms]):
            return None
        return Moderator(
            id=fields["id"],
            site_id=fields["site_id"],
            name=fields["name"],
            created_at=from_ms(fields["created_at"]),
        )

    async def moderator_names(self, site_id: str) -> dict[str, str]:
        """Each moderator's name by id, as people should read ``decided_by`` and ``claimed_by``."""
        with store_errors():
            stored = _texts(await self.redis.hgetall(self.keys.moderators(site_id)))
        return {moderator_id: json.loads(record)["name"] for moderator_id, record in stored.items()}

    # ------------------------------------------------------------------ events

    async def latest_event_id(self, site_id: str) -> str:
        """The id of the site's newest audit entry ("0-0" when there is none)."""
        with store_errors():
            newest = await self.redis.xrevrange(self.keys.audit(site_id), count=1)
        return cast(str, newest[0][0]) if newest else "0-0"

    async def events_after(
        self, site_id: str, after_id: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        """Audit entries after ``after_id``, waiting up to ``block_ms`` for the first one."""
        with store_errors():
            reply = await self.redis.xread(
                {self.keys.audit(site_id): after_id}, count=count, block=block_ms
            )
        streams = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], reply or [])
        return [entry for _, entries in streams for entry in entries]

    # ------------------------------------------------------------------ articles

    async def put_article(
        self, site_id: str, article_id: str, spec: ArticleSpec, now_ms: int
    ) -> Article:
        fields: dict[str, str | int] = {"id": article_id}
        if spec.url is not None:
            fields["url"] = spec.url
        if spec.title is not None:
            fields["title"] = spec.title
        fields |= {"closed": int(spec.closed), "premod": int(spec.premod), "updated_at": now_ms}
        await self._run("put_article", [self.keys.article(site_id, article_id)], _flatten(fields))
        return Article(
            id=article_id,
            url=spec.url,
            title=spec.title,
            closed=spec.closed,
            premod=spec.premod,
            updated_at=from_ms(now_ms),
        )

    # ------------------------------------------------------------------ intake

    async def write_intake(self, site_id: str, write: IntakeWrite) -> tuple[str, Comment]:
        """Run the ingest script; the outcome is ``created``, ``edited`` or ``unchanged``.

        Raises ``StaleContextError`` (nothing written) when the comment, author, article or windows
        are not as ``write.assumed`` says."""
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.author(site_id, write.author.id),
            self.keys.article(site_id, write.article_id),
            self.keys.stats(site_id),
            self.keys.hourly_stats(site_id, hour_bucket(write.now_ms)),
            self.keys.lease(site_id, write.comment_id),
            *(window.key for window in write.windows),
        ]
        args: list[str | int | float] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.text_hash,
            write.article_id,
            write.parent_id or "",
            write.author.id,
            write.author.model_dump_json(exclude_none=True),
            write.text,
            write.lang or "",
            write.state.value,
            json.dumps(list(write.reasons)),
            encode_scores(write.scores),
            json.dumps(
                {label: [list(span) for span in spans] for label, spans in write.evidence.items()}
            ),
            write.model,
            repr(write.priority),
            write.created_at_ms,
            write.now_ms,
            write.event_id,
            write.event_type,
            write.edit_sources,
            write.assumed.signature(write.min_approved),
            write.min_approved,
            "".join("n" if window.new_only else "a" for window in write.windows),
            write.rules.retention_ms,
            write.rules.recent_window_ms,
            repr(write.rules.premod_rejection_rate),
            write.rules.premod_min_decisions,
            "1" if write.second_look else "0",
            write.article_title or "",
            write.article_url or "",
            *(window.ttl_ms for window in write.windows),
        ]
        reply = await self._run("ingest", keys, args)
        outcome = reply[0]
        if outcome == "immutable":
            raise ValidationFailed((field, _IMMUTABLE[field]) for field in reply[1:])
        if outcome == "invalid_transition":
            raise InvalidTransition(f"a comment in state {reply[1]} cannot be edited")
        if outcome == "context":
            raise StaleContextError(Observation.observed(reply[1], reply[2]))
        if outcome == "unchanged":
            return outcome, comment_from_fields(pairs(reply[1]))
        now = from_ms(write.now_ms)
        return outcome, Comment(
            id=write.comment_id,
            article_id=write.article_id,
            article=CommentArticle(
                id=write.article_id, title=reply[3] or None, url=reply[4] or None
            ),
            parent_id=write.parent_id,
            author=write.author,
            text=write.text,
            state=write.state,
            reasons=tuple(write.reasons),
            scores=dict(write.scores),
            evidence={label: tuple(spans) for label, spans in write.evidence.items()},
            model=write.model,
            version=int(reply[1]),
            decided_by=f"auto:{write.model}",
            decided_at=now,
            created_at=from_ms(reply[2]),
            updated_at=now,
            lang=write.lang,
            priority=write.priority,
        )

    # ------------------------------------------------------------------ moderation

    async def decide(self, site_id: str, write: DecisionWrite) -> Comment:
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.lease(site_id, write.comment_id),
            self.keys.stats(site_id),
            self.keys.hourly_stats(site_id, hour_bucket(write.now_ms)),
            self.keys.claims(site_id, write.actor),
        ]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.target.value,
            write.action,
            write.actor,
            "" if write.expected_version is None else write.expected_version,
            json.dumps(list(write.reasons)),
            json.dumps(write.note),
            write.now_ms,
            write.event_id,
            write.event_type,
            write.sources,
            write.rules.retention_ms,
            write.rules.recent_window_ms,
        ]
        reply = await self._run("decide", keys, args)
        outcome = reply[0]
        if outcome == "not_found":
            raise NotFound(f"comment {write.comment_id!r} not found")
        if outcome == "version_conflict":
            raise VersionConflict(
                f"comment {write.comment_id!r} is at version {reply[1]}",
                {"current_version": int(reply[1])},
            )
        if outcome == "claim_conflict":
            raise ClaimConflict(
                f"comment {write.comment_id!r} is claimed by another moderator",
                {"claimed_by": reply[1], "lease_until": _iso(write.now_ms + int(reply[2]))},
            )
        if outcome == "invalid_transition":
            raise InvalidTransition(f"cannot {write.action} a comment in state {reply[1]}")
        return comment_from_fields(pairs(reply[1]))

    async def report(self, site_id: str, write: ReportWrite) -> ReportOutcome:
        """Store a reader's report; the report reaching the threshold queues the comment."""
        keys = [
            self.keys.comment(site_id, write.comment_id),
            self.keys.reports(site_id, write.comment_id),
            self.keys.history(site_id, write.comment_id),
            self.keys.audit(site_id),
            self.keys.outbox(site_id),
            self.keys.queue_index(site_id, Queue.REPORTED, Order.OLDEST),
        ]
        stored = write.report.model_dump_json(include={"reason", "note", "at"})
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            site_id,
            write.comment_id,
            write.report.reporter_id,
            stored,
            write.threshold,
            write.now_ms,
            write.event_id,
            write.event_type,
            write.sources,
        ]
        reply = await self._run("report", keys, args)
        outcome = reply[0]
        if outcome == "not_found":
            raise NotFound(f"comment {write.comment_id!r} not found")
        if outcome == "invalid_transition":
            raise InvalidTransition(
                f"only published comments can be reported; this one is {reply[1]}",
                {"state": reply[1]},
            )
        return ReportOutcome(
            comment_id=write.comment_id,
            state=State(reply[1]),
            reports=int(reply[2]),
            threshold=write.threshold,
            reported=reply[3] == 1,
            counted=outcome == "counted",
        )

    # ------------------------------------------------------------------ authors

    async def author(self, site_id: str, author_id: str, since_ms: int) -> AuthorRecord:
        """The author's hash and its decisions since ``since_ms`` (fields empty: never seen)."""
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.author(site_id, author_id))
                pipe.zrangebyscore(self.keys.author_recent(site_id, author_id), since_ms, "+inf")
                fields, recent = await pipe.execute()
        rejected = sum(1 for member in recent if member.startswith("r:"))
        return AuthorRecord(_texts(fields), len(recent), rejected)

    async def set_author_status(
        self,
        site_id: str,
        author_id: str,
        status: AuthorStatus,
        reason: str | None,
        actor: str,
        now_ms: int,
    ) -> None:
        keys = [self.keys.author(site_id, author_id), self.keys.audit(site_id)]
        args = [author_id, status.value, reason or "", actor, now_ms]
        await self._run("author_status", keys, args)

    async def pending_of_author(self, site_id: str, author_id: str) -> list[str]:
        """Ids of the author's held comments, oldest first."""
        key = self.keys.queue_index(site_id, Queue.PENDING, Order.OLDEST, author=author_id)
        with store_errors():
            ids = await self.redis.zrange(key, 0, -1)
        return cast(list[str], ids)

    async def claim(
        self,
        site_id: str,
        moderator_id: str,
        queue: Queue,
        order: Order,
        limit: int,
        lease_ms: int,
        now_ms: int,
    ) -> list[Comment]:
        keys = [
            self.keys.queue_index(site_id, queue, order),
            self.keys.claims(site_id, moderator_id),
            self.keys.audit(site_id),
        ]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            moderator_id,
            limit,
            lease_ms,
            now_ms,
            int(order is Order.PRIORITY),
        ]
        reply = await self._run("claim", keys, args)
        lease_until = from_ms(now_ms + lease_ms)
        return [
            comment_from_fields(pairs(fields), claimed_by=moderator_id, lease_until=lease_until)
            for _, fields in reply
            if fields
        ]

    async def claim_comment(
        self, site_id: str, moderator_id: str, comment_id: str, lease_ms: int, now_ms: int
    ) -> Comment:
        """Lease one queued comment to the moderator (renewing a lease it holds); raises
        NotFound, ClaimConflict, or InvalidTransition for a comment in no queue."""
        keys = [
            self.keys.comment(site_id, comment_id),
            self.keys.lease(site_id, comment_id),
            self.keys.claims(site_id, moderator_id),
            self.keys.audit(site_id),
            self.keys.queue_index(site_id, Queue.PENDING, Order.OLDEST),
            self.keys.queue_index(site_id, Queue.REPORTED, Order.OLDEST),
        ]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            moderator_id,
            comment_id,
            lease_ms,
            now_ms,
        ]
        reply = await self._run("claim_comment", keys, args)
        outcome = reply[0]
        if outcome == "not_found":
            raise NotFound(f"comment {comment_id!r} not found")
        if outcome == "not_queued":
            raise InvalidTransition(
                f"comment {comment_id!r} is {reply[1]} and in no queue: only a queued comment "
                "can be claimed"
            )
        if outcome == "claim_conflict":
            raise ClaimConflict(
                f"comment {comment_id!r} is claimed by another moderator",
                {"claimed_by": reply[1], "lease_until": _iso(now_ms + int(reply[2]))},
            )
        return comment_from_fields(
            pairs(reply[1]), claimed_by=moderator_id, lease_until=from_ms(now_ms + lease_ms)
        )

    async def release(
        self, site_id: str, moderator_id: str, ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        keys = [self.keys.claims(site_id, moderator_id), self.keys.audit(site_id)]
        args: list[str | int] = [self.keys.site_prefix(site_id), moderator_id, now_ms, *(ids or ())]
        if ids is not None and not ids:
            return []
        released: list[str] = await self._run("release", keys, args)
        return released

    async def page(self, site_id: str, query: QueueQuery, now_ms: int) -> QueuePage:
        key = self.keys.queue_index(
            site_id,
            query.queue,
            query.order,
            article=query.article,
            author=query.author,
            reason=query.reason.value if query.reason else None,
        )
        scope = {
            "q": query.queue.value,
            "o": query.order.value,
            "a": query.article,
            "u": query.author,
            # Absent unless filtered, so cursors handed out before the filter existed still hold.
            **({"r": query.reason.value} if query.reason else {}),
        }
        return await self._page(
            site_id,
            key,
            scope,
            query.cursor,
            query.limit,
            now_ms,
            descending=query.order is Order.PRIORITY,
        )

    async def comments(
        self, site_id: str, query: CommentQuery, now_ms: int, retention_ms: int
    ) -> QueuePage:
        """A page of the comments in one state, the latest decision first. Decided comments
        decided longer than ``retention_ms`` ago have expired and leave the index here."""
        key = self.keys.comments(site_id, query.state, article=query.article, author=query.author)
        scope = {
            "state": query.state.value,
            "a": query.article,
            "u": query.author,
            "from": query.since.isoformat() if query.since else None,
            "to": query.until.isoformat() if query.until else None,
        }
        return await self._page(
            site_id,
            key,
            scope,
            query.cursor,
            query.limit,
            now_ms,
            descending=True,
            low=str(to_ms(query.since)) if query.since else "-inf",
            high=f"({to_ms(query.until)}" if query.until else "+inf",
            trim_below=None if query.state is State.PENDING else now_ms - retention_ms,
        )

    async def _page(
        self,
        site_id: str,
        key: str,
        scope: Mapping[str, str | None],
        cursor: str | None,
        limit: int,
        now_ms: int,
        *,
        descending: bool,
        low: str = "-inf",
        high: str = "+inf",
        trim_below: int | None = None,
    ) -> QueuePage:
        after = decode_cursor(cursor, scope) if cursor else None
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            int(descending),
            limit + 1,
            after[0] if after else "",
            after[1] if after else "",
            low,
            high,
            "" if trim_below is None else trim_below,
        ]
        total, reply = await self._run("page", [key], args)
        items = [
            comment_from_fields(
                pairs(fields),
                claimed_by=holder,
                lease_until=from_ms(now_ms + int(ttl)) if holder else None,
            )
            for _, _, fields, holder, ttl in reply[:limit]
            if fields
        ]
        next_cursor = None
        if len(reply) > limit:
            last_id, last_score = reply[limit - 1][0], reply[limit - 1][1]
            next_cursor = encode_cursor(scope, last_score, last_id)
        return QueuePage(items=tuple(items), next_cursor=next_cursor, total=int(total))

    async def comment(self, site_id: str, comment_id: str, now_ms: int) -> Comment:
        """The comment with its full history and, when claimed, its lease."""
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.comment(site_id, comment_id))
                pipe.get(self.keys.comment_text(site_id, comment_id))
                pipe.lrange(self.keys.history(site_id, comment_id), 0, -1)
                pipe.get(self.keys.lease(site_id, comment_id))
                pipe.pttl(self.keys.lease(site_id, comment_id))
                pipe.hgetall(self.keys.reports(site_id, comment_id))
                fields, text, history, holder, ttl, reports = await pipe.execute()
        if not fields:
            raise NotFound(f"comment {comment_id!r} not found")
        if text is not None:
            fields["text"] = text
        with store_errors():
            title, url = await self.redis.hmget(
                self.keys.article(site_id, fields["article_id"]), ["title", "url"]
            )
        fields.update(
            {
                name: value
                for name, value in (("article_title", title), ("article_url", url))
                if value
            }
        )
        return comment_from_fields(
            fields,
            history=tuple(history_entry(json.loads(entry)) for entry in history),
            reports=tuple(
                sorted(
                    (
                        Report.model_validate({**json.loads(stored), "reporter_id": reporter})
                        for reporter, stored in reports.items()
                    ),
                    key=lambda report: (report.at, report.reporter_id),
                )
            ),
            claimed_by=holder,
            lease_until=from_ms(now_ms + ttl) if holder and ttl > 0 else None,
        )

    async def stats(self, site_id: str, now_ms: int) -> SiteStats:
        hours = [now_ms - index * 3_600_000 for index in range(HOURS_OF_STATS)]
        with store_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for queue in Queue:
                    pipe.zcard(self.keys.queue_index(site_id, queue, Order.OLDEST))
                for queue in Queue:
                    pipe.zrange(
                        self.keys.queue_index(site_id, queue, Order.OLDEST), 0, 0, withscores=True
                    )
                pipe.hgetall(self.keys.stats(site_id))
                for hour in hours:
                    pipe.hgetall(self.keys.hourly_stats(site_id, hour_bucket(hour)))
                replies = await pipe.execute()
        depths = dict(zip((queue.value for queue in Queue), replies[: len(Queue)], strict=True))
        oldest_ages = {
            queue.value: max(0.0, (now_ms - oldest[0][1]) / 1000) if oldest else None
            for queue, oldest in zip(Queue, replies[len(Queue) : 2 * len(Queue)], strict=True)
        }
        counters, *hourly = replies[2 * len(Queue) :]
        per_hour = tuple(
            HourlyDecisions(
                hour=datetime.strptime(hour_bucket(hour), "%Y%m%d%H").replace(tzinfo=UTC),
                auto=int(bucket.get("auto", 0)),
                moderator=int(bucket.get("moderator", 0)),
            )
            for hour, bucket in zip(hours, hourly, strict=True)
        )
        decisions = {"auto": 0, "moderator": 0} | {
            name: int(value) for name, value in counters.items()
        }
        return SiteStats(
            queue_depths=depths,
            oldest_pending_age_seconds=oldest_ages[Queue.PENDING.value],
            oldest_ages_seconds=oldest_ages,
            decisions=decisions,
            decisions_per_hour=per_hour,
        )


def encode_cursor(scope: Mapping[str, str | None], score: str, comment_id: str) -> str:
    """Opaque to callers: the last item's (score, id) and the listing (``scope``) it ends."""
    return cursors.encode_cursor({**scope, "s": score, "i": comment_id})


_CURSOR_SCORE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def decode_cursor(cursor: str, scope: Mapping[str, str | None]) -> tuple[str, str]:
    """The (score, id) a cursor of the listing ``scope`` resumes after."""
    body = cursors.decode_cursor(cursor)
    try:
        score, comment_id = str(body.pop("s")), str(body.pop("i"))
        # Redis takes the score back as a range bound: a plain finite decimal, nothing Python
        # alone accepts ("nan", "1_0").
        if not _CURSOR_SCORE.fullmatch(score) or not math.isfinite(float(score)):
            raise ValueError(score)
        matches = body == dict(scope)
    except (ValueError, TypeError, KeyError):
        raise BadRequest("invalid cursor") from None
    if not matches:
        raise BadRequest("the cursor belongs to a different queue, order or filter")
    return score, comment_id


SCORE_FIELD = "score:"
"""Each score is a field of its own (``score:toxicity``): one JSON of every label would exceed
Redis's ``hash-max-listpack-value`` and turn the whole hash into a far larger hashtable."""


def encode_scores(scores: Mapping[str, float]) -> str:
    """The ingest script's form, ``label=score;`` each; ``repr`` is JSON's exact float text."""
    for label in scores:
        if "=" in label or ";" in label:
            raise ValueError(f"score label {label!r} cannot be stored")
    return "".join(f"{label}={float(score)!r};" for label, score in scores.items())


def decode_scores(fields: Mapping[str, str]) -> dict[str, float]:
    """The scores of either layout: ``score:<label>`` fields, or the JSON of a comment stored
    before them."""
    stored = fields.get("scores")
    if stored is not None:
        return cast(dict[str, float], json.loads(stored))
    return {
        name[len(SCORE_FIELD) :]: float(value)
        for name, value in fields.items()
        if name.startswith(SCORE_FIELD)
    }


def comment_from_fields(
    fields: Mapping[str, str],
    *,
    history: tuple[HistoryEntry, ...] | None = None,
    reports: tuple[Report, ...] | None = None,
    claimed_by: str | None = None,
    lease_until: datetime | None = None,
) -> Comment:
    evidence = json.loads(fields.get("evidence") or "{}")
    return Comment(
        id=fields["id"],
        article_id=fields["article_id"],
        article=CommentArticle(
            id=fields["article_id"],
            title=fields.get("article_title"),
            url=fields.get("article_url"),
        ),
        parent_id=fields.get("parent_id") or None,
        author=Author.model_validate_json(fields["author"]),
        text=fields["text"],
        state=State(fields["state"]),
        reasons=tuple(json.loads(fields["reasons"])),
        scores=decode_scores(fields),
        evidence={label: tuple(tuple(span) for span in spans) for label, spans in evidence.items()},
        model=fields.get("model") or None,
        version=int(fields["version"]),
        decided_by=fields["decided_by"],
        decided_at=from_ms(fields["decided_at"]),
        created_at=from_ms(fields["created_at"]),
        updated_at=from_ms(fields["updated_at"]),
        lang=fields.get("lang") or None,
        priority=float(fields.get("priority") or 0.0),
        history=history,
        report_count=int(fields.get("reports") or 0),
        reports=reports,
        claimed_by=claimed_by,
        lease_until=lease_until,
        second_look=second_look_from_fields(fields),
    )


def second_look_from_fields(fields: Mapping[str, str]) -> SecondLook | None:
    """The comment's second look, if it was ever queued for one."""
    state = fields.get("look_state")
    if not state:
        return None
    scores = fields.get("look_scores")
    looked_at = fields.get("look_at")
    return SecondLook(
        state=SecondLookState(state),
        queued_at=from_ms(fields["look_queued_at"]) if fields.get("look_queued_at") else None,
        looked_at=from_ms(looked_at) if looked_at else None,
        scores=json.loads(scores) if scores else None,
        model=fields.get("look_model") or None,
    )


def history_entry(entry: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        version=entry["version"],
        at=from_ms(entry["at"]),
        actor=entry["actor"],
        action=entry["action"],
        from_state=entry["from_state"],
        to_state=entry["to_state"],
        reasons=tuple(entry["reasons"]),
        note=entry["note"],
        model=entry["model"],
        previous_text=entry.get("previous_text"),
    )


def _texts(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    # The store's client always decodes responses (checked in Store.__init__).
    return cast(dict[str, str], fields)


def pairs(flat: Sequence[str]) -> dict[str, str]:
    """A flat Redis reply ``[field, value, field, value, ...]`` as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _flatten(fields: Mapping[str, str | int]) -> list[str | int]:
    return [item for pair in fields.items() for item in pair]


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat().replace("+00:00", "Z")
