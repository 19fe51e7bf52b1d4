"""Coral Talk both ways: civility's decisions into Coral's GraphQL API, Coral's webhooks into
civility, and EDITs that update their comment.

A fake Coral runs on a loopback port: an aiohttp app that answers GraphQL like Coral does (the
answers are the recorded ones in tests/data/coral, see its SOURCE.md) after checking each
operation's shape, token and variables. The webhook worker is civility's real one, driven pass
by pass until the fake Coral has the call.
"""

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.appkeys import CORAL
from service.compat import coral_desk, coral_sync
from service.deliveries import Settle
from service.egress import parse_allowed
from service.keys import KeySpace
from service.settings import DeliverySettings, Settings
from service.times import iso_from_ms
from service.worker import Worker
from tests.clocks import Clock

from ..worker.support import Retries, eventually
from .conftest import ADMIN_TOKEN, api_settings
from .test_compat_coral import NEW_COMMENT, SECRET, coral_body, coral_signature, our_id, send

Client = TestClient[web.Request, web.Application]

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "coral"
WEBHOOK_SECRET = "whsec_coral_endpoint_0123456789"
TOKEN = "coral-personal-access-token-0123456789"
KEYS = KeySpace("civ")
DAY_MS = 86_400_000
CORAL_ID = "0c5e8a7b-1d2f-4e3a-9b6c-7d8e9f0a1b2c"
REVISION_ID = "4f3e2d1c-0b9a-4887-a665-544332211000"
EDITED_REVISION_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
FAST = DeliverySettings(
    # No test here waits for a call to time out (one that does sets its own timeout): a call the
    # machine's load slowed must end as Coral answered it, not as timed out.
    timeout_seconds=60.0,
    max_attempts=5,
    # A retry is due when the test moves the worker's clock on (``Retries``), never before.
    backoff_base_seconds=30.0,
    backoff_cap_seconds=60.0,
    lease_seconds=3600.0,
    concurrency=4,
    poll_ms=10.0,
    drain_seconds=5.0,
    # The fake Coral listens on loopback, which the egress guard refuses unless allowed.
    callback_allow=parse_allowed("loopback"),
)
PATIENT = dataclasses.replace(
    FAST, backoff_base_seconds=DAY_MS / 1000, backoff_cap_seconds=DAY_MS / 1000
)
"""Retries drawn from up to a day: a decision that reaches Coral within a test went as soon as
something made it due, not at its retry."""
OPERATION = re.compile(r"^(query|mutation) \w+\(\$(\w+): (\w+!)\) \{ (\w+)\((\w+): \$\w+\)")


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass
class FakeCoral:
    """Coral's GraphQL endpoint: checks every operation's shape, answers as Coral does, and
    keeps the comment's status as its moderators (or civility's mutations) last set it."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    query_failures: int = 0
    status: str = "PREMOD"
    endless: bool = False
    """Answer mutations with a 200 whose body never ends."""
    odd_answer: web.Response | None = None
    """Answer mutations with this instead of Coral's answer."""
    hang: asyncio.Event | None = None
    """Answer mutations only once this is set."""
    query_hang: asyncio.Event | None = None
    """Answer queries, with the comment as it was when asked, only once this is set."""
    body: str | None = None
    """The comment's body as Coral stores it (HTML), instead of the recorded one."""
    revision: str = REVISION_ID
    """The comment's latest revision (an edit adds one; Coral still takes decisions on older)."""
    changed_at: float = 0.0
    """When a mutation last set the comment's status (Coral's clock, the real time)."""
    applied: list[tuple[str, float]] = field(default_factory=list)
    """Each status a mutation set, and when."""

    def moderator_rejects(self) -> dict[str, Any]:
        """A moderator rejects the comment in Coral: its webhook, as Coral sends it."""
        self.status = "REJECTED"
        return fixture("webhook_left_moderation_queue.json")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.content_type == "application/json"
        body = await request.json()
        assert set(body) == {"query", "variables"}
        match = OPERATION.match(body["query"])
        assert match is not None, body["query"]
        kind, variable, type_, field_name, argument = match.groups()
        self.calls.append({"field": field_name, "variables": body["variables"]})
        if kind == "query":
            assert (field_name, variable, type_, argument) == ("comment", "id", "ID!", "id")
            assert body["variables"] == {"id": CORAL_ID}
            if self.query_failures:
                self.query_failures -= 1
                return web.json_response(fixture("graphql_error.json"))
            described = fixture("graphql_comment.json")
            described["data"]["comment"]["status"] = self.status
            if self.body is not None:
                described["data"]["comment"]["body"] = self.body
            described["data"]["comment"]["revision"]["id"] = self.revision
            if self.query_hang is not None:
                await self.query_hang.wait()
            return web.json_response(described)
        expected_input = {"approveComment": "ApproveCommentInput!"}.get(
            field_name, "RejectCommentInput!"
        )
        assert field_name in ("approveComment", "rejectComment")
        assert (variable, type_, argument) == ("input", expected_input, "input")
        given = body["variables"]["input"]
        assert set(given) == {"commentID", "commentRevisionID", "clientMutationId"}
        assert given["commentID"] == CORAL_ID
        assert given["commentRevisionID"] in (REVISION_ID, self.revision)
        if self.failures:
            self.failures -= 1
            return web.json_response(fixture("graphql_error.json"))
        if self.endless:
            return await endless_answer(request)
        if self.hang is not None:
            await self.hang.wait()
        if self.odd_answer is not None:
            return self.odd_answer
        name = "graphql_approve_comment.json"
        answer = fixture(name if field_name == "approveComment" else "graphql_reject_comment.json")
        answer["data"][field_name]["clientMutationId"] = given["clientMutationId"]
        self.status = answer["data"][field_name]["comment"]["status"]
        self.changed_at = time.time()
        self.applied.append((self.status, self.changed_at))
        return web.json_response(answer)

    def answer_held(self) -> None:
        """Answer the mutations ``hang`` holds, and every later one at once."""
        assert self.hang is not None, "no call is held"
        self.hang.set()

    def echo(self) -> dict[str, Any]:
        """The webhook Coral sends about the status civility's last mutation set, dated then."""
        event = fixture("webhook_left_moderation_queue.json")
        event["data"]["status"] = self.status
        event["createdAt"] = datetime.fromtimestamp(self.changed_at, UTC).isoformat()
        return event

    def mutations(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["field"] != "comment"]

    def queries(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["field"] == "comment"]


