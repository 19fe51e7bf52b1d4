"""Webhook delivery state in Redis: admitting outbox events, leasing, settling, redelivering.

Every event of a site's outbox becomes one delivery record, kept in one index per state
(``pending``, ``delivered``, ``failed``: the dead letter). Per comment, undelivered events wait in
a line in outbox order and only the head of a line is ever attempted, so one comment's events
reach the host in order while other comments' events flow past a slow one. The due set holds
the heads that may be attempted and when; a lease pushes a head's time forward while a worker
attempts it, so a worker that dies mid-delivery only delays that event by the lease.

Each change is one Lua script over one site's keys (one hash slot).
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, cast

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from service.cursors import decode_cursor, encode_cursor
from service.domain import Cursor, QueryInteger
from service.errors import BadRequest, Conflict, NotFound
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.rows import pairs
from service.store.scripts import LuaScripts, RedisClient, raise_unavailable, store_errors
from service.times import iso_from_ms

log = logging.getLogger(__name__)

GROUP = "deliveries"
# Admission reads and acknowledges inside one script, so the group's consumer is only a name.
CONSUMER = "admit"
MAX_PAGE = 100


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Settle(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GIVEN_UP = "given_up"
    """Failed for a reason no attempt can change: the comment's later events are not held back."""
    HAND_BACK = "hand_back"
    """The attempt was cut short: due again at once, and not counted."""


@dataclass(frozen=True, slots=True)
class WaitedOn:
    """A hash an attempt waited on (a decision into Coral waiting for the ids a webhook of
    Coral's links), as the attempt read it."""

    key: str
    read: Mapping[str, str]
    """Its fields as the attempt read them: when any has changed since, what the attempt waited
    for came during it, so a retry is due at once, and a failed last attempt is made again at
    once, not counted, instead of being dead-lettered."""
    given_up: Mapping[str, str | int] = field(default_factory=dict)
    """Fields set in it in the same step as the event is dead-lettered."""


@dataclass(frozen=True, slots=True)
class Admission:
    read: int
    """Outbox entries read; as many as asked means more may be waiting."""
    due: int
    """Deliveries of the site that may be attempted now."""


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: DeliveryState = DeliveryState.FAILED
    limit: QueryInteger = Field(default=20, ge=1, le=MAX_PAGE)
    cursor: Cursor | None = None


