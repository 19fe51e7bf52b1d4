"""Idempotency keys on decisions, bulk decisions, queue claims, reports and admin writes: a retry
gets the first answer, the same key with another body is refused, and the record ends after a
day."""

import base64
import json
from codecs import BOM_UTF8
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.appkeys import IDEMPOTENCY, MODERATION
from service.domain import Comment
from service.idempotency import KEEP_MS, RUNNING_MS, digest
from service.keys import KeySpace
from service.labels import LabelLog
from service.store.records import DecisionWrite
from tests.clocks import Clock
from tests.service.api.conftest import fail_decide_once
from tests.service.api.openapi_check import refused_parameters

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
KEYS = KeySpace()
TEXT = "I disagree with the minister, but the summary of the talks is fair."


async def held_comment(create_site: Any, post_signed: Any, comment_id: str = "c1") -> Any:
    site = await create_site("news", mode="pre")
    for number in range(2):
        body = {
            "id": f"{comment_id}-{number}" if number else comment_id,
            "article": {"id": "a1"},
            "author": {"id": "reader"},
            "text": TEXT if not number else "The photo caption names the wrong city.",
        }
        response = await post_signed(site, body)
        assert (await response.json())["state"] == "pending"
    return site


async def events_of(redis_client: aioredis.Redis, comment_id: str) -> list[str]:
    entries = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox("news")))
    return [fields["type"] for _, fields in entries if fields["comment_id"] == comment_id]


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_keyed_decision_retried_gets_the_first_answer_and_one_event(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    headers = keyed(moderator(site), "decide-c1-once")
    first = await client.post(path, json={"action": "reject", "reason": "TOXIC"}, headers=headers)
    assert first.status == 200, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    # Someone else reopens it meanwhile: the retry still gets the first answer, not a new write.
    reopened = await client.post(path, json={"action": "reopen"}, headers=moderator(site))
    assert reopened.status == 200
    again = await client.post(path, json={"action": "reject", "reason": "TOXIC"}, headers=headers)
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    assert (await again.json())["state"] == "rejected"
    events = ["comment.held", "comment.rejected", "comment.held"]
    assert await events_of(redis_client, "c1") == events


async def test_a_retry_after_a_lost_answer_leaves_a_later_decision_standing(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    reject = {"action": "reject", "reason": "TOXIC"}
    headers = keyed(moderator(site), "mod-1-rejects")
    fail_decide_once(client, monkeypatch, "c1", written=True)
    lost = await client.post(path, json=reject, headers=headers)
    assert lost.status == 503  # rejected, but the answer never came: the key is given back
    created = await client.post("/v1/sites/news/moderators", json={"name": "Bo"}, headers=admin)
    second = {"Authorization": f"Bearer {(await created.json())['token']}"}
    approved = await client.post(path, json={"action": "approve"}, headers=second)
    assert approved.status == 200

    retried = await client.post(path, json=reject, headers=headers)
    # The reject is found made: the later approval stands, taught last, and was the last word.
    assert retried.status == 200
    answer = await retried.json()
    assert (answer["state"], answer["version"]) == ("approved", 3)
    events = ["comment.held", "comment.rejected", "comment.approved"]
    assert await events_of(redis_client, "c1") == events
    labels = [entry async for entry in LabelLog(redis_client).export("news")]
    assert [entry["labels"] for entry in labels] == [{"spam": 0, "toxicity": 0}]


async def test_a_retry_of_a_decision_already_made_leaves_a_later_decision_standing(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    reject = {"action": "reject", "reason": "TOXIC"}
    assert (await client.post(path, json=reject, headers=moderator(site))).status == 200
    # The same rejection sent again (the first answer seemed lost), and its answer lost too.
    headers = keyed(moderator(site), "mod-1-rejects-again")
    fail_decide_once(client, monkeypatch, "c1", written=True)
    lost = await client.post(path, json=reject, headers=headers)
    assert lost.status == 503
    created = await client.post("/v1/sites/news/moderators", json={"name": "Bo"}, headers=admin)
    second = {"Authorization": f"Bearer {(await created.json())['token']}"}
    assert (await client.post(path, json={"action": "approve"}, headers=second)).status == 200

    retried = await client.post(path, json=reject, headers=headers)
    assert retried.status == 200
    answer = await retried.json()
    assert (answer["state"], answer["version"]) == ("approved", 3)
    events = ["comment.held", "comment.rejected", "comment.approved"]
    assert await events_of(redis_client, "c1") == events


async def test_a_retry_after_a_lost_answer_does_not_decide_the_hosts_edit(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    headers = keyed(moderator(site), "approve-c1")
    fail_decide_once(client, monkeypatch, "c1", written=True)
    lost = await client.post(path, json={"action": "approve"}, headers=headers)
    assert lost.status == 503
    edit = {"id": "c1", "article": {"id": "a1"}, "author": {"id": "reader"}, "text": "Edited."}
    assert (await post_signed(site, edit)).status == 202

    retried = await client.post(path, json={"action": "approve"}, headers=headers)
    # The moderator approved the first text, never this one: it waits for a moderator again.
    assert retried.status == 200
    answer = await retried.json()
    assert (answer["text"], answer["state"]) == ("Edited.", "pending")
    events = ["comment.held", "comment.approved", "comment.held"]
    assert await events_of(redis_client, "c1") == events
    decided = KEYS.decided("news", "*")
    [remembered] = [key async for key in redis_client.scan_iter(decided)]
    assert KEEP_MS - 60_000 < await redis_client.pttl(remembered) <= KEEP_MS


async def test_a_key_sent_with_another_body_is_refused(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    headers = keyed(moderator(site), "k-1")
    first = await client.post(path, json={"action": "reject"}, headers=headers)
    assert first.status == 200
    other = await client.post(path, json={"action": "approve"}, headers=headers)
    assert other.status == 422
    assert await other.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key was used with another request body",
            "details": None,
        }
    }
    view = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert (await view.json())["state"] == "rejected"


async def test_a_retry_differing_only_by_a_byte_order_mark_is_the_same_request(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    # The API reads no mark as part of a body's JSON: with it or without, it is one request.
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    plain = json.dumps({"action": "reject", "reason": "TOXIC"}).encode()
    for key, first_body, retried_body in (
        ("marked-retry", plain, BOM_UTF8 + plain),
        ("marked-first", BOM_UTF8 + plain, plain),
    ):
        headers = {**keyed(moderator(site), key), "Content-Type": "application/json"}
        first = await client.post(path, data=first_body, headers=headers)
        assert first.status == 200, await first.text()
        again = await client.post(path, data=retried_body, headers=headers)
        assert again.status == 200, await again.text()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.read() == await first.read()
        # The mark is all it ignores: another body is still another request.
        other = await client.post(path, data=BOM_UTF8 + plain + b" ", headers=headers)
        assert (other.status, (await other.json())["error"]["code"]) == (
            422,
            "idempotency_key_reused",
        )


async def test_a_retry_while_the_first_runs_is_409_with_retry_after_until_its_hold_ends(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    body = b'{"action": "approve"}'
    # The first request took the key and has not answered yet (its process may have died).
    store = client.app[IDEMPOTENCY]
    claim = store.claim(
        "news", digest(f"moderator:{site['moderator_id']}", "POST", path, "k-run"), "k-run", body
    )
    assert await store.begin(claim, int(clock() * 1000)) == "started"
    headers = {**keyed(moderator(site), "k-run"), "Content-Type": "application/json"}
    busy = await client.post(path, data=body, headers=headers)
    assert busy.status == 409
    assert (await busy.json())["error"]["code"] == "idempotency_in_progress"
    # Told when to try again, as the document says.
    assert busy.headers["Retry-After"] == "1"
    document = await (await client.get("/openapi.json")).json()
    decision = document["paths"]["/v1/sites/{site}/comments/{comment}/decision"]
    described = decision["post"]["responses"]["409"]
    assert "idempotency_in_progress" in described["description"]
    assert "Retry-After" in described["headers"]
    clock.advance(RUNNING_MS / 1000 + 1)
    retried = await client.post(path, data=body, headers=headers)
    assert retried.status == 200
    assert (await retried.json())["state"] == "approved"


async def test_the_answer_is_kept_for_a_day_then_the_key_is_free(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    headers = keyed(moderator(site), "daily")
    first = await client.post(path, json={"action": "reject"}, headers=headers)
    assert first.status == 200
    [record] = [key async for key in redis_client.scan_iter(KEYS.idempotency("news", "*"))]
    assert KEEP_MS - 60_000 < await redis_client.pttl(record) <= KEEP_MS
    clock.advance(KEEP_MS / 1000 - 60)
    kept = await client.post(path, json={"action": "approve"}, headers=headers)
    assert kept.status == 422
    clock.advance(61)
    fresh = await client.post(path, json={"action": "approve"}, headers=headers)
    assert fresh.status == 200
    assert "Idempotent-Replayed" not in fresh.headers
    assert (await fresh.json())["state"] == "approved"


async def test_a_decision_repeated_without_key_or_version_sends_no_second_event(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    body = {"action": "reject", "reason": "TOXIC"}
    view = "/v1/sites/news/comments/c1"
    first = await (await client.post(path, json=body, headers=moderator(site))).json()
    decided = await (await client.get(view, headers=moderator(site))).json()
    second = await (await client.post(path, json=body, headers=moderator(site))).json()
    assert second["version"] == first["version"]
    again = await (await client.get(view, headers=moderator(site))).json()
    assert len(again["history"]) == len(decided["history"])
    # With its version, or another reason, it is a decision of its own.
    versioned = {**body, "version": first["version"]}
    third = await (await client.post(path, json=versioned, headers=moderator(site))).json()
    assert third["version"] == first["version"] + 1
    events = ["comment.held", "comment.rejected", "comment.rejected"]
    assert await events_of(redis_client, "c1") == events


async def test_bulk_decisions_and_reports_replay_their_first_answer(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    bulk = {"decisions": [{"id": "c1", "action": "approve"}, {"id": "c1-1", "action": "spam"}]}
    headers = keyed(moderator(site), "bulk-1")
    first = await client.post("/v1/sites/news/decisions", json=bulk, headers=headers)
    assert first.status == 200
    again = await client.post("/v1/sites/news/decisions", json=bulk, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    assert await events_of(redis_client, "c1") == ["comment.held", "comment.approved"]
    report_path = "/v1/sites/news/comments/c1/reports"
    report = {"comment_id": "c1", "reporter_id": "r1", "reason": "abusive"}
    answers = [
        await post_signed(site, report, path=report_path, headers={"Idempotency-Key": "rep-1"})
        for _ in range(2)
    ]
    assert [answer.status for answer in answers] == [202, 202]
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    assert await answers[1].json() == await answers[0].json()


async def test_a_bulk_decision_redis_fails_half_way_answers_503_and_its_retry_finishes_it(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_comment(create_site, post_signed)
    bulk = {"decisions": [{"id": "c1", "action": "approve"}, {"id": "c1-1", "action": "spam"}]}
    headers = keyed(moderator(site), "bulk-lost")
    fail_decide_once(client, monkeypatch, "c1-1", written=True)
    failed = await client.post("/v1/sites/news/decisions", json=bulk, headers=headers)
    # Not a result naming c1-1 failed, kept for the key and replayed to every retry.
    assert failed.status == 503
    assert (await failed.json())["error"]["code"] == "store_unavailable"

    retried = await client.post("/v1/sites/news/decisions", json=bulk, headers=headers)
    assert retried.status == 200
    results = (await retried.json())["results"]
    assert [(result["ok"], result["comment"]["state"]) for result in results] == [
        (True, "approved"),
        (True, "spam"),
    ]
    # Both were written by the first request: the retry finds them made and sends nothing.
    assert await events_of(redis_client, "c1") == ["comment.held", "comment.approved"]
    assert await events_of(redis_client, "c1-1") == ["comment.held", "comment.spam"]


async def test_admin_writes_replay_and_keys_are_private_to_their_principal(
    client: Client, admin: dict[str, str], create_site: Any, moderator: Headers
) -> None:
    spec = {"id": "blog", "name": "The blog"}
    headers = keyed(admin, "create-blog")
    first = await client.post("/v1/sites", json=spec, headers=headers)
    assert first.status == 201
    again = await client.post("/v1/sites", json=spec, headers=headers)
    assert again.status == 201
    assert await again.json() == await first.json()
    # Without the key the same request is a second create.
    assert (await client.post("/v1/sites", json=spec, headers=admin)).status == 409
    # A key names one caller's request: another principal with the same key acts for itself.
    news = await create_site("news")
    path = "/v1/sites/news/authors/someone/status"
    change = {"status": "trusted"}
    by_admin = await client.post(path, json=change, headers=keyed(admin, "same"))
    by_moderator = await client.post(path, json=change, headers=keyed(moderator(news), "same"))
    assert "Idempotent-Replayed" not in by_moderator.headers
    assert (by_admin.status, by_moderator.status) == (200, 200)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sites/news/secrets:rotate",
        "/v1/sites/news/api-key:rotate",
        "/v1/sites/news/model:refit",
        "/v1/model:reload",
    ],
)
async def test_a_keyed_write_without_a_body_refuses_a_body_it_cannot_take_as_documented(
    client: Client, admin: dict[str, str], create_site: Any, path: str
) -> None:
    # The key's record holds the body's hash, so the body is read even where the route takes
    # none: each refusal must be one the document lists for the route.
    await create_site("news")
    text = {**keyed(admin, "plain"), "Content-Type": "text/plain"}
    assert (await client.post(path, data=b"hello", headers=text)).status == 415
    large = b"[" + b" " * 300_000 + b"]"
    big = {**keyed(admin, "big"), "Content-Type": "application/json"}
    assert (await client.post(path, data=large, headers=big)).status == 413


async def test_a_malformed_key_is_refused_before_anything_runs(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    for bad in ("x" * 256, ""):
        response = await client.post(
            path, json={"action": "approve"}, headers=keyed(moderator(site), bad)
        )
        assert response.status == 422
        assert (await response.json())["error"]["details"] == [
            {"field": "Idempotency-Key", "message": "must be 1-255 printable ASCII characters"}
        ]
    view = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert (await view.json())["state"] == "pending"


async def test_the_document_refuses_the_keys_the_api_refuses(
    client: Client, admin: dict[str, str]
) -> None:
    path = "/v1/model:reload"
    for key in ("x" * 256, "", "tab\there", "reload-1", "with space ~ and: colon"):
        headers = keyed(admin, key)
        response = await client.post(path, headers=headers)
        refused = ("header", "Idempotency-Key") in refused_parameters(
            client.app, "POST", path, headers
        )
        assert refused == (response.status == 422), f"{key!r}: {response.status}"


async def test_a_replay_says_so_in_a_header_the_document_names(
    client: Client, admin: dict[str, str], create_site: Any
) -> None:
    await create_site("news")
    document = await (await client.get("/openapi.json")).json()
    # A refusal is kept and replayed as well: a rollback with nothing to go back to is 409.
    for path, status in (("/v1/model:reload", 200), ("/v1/sites/news/model:rollback", 409)):
        headers = keyed(admin, f"replayed-{status}")
        first = await client.post(path, headers=headers)
        again = await client.post(path, headers=headers)
        assert (first.status, again.status) == (status, status)
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        answer = document["paths"][path.replace("news", "{site}")]["post"]["responses"]
        assert "Idempotent-Replayed" in answer[str(status)].get("headers", {}), path


async def test_a_replay_carries_the_first_answers_headers(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await held_comment(create_site, post_signed)
    path = "/v1/sites/news/comments/c1/decision"
    # A decision, and a refusal (an undo with a stale version), each kept and replayed.
    for key, body in (
        ("headers-decided", {"action": "approve"}),
        ("headers-refused", {"action": "reject", "reason": "TOXIC", "version": 1}),
    ):
        headers = keyed(moderator(site), key)
        first = await client.post(path, json=body, headers=headers)
        again = await client.post(path, json=body, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert (again.status, await again.read()) == (first.status, await first.read())
        told = {name: value for name, value in again.headers.items() if name != "Date"}
        del told["Idempotent-Replayed"]
        assert told == {name: value for name, value in first.headers.items() if name != "Date"}
        assert first.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_an_answer_kept_with_its_media_type_alone_is_replayed_with_its_charset(
    client: Client, admin: dict[str, str], redis_client: aioredis.Redis
) -> None:
    spec = {"id": "blog", "name": "The blog"}
    first = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    assert first.status == 201, await first.text()
    [record] = [key async for key in redis_client.scan_iter(KEYS.idempotency(None, "*"))]
    assert await redis_client.hget(record, "content_type") == first.headers["Content-Type"]
    # As answers kept before the header was kept whole hold it.
    await redis_client.hset(record, "content_type", "application/json")
    replayed = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    assert replayed.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await replayed.read() == await first.read()


async def test_a_kept_answer_with_credentials_is_sealed_in_redis(
    client: Client, admin: dict[str, str], redis_client: aioredis.Redis
) -> None:
    spec = {"id": "blog", "name": "The blog"}
    first = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    created = await first.json()
    secrets = [created["webhook_secret"], created["api_key"]]
    [record] = [key async for key in redis_client.scan_iter(KEYS.idempotency(None, "*"))]
    stored = " ".join(map(str, (await redis_client.hgetall(record)).values()))
    # Nothing in the record, in any field, names a credential the answer carried.
    assert all(secret and secret not in stored for secret in secrets)
    replayed = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert await replayed.json() == created


async def test_model_work_replays_its_first_answer(
    client: Client, admin: dict[str, str], create_site: Any
) -> None:
    await create_site("news")
    for path, status in (
        ("/v1/sites/news/model:refit", 202),
        ("/v1/model:reload", 200),
    ):
        first = await client.post(path, headers=keyed(admin, f"once-{path}"))
        again = await client.post(path, headers=keyed(admin, f"once-{path}"))
        assert (first.status, again.status) == (status, status)
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == await first.json()


async def test_a_kept_answer_that_cannot_be_unsealed_tells_the_client_to_use_a_new_key(
    client: Client, admin: dict[str, str], redis_client: aioredis.Redis
) -> None:
    spec = {"id": "blog", "name": "The blog"}
    first = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    assert first.status == 201, await first.text()
    [record] = [key async for key in redis_client.scan_iter(KEYS.idempotency(None, "*"))]
    # An answer no key opens, as one kept before answers were sealed reads.
    await redis_client.hset(record, "answer", base64.b64encode(bytes(64)).decode())
    replayed = await client.post("/v1/sites", json=spec, headers=keyed(admin, "create-blog"))
    assert replayed.status == 422
    assert await replayed.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key's first answer cannot be replayed; send a new key",
            "details": None,
        }
    }


async def test_an_answer_about_a_site_that_does_not_exist_is_not_kept(
    client: Client, admin: dict[str, str], create_site: Any, redis_client: aioredis.Redis
) -> None:
    path, body, headers = "/v1/sites/late/moderators", {"name": "Mo"}, keyed(admin, "mo")
    missing = await client.post(path, json=body, headers=headers)
    assert missing.status == 404
    # Nothing of a site that does not exist stays in Redis, and the retry once it exists acts.
    assert [key async for key in redis_client.scan_iter(match="civ:{late}:*")] == []
    await create_site("late")
    retried = await client.post(path, json=body, headers=headers)
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.status == 201
    again = await client.post(path, json=body, headers=headers)
    assert (again.status, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert await again.json() == await retried.json()


async def test_a_keyed_decision_refused_for_another_moderators_claim_runs_again_once_it_ends(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    created = await client.post("/v1/sites/news/moderators", json={"name": "Bo"}, headers=admin)
    bo = {"Authorization": f"Bearer {(await created.json())['token']}"}
    claimed = await client.post("/v1/sites/news/comments/c1/claim", json={}, headers=bo)
    assert claimed.status == 200
    path, body = "/v1/sites/news/comments/c1/decision", {"action": "reject", "reason": "TOXIC"}
    headers = keyed(moderator(site), "reject-c1")
    refused = await client.post(path, json=body, headers=headers)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "claim_conflict"
    # The conflict ends with the lease (Bo gives it back): the same request, retried with its
    # key as a client does, decides, where a kept 409 would be replayed for the key's day.
    released = await client.post("/v1/sites/news/queue/release", json={}, headers=bo)
    assert (await released.json())["released"] == ["c1"]
    retried = await client.post(path, json=body, headers=headers)
    assert retried.status == 200, await retried.text()
    assert "Idempotent-Replayed" not in retried.headers
    assert (await retried.json())["state"] == "rejected"
    again = await client.post(path, json=body, headers=headers)
    assert (again.status, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert await events_of(redis_client, "c1") == ["comment.held", "comment.rejected"]


async def test_a_bulk_decision_whose_site_is_deleted_part_way_answers_404_and_keeps_nothing(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_comment(create_site, post_signed)
    store = client.app[MODERATION].store
    decide = store.decide

    async def deleted_before_second(site_id: str, write: DecisionWrite) -> Comment:
        if write.comment_id == "c1-1":
            assert (await client.delete("/v1/sites/news", headers=admin)).status == 202
        return await decide(site_id, write)

    monkeypatch.setattr(store, "decide", deleted_before_second)
    bulk = {"decisions": [{"id": "c1", "action": "approve"}, {"id": "c1-1", "action": "spam"}]}
    answer = await client.post(
        "/v1/sites/news/decisions", json=bulk, headers=keyed(moderator(site), "bulk-gone")
    )
    # The site ended the request as it ends a single decision: not a 200 naming c1-1 not found.
    assert answer.status == 404, await answer.text()
    assert (await answer.json())["error"]["code"] == "not_found"
    assert [key async for key in redis_client.scan_iter(KEYS.idempotency("news", "*"))] == []


async def test_a_keyed_bulk_decision_with_an_item_claimed_by_another_runs_again_once_it_ends(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    created = await client.post("/v1/sites/news/moderators", json={"name": "Bo"}, headers=admin)
    bo = {"Authorization": f"Bearer {(await created.json())['token']}"}
    claimed = await client.post("/v1/sites/news/comments/c1-1/claim", json={}, headers=bo)
    assert claimed.status == 200
    path = "/v1/sites/news/decisions"
    bulk = {"decisions": [{"id": "c1", "action": "approve"}, {"id": "c1-1", "action": "spam"}]}
    headers = keyed(moderator(site), "bulk-claimed")
    first = await client.post(path, json=bulk, headers=headers)
    assert first.status == 200
    results = (await first.json())["results"]
    assert [(result["ok"], result.get("error", {}).get("code")) for result in results] == [
        (True, None),
        (False, "claim_conflict"),
    ]
    # Bo gives it back: the retry with the key decides it, where a kept answer would replay the
    # conflict for the key's day; c1, decided by the first request, is found made, not decided
    # again.
    released = await client.post("/v1/sites/news/queue/release", json={}, headers=bo)
    assert (await released.json())["released"] == ["c1-1"]
    retried = await client.post(path, json=bulk, headers=headers)
    assert retried.status == 200, await retried.text()
    assert "Idempotent-Replayed" not in retried.headers
    results = (await retried.json())["results"]
    assert [(result["ok"], result["comment"]["state"]) for result in results] == [
        (True, "approved"),
        (True, "spam"),
    ]
    again = await client.post(path, json=bulk, headers=headers)
    assert (again.status, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert await again.read() == await retried.read()
    assert await events_of(redis_client, "c1") == ["comment.held", "comment.approved"]
    assert await events_of(redis_client, "c1-1") == ["comment.held", "comment.spam"]


async def test_a_keyed_claim_replays_its_batch_and_leases_no_second_one(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await held_comment(create_site, post_signed)
    other = {"id": "c2", "article": {"id": "a1"}, "author": {"id": "writer"}, "text": TEXT}
    assert (await (await post_signed(site, other)).json())["state"] == "pending"
    path, body = "/v1/sites/news/queue/claim", {"limit": 2, "order": "oldest"}
    headers = keyed(moderator(site), "claim-two")
    first = await client.post(path, json=body, headers=headers)
    assert first.status == 200, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    batch = [item["id"] for item in (await first.json())["items"]]
    assert batch == ["c1", "c1-1"]
    # The caller decides one of them meanwhile: the replay is still the first answer as sent.
    decided = await client.post(
        "/v1/sites/news/comments/c1/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert decided.status == 200
    again = await client.post(path, json=body, headers=headers)
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    # The replay leased nothing: the third comment is free, for this caller's next claim too.
    assert await redis_client.get(KEYS.lease("news", "c2")) is None
    reused = await client.post(path, json={"limit": 3}, headers=headers)
    assert reused.status == 422
    assert (await reused.json())["error"]["code"] == "idempotency_key_reused"
    assert await redis_client.get(KEYS.lease("news", "c2")) is None
    # The kept answer names the author of its comments, whose erasure forgets it.
    [record] = [key async for key in redis_client.scan_iter(KEYS.idempotency("news", "*"))]
    assert await redis_client.hget(record, "authors") == '["reader"]'
    document = await (await client.get("/openapi.json")).json()
    described = document["paths"]["/v1/sites/{site}/queue/claim"]["post"]
    assert "Idempotency-Key" in [parameter["name"] for parameter in described["parameters"]]
    assert "Idempotent-Replayed" in described["responses"]["200"]["headers"]


async def test_a_claim_retried_while_the_first_runs_is_409_with_retry_after(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await held_comment(create_site, post_signed)
    path, body = "/v1/sites/news/queue/claim", b'{"limit": 1, "order": "oldest"}'
    store = client.app[IDEMPOTENCY]
    claim = store.claim(
        "news", digest(f"moderator:{site['moderator_id']}", "POST", path, "c-run"), "c-run", body
    )
    assert await store.begin(claim, int(clock() * 1000)) == "started"
    headers = {**keyed(moderator(site), "c-run"), "Content-Type": "application/json"}
    busy = await client.post(path, data=body, headers=headers)
    assert busy.status == 409
    assert (await busy.json())["error"]["code"] == "idempotency_in_progress"
    assert busy.headers["Retry-After"] == "1"
    clock.advance(RUNNING_MS / 1000 + 1)
    retried = await client.post(path, data=body, headers=headers)
    assert retried.status == 200
    assert [item["id"] for item in (await retried.json())["items"]] == ["c1"]
