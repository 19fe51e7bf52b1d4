"""The store's reads of comments: pages behind cursors, one comment, authors, stats, events."""

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from service import cursors
from service.domain import (
    AuthorStatus,
    Comment,
    CommentQuery,
    HourlyDecisions,
    Order,
    Queue,
    QueuePage,
    QueueQuery,
    Report,
    SiteStats,
    State,
)
from service.errors import BadRequest, NotFound
from service.store.records import AuthorRecord, SiteRules
from service.store.rows import comment_from_fields, creation_entry, history_entry, pairs
from service.store.scripts import ScriptedStore, store_errors
from service.times import HOUR_MS, ceil_ms, from_ms, hour_bucket

HOURS_OF_STATS = 24


class CommentReads(ScriptedStore):
    """Reads in pipelines, or by a script where one must apply a rule the scripts apply (an
    author's standing) or trim what expired (pages)."""

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

    # ------------------------------------------------------------------ authors

    async def author(
        self, site_id: str, author_id: str, now_ms: int, rules: SiteRules
    ) -> AuthorRecord:
        """The author's hash, its decisions within the recent window and its standing, read by
        one script with the rule intake applies (fields empty: never seen)."""
        keys = [self.keys.author(site_id, author_id)]
        args: list[str | int] = [
            self.keys.site_prefix(site_id),
            author_id,
            now_ms,
            rules.recent_window_ms,
            repr(rules.premod_rejection_rate),
            rules.premod_min_decisions,
        ]
        fields, decided, rejected, standing = await self._run("author_view", keys, args)
        return AuthorRecord(pairs(fields), int(decided), int(rejected), AuthorStatus(standing))

    async def article_rules(self, site_id: str, article_id: str) -> tuple[bool, bool]:
        """Whether the article is closed, and whether it is pre-moderated (False, False for an
        article never put)."""
        with store_errors():
            closed, premod = await self.redis.hmget(
                self.keys.article(site_id, article_id), ["closed", "premod"]
            )
        return closed == "1", premod == "1"

    async def pending_of_author(self, site_id: str, author_id: str) -> list[str]:
        """Ids of the author's held comments, oldest first."""
        key = self.keys.queue_index(site_id, Queue.PENDING, Order.OLDEST, author=author_id)
        with store_errors():
            ids = await self.redis.zrange(key, 0, -1)
        return cast(list[str], ids)

    async def ban_rejections(self, site_id: str, author_id: str) -> list[str]:
        """The held comments the author's standing ban rejected, in the order it first did (a
        comment reopened and rejected again by a repeated ban is listed once)."""
        with store_errors():
            ids = await self.redis.lrange(self.keys.ban_rejections(site_id, author_id), 0, -1)
        return list(dict.fromkeys(cast(list[str], ids)))

    # ------------------------------------------------------------------ comments

    async def page(self, site_id: str, query: QueueQuery, now_ms: int) -> QueuePage:
        keys = self.keys.queue_scope(
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
            keys,
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
        decided longer than ``retention_ms`` ago whose hashes have expired leave the index here;
        one kept meanwhile (in the reported queue) is listed."""
        keys = self.keys.comments_scope(
            site_id, query.state, article=query.article, author=query.author
        )
        scope = {
            "state": query.state.value,
            "a": query.article,
            "u": query.author,
            "from": query.since.isoformat() if query.since else None,
            "to": query.until.isoformat() if query.until else None,
        }
        return await self._page(
            site_id,
            keys,
            scope,
            query.cursor,
            query.limit,
            now_ms,
            descending=True,
            # Decision times are whole milliseconds: one at or after ``since`` is at or after
            # its next whole millisecond, and one before ``until`` is before that too.
            low=str(ceil_ms(query.since)) if query.since else "-inf",
            high=f"({ceil_ms(query.until)}" if query.until else "+inf",
            trim_below=None if query.state is State.PENDING else now_ms - retention_ms,
        )

    async def _page(
        self,
        site_id: str,
        keys: list[str],
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
        # Two keys (an article's and an author's index) list their intersection.
        total, reply = await self._run("page", keys, args)
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
                for queue in (Queue.PENDING, Queue.REPORTED):
                    pipe.zscore(self.keys.queue_index(site_id, queue, Order.OLDEST), comment_id)
                fields, text, history, holder, ttl, reports, *queued = await pipe.execute()
        if not fields:
            raise NotFound(f"comment {comment_id!r} not found")
        if text is not None:
            fields["text"] = text
        # As the scripts' comment_fields name it: when the comment entered the queue it waits in.
        queued_at = next((score for score in queued if score is not None), None)
        if queued_at is not None:
            fields["queued_at"] = str(int(queued_at))
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
            history=tuple(history_entry(json.loads(entry)) for entry in history)
            or (creation_entry(fields),),
            reports=tuple(
                sorted(
                    (
                        Report.model_validate(
                            {**json.loads(stored), "reporter_id": _reporter_id(reporter)}
                        )
                        for reporter, stored in reports.items()
                    ),
                    key=lambda report: (report.at, report.reporter_id or ""),
                )
            ),
            claimed_by=holder,
            lease_until=from_ms(now_ms + ttl) if holder and ttl > 0 else None,
        )

    async def stats(self, site_id: str, now_ms: int) -> SiteStats:
        hours = [now_ms - index * HOUR_MS for index in range(HOURS_OF_STATS)]
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


def _reporter_id(field: str) -> str | None:
    """The reader a report's field names; none for an erased reader's report, kept as
    ``erased <n>`` (erase_author.lua), which no reader's id can be: ids hold no space."""
    return None if " " in field else field