class Delivery(BaseModel):
    """One event's delivery as the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    comment_id: str
    comment_version: int
    state: DeliveryState
    attempts: int
    created_at: str
    updated_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    failed_at: str | None
    last_status: int | None
    last_error: str | None

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> Self:
        def moment(name: str) -> str | None:
            value = record.get(name)
            return iso_from_ms(int(value)) if value else None

        return cls(
            id=record["id"],
            type=record["type"],
            comment_id=record["comment_id"],
            comment_version=int(record["version"]),
            state=DeliveryState(record["state"]),
            attempts=int(record["attempts"]),
            created_at=iso_from_ms(int(record["created_at"])),
            updated_at=iso_from_ms(int(record["updated_at"])),
            next_attempt_at=moment("next_attempt_at"),
            delivered_at=moment("delivered_at"),
            failed_at=moment("failed_at"),
            last_status=int(record["last_status"]) if record.get("last_status") else None,
            last_error=record.get("last_error") or None,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DeliveryPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: tuple[Delivery, ...]
    next_cursor: str | None


class DeliveryLog:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)
        self._scripts = LuaScripts(
            redis,
            (
                "delivery_admit",
                "delivery_lease",
                "delivery_settle",
                "delivery_redeliver",
                "outbox_trim",
            ),
            with_library=False,
        )
        self._run = self._scripts.run

    async def sites(self) -> list[str]:
        with store_errors():
            members = await self.redis.smembers(self.keys.sites())
        return sorted(cast(set[str], members))

    def _admit_call(self, site: str, limit: int, now_ms: int) -> tuple[list[str], list[str | int]]:
        keys = [
            self.keys.outbox(site),
            self.keys.deliveries_due(site),
            self.keys.deliveries(site, DeliveryState.PENDING),
            self.keys.site(site),
        ]
        return keys, [self.keys.site_prefix(site), GROUP, CONSUMER, limit, now_ms]

    async def admit(self, site: str, limit: int, now_ms: int) -> Admission:
        """Record up to ``limit`` new outbox events of ``site``."""
        keys, args = self._admit_call(site, limit, now_ms)
        read, due = await self._run("delivery_admit", keys, args)
        return Admission(int(read), int(due))

    async def admit_all(self, sites: Sequence[str], limit: int, now_ms: int) -> list[Admission]:
        """``admit`` for every site; on one Redis server in a single round trip, so an idle
        pass costs one round trip however many sites there are."""
        replies: list[list[int] | Exception] = []
        if isinstance(self.redis, RedisCluster):
            # A cluster pipeline cannot load scripts; each site is one call to its own node.
            for site in sites:
                keys, args = self._admit_call(site, limit, now_ms)
                try:
                    replies.append(await self._run("delivery_admit", keys, args))
                except ResponseError as error:
                    replies.append(error)
        else:
            script = self._scripts["delivery_admit"]
            with store_errors():
                async with self.redis.pipeline(transaction=False) as pipe:
                    for site in sites:
                        keys, args = self._admit_call(site, limit, now_ms)
                        await script(keys=keys, args=args, client=pipe)
                    replies = await pipe.execute(raise_on_error=False)
                # Redis refusing writes refuses every site's admission alike: the pass ends as
                # the store being away, not as each site's broken data, and admits next pass.
                raise_unavailable(replies)
        admissions = []
        for site, reply in zip(sites, replies, strict=True):
            if isinstance(reply, Exception):
                # One site's broken data must not stop every other site's deliveries.
                log.error("admitting the outbox of site %r failed: %s", site, reply)
                reply = [0, 0]
            admissions.append(Admission(int(reply[0]), int(reply[1])))
        return admissions

    async def lease(
        self, site: str, limit: int, lease_ms: int, token: str, now_ms: int
    ) -> list[dict[str, str]]:
        """Up to ``limit`` due delivery records, leased to ``token`` and counted as an attempt."""
        keys = [self.keys.deliveries_due(site)]
        args: list[str | int] = [self.keys.site_prefix(site), now_ms, limit, lease_ms, token]
        leased: list[list[str]] = await self._run("delivery_lease", keys, args)
        return [pairs(fields) for fields in leased]

    async def settle(
        self,
        site: str,
        record: Mapping[str, str],
        outcome: Settle,
        *,
        now_ms: int,
        next_attempt_ms: int | None = None,
        status: int | None = None,
        error: str | None = None,
        delivered_ttl_ms: int,
        delivered_keep: int,
        waited_on: WaitedOn | None = None,
    ) -> Settle | None:
        """Record an attempt's outcome: the one recorded, ``RETRY`` for a failure that
        ``waited_on`` turned into a retry; None when the lease was lost to another worker, or the
        site deleted meanwhile."""
        event_id = record["id"]
        keys = [
            self.keys.deliveries_due(site),
            self.keys.deliveries(site, DeliveryState.PENDING),
            self.keys.deliveries(site, DeliveryState.DELIVERED),
            self.keys.deliveries(site, DeliveryState.FAILED),
            self.keys.delivery(site, event_id),
            self.keys.delivery_line(site, record["comment_id"]),
        ]
        args: list[str | int] = [
            self.keys.site_prefix(site),
            event_id,
            record["lease"],
            outcome.value,
            now_ms,
            "" if next_attempt_ms is None else next_attempt_ms,
            "" if status is None else status,
            error or "",
            delivered_ttl_ms,
            delivered_keep,
        ]
        if waited_on is None:
            args.append(0)
        else:
            keys.append(waited_on.key)
            args.append(len(waited_on.read))
            for fields in (waited_on.read, waited_on.given_up):
                args += [item for pair in fields.items() for item in pair]
        reply = await self._run("delivery_settle", keys, args)
        return {"ok": outcome, "retry": Settle.RETRY}.get(reply)

    async def redeliver(self, site: str, event_id: str, now_ms: int) -> Delivery:
        keys = [
            self.keys.deliveries_due(site),
            self.keys.deliveries(site, DeliveryState.PENDING),
            self.keys.deliveries(site, DeliveryState.DELIVERED),
            self.keys.deliveries(site, DeliveryState.FAILED),
            self.keys.delivery(site, event_id),
        ]
        reply = await self._run(
            "delivery_redeliver", keys, [self.keys.site_prefix(site), event_id, now_ms]
        )
        if reply[0] == "not_found":
            raise NotFound(f"delivery {event_id!r} not found")
        delivery = Delivery.from_record(pairs(reply[1]))
        if reply[0] == "pending":
            raise Conflict(
                f"delivery {event_id!r} is already pending",
                {"next_attempt_at": delivery.next_attempt_at, "attempts": delivery.attempts},
            )
        return delivery

    async def trim_outbox(self, site: str, keep: int) -> int:
        """Drop admitted outbox entries beyond the newest ``keep``; the number removed."""
        return int(await self._run("outbox_trim", [self.keys.outbox(site)], [GROUP, keep]))

    async def site_exists(self, site: str) -> bool:
        with store_errors():
            return bool(await self.redis.exists(self.keys.site(site)))

    async def page(self, site: str, query: DeliveryQuery) -> DeliveryPage:
        """One page of a state's deliveries: pending oldest first, the others newest first."""
        key = self.keys.deliveries(site, query.state)
        newest_first = query.state is not DeliveryState.PENDING
        after = _decode_cursor(query) if query.cursor else None
        with store_errors():
            skip = 0
            start: str | float = "+inf" if newest_first else "-inf"
            if after is not None:
                score, last_id = after
                start = score
                ties = cast(list[str], await self.redis.zrange(key, score, score, byscore=True))
                # Members of equal score are ordered by id, reversed when newest come first.
                skip = sum(
                    1 for tie in ties if (tie >= last_id if newest_first else tie <= last_id)
                )
            end = "-inf" if newest_first else "+inf"
            members = cast(
                list[tuple[str, float]],
                await self.redis.zrange(
                    key,
                    start,
                    end,
                    byscore=True,
                    desc=newest_first,
                    offset=skip,
                    num=query.limit + 1,
                    withscores=True,
                ),
            )
            async with self.redis.pipeline(transaction=False) as pipe:
                for event_id, _ in members[: query.limit]:
                    pipe.hgetall(self.keys.delivery(site, event_id))
                records: list[dict[str, str]] = await pipe.execute()
        # A delivered record past its retention is gone while its index entry may remain.
        items = tuple(Delivery.from_record(record) for record in records if record)
        next_cursor = None
        if len(members) > query.limit:
            last_id, last_score = members[query.limit - 1]
            next_cursor = _encode_cursor(query.state, str(int(last_score)), last_id)
        return DeliveryPage(items=items, next_cursor=next_cursor)


def _encode_cursor(state: DeliveryState, score: str, event_id: str) -> str:
    return encode_cursor({"s": state.value, "t": score, "i": event_id})


def _decode_cursor(query: DeliveryQuery) -> tuple[str, str]:
    assert query.cursor is not None
    body = decode_cursor(query.cursor)
    try:
        state, score, event_id = body["s"], str(int(body["t"])), str(body["i"])
    except (ValueError, TypeError, KeyError, OverflowError):
        raise BadRequest("invalid cursor") from None
    if state != query.state.value:
        raise BadRequest("the cursor belongs to a different delivery state")
    return score, event_id