async def endless_answer(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Type": "application/json"})
    await answer.prepare(request)
    await answer.write(b'{"data": {"approveComment": "')
    with contextlib.suppress(ConnectionError):
        while True:
            await answer.write(b"x" * 65536)
    return answer


@pytest.fixture
def edit_window_seconds() -> int:
    """``CIVILITY_CORAL_EDIT_WINDOW_SECONDS``: a test about the window sets its own."""
    return Settings().coral_edit_window_seconds


@pytest.fixture
def delivery() -> DeliverySettings:
    """The API's delivery settings: a test about their timeout sets its own."""
    return FAST


@pytest.fixture
def settings(redis_url: str, edit_window_seconds: int, delivery: DeliverySettings) -> Settings:
    # The API looks comments up in Coral under the worker's egress guard: loopback allowed too.
    return dataclasses.replace(
        api_settings(redis_url), delivery=delivery, coral_edit_window_seconds=edit_window_seconds
    )


@pytest.fixture
async def fake_coral() -> AsyncIterator[FakeCoral]:
    coral = FakeCoral()
    app = web.Application()
    app.router.add_post("/api/graphql", coral.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    coral.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/graphql"
    try:
        yield coral
    finally:
        await runner.cleanup()


@pytest.fixture
async def coral_site(
    create_site: Any, client: Client, admin: dict[str, str], fake_coral: FakeCoral
) -> dict[str, str]:
    site: dict[str, str] = await create_site("news", mode="pre", flood_seconds_per_author=10)
    settings = {
        "signing_secret": SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "graphql_url": fake_coral.url,
        "access_token": TOKEN,
    }
    response = await client.patch("/v1/sites/news", json={"coral": settings}, headers=admin)
    assert response.status == 200, await response.text()
    assert "coral" not in await response.json()  # write-only
    return site


async def webhook(client: Client, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
    body = coral_body(event)
    headers = {
        "Content-Type": "application/json",
        "X-Coral-Signature": coral_signature(body, secret),
    }
    response = await client.post("/v1/integrations/coral/news/webhooks", data=body, headers=headers)
    return response


async def comment(client: Client, site: dict[str, str], comment_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    response = await client.get(f"/v1/sites/news/comments/{comment_id}", headers=headers)
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def deliver_until(
    redis_client: aioredis.Redis,
    condition: Callable[[], Awaitable[bool]],
    what: str,
    settings: DeliverySettings = FAST,
    clock: Clock | None = None,
) -> None:
    """Runs civility's worker until ``condition`` holds, then stops it (in-flight work drains).
    Its retries are made at once (its clock moved on while no attempt is in flight), or, on
    ``clock``, which the worker never moves, only when due by it."""
    retries = Retries(Clock())
    worker = Worker(
        redis_client, settings, prefix="civ", name="coral-test", clock=clock or retries.clock
    )
    running = asyncio.create_task(worker.run())
    try:
        if clock is None:
            retries.workers.append(worker)
            await retries.until(condition, what=what)
        else:
            await eventually(condition, what=what)
    finally:
        worker.stop()
        await running


def settled(redis_client: aioredis.Redis, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        states = await delivery_states(redis_client)
        return len(states) == count and "pending" not in states.values()

    return check


def called(coral: FakeCoral, count: int = 1) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(coral.mutations()) >= count

    return check


async def delivery_states(redis_client: aioredis.Redis) -> dict[str, str]:
    states: dict[str, str] = {}
    for state in ("pending", "delivered", "failed"):
        for event_id in await redis_client.zrange(KEYS.deliveries("news", state), 0, -1):
            states[str(event_id)] = state
    return states


async def records_of(redis_client: aioredis.Redis) -> list[dict[str, str]]:
    return [
        cast(dict[str, str], await redis_client.hgetall(KEYS.delivery("news", event_id)))
        for event_id in await delivery_states(redis_client)
    ]


async def test_a_decision_in_civility_reaches_coral(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    phase = await send(client, NEW_COMMENT)
    assert (phase.status, await phase.json()) == (200, {"status": "PREMOD"})
    linked = await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    assert await linked.json() == {
        "event": "6b1a4f0e-3c1d-4a5e-9b8f-2d7c6e5a4b3c",
        "comment_id": ours,
        "applied": False,
    }
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    [mutation] = fake_coral.mutations()
    assert mutation["field"] == "approveComment"
    event_id = mutation["variables"]["input"]["clientMutationId"]
    assert event_id.startswith("evt_")
    assert (await delivery_states(redis_client))[event_id] == "delivered"
    # Coral then says the comment left its queue approved: nothing more happens here.
    echo = fixture("webhook_left_moderation_queue.json")
    echo["data"]["status"] = "APPROVED"
    answer = await (await webhook(client, echo)).json()
    assert (answer["applied"], (await comment(client, coral_site, ours))["version"]) == (False, 2)


async def test_coral_echoing_a_spam_decision_as_rejected_leaves_it_spam(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "spam"}, headers=headers
    )
    assert decided.status == 200, await decided.text()
    await deliver_until(redis_client, settled(redis_client, 2), "the rejection in Coral")
    assert fake_coral.status == "REJECTED"
    # Coral has no spam status: the comment leaves its queue rejected, and Coral says so.
    echo = fixture("webhook_left_moderation_queue.json")
    answer = await (await webhook(client, echo)).json()
    stored = await comment(client, coral_site, ours)
    assert answer["applied"] is False
    assert (stored["state"], stored["decided_by"], stored["version"]) == (
        "spam",
        coral_site["moderator_id"],
        2,
    )


async def test_a_decision_in_coral_reaches_civility_and_goes_nowhere_else(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    ours = our_id(NEW_COMMENT)
    assert answer == {
        "event": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        "comment_id": ours,
        "applied": True,
        "state": "rejected",
    }
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    assert stored["history"][-1]["reasons"] == []
    # The worker settles the events without calling Coral back about its own decision.
    await deliver_until(redis_client, settled(redis_client, 2), "both events settled")
    assert fake_coral.mutations() == []
    assert set((await delivery_states(redis_client)).values()) == {"delivered"}


async def test_a_coral_decision_sent_again_after_a_later_one_in_civility_changes_nothing(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    ours = our_id(NEW_COMMENT)
    rejected = fake_coral.moderator_rejects()
    assert (await (await webhook(client, rejected)).json())["applied"] is True
    # A moderator in civility approves it after all, and Coral is told.
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()
    await deliver_until(redis_client, settled(redis_client, 3), "the approval in Coral")
    assert fake_coral.status == "APPROVED"

    # Coral's rejection webhook again (its answer was lost on the way, so Coral retries it).
    answer = await (await webhook(client, rejected)).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "Coral's comment is APPROVED now: a later decision",
    )
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("approved", coral_site["moderator_id"])
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]


def waits_with(redis_client: aioredis.Redis, reason: str) -> Callable[[], Awaitable[bool]]:
    """Whether an attempt to carry a decision into Coral has waited, saying ``reason``."""

    async def waiting() -> bool:
        records = await records_of(redis_client)
        return any(record.get("last_error", "").startswith(reason) for record in records)

    return waiting


async def held_and_linked(
    client: Client, coral_site: dict[str, str]
) -> tuple[str, str, dict[str, str]]:
    """The new comment sent through Coral's phase and named by Coral's webhook: its id in
    civility, its decision URL and the moderator's headers to decide it."""
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    return to_decide(coral_site)


@contextlib.asynccontextmanager
async def approval_in_flight(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    settings: DeliverySettings = FAST,
) -> AsyncIterator[tuple[str, str, dict[str, str]]]:
    """The new comment named by Coral's webhook and approved in civility, the approval's call
    into Coral made and held by Coral until ``fake_coral.hang`` is set, a worker running until
    the block ends: what ``held_and_linked`` gives."""
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    fake_coral.hang = asyncio.Event()
    worker = Worker(redis_client, settings, prefix="civ", name="coral-test", clock=clock)
    running = asyncio.create_task(worker.run())
    try:
        await eventually(called(fake_coral), what="the approval on its way to Coral")
        yield ours, url, headers
    finally:
        worker.stop()
        await running


def to_decide(coral_site: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """The new comment's id in civility, its decision URL and the moderator's headers."""
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    return ours, f"/v1/sites/news/comments/{ours}/decision", headers


async def test_corals_echo_of_an_earlier_decision_never_undoes_a_later_one_on_its_way(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    assert fake_coral.status == "APPROVED"
    # The moderator changes their mind a second later; Coral has not been told yet when its
    # webhook about the approval (civility's own) arrives, its GraphQL API still saying so.
    clock.advance(1)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    echo = fixture("webhook_left_moderation_queue.json")
    echo["data"]["status"] = "APPROVED"

    answer = await (await webhook(client, echo)).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "a later decision made in civility is on its way to Coral",
    )
    await deliver_until(redis_client, settled(redis_client, 3), "the rejection in Coral")
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", coral_site["moderator_id"])
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment", "rejectComment"]
    assert fake_coral.status == "REJECTED"
    # Once Coral has the rejection, a decision made there is Coral's later one again.
    clock.advance(1)
    fake_coral.status = "APPROVED"
    answer = await (await webhook(client, echo)).json()
    assert (answer["applied"], answer["state"]) == (True, "approved")


async def test_corals_echo_of_an_earlier_decision_is_not_applied_while_its_status_is_unknown(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    # Coral made the approval here, before the rejection was sent (the worker's clock only
    # moves on from the real time).
    approved_ms = int(time.time() * 1000)
    clock.advance(1)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 3), "the rejection in Coral")

    def dated(status: str, at_ms: int) -> dict[str, Any]:
        event = fixture("webhook_left_moderation_queue.json")
        event["data"]["status"] = status
        event["createdAt"] = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat()
        return event

    # Coral's webhook about the approval comes late, while its GraphQL API does not answer.
    fake_coral.query_failures = 1
    answer = await (await webhook(client, dated("APPROVED", approved_ms))).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "civility's later decision reached Coral after this one",
    )
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", coral_site["moderator_id"])
    # A decision Coral made after civility's reached it is applied all the same.
    fake_coral.query_failures = 1
    answer = await (await webhook(client, dated("APPROVED", approved_ms + DAY_MS))).json()
    assert (answer["applied"], answer["state"]) == (True, "approved")


async def test_a_decision_in_coral_counts_again_once_civilitys_was_dead_lettered(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    _, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    fake_coral.failures = FAST.max_attempts
    await deliver_until(redis_client, settled(redis_client, 2), "the rejection dead-lettered")
    assert "failed" in (await delivery_states(redis_client)).values()
    # Civility's decision will not reach Coral (until redelivered): Coral's moderator decides.
    fake_coral.status = "APPROVED"
    echo = fixture("webhook_left_moderation_queue.json")
    echo["data"]["status"] = "APPROVED"

    answer = await (await webhook(client, echo)).json()

    assert (answer["applied"], answer["state"]) == (True, "approved")


async def test_a_decision_in_coral_applies_to_a_comment_linked_and_decided_before_the_upgrade(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    # The link as the release before noted it: Coral's ids, nothing of what reached Coral.
    await redis_client.hdel(KEYS.coral_link("news", ours), "text", "sent_at", "reached_at")

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert (answer["applied"], answer["state"]) == (True, "rejected")


async def test_a_decision_in_coral_finds_a_comment_stored_before_links_kept_its_text(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    ours = our_id(NEW_COMMENT)
    # As the release before left it: a link without the digest of the phase's text, and the
    # comment in no thread set (the sets came after the digest, so each of theirs has one).
    await redis_client.hdel(KEYS.coral_link("news", ours), "text")
    async for key in redis_client.scan_iter(KEYS.coral_thread("news", "*")):
        await redis_client.delete(key)
    # The author writes again once the new release runs.
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert (answer["comment_id"], answer["applied"], answer["state"]) == (ours, True, "rejected")
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


async def test_a_comment_held_past_the_retention_still_reaches_coral_when_decided(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    policy = {"policy": {"retention_days": 1}}
    assert (await client.patch("/v1/sites/news", json=policy, headers=admin)).status == 200
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    link = KEYS.coral_link("news", ours)
    # Held, the comment is kept until decided, and so is what names it in Coral: a link that
    # expired after a day would send the decision nowhere.
    assert await redis_client.pttl(KEYS.comment("news", ours)) == -1
    assert await redis_client.pttl(link) == -1

    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()
    # Decided, the link expires with the comment.
    assert abs(await redis_client.pttl(link) - 86_400_000) < 60_000
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]


async def test_a_held_comments_link_from_before_links_lived_with_it_is_kept_once_written_again(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    ours = our_id(NEW_COMMENT)
    link = KEYS.coral_link("news", ours)
    # As the release before left it: the link expiring with the retention, the comment held.
    await redis_client.pexpire(link, DAY_MS)

    await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    assert await redis_client.pttl(KEYS.comment("news", ours)) == -1
    assert await redis_client.pttl(link) == -1


async def test_a_decided_comments_link_expires_with_it_when_the_retention_grows_meanwhile(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    policy = {"policy": {"retention_days": 1}}
    assert (await client.patch("/v1/sites/news", json=policy, headers=admin)).status == 200
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    # The comment keeps the expiry its decision gave it; a longer retention is for later ones.
    policy = {"policy": {"retention_days": 30}}
    assert (await client.patch("/v1/sites/news", json=policy, headers=admin)).status == 200

    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")

    kept = await redis_client.pttl(KEYS.comment("news", ours))
    assert 0 < kept <= DAY_MS
    assert abs(await redis_client.pttl(KEYS.coral_link("news", ours)) - kept) < 60_000


async def test_a_link_written_after_its_comment_expired_is_kept_for_the_retention(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    policy = {"policy": {"retention_days": 1}}
    assert (await client.patch("/v1/sites/news", json=policy, headers=admin)).status == 200
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    # The decided comment expires before the worker carries its decision into Coral.
    await redis_client.delete(KEYS.comment("news", ours))

    await deliver_until(redis_client, settled(redis_client, 2), "the rejection in Coral")

    # What reached Coral is still noted, for Coral's echo of it, as long as a comment is kept.
    link = KEYS.coral_link("news", ours)
    assert await redis_client.hget(link, "sent_status") == "REJECTED"
    assert 0 < await redis_client.pttl(link) <= DAY_MS


async def test_a_reopen_in_civility_leaves_coral_as_decided_until_the_next_decision(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")

    reopened = await client.post(url, json={"action": "reopen"}, headers=headers)
    assert reopened.status == 200, await reopened.text()
    await deliver_until(redis_client, settled(redis_client, 3), "the reopen settled")

    # Coral has no mutation that puts a comment back in its queue: it keeps the approval, and
    # the worker neither calls it nor keeps the event failing.
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]
    assert fake_coral.status == "APPROVED"
    assert set((await delivery_states(redis_client)).values()) == {"delivered"}
    assert (await comment(client, coral_site, ours))["state"] == "pending"
    # The next decision made in civility reaches Coral as any does.
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 4), "the rejection in Coral")
    assert [call["field"] for call in fake_coral.mutations()] == [
        "approveComment",
        "rejectComment",
    ]
    assert fake_coral.status == "REJECTED"


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_corals_late_echo_of_civilitys_decision_does_not_undo_a_reopen(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    action: str,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": action}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the decision in Coral")
    echo = fake_coral.echo()
    clock.advance(1)
    assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200

    # Coral's webhook about civility's own decision arrives after the reopen (a retry of one
    # whose answer was lost, or a slow one): Coral still has that decision, as civility set it.
    answer = await (await webhook(client, echo)).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "civility's own decision coming back from Coral: the comment was reopened since",
    )
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("pending", coral_site["moderator_id"])
    # Coral's moderator deciding otherwise after the reopen is Coral's later decision.
    other = "REJECTED" if action == "approve" else "APPROVED"
    fake_coral.status = other
    later = fixture("webhook_left_moderation_queue.json")
    later["data"]["status"] = other
    later["createdAt"] = datetime.fromtimestamp(clock() + 1, UTC).isoformat()
    answer = await (await webhook(client, later)).json()
    assert (answer["applied"], answer["state"]) == (True, other.lower())


async def test_corals_decision_as_civility_set_it_made_after_a_reopen_still_applies(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    # A day on (past the worker's clock, which the test moves on), a moderator reopens it.
    clock.advance(DAY_MS / 1000)
    assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200
    # Readers report the comment in Coral, and Coral's moderator keeps it after the reopen.
    kept = fake_coral.echo()
    kept["createdAt"] = datetime.fromtimestamp(clock() + 1, UTC).isoformat()

    answer = await (await webhook(client, kept)).json()

    assert (answer["applied"], answer["state"]) == (True, "approved")
    assert (await comment(client, coral_site, ours))["decided_by"] == "coral"


async def test_corals_echo_of_a_call_still_in_flight_does_not_undo_a_reopen(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock)
    async with in_flight as (ours, url, headers):
        # Coral applies the approval and sends its webhook before its answer reaches the
        # worker; meanwhile a moderator in civility reopens the comment.
        fake_coral.status = "APPROVED"
        echo = fixture("webhook_left_moderation_queue.json")
        echo["data"]["status"] = "APPROVED"
        echo["createdAt"] = datetime.fromtimestamp(time.time(), UTC).isoformat()
        clock.advance(1)
        assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200

        answer = await (await webhook(client, echo)).json()

        assert (answer["applied"], answer.get("reason")) == (
            False,
            "civility's own decision coming back from Coral: the comment was reopened since",
        )
        stored = await comment(client, coral_site, ours)
        assert (stored["state"], stored["decided_by"]) == ("pending", coral_site["moderator_id"])
        fake_coral.answer_held()
        await eventually(settled(redis_client, 3), what="the approval and the reopen settled")
    # Coral's moderator keeping the approval after Coral answered is Coral's later decision.
    kept = fixture("webhook_left_moderation_queue.json")
    kept["data"]["status"] = "APPROVED"
    kept["createdAt"] = datetime.fromtimestamp(clock() + 1, UTC).isoformat()
    answer = await (await webhook(client, kept)).json()
    assert (answer["applied"], answer["state"]) == (True, "approved")
    assert (await comment(client, coral_site, ours))["decided_by"] == "coral"


async def rejection_went_back_after_the_approval(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    ours: str,
) -> None:
    """The approval landed in Coral after Coral's moderator's rejection, which civility kept
    and carried back into Coral after it."""
    assert [status for status, _ in fake_coral.applied] == ["APPROVED", "REJECTED"]
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    [back] = [r for r in await records_of(redis_client) if r["decided_by"] == "coral"]
    assert (back["type"], back["state"], back["last_error"]) == (
        "comment.rejected",
        "delivered",
        "",
    )


async def test_corals_rejection_during_civilitys_approval_call_is_not_undone_in_coral(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock)
    async with in_flight as (ours, url, headers):
        clock.advance(1)
        assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200
        # Coral's moderator rejects the comment; its webhook comes before the approval lands.
        rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
        answer = await (await webhook(client, rejected)).json()
        assert (answer["applied"], answer["state"]) == (True, "rejected")
        fake_coral.answer_held()
        await eventually(settled(redis_client, 4), what="every event")

    await rejection_went_back_after_the_approval(client, coral_site, fake_coral, redis_client, ours)


def queried(coral: FakeCoral) -> Callable[[], Awaitable[bool]]:
    """Coral's comment was read once more than it has been so far."""
    count = len(coral.queries())

    async def check() -> bool:
        return len(coral.queries()) > count

    return check


def call_ended(redis_client: aioredis.Redis, ours: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        link = await redis_client.hgetall(KEYS.coral_link("news", ours))
        return bool(link.get("reached_at")) and not link.get("in_flight")

    return check


async def test_corals_rejection_read_during_civilitys_call_and_recorded_after_it_goes_back(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock)
    async with in_flight as (ours, _, _):
        clock.advance(1)
        # Coral's moderator rejects the comment before civility's approval lands there. The
        # webhook reads the rejection in Coral, and Coral's answer reaches civility only once
        # the approval has landed after it and its call has ended.
        fake_coral.query_hang = asyncio.Event()
        read = queried(fake_coral)
        sent = asyncio.create_task(
            webhook(client, decided_in_coral(fake_coral, "REJECTED", clock() + 1))
        )
        await eventually(read, what="the webhook reading Coral")
        fake_coral.answer_held()
        await eventually(call_ended(redis_client, ours), what="the approval's call ended")
        fake_coral.query_hang.set()
        answer = await (await sent).json()
        assert (answer["applied"], answer.get("state")) == (True, "rejected"), answer
        await eventually(settled(redis_client, 3), what="every event")

    await rejection_went_back_after_the_approval(client, coral_site, fake_coral, redis_client, ours)


async def test_corals_decision_read_before_a_later_call_of_civilitys_landed_does_not_undo_it(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    # Coral's moderator rejects the comment; the webhook reads the rejection in Coral, and
    # Coral's answer reaches civility only once a moderator in civility has approved the
    # comment since and that approval has reached Coral, after the rejection.
    fake_coral.query_hang = asyncio.Event()
    read = queried(fake_coral)
    sent = asyncio.create_task(webhook(client, decided_in_coral(fake_coral, "REJECTED", clock())))
    await eventually(read, what="the webhook reading Coral")
    clock.advance(1)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the approval in Coral")
    fake_coral.query_hang.set()
    answer = await (await sent).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "civility's later decision reached Coral after this one",
    )
    assert fake_coral.status == "APPROVED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("approved", coral_site["moderator_id"])


@pytest.mark.parametrize("then", ["kept", "reopen"])
async def test_corals_decision_made_while_civilitys_call_is_in_flight_wins_on_both_ends(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    then: str,
) -> None:
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock)
    async with in_flight as (ours, url, headers):
        clock.advance(1)
        if then == "reopen":
            reopened = await client.post(url, json={"action": "reopen"}, headers=headers)
            assert reopened.status == 200, await reopened.text()
        # Coral's moderator rejects the comment before civility's approval lands there.
        rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
        answer = await (await webhook(client, rejected)).json()
        assert (answer["applied"], answer["state"]) == (True, "rejected")
        # Coral then applies the approval, and sends its webhook before answering.
        fake_coral.status = "APPROVED"
        echo = fixture("webhook_left_moderation_queue.json")
        echo["data"]["status"] = "APPROVED"
        echo["createdAt"] = datetime.fromtimestamp(time.time(), UTC).isoformat()
        answer = await (await webhook(client, echo)).json()
        assert (answer["applied"], answer.get("reason")) == (False, coral_desk.OVERTAKEN)
        # The rejection's first call back into Coral fails: it waits for its retry.
        fake_coral.failures = 1
        fake_coral.answer_held()

        async def retrying() -> bool:
            records = await records_of(redis_client)
            back = [r for r in records if r["decided_by"] == "coral"]
            return bool(back) and back[0]["attempts"] == "1" and not back[0]["lease"]

        await eventually(retrying, what="the rejection's call back into Coral failed")
        assert fake_coral.status == "APPROVED"
        # Coral's webhook about the approval, sent again (its first attempt timed out), still
        # finds civility's own decision in it.
        answer = await (await webhook(client, echo)).json()
        assert (answer["applied"], answer.get("reason")) == (False, coral_desk.OVERTAKEN)
        clock.advance(DAY_MS / 1000)
        await eventually(settled(redis_client, 4 if then == "reopen" else 3), what="every event")

    # Both ends keep the rejection, Coral's moderator's decision made last.
    assert [call["field"] for call in fake_coral.mutations()] == [
        "approveComment",
        "rejectComment",
        "rejectComment",
    ]
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    actions = ["approve", "reopen", "reject"] if then == "reopen" else ["approve", "reject"]
    assert [entry["action"] for entry in stored["history"][1:]] == actions
    records = {
        r["type"]: r for r in await records_of(redis_client) if r["type"] != "comment.created"
    }
    approval, rejection = records["comment.approved"], records["comment.rejected"]
    assert (approval["state"], approval["last_error"]) == ("delivered", "")
    assert (rejection["state"], rejection["attempts"], rejection["last_error"]) == (
        "delivered",
        "2",
        "",
    )
    link = await redis_client.hgetall(KEYS.coral_link("news", ours))
    assert (link["in_flight"], link["resend_version"], link["sent_status"]) == ("", "", "REJECTED")
    # A decision Coral's moderator makes after that is Coral's later one again.
    approved = decided_in_coral(fake_coral, "APPROVED", clock() + 1)
    answer = await (await webhook(client, approved)).json()
    assert (answer["applied"], answer["state"]) == (True, "approved")


@pytest.mark.parametrize("then", ["kept", "reopen"])
async def test_corals_decision_read_during_civilitys_call_and_recorded_after_it_wins_on_both_ends(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    then: str,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    fake_coral.hang = asyncio.Event()
    # Coral's moderator rejects the comment during civility's approval call: its webhook reads
    # the call in flight, and is held just before the rejection is recorded.
    moderation = client.app[CORAL].moderation
    decide = moderation.decide
    deciding, recorded = asyncio.Event(), asyncio.Event()

    async def held(site: str, comment_id: str, decision: Any, actor: str, **kw: Any) -> Any:
        if actor == "coral":
            deciding.set()
            await recorded.wait()
        return await decide(site, comment_id, decision, actor, **kw)

    monkeypatch.setattr(moderation, "decide", held)
    worker = Worker(redis_client, FAST, prefix="civ", name="coral-test", clock=clock)
    running = asyncio.create_task(worker.run())
    answered: asyncio.Task[Any] | None = None
    try:
        await eventually(called(fake_coral), what="the approval on its way to Coral")
        clock.advance(1)
        if then == "reopen":
            reopened = await client.post(url, json={"action": "reopen"}, headers=headers)
            assert reopened.status == 200, await reopened.text()
        rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
        answered = asyncio.create_task(webhook(client, rejected))
        await asyncio.wait_for(deciding.wait(), 15)
        # Coral applies the approval after its moderator's rejection and answers: the call has
        # ended before the rejection is recorded.
        fake_coral.answer_held()

        async def approval_ended() -> bool:
            records = await records_of(redis_client)
            return any(r["type"] == "comment.approved" and r["state"] != "pending" for r in records)

        await eventually(approval_ended, what="the approval in Coral")
        assert fake_coral.status == "APPROVED"
        # The rejection's first call back into Coral fails: it waits for its retry.
        fake_coral.failures = 1
        recorded.set()
        answer = await (await answered).json()
        assert (answer["applied"], answer["state"]) == (True, "rejected")

        async def retrying() -> bool:
            records = await records_of(redis_client)
            back = [r for r in records if r["decided_by"] == "coral"]
            return bool(back) and back[0]["attempts"] == "1" and not back[0]["lease"]

        await eventually(retrying, what="the rejection's call back into Coral failed")
        # Coral's webhook about the approval, dated when Coral applied it, does not undo the
        # rejection meanwhile.
        answer = await (await webhook(client, fake_coral.echo())).json()
        assert (answer["applied"], answer.get("reason")) == (False, coral_desk.OVERTAKEN)
        clock.advance(DAY_MS / 1000)
        await eventually(settled(redis_client, 4 if then == "reopen" else 3), what="every event")
    finally:
        recorded.set()
        fake_coral.answer_held()
        worker.stop()
        await running
        if answered is not None:
            await answered

    # Both ends keep the rejection, Coral's moderator's decision made last.
    assert [status for status, _ in fake_coral.applied] == ["APPROVED", "REJECTED"]
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    [back] = [r for r in await records_of(redis_client) if r["decided_by"] == "coral"]
    assert (back["type"], back["state"], back["attempts"], back["last_error"]) == (
        "comment.rejected",
        "delivered",
        "2",
        "",
    )
    link = await redis_client.hgetall(KEYS.coral_link("news", ours))
    assert (link["in_flight"], link["resend_version"], link["sent_status"]) == ("", "", "REJECTED")


async def test_corals_decision_whose_way_back_was_dead_lettered_goes_back_when_redelivered(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock)
    async with in_flight as (ours, url, headers):
        clock.advance(1)
        assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200
        rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
        assert (await (await webhook(client, rejected)).json())["applied"] is True
        # Every try of carrying the rejection back into Coral fails.
        fake_coral.failures = FAST.max_attempts
        fake_coral.answer_held()

        async def approved() -> bool:
            records = await records_of(redis_client)
            return any(r["type"] == "comment.approved" and r["state"] != "pending" for r in records)

        await eventually(approved, what="the approval in Coral")
    await deliver_until(redis_client, settled(redis_client, 4), "the rejection dead-lettered")
    assert fake_coral.status == "APPROVED"
    listed = await client.get("/v1/sites/news/deliveries?state=failed", headers=headers)
    [failed] = (await listed.json())["items"]
    assert failed["type"] == "comment.rejected"

    again = await client.post(
        f"/v1/sites/news/deliveries/{failed['id']}:redeliver", headers=headers
    )

    assert again.status == 202, await again.text()
    await deliver_until(redis_client, settled(redis_client, 4), "the redelivery settled")
    assert fake_coral.status == "REJECTED"
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"] + [
        "rejectComment"
    ] * (FAST.max_attempts + 1)
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")


async def test_corals_decision_made_before_civilitys_arriving_during_its_call_does_not_win(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    # Coral's moderator rejected the comment a second before civility's moderator approved it;
    # Coral's webhook about it is slow, and comes while the approval is on its way there.
    rejected = decided_in_coral(fake_coral, "REJECTED", clock() - 1)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    fake_coral.hang = asyncio.Event()
    worker = Worker(redis_client, FAST, prefix="civ", name="coral-test", clock=clock)
    running = asyncio.create_task(worker.run())
    try:
        await eventually(called(fake_coral), what="the approval on its way to Coral")
        answer = await (await webhook(client, rejected)).json()
        assert (answer["applied"], answer["reason"]) == (
            False,
            "a later decision made in civility is on its way to Coral",
        )
        fake_coral.answer_held()
        await eventually(settled(redis_client, 2), what="the approval in Coral")
    finally:
        worker.stop()
        await running

    # The approval, made last, holds on both ends.
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]
    assert fake_coral.status == "APPROVED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("approved", coral_site["moderator_id"])


async def test_corals_decision_during_a_call_cut_short_by_a_stopping_worker_goes_back_to_coral(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    fake_coral.hang = asyncio.Event()
    # It stops before Coral answers: the attempt is cancelled and handed back.
    stopping = dataclasses.replace(FAST, drain_seconds=0.1)
    worker = Worker(redis_client, stopping, prefix="civ", name="coral-test", clock=clock)
    running = asyncio.create_task(worker.run())
    try:
        await eventually(called(fake_coral), what="the approval on its way to Coral")
        clock.advance(1)
        rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
        answer = await (await webhook(client, rejected)).json()
        assert (answer["applied"], answer["state"]) == (True, "rejected")
    finally:
        worker.stop()
        await running
    # Coral applies the approval all the same, after its moderator's rejection.
    fake_coral.answer_held()

    async def applied() -> bool:
        return len(fake_coral.applied) == 1

    await eventually(applied, what="the approval applied in Coral")
    assert fake_coral.status == "APPROVED"

    await deliver_until(redis_client, settled(redis_client, 3), "every event", clock=clock)

    assert [status for status, _ in fake_coral.applied] == ["APPROVED", "REJECTED"]
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    records = {r["type"]: r for r in await records_of(redis_client)}
    approval, rejection = records["comment.approved"], records["comment.rejected"]
    assert (approval["state"], approval["last_error"]) == ("delivered", coral_sync.SUPERSEDED)
    assert (rejection["state"], rejection["last_error"]) == ("delivered", "")


async def approved_then_reopened_after_a_failed_call(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> str:
    """The comment's id: approved in civility, its call into Coral failed (for all civility
    knows, Coral applied it and its answer was lost), then reopened in civility before the
    call's retry, which is up to a day off."""
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    fake_coral.failures = 1

    async def failed_once() -> bool:
        records = await records_of(redis_client)
        return any(r["type"] == "comment.approved" and r.get("last_error") for r in records)

    await deliver_until(redis_client, failed_once, "a failed call into Coral", PATIENT, clock)
    link = KEYS.coral_link("news", ours)
    assert await redis_client.hget(link, "calling_status") == "APPROVED"
    clock.advance(1)
    assert (await client.post(url, json={"action": "reopen"}, headers=headers)).status == 200
    return ours


def decided_in_coral(fake_coral: FakeCoral, status: str, at: float) -> dict[str, Any]:
    """Coral's moderator sets ``status`` at ``at`` (seconds): its webhook, as Coral sends it."""
    fake_coral.status = status
    event = fixture("webhook_left_moderation_queue.json")
    event["data"]["status"] = status
    event["createdAt"] = datetime.fromtimestamp(at, UTC).isoformat()
    return event


async def test_corals_decision_with_a_failed_calls_status_after_a_reopen_is_taken_for_its_echo(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours = await approved_then_reopened_after_a_failed_call(
        client, coral_site, fake_coral, redis_client, clock
    )
    # Coral's moderator approves the comment after the reopen: civility cannot tell that from
    # the failed call's approval coming back, whenever Coral dates it.
    approved = decided_in_coral(fake_coral, "APPROVED", clock() + 1)

    answer = await (await webhook(client, approved)).json()

    assert (answer["applied"], answer["reason"]) == (
        False,
        "civility's own decision coming back from Coral: the comment was reopened since",
    )
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("pending", coral_site["moderator_id"])
    # Until the approval's next call, at its retry, is answered: Coral's approval after that is
    # its moderator's own.
    clock.advance(DAY_MS / 1000 + 1)
    await deliver_until(redis_client, called(fake_coral, 2), "the retry", PATIENT, clock)
    await deliver_until(redis_client, settled(redis_client, 3), "the reopen", PATIENT, clock)
    assert await redis_client.hget(KEYS.coral_link("news", ours), "calling_status") == ""
    later = decided_in_coral(fake_coral, "APPROVED", clock() + 1)
    answer = await (await webhook(client, later)).json()
    assert (answer["applied"], answer["state"]) == (True, "approved")
    assert (await comment(client, coral_site, ours))["decided_by"] == "coral"


async def test_corals_decision_unlike_a_failed_calls_status_after_a_reopen_is_applied(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours = await approved_then_reopened_after_a_failed_call(
        client, coral_site, fake_coral, redis_client, clock
    )
    rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)

    answer = await (await webhook(client, rejected)).json()

    assert (answer["applied"], answer["state"]) == (True, "rejected")
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")


@pytest.mark.parametrize("retried", ["after", "before"])
async def test_corals_decision_after_a_reopen_wins_over_a_failed_call_whenever_it_is_retried(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    retried: str,
) -> None:
    ours = await approved_then_reopened_after_a_failed_call(
        client, coral_site, fake_coral, redis_client, clock
    )
    if retried == "before":
        clock.advance(DAY_MS / 1000 + 1)
        await deliver_until(redis_client, settled(redis_client, 3), "the retry", PATIENT, clock)
        assert fake_coral.status == "APPROVED"
    # Coral's moderator rejects the comment after the reopen, before or after the approval's
    # retry: the later decision, applied in civility.
    rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
    answer = await (await webhook(client, rejected)).json()
    assert (answer["applied"], answer["state"]) == (True, "rejected")

    clock.advance(DAY_MS / 1000 + 1)
    await deliver_until(redis_client, settled(redis_client, 4), "every event", PATIENT, clock)

    # The approval, replaced, is not carried into Coral after it: both ends keep the rejection.
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    calls = ["approveComment"] * (2 if retried == "before" else 1)
    assert [call["field"] for call in fake_coral.mutations()] == calls
    [approval] = [r for r in await records_of(redis_client) if r["type"] == "comment.approved"]
    assert approval["state"] == "delivered"
    note = coral_sync.SUPERSEDED if retried == "after" else ""
    assert approval["last_error"] == note
    assert await redis_client.hget(KEYS.coral_link("news", ours), "calling_status") == ""


async def approved_waiting_for_the_link(
    client: Client,
    coral_site: dict[str, str],
    redis_client: aioredis.Redis,
    clock: Clock,
    then: str,
) -> str:
    """The comment's id: approved in civility before Coral's webhook named it (the approval's
    attempt waits for Coral's ids, its retry up to a day off), then, a second later, ``then``
    (a reopen, or another decision)."""
    await send(client, NEW_COMMENT)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200
    retrying = waits_with(redis_client, coral_sync.NOT_YET_LINKED)
    await deliver_until(redis_client, retrying, "a wait for the link", PATIENT, clock)
    clock.advance(1)
    assert (await client.post(url, json={"action": then}, headers=headers)).status == 200
    return ours


async def test_corals_decision_after_a_reopen_wins_over_one_waiting_for_corals_ids(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours = await approved_waiting_for_the_link(client, coral_site, redis_client, clock, "reopen")
    # Coral's moderator rejects the comment: the webhook names it, which makes the waiting
    # approval due at once, and its rejection is applied.
    rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
    answer = await (await webhook(client, rejected)).json()
    assert (answer["comment_id"], answer["applied"], answer["state"]) == (ours, True, "rejected")

    await deliver_until(redis_client, settled(redis_client, 4), "every event", PATIENT, clock)

    assert fake_coral.mutations() == []
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")
    [approval] = [r for r in await records_of(redis_client) if r["type"] == "comment.approved"]
    assert (approval["state"], approval["last_error"]) == ("delivered", coral_sync.SUPERSEDED)


async def test_a_decision_waiting_for_corals_ids_is_not_sent_while_their_webhook_decides(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = await approved_waiting_for_the_link(client, coral_site, redis_client, clock, "reopen")
    # Coral's moderator rejects the comment; its webhook is held just before the rejection is
    # recorded, while the approval's retry comes.
    moderation = client.app[CORAL].moderation
    decide = moderation.decide
    deciding, recorded = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        deciding.set()
        await recorded.wait()
        return await decide(*args, **kwargs)

    monkeypatch.setattr(moderation, "decide", held)
    rejected = decided_in_coral(fake_coral, "REJECTED", clock() + 1)
    answered = asyncio.create_task(webhook(client, rejected))
    worker = Worker(redis_client, PATIENT, prefix="civ", name="coral-test", clock=clock)
    running: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(deciding.wait(), 15)
        clock.advance(DAY_MS / 1000 + 1)
        running = asyncio.create_task(worker.run())

        async def retried() -> bool:
            records = await records_of(redis_client)
            tried = [r for r in records if r["type"] == "comment.approved"]
            return tried[0]["attempts"] == "2" and not tried[0]["lease"]

        await eventually(retried, what="the approval's retry")
        recorded.set()
        answer = await (await answered).json()
        assert (answer["comment_id"], answer["applied"], answer["state"]) == (
            ours,
            True,
            "rejected",
        )
        await eventually(settled(redis_client, 4), what="every event")
    finally:
        recorded.set()
        worker.stop()
        if running is not None:
            await running
        await answered

    assert fake_coral.mutations() == []
    assert fake_coral.status == "REJECTED"
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("rejected", "coral")


async def test_a_dead_lettered_decision_redelivered_after_corals_own_is_not_carried_into_coral(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    fake_coral.failures = FAST.max_attempts
    await deliver_until(redis_client, settled(redis_client, 2), "the rejection dead-lettered")
    # Coral's moderator approves the comment meanwhile: applied, as civility's rejection will
    # not reach Coral unless redelivered.
    approved = decided_in_coral(fake_coral, "APPROVED", time.time())
    assert (await (await webhook(client, approved)).json())["applied"] is True
    listed = await client.get("/v1/sites/news/deliveries?state=failed", headers=headers)
    [failed] = (await listed.json())["items"]

    again = await client.post(
        f"/v1/sites/news/deliveries/{failed['id']}:redeliver", headers=headers
    )

    assert again.status == 202, await again.text()
    await deliver_until(redis_client, settled(redis_client, 3), "the redelivery settled")
    # The redelivered rejection would undo Coral's later approval there: it is not sent.
    assert fake_coral.status == "APPROVED"
    assert len(fake_coral.mutations()) == FAST.max_attempts
    stored = await comment(client, coral_site, ours)
    assert (stored["state"], stored["decided_by"]) == ("approved", "coral")
    [rejection] = [r for r in await records_of(redis_client) if r["id"] == failed["id"]]
    assert (rejection["state"], rejection["last_error"]) == ("delivered", coral_sync.SUPERSEDED)


async def test_a_decision_before_coral_named_the_comment_goes_once_a_webhook_links_it(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    await send(client, NEW_COMMENT)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200

    retrying = waits_with(redis_client, coral_sync.NOT_YET_LINKED)

    await deliver_until(
        redis_client, retrying, "an attempt that waits for the link", PATIENT, clock
    )
    [waiting] = [
        record for record in await records_of(redis_client) if record["type"] == "comment.rejected"
    ]
    assert waiting["last_error"].startswith("Coral has not named this comment yet")
    assert int(waiting["next_attempt_at"]) > clock() * 1000
    # A second later the moderator changes their mind: that decision waits behind the first.
    clock.advance(1)
    assert (await client.post(url, json={"action": "approve"}, headers=headers)).status == 200

    linked = await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    assert (await linked.json())["comment_id"] == ours
    # As the deliveries list shows it: due now, not at its retry.
    listed = await client.get("/v1/sites/news/deliveries?state=pending", headers=headers)
    [due_now] = [item for item in (await listed.json())["items"] if item["id"] == waiting["id"]]
    assert due_now["next_attempt_at"] <= iso_from_ms(int(clock() * 1000))
    # Both are settled at once, in order, with the clock short of the first one's retry: the
    # rejection, replaced by the approval, without a call, which would undo it in Coral a
    # moment before the approval's call.
    await deliver_until(redis_client, settled(redis_client, 3), "both settled", PATIENT, clock)
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]
    assert fake_coral.status == "APPROVED"
    assert int(waiting["next_attempt_at"]) > clock() * 1000
    delivered = await client.get("/v1/sites/news/deliveries?state=delivered", headers=headers)
    notes = {item["type"]: item["last_error"] for item in (await delivered.json())["items"]}
    assert notes["comment.rejected"] == coral_sync.SUPERSEDED
    assert notes["comment.approved"] is None


@pytest.mark.parametrize("later", ["reject", "spam"])
async def test_a_waiting_decision_replaced_in_civility_reaches_coral_as_the_later_one_only(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    later: str,
) -> None:
    ours = await approved_waiting_for_the_link(client, coral_site, redis_client, clock, later)

    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    await deliver_until(redis_client, settled(redis_client, 3), "both settled", PATIENT, clock)

    # Coral never shows the comment published on the way to its rejection.
    assert [call["field"] for call in fake_coral.mutations()] == ["rejectComment"]
    assert fake_coral.status == "REJECTED"
    state = {"reject": "rejected", "spam": "spam"}[later]
    assert (await comment(client, coral_site, ours))["state"] == state


async def test_a_webhook_that_changes_no_coral_id_leaves_a_failed_attempt_to_its_retry(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    ours, url, headers = await held_and_linked(client, coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    fake_coral.failures = 1

    async def retrying() -> bool:
        records = await records_of(redis_client)
        return any(r["type"] == "comment.rejected" and r.get("last_error") for r in records)

    await deliver_until(redis_client, retrying, "a failed attempt", PATIENT, clock)
    [before] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    assert int(before["next_attempt_at"]) > clock() * 1000

    # Coral sends its webhook again: the same ids, nothing the failed attempt waited for.
    linked = await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    assert (await linked.json())["comment_id"] == ours
    [after] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    assert after["next_attempt_at"] == before["next_attempt_at"]
    due = await redis_client.zscore(KEYS.deliveries_due("news"), after["id"])
    assert due == int(before["next_attempt_at"])


async def test_a_webhook_that_changes_the_revision_leaves_an_attempt_in_flight_to_itself(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    # One attempt at a time: nothing but the webhook could make the attempt's event due again.
    settings = dataclasses.replace(FAST, concurrency=1)
    in_flight = approval_in_flight(client, coral_site, fake_coral, redis_client, clock, settings)
    async with in_flight:
        # Meanwhile Coral stores a new revision and sends a webhook naming it.
        fake_coral.revision = EDITED_REVISION_ID
        await webhook(client, fixture("webhook_entered_moderation_queue.json"))

        [record] = [entry for entry in await records_of(redis_client) if entry["lease"]]
        due = await redis_client.zscore(KEYS.deliveries_due("news"), record["id"])
        # Still due when its lease ends, not now: another attempt would run beside this one.
        assert due is not None
        assert due > clock() * 1000
        fake_coral.answer_held()
        await eventually(settled(redis_client, 2), what="the approval in Coral")
    assert [call["field"] for call in fake_coral.mutations()] == ["approveComment"]


def held_settle(
    worker: Worker, monkeypatch: pytest.MonkeyPatch, attempt: int = 1
) -> tuple[asyncio.Event, asyncio.Event]:
    """Holds the worker's record of the rejection's ``attempt``-th try: the first event is set
    when that try has its outcome, which is recorded once the test sets the second."""
    settle = worker.deliveries.settle
    settling, release = asyncio.Event(), asyncio.Event()

    async def held(site: str, record: Mapping[str, str], *args: Any, **kw: Any) -> Settle | None:
        tried = (record["type"], int(record["attempts"])) == ("comment.rejected", attempt)
        if tried and not settling.is_set():
            settling.set()
            await release.wait()
        return await settle(site, record, *args, **kw)

    monkeypatch.setattr(worker.deliveries, "settle", held)
    return settling, release


@pytest.mark.parametrize("case", ["new", "edited_before_linked", "edited_since_linked"])
async def test_a_decision_whose_attempt_a_linking_webhook_came_during_goes_at_once(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    await send(client, NEW_COMMENT)
    edit = edited("Here's a comment, edited to say more about the harbour.")
    if case == "edited_since_linked":
        await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    if case != "new":
        assert (await send(client, edit)).status == 200
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    # On a clock only the test moves, the decision's retry is up to a day off.
    worker = Worker(redis_client, PATIENT, prefix="civ", name="coral-test", clock=clock)
    settling, linked = held_settle(worker, monkeypatch)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(settling.wait(), 15)
        # The attempt found no ids to decide; Coral's webhook brings them before the attempt
        # records that it waits: the comment's id and revision, its id alone while Coral still
        # has the text before the edit, or the revision of the edit Coral stored since.
        if case == "edited_since_linked":
            fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
        answer = await webhook(client, fixture("webhook_entered_moderation_queue.json"))
        assert (await answer.json())["comment_id"] == ours
        fake_coral.body, fake_coral.revision = (
            (None, REVISION_ID) if case == "new" else (edit["comment"]["body"], EDITED_REVISION_ID)
        )
        # Coral holds its answer to the next attempt, which keeps what the first one recorded.
        fake_coral.hang = asyncio.Event()
        linked.set()

        await eventually(called(fake_coral), what="the rejection on its way to Coral")

        [waiting] = [r for r in await records_of(redis_client) if r["type"] == "comment.rejected"]
        waited = coral_sync.NOT_YET_STORED if case == "edited_since_linked" else None
        assert waiting["last_error"] == (waited or coral_sync.NOT_YET_LINKED)
        assert int(waiting["next_attempt_at"]) <= clock() * 1000
        fake_coral.answer_held()

        async def rejected() -> bool:
            return fake_coral.status == "REJECTED"

        await eventually(rejected, what="the rejection in Coral")
    finally:
        linked.set()
        worker.stop()
        await running
    [mutation] = fake_coral.mutations()
    revision = REVISION_ID if case == "new" else EDITED_REVISION_ID
    assert (mutation["field"], mutation["variables"]["input"]["commentRevisionID"]) == (
        "rejectComment",
        revision,
    )


async def test_a_decision_already_due_when_a_webhook_links_it_keeps_its_place(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    await send(client, NEW_COMMENT)
    _, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200

    retrying = waits_with(redis_client, coral_sync.NOT_YET_LINKED)

    await deliver_until(
        redis_client, retrying, "an attempt that waits for the link", PATIENT, clock
    )
    [before] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    # Its retry came while no worker ran: it is due, behind any due before it.
    clock.advance(DAY_MS / 1000 + 1)

    await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    [after] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    assert after["next_attempt_at"] == before["next_attempt_at"]
    due = await redis_client.zscore(KEYS.deliveries_due("news"), after["id"])
    assert due == int(before["next_attempt_at"])


async def test_a_decision_no_webhook_linked_by_its_last_try_is_dead_lettered_saying_why(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    _, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200

    # No webhook names the comment through every try of the delivery schedule.
    await deliver_until(redis_client, settled(redis_client, 2), "the rejection dead-lettered")

    listed = await client.get("/v1/sites/news/deliveries?state=failed", headers=headers)
    [failed] = (await listed.json())["items"]
    assert (failed["type"], failed["attempts"]) == ("comment.rejected", FAST.max_attempts)
    # A dead letter is not tried again: its reason promises no retry.
    assert failed["last_error"] == (
        "Coral has not named this comment yet: a webhook of Coral's about it links it"
    )
    assert fake_coral.mutations() == []
    # Once a webhook named it, a redelivery carries the decision into Coral.
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    again = await client.post(
        f"/v1/sites/news/deliveries/{failed['id']}:redeliver", headers=headers
    )
    assert again.status == 202, await again.text()
    await deliver_until(redis_client, called(fake_coral), "the rejection in Coral")
    assert [call["field"] for call in fake_coral.mutations()] == ["rejectComment"]


async def test_a_link_that_came_during_a_decisions_last_try_carries_it_into_coral(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await send(client, NEW_COMMENT)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    last_try = dataclasses.replace(PATIENT, max_attempts=2)
    worker = Worker(redis_client, last_try, prefix="civ", name="coral-test", clock=clock)
    settling, linked = held_settle(worker, monkeypatch, attempt=2)
    running = asyncio.create_task(worker.run())
    try:
        with caplog.at_level(logging.INFO, logger="service.worker"):
            await eventually(waits_with(redis_client, coral_sync.NOT_YET_LINKED), what="a try")
            [first] = [r for r in await records_of(redis_client) if r["type"] == "comment.rejected"]
            # Its retry, the last one, comes; Coral's webhook names the comment while that try,
            # having found no ids, has yet to record that it waits.
            clock.advance(DAY_MS / 1000 + 1)
            await asyncio.wait_for(settling.wait(), 15)
            answer = await webhook(client, fixture("webhook_entered_moderation_queue.json"))
            assert (await answer.json())["comment_id"] == ours
            fake_coral.hang = asyncio.Event()
            linked.set()

            await eventually(called(fake_coral), what="the rejection on its way to Coral")

            [record] = [
                r for r in await records_of(redis_client) if r["type"] == "comment.rejected"
            ]
            # Made again at once instead of being dead-lettered, and within the attempts allowed.
            assert (record["state"], record["attempts"]) == ("pending", "2")
            assert record["last_error"] == coral_sync.NOT_YET_LINKED
            assert int(first["next_attempt_at"]) < int(record["next_attempt_at"]) <= clock() * 1000
            # Still on its way: a decision Coral's moderator makes meanwhile does not undo it.
            fake_coral.status = "APPROVED"
            approved = fixture("webhook_left_moderation_queue.json")
            approved["data"]["status"] = "APPROVED"
            answer = await (await webhook(client, approved)).json()
            assert (answer["applied"], answer.get("reason")) == (
                False,
                "a later decision made in civility is on its way to Coral",
            )
            fake_coral.answer_held()
            await eventually(settled(redis_client, 2), what="the rejection in Coral")
    finally:
        linked.set()
        worker.stop()
        await running
    listed = await client.get("/v1/sites/news/deliveries?state=delivered", headers=headers)
    rejected = [item for item in (await listed.json())["items"] if item["id"] == record["id"]]
    assert [item["attempts"] for item in rejected] == [2]
    assert [call["field"] for call in fake_coral.mutations()] == ["rejectComment"]
    assert fake_coral.status == "REJECTED"
    assert (await comment(client, coral_site, ours))["state"] == "rejected"
    assert "dead-lettered" not in caplog.text


async def test_a_last_try_made_again_for_a_link_that_still_waits_is_dead_lettered(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await send(client, NEW_COMMENT)
    assert (await send(client, edited("Here's a comment, edited to say more."))).status == 200
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    only_try = dataclasses.replace(PATIENT, max_attempts=1)
    worker = Worker(redis_client, only_try, prefix="civ", name="coral-test", clock=clock)
    settling, linked = held_settle(worker, monkeypatch)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(settling.wait(), 15)
        # Coral's webhook names the comment during its only try, while Coral still has the text
        # before the edit: that try is made again at once, and waits for the edited revision.
        answer = await webhook(client, fixture("webhook_entered_moderation_queue.json"))
        assert (await answer.json())["comment_id"] == ours
        linked.set()

        async def failed() -> bool:
            return "failed" in (await delivery_states(redis_client)).values()

        await eventually(failed, what="the rejection dead-lettered")
    finally:
        linked.set()
        worker.stop()
        await running
    # Nothing came during the try made again: it was the last one, and it counted once.
    listed = await client.get("/v1/sites/news/deliveries?state=failed", headers=headers)
    [dead] = (await listed.json())["items"]
    assert (dead["attempts"], dead["last_error"]) == (1, coral_sync.NOT_YET_STORED)
    assert fake_coral.mutations() == []


async def test_a_decision_in_coral_counts_again_once_civilitys_waiting_one_was_dead_lettered(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    await deliver_until(redis_client, settled(redis_client, 2), "the rejection dead-lettered")
    assert "failed" in (await delivery_states(redis_client)).values()
    # Coral's moderator approves the comment: its webhook links it and decides it.
    fake_coral.status = "APPROVED"
    approved = fixture("webhook_left_moderation_queue.json")
    approved["data"]["status"] = "APPROVED"

    answer = await (await webhook(client, approved)).json()

    assert (answer["comment_id"], answer["applied"], answer["state"]) == (ours, True, "approved")


async def test_a_link_gone_during_a_decisions_last_try_is_not_written_again(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await send(client, NEW_COMMENT)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200
    only_try = dataclasses.replace(PATIENT, max_attempts=1)
    worker = Worker(redis_client, only_try, prefix="civ", name="coral-test", clock=clock)
    settling, release = held_settle(worker, monkeypatch)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(settling.wait(), 15)
        # The link ends during the try, as it does with its comment past the retention.
        assert await redis_client.delete(KEYS.coral_link("news", ours)) == 1
        release.set()
        await eventually(settled(redis_client, 2), what="the rejection dead-lettered")
    finally:
        release.set()
        worker.stop()
        await running
    assert "failed" in (await delivery_states(redis_client)).values()
    assert not await redis_client.exists(KEYS.coral_link("news", ours))


async def test_a_coral_edit_updates_its_comment_and_is_not_flood(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    await send(client, NEW_COMMENT)
    edit = copy.deepcopy(NEW_COMMENT)
    edit["action"] = "EDIT"
    edit["comment"]["body"] = "Here's a comment, edited to say more about the harbour."
    answer = await send(client, edit)
    assert (answer.status, await answer.json()) == (200, {"status": "PREMOD"})
    stored = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert (stored["text"], stored["version"]) == (edit["comment"]["body"], 2)
    assert "FLOOD" not in stored["reasons"]
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    queue = await (await client.get("/v1/sites/news/queue", headers=headers)).json()
    assert [item["id"] for item in queue["items"]] == [our_id(NEW_COMMENT)]


def edited(text: str) -> dict[str, Any]:
    edit = copy.deepcopy(NEW_COMMENT)
    edit["action"] = "EDIT"
    edit["comment"]["body"] = text
    return edit


async def test_a_decision_after_a_coral_edit_goes_to_the_edited_revision(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    edit = edited("Here's a comment, edited to say more about the harbour.")
    assert (await send(client, edit)).status == 200
    # Coral stores the edit as a new revision once its phase has answered, and sends no webhook
    # when it keeps the comment where it was.
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    await deliver_until(redis_client, called(fake_coral), "the approval in Coral")

    [mutation] = fake_coral.mutations()
    assert mutation["variables"]["input"]["commentRevisionID"] == EDITED_REVISION_ID
    assert (await redis_client.hget(KEYS.coral_link("news", ours), "revision_id")) == (
        EDITED_REVISION_ID
    )


async def test_a_decision_waits_for_coral_to_store_the_edited_text_it_was_made_on(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    edit = edited("Here's a comment, edited to say more about the harbour.")
    await send(client, edit)
    # Coral's webhook comes while Coral still has the text before the edit.
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "reject"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    waiting = waits_with(redis_client, coral_sync.NOT_YET_STORED)

    await deliver_until(redis_client, waiting, "an attempt that waits for the edited revision")
    assert fake_coral.mutations() == []
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
    await deliver_until(redis_client, called(fake_coral), "the rejection in Coral")
    [mutation] = fake_coral.mutations()
    assert mutation["variables"]["input"]["commentRevisionID"] == EDITED_REVISION_ID


async def test_a_decision_waiting_for_the_edited_revision_goes_once_a_webhook_names_it(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    edit = edited("Here's a comment, edited to say more about the harbour.")
    await send(client, edit)
    _, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200

    waiting = waits_with(redis_client, coral_sync.NOT_YET_STORED)

    await deliver_until(redis_client, waiting, "an attempt that waits", PATIENT, clock)
    [record] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    assert int(record["next_attempt_at"]) > clock() * 1000
    # Coral stores the edit and sends a webhook: the same comment, the edit's revision.
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    # It reaches Coral with the clock short of its retry.
    await deliver_until(redis_client, called(fake_coral), "the rejection in Coral", PATIENT, clock)
    [mutation] = fake_coral.mutations()
    assert mutation["variables"]["input"]["commentRevisionID"] == EDITED_REVISION_ID
    assert int(record["next_attempt_at"]) > clock() * 1000


async def test_a_decision_on_an_edit_goes_once_a_webhook_names_the_comment_before_its_revision(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    # The author edits before any webhook named the comment, and a moderator decides the edit.
    await send(client, NEW_COMMENT)
    edit = edited("Here's a comment, edited to say more about the harbour.")
    await send(client, edit)
    ours, url, headers = to_decide(coral_site)
    assert (await client.post(url, json={"action": "reject"}, headers=headers)).status == 200

    waiting = waits_with(redis_client, coral_sync.NOT_YET_LINKED)

    await deliver_until(redis_client, waiting, "an attempt that waits for the link", PATIENT, clock)
    [record] = [record for record in await records_of(redis_client) if record["state"] == "pending"]
    assert int(record["next_attempt_at"]) > clock() * 1000
    # Coral's webhook names the comment while it still has the text before the edit, whose
    # revision is not the one decided; Coral then stores the edit, sending no webhook.
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    assert (await redis_client.hget(KEYS.coral_link("news", ours), "revision_id")) == ""
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID

    # The attempt the webhook made due finds the edit's revision, short of the retry.
    await deliver_until(redis_client, called(fake_coral), "the rejection in Coral", PATIENT, clock)
    [mutation] = fake_coral.mutations()
    assert mutation["variables"]["input"]["commentRevisionID"] == EDITED_REVISION_ID
    assert int(record["next_attempt_at"]) > clock() * 1000


async def test_a_decision_on_the_text_before_a_coral_edit_is_not_carried_onto_the_edit(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()
    # The author edits before the worker carried the approval into Coral: the edit is held
    # again (pre-moderation), in civility and by its phase answer in Coral.
    edit = edited("Here's a comment, edited to say more about the harbour.")
    assert await (await send(client, edit)).json() == {"status": "PREMOD"}
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID

    await deliver_until(redis_client, settled(redis_client, 3), "every event settled")

    assert fake_coral.mutations() == []
    assert set((await delivery_states(redis_client)).values()) == {"delivered"}
    assert (await comment(client, coral_site, ours))["state"] == "pending"


async def test_an_edit_that_could_be_of_either_of_two_recent_comments_is_withheld_unguessed(
    client: Client, coral_site: dict[str, str]
) -> None:
    # The author writes twice in the thread, then edits the first, still within Coral's edit
    # window: Coral's EDIT names no comment, and the latest is not the one edited.
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    await send(client, second)

    answer = await send(client, edited("Here's a comment, edited to say more about the harbour."))

    assert (answer.status, await answer.json()) == (200, {"status": "SYSTEM_WITHHELD"})
    first = await comment(client, coral_site, our_id(NEW_COMMENT))
    latest = await comment(client, coral_site, our_id(second))
    assert (first["text"], first["version"]) == (NEW_COMMENT["comment"]["body"], 1)
    assert (latest["text"], latest["version"]) == ("And a second thought.", 1)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    queue = await (await client.get("/v1/sites/news/queue", headers=headers)).json()
    assert len(queue["items"]) == 2


async def failed_at_once(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, events: int
) -> dict[str, Any]:
    """Runs the worker until the ``events`` events are settled; the one failed, as a moderator
    lists it, after its first and only attempt."""
    await deliver_until(redis_client, settled(redis_client, events), "every event settled")
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    listed = await client.get("/v1/sites/news/deliveries?state=failed", headers=headers)
    assert listed.status == 200, await listed.text()
    [failed] = (await listed.json())["items"]
    assert failed["attempts"] == 1
    return cast(dict[str, Any], failed)


async def test_a_decision_on_a_comment_whose_coral_edit_civility_withheld_is_reported_not_sent(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)
    edit = edited("Here's a comment, edited to say something else entirely.")
    assert await (await send(client, edit)).json() == {"status": "SYSTEM_WITHHELD"}
    # Coral stores the edit of the first comment, holds it, and says so.
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    # A moderator in civility approves the text civility has, the one before the edit.
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    # Coral's text will not be civility's again: the approval is not retried for a day but
    # dead-lettered at once, saying why, and never reaches the edit Coral holds.
    failed = await failed_at_once(client, coral_site, redis_client, 3)

    assert (failed["type"], failed["comment_id"]) == ("comment.approved", ours)
    assert failed["last_error"].startswith("not carried into Coral: its comment has an edit")
    assert "decide the comment in Coral" in failed["last_error"]
    assert fake_coral.mutations() == []
    # Coral's moderator decides the held edit, and civility follows; the comment's events after
    # the one given up are not held back behind it.
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (answer["applied"], answer["state"]) == (True, "rejected")
    await deliver_until(redis_client, settled(redis_client, 4), "the later event settled")
    states = await delivery_states(redis_client)
    assert sorted(states.values()) == ["delivered", "delivered", "delivered", "failed"]
    assert fake_coral.mutations() == []


async def test_a_coral_decision_on_an_edit_civility_withheld_decides_neither_comment(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    # No webhook has named either comment yet when the author edits the first one, and the
    # edit could be of either: civility withholds it, and Coral stores it and holds it.
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    await send(client, second)
    edit = edited("Here's a comment, edited to say something else entirely.")
    assert await (await send(client, edit)).json() == {"status": "SYSTEM_WITHHELD"}
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID
    before = {
        request["comment"]["body"]: await comment(client, coral_site, our_id(request))
        for request in (NEW_COMMENT, second)
    }

    # Coral's moderator rejects the edited comment: its text is neither comment's in civility.
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert answer["applied"] is False
    assert "comment_id" not in answer
    assert answer["reason"].startswith("Coral's comment reads as none of the author's")
    for request in (NEW_COMMENT, second):
        kept = await comment(client, coral_site, our_id(request))
        earlier = before[request["comment"]["body"]]
        assert (kept["state"], kept["version"]) == (earlier["state"], earlier["version"])
    # Neither comment is taken for Coral's: a decision on the second one is not sent to it.
    assert await redis_client.get(KEYS.coral_comment("news", CORAL_ID)) is None
    assert await redis_client.hget(KEYS.coral_link("news", our_id(second)), "coral_id") is None


async def test_a_coral_decision_on_a_text_unlike_the_authors_only_comment_decides_nothing(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    # The author's only comment civility has in the thread; Coral's comment has another text
    # (one whose phase failed, which Coral published unmoderated): it is not that comment.
    await send(client, NEW_COMMENT)
    before = await comment(client, coral_site, our_id(NEW_COMMENT))
    fake_coral.body = "<p>Something else entirely, never moderated here.</p>"

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert answer["applied"] is False
    assert "comment_id" not in answer
    assert answer["reason"].startswith("Coral's comment reads as none of the author's")
    kept = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert (kept["state"], kept["version"]) == (before["state"], before["version"])
    assert await redis_client.get(KEYS.coral_comment("news", CORAL_ID)) is None


async def test_a_coral_decision_on_the_blanked_only_comment_decides_it_before_any_link(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # No webhook named the comment before the author blanked it in Coral: Coral's comment has
    # no text to compare, and the author's only one in the thread is the one blanked.
    await send(client, NEW_COMMENT)
    assert await (await send(client, edited("\u200b"))).json() == {"status": "REJECTED"}
    fake_coral.body, fake_coral.revision = "<p>\u200b</p>", EDITED_REVISION_ID

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert (answer["comment_id"], answer["applied"], answer["state"]) == (
        our_id(NEW_COMMENT),
        True,
        "rejected",
    )


async def test_an_authors_recent_comments_in_a_thread_are_kept_a_day_from_their_latest(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis, clock: Clock
) -> None:
    await send(client, NEW_COMMENT)
    clock.advance(3600)
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)

    [thread] = [key async for key in redis_client.scan_iter(KEYS.coral_thread("news", "*"))]
    assert DAY_MS - 60_000 < await redis_client.pttl(thread) <= DAY_MS


async def test_a_coral_decision_on_the_blanked_comment_leaves_out_the_authors_of_days_before(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, clock: Clock
) -> None:
    # The author's comment in the thread two days ago is no longer among their recent ones
    # there: the one blanked is their only one.
    await send(client, NEW_COMMENT)
    clock.advance(2 * DAY_MS / 1000)
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)
    assert await (await send(client, edited("\u200b"))).json() == {"status": "REJECTED"}
    fake_coral.body, fake_coral.revision = "<p>\u200b</p>", EDITED_REVISION_ID

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert (answer["comment_id"], answer["applied"], answer["state"]) == (
        our_id(second),
        True,
        "rejected",
    )
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "pending"


async def test_a_coral_decision_finds_its_edited_comment_when_the_author_wrote_again_after(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # The author edits their only comment (civility takes the edit), then writes another, before
    # any webhook named the first: Coral's text is the edit, which no comment's id derives from.
    await send(client, NEW_COMMENT)
    edit = edited("Here's a comment, edited to say more about the harbour.")
    assert await (await send(client, edit)).json() == {"status": "PREMOD"}
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)
    fake_coral.body, fake_coral.revision = edit["comment"]["body"], EDITED_REVISION_ID

    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()

    assert (answer["comment_id"], answer["applied"]) == (our_id(NEW_COMMENT), True)
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "rejected"
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


async def test_a_decision_on_a_comment_blanked_in_coral_is_reported_not_sent(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    assert await (await send(client, edited("\u200b"))).json() == {"status": "REJECTED"}
    fake_coral.body, fake_coral.revision = "<p>\u200b</p>", EDITED_REVISION_ID
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    failed = await failed_at_once(client, coral_site, redis_client, 2)

    assert failed["last_error"].startswith("not carried into Coral")
    assert fake_coral.mutations() == []


async def test_an_edit_updates_the_one_comment_still_within_corals_edit_window(
    client: Client, coral_site: dict[str, str], clock: Clock
) -> None:
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    clock.advance(3600)  # the first can no longer be edited in Coral
    await send(client, second)
    edit = edited("And a second thought, edited.")

    answer = await send(client, edit)

    assert (answer.status, await answer.json()) == (200, {"status": "PREMOD"})
    latest = await comment(client, coral_site, our_id(second))
    assert (latest["text"], latest["version"]) == (edit["comment"]["body"], 2)
    first = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert first["version"] == 1


async def test_an_edit_leaves_its_comment_as_old_as_when_coral_first_sent_it(
    client: Client, coral_site: dict[str, str], clock: Clock
) -> None:
    # Coral's edit window (300 s) runs from when the author wrote a comment, not from an edit.
    await send(client, NEW_COMMENT)
    clock.advance(250)
    first_edit = edited("Here's a comment, edited to say more about the harbour.")
    assert (await send(client, first_edit)).status == 200
    clock.advance(100)  # the first can no longer be edited in Coral
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, second)
    edit = edited("And a second thought, edited.")

    answer = await send(client, edit)

    assert (answer.status, await answer.json()) == (200, {"status": "PREMOD"})
    latest = await comment(client, coral_site, our_id(second))
    assert (latest["text"], latest["version"]) == (edit["comment"]["body"], 2)
    first = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert (first["text"], first["version"]) == (first_edit["comment"]["body"], 2)


async def test_an_edit_taken_after_a_blank_one_waits_for_coral_to_store_it_again(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    assert await (await send(client, edited("\u200b"))).json() == {"status": "REJECTED"}
    fake_coral.body, fake_coral.revision = "<p>\u200b</p>", EDITED_REVISION_ID
    # The author writes a text again: civility takes this edit, which Coral has yet to store.
    edit = edited("Here's a comment, written again after all.")
    assert await (await send(client, edit)).json() == {"status": "PREMOD"}
    ours = our_id(NEW_COMMENT)
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    waiting = waits_with(redis_client, coral_sync.NOT_YET_STORED)

    await deliver_until(redis_client, waiting, "an attempt that waits for the edited revision")
    assert "failed" not in (await delivery_states(redis_client)).values()
    fake_coral.body, fake_coral.revision = (
        edit["comment"]["body"],
        "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a090",
    )
    await deliver_until(redis_client, called(fake_coral), "the approval in Coral")
    [mutation] = fake_coral.mutations()
    assert mutation["variables"]["input"]["commentRevisionID"] == fake_coral.revision


@pytest.mark.parametrize("blank", ["  ", "\u200b\u00a0"])
async def test_an_edit_that_blanks_a_published_comment_is_rejected_not_published(
    client: Client, coral_site: dict[str, str], admin: dict[str, str], blank: str
) -> None:
    await client.patch("/v1/sites/news", json={"policy": {"mode": "post"}}, headers=admin)
    assert (await send(client, NEW_COMMENT)).status == 204

    answer = await send(client, edited(blank))

    # Coral rejects the edited comment: neither the blank text nor the one before is shown.
    assert (answer.status, await answer.json()) == (200, {"status": "REJECTED"})
    kept = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert (kept["text"], kept["state"], kept["version"]) == (
        NEW_COMMENT["comment"]["body"],
        "approved",
        1,
    )


async def test_a_held_comment_blanked_in_coral_ends_rejected_on_both_ends(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))

    answer = await send(client, edited("\u200b"))

    assert (answer.status, await answer.json()) == (200, {"status": "REJECTED"})
    # Coral stores the blank revision rejected, which takes the comment out of its queue.
    fake_coral.body, fake_coral.revision = "<p>\u200b</p>", EDITED_REVISION_ID
    left = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (left["applied"], left["state"]) == (True, "rejected")
    kept = await comment(client, coral_site, our_id(NEW_COMMENT))
    assert (kept["text"], kept["state"]) == (NEW_COMMENT["comment"]["body"], "rejected")


@pytest.mark.parametrize("edit_window_seconds", [3600])
async def test_an_edit_within_a_longer_edit_window_set_in_coral_is_not_taken_for_the_newer(
    client: Client, coral_site: dict[str, str], clock: Clock
) -> None:
    # Coral lets this site's authors edit for an hour: twenty minutes on, the first comment may
    # still be the one edited, so the second (the only recent one by a shorter window) is not.
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    clock.advance(1200)
    await send(client, second)
    clock.advance(10)

    answer = await send(client, edited("Here's a comment, edited to say more about the harbour."))

    assert (answer.status, await answer.json()) == (200, {"status": "SYSTEM_WITHHELD"})
    for request in (NEW_COMMENT, second):
        kept = await comment(client, coral_site, our_id(request))
        assert (kept["text"], kept["version"]) == (request["comment"]["body"], 1)


@pytest.mark.parametrize("edit_window_seconds", [30])
async def test_an_edit_after_a_shorter_edit_window_set_in_coral_is_of_the_newer(
    client: Client, coral_site: dict[str, str], clock: Clock
) -> None:
    # Coral's default window: two minutes on, the first comment can no longer be edited there.
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    clock.advance(120)
    await send(client, second)
    clock.advance(10)
    edit = edited("And a second thought, edited.")

    answer = await send(client, edit)

    assert (answer.status, await answer.json()) == (200, {"status": "PREMOD"})
    latest = await comment(client, coral_site, our_id(second))
    assert (latest["text"], latest["version"]) == (edit["comment"]["body"], 2)
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["version"] == 1


async def test_a_german_comment_from_coral_is_withheld_for_its_language(
    client: Client, coral_site: dict[str, str], admin: dict[str, str]
) -> None:
    await client.patch("/v1/sites/news", json={"policy": {"mode": "post"}}, headers=admin)
    german = copy.deepcopy(NEW_COMMENT)
    german["comment"]["body"] = (
        "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt."
    )
    answer = await send(client, german)
    assert (answer.status, await answer.json()) == (200, {"status": "SYSTEM_WITHHELD"})
    stored = await comment(client, coral_site, our_id(german))
    assert (stored["state"], stored["reasons"], stored["scores"]) == ("pending", ["LANGUAGE"], {})


@pytest.mark.parametrize(
    ("secret", "message"),
    [("wrong-secret-000000", "X-Coral-Signature does not match the body")],
)
async def test_a_webhook_with_a_bad_signature_changes_nothing(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    secret: str,
    message: str,
) -> None:
    await send(client, NEW_COMMENT)
    response = await webhook(client, fixture("webhook_left_moderation_queue.json"), secret)
    assert response.status == 401
    assert (await response.json())["error"]["message"] == message
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "pending"
    assert fake_coral.calls == []


async def test_webhooks_are_refused_until_a_webhook_secret_is_set(
    client: Client, create_site: Any
) -> None:
    await create_site("news")
    response = await webhook(client, fixture("webhook_left_moderation_queue.json"))
    assert response.status == 401
    assert (await response.json())["error"]["message"] == (
        "no Coral webhook secret is set for this site: set coral.webhook_secret "
        "with PATCH /v1/sites/{site}"
    )


async def test_a_deleted_site_takes_no_coral_link_from_a_process_that_still_knows_it(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    admin: dict[str, str],
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    other = await aiohttp_client(create_app(settings))
    await send(client, NEW_COMMENT)
    # The other process reads the site's record, and keeps it a second.
    assert (await other.get("/v1/sites/news/queue", headers=admin)).status == 200
    assert (await client.delete("/v1/sites/news", headers=admin)).status == 202
    left = {key async for key in redis_client.scan_iter(match="civ:{news}:*")}

    # Before the purge reaches the comment: a link written now could outlive it.
    late = await webhook(other, fixture("webhook_entered_moderation_queue.json"))

    assert late.status == 404, await late.text()
    assert {key async for key in redis_client.scan_iter(match="civ:{news}:*")} == left
    assert not await redis_client.exists(KEYS.coral_comment("news", CORAL_ID))


async def test_a_site_deleted_right_after_its_phase_checked_it_takes_no_key_from_that_phase(
    client: Client,
    coral_site: dict[str, str],
    admin: dict[str, str],
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    links = client.app[CORAL].links
    run = links._run
    left: set[str] = set()

    async def then_deleted(name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        done = await run(name, keys, args)
        # The site's deletion lands right after the script that found it there.
        assert (await client.delete("/v1/sites/news", headers=admin)).status == 202
        left.update({key async for key in redis_client.scan_iter(match="civ:{news}:*")})
        return done

    monkeypatch.setattr(links, "_run", then_deleted)
    await send(client, NEW_COMMENT)

    assert left, "the phase never reached its script"
    # Nothing lands behind the deletion for the purge to miss, or a new site of that id to read.
    assert {key async for key in redis_client.scan_iter(match="civ:{news}:*")} == left


async def test_a_coral_decision_reaches_its_own_comment_when_the_author_wrote_again_meanwhile(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # The same author, story and parent: the second comment's phase comes before the first
    # one's webhook, whose comment Coral's GraphQL names (with the first one's text).
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    await send(client, NEW_COMMENT)
    await send(client, second)
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (answer["comment_id"], answer["applied"]) == (our_id(NEW_COMMENT), True)
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "rejected"
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


async def test_a_coral_decision_on_a_comment_withheld_unstored_decides_no_other_one(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # The author's earlier comment in the thread is stored; the next one, too long to moderate,
    # is withheld in Coral and stored nowhere. A decision on it in Coral is not the earlier one's.
    earlier = {**NEW_COMMENT, "comment": {"body": "An earlier remark.", "parentID": None}}
    long = {**NEW_COMMENT, "comment": {"body": "You are an idiot. " * 1_200, "parentID": None}}
    fake_coral.body = long["comment"]["body"]
    await send(client, earlier)
    before = await comment(client, coral_site, our_id(earlier))
    assert await (await send(client, long)).json() == {"status": "SYSTEM_WITHHELD"}
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert answer["applied"] is False
    assert "comment_id" not in answer
    after = await comment(client, coral_site, our_id(earlier))
    assert (after["state"], after["version"]) == (before["state"], before["version"])
    assert fake_coral.mutations() == []


async def test_a_coral_decision_finds_its_comment_by_the_text_its_html_body_reads(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # A phase in Text format is sent the comment's text; Coral's GraphQL API gives its stored
    # HTML (entities, a line break as <br>). The author wrote again before the webhook came.
    first = {**NEW_COMMENT, "comment": {"body": "Tom & Jerry <3\nAgain.", "parentID": None}}
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    fake_coral.body = "Tom &amp; Jerry &lt;3<br>Again."
    await send(client, first)
    await send(client, second)
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (answer["comment_id"], answer["applied"]) == (our_id(first), True)
    assert (await comment(client, coral_site, our_id(first)))["state"] == "rejected"
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


@pytest.mark.parametrize(
    "phase_text",
    [
        # getHTMLPlainText on Coral's server: a line break before <br>, then striptags, which
        # leaves the entities as they are.
        "Tom &amp; Jerry &lt;3\nAgain.",
        # Coral versions before it: striptags alone.
        "Tom &amp; Jerry &lt;3Again.",
    ],
)
async def test_a_coral_decision_finds_its_comment_by_the_text_corals_server_sent(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, phase_text: str
) -> None:
    # Coral's server strips the tags of the stored HTML for a phase in Text format, and keeps
    # its entities. The author wrote again before the webhook came.
    first = {**NEW_COMMENT, "comment": {"body": phase_text, "parentID": None}}
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    fake_coral.body = "Tom &amp; Jerry &lt;3<br>Again."
    await send(client, first)
    await send(client, second)
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (answer["comment_id"], answer["applied"]) == (our_id(first), True)
    assert (await comment(client, coral_site, our_id(first)))["state"] == "rejected"
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


async def test_a_coral_decision_finds_its_comment_whose_html_quotes_a_closing_bracket(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    # Coral's serializer leaves a ">" inside an attribute value as it is; its server's
    # striptags reads past it to the tag's end, and so must the text the link compares.
    first = {**NEW_COMMENT, "comment": {"body": "Read the story first.", "parentID": None}}
    second = {**NEW_COMMENT, "comment": {"body": "And a second thought.", "parentID": None}}
    fake_coral.body = (
        '<p>Read <a href="https://example.com/?a>b" title="a > b">the story</a> first.</p>'
    )
    await send(client, first)
    await send(client, second)
    answer = await (await webhook(client, fake_coral.moderator_rejects())).json()
    assert (answer["comment_id"], answer["applied"]) == (our_id(first), True)
    assert (await comment(client, coral_site, our_id(first)))["state"] == "rejected"
    assert (await comment(client, coral_site, our_id(second)))["state"] == "pending"


async def test_a_webhook_coral_cannot_describe_is_answered_without_an_error_status(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    await send(client, NEW_COMMENT)
    fake_coral.query_failures = 1
    failed = await webhook(client, fake_coral.moderator_rejects())
    # Coral never sends it again, and ten error answers in a row disable its endpoint.
    assert failed.status == 200, await failed.text()
    answer = await failed.json()
    assert answer["applied"] is False
    assert answer["reason"].startswith("Coral's GraphQL API did not answer")
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "pending"


@pytest.mark.parametrize("delivery", [dataclasses.replace(FAST, timeout_seconds=0.2)])
async def test_a_webhook_waits_for_corals_graphql_api_as_long_as_the_delivery_timeout(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    await send(client, NEW_COMMENT)
    fake_coral.query_hang = asyncio.Event()
    try:
        # Far longer than the setting's 0.2 s, shorter than a fixed 5 s.
        async with asyncio.timeout(3):
            answered = await webhook(client, fake_coral.moderator_rejects())
    finally:
        fake_coral.query_hang.set()
    assert answered.status == 200, await answered.text()
    answer = await answered.json()
    assert answer["applied"] is False
    assert answer["reason"] == "Coral's GraphQL API did not answer: timed out after 0.2 s"
    assert (await comment(client, coral_site, our_id(NEW_COMMENT)))["state"] == "pending"


async def test_a_decision_on_a_linked_comment_is_applied_while_corals_graphql_api_fails(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    fake_coral.query_failures = 1
    decided = await webhook(client, fake_coral.moderator_rejects())
    assert decided.status == 200, await decided.text()
    answer = await decided.json()
    assert (answer["comment_id"], answer["applied"], answer["state"]) == (
        our_id(NEW_COMMENT),
        True,
        "rejected",
    )


async def test_the_api_looks_nothing_up_in_a_coral_on_a_private_address_unless_allowed(
    aiohttp_client: AiohttpClient,
    redis_url: str,
    redis_client: aioredis.Redis,
    fake_coral: FakeCoral,
) -> None:
    guarded = await aiohttp_client(create_app(api_settings(redis_url), clock=Clock()))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await guarded.post("/v1/sites", json={"id": "news", "name": "N"}, headers=admin)
    assert created.status == 201, await created.text()
    coral = {
        "signing_secret": SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "graphql_url": fake_coral.url,
        "access_token": TOKEN,
    }
    assert (
        await guarded.patch("/v1/sites/news", json={"coral": coral}, headers=admin)
    ).status == 200
    await send(guarded, NEW_COMMENT)
    refused = await webhook(guarded, fixture("webhook_left_moderation_queue.json"))
    # Refused before it connected, and said so without an error status Coral would count.
    assert (refused.status, fake_coral.calls) == (200, [])
    assert (await refused.json())["applied"] is False


async def test_an_answer_that_never_ends_is_cut_off_and_retried(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    fake_coral.endless = True
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    async def cut_off() -> bool:
        return any(record.get("last_error") for record in await records_of(redis_client))

    # Read to its end, the answer would fill the worker's memory until the timeout ended it.
    await deliver_until(redis_client, cut_off, "the cut-off attempt")
    errors = [record["last_error"] for record in await records_of(redis_client)]
    assert errors.count("the answer is longer than 1 MiB") == 1


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        (
            web.Response(status=500, text="db01.internal: pool exhausted"),
            "HTTP 500 Internal Server Error",
        ),
        (web.Response(status=200, text="<p>db01.internal</p>"), "the answer is not JSON"),
        (
            web.json_response({"host": "db01.internal"}),
            "the answer is neither GraphQL data nor GraphQL errors",
        ),
    ],
)
async def test_last_error_never_shows_what_corals_endpoint_answered(
    client: Client,
    coral_site: dict[str, str],
    fake_coral: FakeCoral,
    redis_client: aioredis.Redis,
    answer: web.Response,
    shown: str,
) -> None:
    await send(client, NEW_COMMENT)
    ours = our_id(NEW_COMMENT)
    linked = await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    # Named by Coral's webhook: the decision goes to Coral at once, not waiting for its ids.
    assert (await linked.json())["comment_id"] == ours
    fake_coral.odd_answer = answer
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    async def failed_once() -> bool:
        return any(record.get("last_error") for record in await records_of(redis_client))

    await deliver_until(redis_client, failed_once, "the failed attempt")
    errors = [record["last_error"] for record in await records_of(redis_client)]
    assert sorted(errors) == ["", shown]


async def test_a_decision_into_coral_gives_up_within_the_delivery_timeout(
    client: Client, coral_site: dict[str, str], fake_coral: FakeCoral, redis_client: aioredis.Redis
) -> None:
    await send(client, NEW_COMMENT)
    await webhook(client, fixture("webhook_entered_moderation_queue.json"))
    ours = our_id(NEW_COMMENT)
    fake_coral.hang = asyncio.Event()
    headers = {"Authorization": f"Bearer {coral_site['moderator_token']}"}
    decided = await client.post(
        f"/v1/sites/news/comments/{ours}/decision", json={"action": "approve"}, headers=headers
    )
    assert decided.status == 200, await decided.text()

    async def failed_once() -> bool:
        return any(record.get("last_error") for record in await records_of(redis_client))

    # A lease only just longer than the timeout is a valid setting: an attempt that outlived it
    # would run beside another worker's, and the comment's next decision could overtake it.
    quick = dataclasses.replace(FAST, timeout_seconds=0.2, lease_seconds=0.3)
    try:
        await deliver_until(redis_client, failed_once, "the timed-out attempt", quick)
    finally:
        fake_coral.answer_held()
    errors = [record["last_error"] for record in await records_of(redis_client)]
    assert sorted(errors) == ["", "timed out after 0.2 s"]


@pytest.mark.parametrize(
    ("given", "missing", "other"),
    [
        ({"graphql_url": "https://coral.example.org/api/graphql"}, "access_token", "graphql_url"),
        ({"access_token": TOKEN}, "graphql_url", "access_token"),
    ],
)
async def test_a_graphql_url_or_access_token_alone_is_refused_and_nothing_is_written(
    client: Client,
    create_site: Any,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
    given: dict[str, str],
    missing: str,
    other: str,
) -> None:
    # Alone, neither carries a decision into Coral: each event would be retried for a day.
    await create_site("news")
    patch = {"name": "Renamed", "coral": {"signing_secret": SECRET, **given}}
    refused = await client.patch("/v1/sites/news", json=patch, headers=admin)
    assert refused.status == 400, await refused.text()
    error = (await refused.json())["error"]
    assert error["code"] == "bad_request"
    assert error["message"] == (
        f"coral.{missing} is required with coral.{other}: civility needs both to apply its "
        "decisions in Coral"
    )
    stored = await redis_client.hgetall(KEYS.site("news"))
    assert stored["name"] == "The news site"
    assert [name for name in stored if str(name).startswith("coral_")] == []


async def test_removing_one_of_the_graphql_url_and_access_token_is_refused(
    client: Client, coral_site: dict[str, str], admin: dict[str, str], redis_client: aioredis.Redis
) -> None:
    alone = {"coral": {"access_token": None}}
    refused = await client.patch("/v1/sites/news", json=alone, headers=admin)
    assert refused.status == 400, await refused.text()
    assert "coral.access_token is required" in (await refused.json())["error"]["message"]
    assert (await redis_client.hget(KEYS.site("news"), "coral_access_token")) == TOKEN
    both = {"coral": {"graphql_url": None, "access_token": None}}
    assert (await client.patch("/v1/sites/news", json=both, headers=admin)).status == 200
    stored = await redis_client.hmget(KEYS.site("news"), "coral_graphql_url", "coral_access_token")
    assert stored == ["", ""]
    # A site without them takes a new pair at once, and a name change leaves the pair alone.
    pair = {
        "coral": {"graphql_url": "https://coral.example.org/api/graphql", "access_token": TOKEN}
    }
    assert (await client.patch("/v1/sites/news", json=pair, headers=admin)).status == 200
    assert (await client.patch("/v1/sites/news", json={"name": "N"}, headers=admin)).status == 200
