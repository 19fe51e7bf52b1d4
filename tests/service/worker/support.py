"""What the webhook worker tests share: a real receiver, and events written by the store."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from aiohttp import web

from service import signatures
from service.domain import State
from service.egress import parse_allowed
from service.keys import KeySpace
from service.settings import DeliverySettings
from service.store import Store
from service.worker import Worker
from tests.clocks import Clock
from tests.ports import free_port
from tests.records import decision_write, intake_write

SITE = "news"
SECRET = "whsec_worker_tests"
KEYS = KeySpace("civ")
# Backoffs and leases of minutes: a retry is due when a test moves the workers' clock on
# (``Retries``), never because the wall clock went on; no lease ends within a test.
FAST = DeliverySettings(
    # Long, so that a stalled machine cannot turn an answered delivery into a timeout and a
    # second, duplicate delivery; the tests of timeouts set their own.
    timeout_seconds=10.0,
    max_attempts=4,
    backoff_base_seconds=30.0,
    backoff_cap_seconds=60.0,
    lease_seconds=3600.0,
    concurrency=8,
    poll_ms=10.0,
    drain_seconds=5.0,
    # The receivers of these tests listen on loopback, which webhooks may not reach by default.
    callback_allow=parse_allowed("loopback"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "condition"
) -> None:
    """Await ``condition`` becoming true; background work is driven to completion this way."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Retries:
    """Drives the workers' retries: while a condition is awaited, the clock moves past the
    longest backoff whenever no attempt is in flight, so the next retry is due at once."""

    clock: Clock
    workers: list[Worker] = field(default_factory=list)

    async def until(
        self, condition: Callable[[], Awaitable[bool]], what: str, within: float = 15.0
    ) -> None:
        async def moved_on() -> bool:
            if await condition():
                return True
            if all(worker.in_flight == 0 for worker in self.workers):
                self.clock.advance(max(w.settings.backoff_cap_seconds for w in self.workers))
            return False

        await eventually(moved_on, within=within, what=what)


@dataclass
class Arrival:
    event: dict[str, Any]
    status: int
    signature_ok: bool
    signed_at: int | None
    """The ``t`` of the request's signature (none when it had none to read)."""
    received_at: float
    """When it arrived, by the receiver's clock."""


@dataclass
class Receiver:
    """A host's webhook endpoint: answers ``failures`` with 500 (with ``retry_after`` as its
    ``Retry-After``, if set), or hangs while ``hang`` is set, then 200. Every request's
    signature is checked against the site's secret, and its time against ``clock`` (the
    workers' clock, when a test moves it)."""

    secret: str = SECRET
    failures: int = 0
    hang: asyncio.Event | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    url: str = ""
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    retry_after: str | None = None
    clock: Callable[[], float] = time.time

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received_at = self.clock()
        header = request.headers.get(signatures.HEADER)
        try:
            signed_at: int | None = signatures.parse(header).timestamp
        except signatures.SignatureError:
            signed_at = None
        try:
            signatures.verify(header, body, [self.secret], now=received_at)
            signature_ok = True
        except signatures.SignatureError:
            signature_ok = False
        self.entered.set()
        if self.hang is not None and not self.hang.is_set():
            await self.hang.wait()
        status = 200 if signature_ok else 401
        if signature_ok and self.failures > 0:
            self.failures -= 1
            status = 500
        self.arrivals.append(
            Arrival(json.loads(body), status, signature_ok, signed_at, received_at)
        )
        headers = {"Retry-After": self.retry_after} if status == 500 and self.retry_after else {}
        return web.json_response({"ok": status == 200}, status=status, headers=headers)

    def delivered(self) -> list[dict[str, Any]]:
        return [arrival.event for arrival in self.arrivals if arrival.status == 200]


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}/hooks"


CreateSite = Callable[..., Awaitable[None]]


class Events:
    """State changes through the store's scripts; each writes one outbox event."""

    def __init__(self, store: Store, site: str = SITE) -> None:
        self.store = store
        self.site = site
        self.count = 0

    def _event_id(self) -> str:
        self.count += 1
        return f"evt_{self.count:05d}"

    async def held(self, comment_id: str, article: str = "a1") -> str:
        event_id = self._event_id()
        write = intake_write(
            comment_id,
            now_ms(),
            text_hash=f"hash:{comment_id}",
            article_id=article,
            event_id=event_id,
        )
        await self.store.write_intake(self.site, write)
        return event_id

    async def decide(self, comment_id: str, target: State, actor: str = "mod_1") -> str:
        event_id = self._event_id()
        write = decision_write(comment_id, now_ms(), target, actor=actor, event_id=event_id)
        await self.store.decide(self.site, write)
        return event_id


StartWorker = Callable[..., Awaitable[Worker]]


async def record(redis_client: aioredis.Redis, event_id: str) -> dict[str, str]:
    fields = await redis_client.hgetall(KEYS.delivery(SITE, event_id))
    return cast(dict[str, str], fields)


def in_state(
    redis_client: aioredis.Redis, event_id: str, state: str
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await record(redis_client, event_id)).get("state") == state

    return check
