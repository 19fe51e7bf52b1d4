"""Taking access away and data out, end to end: moderators listed and revoked, api keys rotated,
sites deleted and purged in bounded steps, one author's data erased."""

import dataclasses
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service import signatures
from service.admin_store import SCAN_COUNT
from service.app import create_app
from service.appkeys import ADMINISTRATION, MODERATION
from service.domain import Comment
from service.keys import KeySpace
from service.labels import LabelLog
from service.moderation.tokens import sha256_hex
from service.settings import DeliverySettings, Settings
from service.store.records import DecisionWrite
from service.worker import Worker
from tests.clocks import Clock

Client = TestClient[web.Request, web.Application]
Headers = dict[str, str]
KEYS = KeySpace()


def comment(comment_id: str, author: str, text: str = "A calm remark about the harbour.") -> Any:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {
            "id": author,
            "name": "Ada Reader",
            "email": "ada@example.org",
            "ip": "10.1.2.3",
        },
        "text": text,
    }


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


async def test_moderators_are_listed_with_when_they_last_used_their_token(
    client: Client, site: dict[str, str], admin: Headers
) -> None:
    second = await client.post("/v1/sites/news/moderators", json={"name": "Bo"}, headers=admin)
    bo = await second.json()
    listed = await (await client.get("/v1/sites/news/moderators", headers=admin)).json()
    assert [(entry["name"], entry["last_used_at"]) for entry in listed["moderators"]] == [
        ("Mo", None),
        ("Bo", None),
    ]
    assert listed["moderators"][1] == {
        "id": bo["id"],
        "name": "Bo",
        "created_at": bo["created_at"],
        "last_used_at": None,
    }
    used = await client.get("/v1/sites/news/queue", headers=bearer(site["moderator_token"]))
    assert used.status == 200
    listed = await (await client.get("/v1/sites/news/moderators", headers=admin)).json()
    first = listed["moderators"][0]
    assert first["id"] == site["moderator_id"]
    assert first["last_used_at"] is not None
    assert first["last_used_at"] >= first["created_at"]
    assert "token" not in str(listed)


async def test_a_revoked_token_fails_at_once_on_every_api_process(
    client: Client,
    site: dict[str, str],
    admin: Headers,
    aiohttp_client: AiohttpClient,
    settings: Settings,
) -> None:
    other_process = await aiohttp_client(create_app(settings))
    token = bearer(site["moderator_token"])
    assert (await other_process.get("/v1/sites/news/queue", headers=token)).status == 200
    revoked = await client.delete(
        f"/v1/sites/news/moderators/{site['moderator_id']}", headers=admin
    )
    assert revoked.status == 204
    for process in (other_process, client):
        refused = await process.get("/v1/sites/news/queue", headers=token)
        assert refused.status == 401
        assert await refused.json() == {
            "error": {"code": "unauthorized", "message": "invalid moderator token", "details": None}
        }
    listed = await (await client.get("/v1/sites/news/moderators", headers=admin)).json()
    assert listed == {"moderators": []}
    again = await client.delete(f"/v1/sites/news/moderators/{site['moderator_id']}", headers=admin)
    assert again.status == 404
    assert await again.json() == {
        "error": {
            "code": "not_found",
            "message": f"moderator {site['moderator_id']!r} not found",
            "details": None,
        }
    }


async def test_revocation_rotation_deletion_and_erasure_wait_for_the_replicas_asked_for(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    # One replica more than the server has: no change can be acknowledged by enough of them.
    replication = await redis_client.info("replication")
    wanted = int(replication["connected_slaves"]) + 1
    waiting = dataclasses.replace(settings, redis_wait_replicas=wanted, redis_wait_ms=50)
    strict = await aiohttp_client(create_app(waiting))
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    moderator = f"/v1/sites/news/moderators/{site['moderator_id']}"

    answers = [
        (await strict.post("/v1/sites/news/api-key:rotate", headers=admin)).status,
        (await strict.post("/v1/sites/news/authors/ada:erase", headers=admin)).status,
        (await strict.delete(moderator, headers=admin)).status,
        (await strict.delete("/v1/sites/news", headers=admin)).status,
    ]

    # Each change may be made on the primary, but none is acknowledged: the caller retries.
    assert answers == [503, 503, 503, 503]


async def test_a_revoked_moderator_leaves_no_last_use_and_no_token_index(
    client: Client, site: dict[str, str], admin: Headers, redis_client: aioredis.Redis
) -> None:
    last_used = "civ:{news}:moderators:last_used"
    token_index = f"civ:token:{sha256_hex(site['moderator_token'])}"
    used = await client.get("/v1/sites/news/queue", headers=bearer(site["moderator_token"]))
    assert used.status == 200
    assert await redis_client.hexists(last_used, site["moderator_id"])
    assert await redis_client.exists(token_index) == 1
    path = f"/v1/sites/news/moderators/{site['moderator_id']}"
    assert (await client.delete(path, headers=admin)).status == 204
    assert not await redis_client.hexists(last_used, site["moderator_id"])
    assert await redis_client.exists(token_index) == 0


async def test_revoking_releases_the_moderators_claims(
    client: Client, create_site: Any, post_signed: Any, admin: Headers
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    token = bearer(site["moderator_token"])
    claimed = await client.post("/v1/sites/held/queue/claim", json={}, headers=token)
    assert [item["id"] for item in (await claimed.json())["items"]] == ["c1"]
    await client.delete(f"/v1/sites/held/moderators/{site['moderator_id']}", headers=admin)
    other = await client.post("/v1/sites/held/moderators", json={"name": "Bo"}, headers=admin)
    bo = bearer((await other.json())["token"])
    reclaimed = await client.post("/v1/sites/held/queue/claim", json={}, headers=bo)
    assert [item["id"] for item in (await reclaimed.json())["items"]] == ["c1"]


@pytest.mark.parametrize("path", ["queue/claim", "comments/c1/claim"])
async def test_a_claim_authenticated_before_its_moderators_revocation_takes_nothing(
    client: Client, create_site: Any, post_signed: Any, admin: Headers, path: str
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    store = client.app[MODERATION].store
    revoked: list[int] = []

    async def revoke_first(name: str) -> Any:
        run = getattr(store, name)

        async def revoking(*args: Any, **kwargs: Any) -> Any:
            # The token was good when the request began; the admin revokes it before the lease.
            url = f"/v1/sites/held/moderators/{site['moderator_id']}"
            revoked.append((await client.delete(url, headers=admin)).status)
            return await run(*args, **kwargs)

        return revoking

    for name in ("claim", "claim_comment"):
        setattr(store, name, await revoke_first(name))
    response = await client.post(
        f"/v1/sites/held/{path}", json={}, headers=bearer(site["moderator_token"])
    )

    assert revoked == [204]
    assert response.status == 401, await response.text()
    other = await client.post("/v1/sites/held/moderators", json={"name": "Bo"}, headers=admin)
    bo = bearer((await other.json())["token"])
    decided = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "approve"}, headers=bo
    )
    assert decided.status == 200, await decided.text()


async def test_moderator_routes_are_admin_only_and_check_ids(
    client: Client, site: dict[str, str], admin: Headers
) -> None:
    token = bearer(site["moderator_token"])
    assert (await client.get("/v1/sites/news/moderators", headers=token)).status == 401
    path = f"/v1/sites/news/moderators/{site['moderator_id']}"
    assert (await client.delete(path, headers=token)).status == 401
    missing = await client.get("/v1/sites/gone/moderators", headers=admin)
    assert missing.status == 404
    assert await missing.json() == {
        "error": {"code": "not_found", "message": "site 'gone' not found", "details": None}
    }
    bad = await client.delete("/v1/sites/news/moderators/a%20b", headers=admin)
    assert bad.status == 422
    assert await bad.json() == {
        "error": {
            "code": "validation_failed",
            "message": "request validation failed",
            "details": [
                {"field": "moderator", "message": "String should match pattern '^[\\x21-\\x7e]+$'"}
            ],
        }
    }


async def verify(client: Client, key: str) -> str:
    response = await client.post("/1.1/verify-key", data={"api_key": key, "blog": "https://b.x"})
    return await response.text()


async def test_a_rotated_api_key_keeps_working_for_its_own_grace_period(
    client: Client, site: dict[str, str], admin: Headers, clock: Clock
) -> None:
    response = await client.post("/v1/sites/news/api-key:rotate", headers=admin)
    assert response.status == 200
    rotation = await response.json()
    assert set(rotation) == {"api_key", "previous_valid_until"}
    assert rotation["api_key"] != site["api_key"]
    assert await verify(client, rotation["api_key"]) == "valid"
    # Within the grace period (60 s in these settings) the old key still works.
    assert await verify(client, site["api_key"]) == "valid"
    clock.advance(30)
    again = await (await client.post("/v1/sites/news/api-key:rotate", headers=admin)).json()
    assert await verify(client, again["api_key"]) == "valid"
    assert await verify(client, rotation["api_key"]) == "valid"
    # A key two rotations old keeps the grace its own rotation gave it, no more.
    assert await verify(client, site["api_key"]) == "valid"
    clock.advance(30)
    assert await verify(client, site["api_key"]) == "invalid"
    assert await verify(client, rotation["api_key"]) == "valid"
    clock.advance(30)
    assert await verify(client, rotation["api_key"]) == "invalid"
    assert await verify(client, again["api_key"]) == "valid"
    missing = await client.post("/v1/sites/gone/api-key:rotate", headers=admin)
    assert missing.status == 404


async def test_beyond_four_keys_in_their_grace_a_rotation_ends_the_oldest_and_its_index(
    client: Client, site: dict[str, str], admin: Headers, redis_client: aioredis.Redis
) -> None:
    keys = [site["api_key"]]
    for _ in range(5):
        rotated = await (await client.post("/v1/sites/news/api-key:rotate", headers=admin)).json()
        keys.append(rotated["api_key"])
    assert [await verify(client, key) for key in keys] == ["invalid"] + ["valid"] * 5
    assert await redis_client.exists(f"civ:apikey:{sha256_hex(keys[0])}") == 0
    assert await redis_client.exists(*(f"civ:apikey:{sha256_hex(key)}" for key in keys)) == 5


async def test_a_rotation_dates_the_site_and_ends_only_the_old_keys_index(
    client: Client, site: dict[str, str], admin: Headers, redis_client: aioredis.Redis
) -> None:
    rotation = await (await client.post("/v1/sites/news/api-key:rotate", headers=admin)).json()
    record = await redis_client.hgetall("civ:{news}:site")
    # Rotated now, with 60 s of grace in these settings.
    assert int(record["previous_api_key_valid_until"]) - int(record["updated_at"]) == 60_000
    assert await redis_client.pttl(f"civ:apikey:{sha256_hex(rotation['api_key'])}") == -1
    old_index_ttl = await redis_client.pttl(f"civ:apikey:{sha256_hex(site['api_key'])}")
    assert 0 < old_index_ttl <= 60_000


async def test_a_deleted_site_leaves_no_key_token_or_moderator_behind(
    client: Client, create_site: Any, admin: Headers, redis_client: aioredis.Redis
) -> None:
    doomed = await create_site("doomed")
    rotated = await (await client.post("/v1/sites/doomed/api-key:rotate", headers=admin)).json()
    # Two keys in their grace at once: each one's index ends with the site.
    again = await (await client.post("/v1/sites/doomed/api-key:rotate", headers=admin)).json()
    indexes = [
        f"civ:apikey:{sha256_hex(doomed['api_key'])}",
        f"civ:apikey:{sha256_hex(rotated['api_key'])}",
        f"civ:apikey:{sha256_hex(again['api_key'])}",
        f"civ:token:{sha256_hex(doomed['moderator_token'])}",
    ]
    assert await redis_client.exists(*indexes) == 4
    assert (await client.delete("/v1/sites/doomed", headers=admin)).status == 202
    # At once, before any purge step: the site's record, moderators and global indexes.
    site_keys = ["civ:{doomed}:site", "civ:{doomed}:moderators"]
    assert await redis_client.exists(*indexes, *site_keys) == 0


async def site_keys(redis: aioredis.Redis, site_id: str) -> set[str]:
    # A set: SCAN may return a key twice while the keyspace is resized (thousands are deleted).
    return {key async for key in redis.scan_iter(match=f"civ:{{{site_id}}}:*")}


async def test_a_deleted_site_ends_at_once_and_its_data_is_purged_in_bounded_steps(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    doomed = await create_site("doomed")
    kept = await create_site("kept")
    for number in range(3):
        assert (await post_signed(doomed, comment(f"c{number}", "ada"))).status == 202
    assert (await post_signed(kept, comment("k1", "ada"))).status == 202
    # A large site: thousands of stored comments, more than one purge step removes.
    async with redis_client.pipeline(transaction=False) as pipe:
        for number in range(3 * SCAN_COUNT):
            pipe.hset(f"civ:{{doomed}}:comment:bulk-{number}", mapping={"id": f"bulk-{number}"})
        await pipe.execute()
    kept_before = await site_keys(redis_client, "kept")

    deleted = await client.delete("/v1/sites/doomed", headers=admin)
    assert deleted.status == 202
    gone = await client.get("/v1/sites/doomed", headers=admin)
    assert gone.status == 404
    assert (
        await client.get("/v1/sites/doomed/queue", headers=bearer(doomed["moderator_token"]))
    ).status == 401
    assert await verify(client, doomed["api_key"]) == "invalid"
    late = await post_signed(doomed, comment("late", "ada"))
    assert late.status == 404
    recreate = await client.post("/v1/sites", json={"id": "doomed", "name": "D"}, headers=admin)
    assert recreate.status == 409
    assert await recreate.json() == {
        "error": {
            "code": "already_exists",
            "message": "site 'doomed' is still being deleted; try again later",
            "details": None,
        }
    }

    worker = Worker(redis_client, DeliverySettings())
    steps = 0
    while await worker.purge_once():
        steps += 1
        assert steps < 10_000
    assert steps >= 2
    assert await site_keys(redis_client, "doomed") == set()
    assert await site_keys(redis_client, "kept") == kept_before
    assert await redis_client.smembers("civ:sites") == {"kept"}
    assert not await worker.purge_once()
    assert (
        await client.post("/v1/sites", json={"id": "doomed", "name": "D"}, headers=admin)
    ).status == 201
    assert (await client.delete("/v1/sites/nothing", headers=admin)).status == 404


async def test_a_site_deleted_then_created_again_with_its_first_key_is_created_anew(
    client: Client, admin: Headers, redis_client: aioredis.Redis
) -> None:
    spec, keyed = {"id": "blog", "name": "The blog"}, {**admin, "Idempotency-Key": "create-blog"}
    first = await client.post("/v1/sites", json=spec, headers=keyed)
    assert first.status == 201, await first.text()
    assert (await client.delete("/v1/sites/blog", headers=admin)).status == 202
    # The creation's kept answer goes with the site; a retry while the purge runs is not kept.
    assert [key async for key in redis_client.scan_iter(KEYS.idempotency(None, "*"))] == []
    assert (await client.post("/v1/sites", json=spec, headers=keyed)).status == 409
    worker = Worker(redis_client, DeliverySettings())
    while await worker.purge_once():
        pass

    created = await client.post("/v1/sites", json=spec, headers=keyed)
    assert created.status == 201, await created.text()
    assert "Idempotent-Replayed" not in created.headers
    credentials = await created.json()
    assert credentials["api_key"] != (await first.json())["api_key"]
    assert await verify(client, credentials["api_key"]) == "valid"
    again = await client.post("/v1/sites", json=spec, headers=keyed)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == credentials


async def test_a_deleted_site_takes_nothing_from_a_process_that_still_knows_it(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    # Another API process keeps the site's record (a second) after reading it for an intake.
    other = await aiohttp_client(create_app(settings))
    doomed = await create_site("doomed", mode="pre")

    async def send(body: Any, path: str = "/v1/sites/doomed/comments", method: str = "POST") -> int:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(doomed["webhook_secret"], raw),
        }
        return (await other.request(method, path, data=raw, headers=headers)).status

    assert await send(comment("c0", "ada")) == 202
    assert (await post_signed(doomed, comment("c1", "ada"))).status == 202
    approved = await client.post(
        "/v1/sites/doomed/comments/c1/decision",
        json={"action": "approve"},
        headers=bearer(doomed["moderator_token"]),
    )
    assert approved.status == 200, await approved.text()
    assert (await client.delete("/v1/sites/doomed", headers=admin)).status == 202
    worker = Worker(redis_client, DeliverySettings())
    while await worker.purge_once():
        pass

    late = [
        await send(comment("late", "ada", "Written after the deletion.")),
        await send({"id": "a2", "closed": True}, "/v1/sites/doomed/articles/a2", "PUT"),
        await send(
            {"comment_id": "c1", "reporter_id": "r1", "reason": "abusive"},
            "/v1/sites/doomed/comments/c1/reports",
        ),
    ]

    assert late == [404, 404, 404]
    assert await site_keys(redis_client, "doomed") == set()
    # So a new site of that id starts empty.
    reborn = await create_site("doomed", mode="pre")
    queue = await client.get("/v1/sites/doomed/queue", headers=bearer(reborn["moderator_token"]))
    assert (await queue.json())["items"] == []


async def test_a_deleted_site_takes_no_decision_from_a_process_that_still_knows_it(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    other = await aiohttp_client(create_app(settings))
    doomed = await create_site("doomed", mode="pre")
    assert (await post_signed(doomed, comment("c1", "ada"))).status == 202
    # The other process reads the site's record, and keeps it a second.
    assert (await other.get("/v1/sites/doomed/queue", headers=admin)).status == 200
    assert (await client.delete("/v1/sites/doomed", headers=admin)).status == 202
    outbox = await redis_client.xlen(KEYS.outbox("doomed"))

    # Before the purge reaches the comment: what the decision wrote, the purge may have passed.
    late = await other.post(
        "/v1/sites/doomed/comments/c1/decision", json={"action": "approve"}, headers=admin
    )

    assert late.status == 404, await late.text()
    assert await redis_client.xlen(KEYS.outbox("doomed")) == outbox
    assert await redis_client.hget(KEYS.comment("doomed", "c1"), "state") == "pending"


async def test_a_deleted_site_takes_no_author_status_from_a_process_that_still_knows_it(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    other = await aiohttp_client(create_app(settings))
    doomed = await create_site("doomed")
    assert (await post_signed(doomed, comment("c1", "ada"))).status == 202
    assert (await other.get("/v1/sites/doomed/authors/ada", headers=admin)).status == 200
    assert (await client.delete("/v1/sites/doomed", headers=admin)).status == 202
    worker = Worker(redis_client, DeliverySettings())
    while await worker.purge_once():
        pass

    late = await other.post(
        "/v1/sites/doomed/authors/ada/status",
        json={"status": "banned"},
        headers={**admin, "Idempotency-Key": "ban-ada"},
    )

    assert late.status == 404, await late.text()
    # A new site of that id would find ada banned, or the key's 404 kept for its retry.
    assert await site_keys(redis_client, "doomed") == set()


async def test_a_deleted_site_takes_no_claim_from_a_process_that_still_knows_it(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    aiohttp_client: AiohttpClient,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    other = await aiohttp_client(create_app(settings))
    doomed = await create_site("doomed", mode="pre")
    for comment_id in ("c1", "c2", "c3"):
        assert (await post_signed(doomed, comment(comment_id, "ada"))).status == 202
    claim = "/v1/sites/doomed/comments/c3/claim"
    assert (await other.post(claim, json={}, headers=admin)).status == 200
    assert (await client.delete("/v1/sites/doomed", headers=admin)).status == 202
    audit = await redis_client.xlen(KEYS.audit("doomed"))

    # Before the purge reaches the comments: what the leases wrote, the purge may have passed.
    late = [
        await other.post("/v1/sites/doomed/queue/claim", json={"limit": 1}, headers=admin),
        await other.post("/v1/sites/doomed/comments/c2/claim", json={}, headers=admin),
        await other.post("/v1/sites/doomed/queue/release", json={}, headers=admin),
    ]

    assert [response.status for response in late] == [404, 404, 404]
    assert await redis_client.xlen(KEYS.audit("doomed")) == audit
    assert not await redis_client.exists(KEYS.lease("doomed", "c1"), KEYS.lease("doomed", "c2"))
    assert await redis_client.exists(KEYS.lease("doomed", "c3"))


async def held_comments_of_ada_and_bob(create_site: Any, post_signed: Any) -> Headers:
    """Site "held" with comments c1 and c2 by ada, c3 by bob, all pending; its moderator's
    headers."""
    site = await create_site("held", mode="pre")
    for comment_id, author in (("c1", "ada"), ("c2", "ada"), ("c3", "bob")):
        assert (await post_signed(site, comment(comment_id, author))).status == 202
    return bearer(site["moderator_token"])


async def test_erasing_an_author_removes_their_text_and_details_but_keeps_decisions(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
) -> None:
    token = await held_comments_of_ada_and_bob(create_site, post_signed)
    decided = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "approve"}, headers=token
    )
    assert decided.status == 200
    before = await (await client.get("/v1/sites/held/authors/ada", headers=token)).json()

    response = await client.post("/v1/sites/held/authors/ada:erase", headers=admin)
    assert response.status == 200
    assert await response.json() == {"author_id": "ada", "comments_erased": 2, "labels_erased": 1}
    for comment_id, state in (("c1", "approved"), ("c2", "pending")):
        erased = await (
            await client.get(f"/v1/sites/held/comments/{comment_id}", headers=token)
        ).json()
        assert (erased["text"], erased["author"], erased["state"]) == ("", {"id": "ada"}, state)
        assert erased["evidence"] == {}
        assert erased["history"][0]["action"] == "create"
    kept = await (await client.get("/v1/sites/held/comments/c3", headers=token)).json()
    assert kept["author"]["email"] == "ada@example.org"
    assert kept["text"] == "A calm remark about the harbour."
    after = await (await client.get("/v1/sites/held/authors/ada", headers=token)).json()
    assert after["counts"] == before["counts"]

    bad = await client.post("/v1/sites/held/authors/a%20b:erase", headers=admin)
    assert bad.status == 422
    assert (await bad.json())["error"]["details"] == [
        {"field": "author", "message": "String should match pattern '^[\\x21-\\x7e]+$'"}
    ]
    missing = await client.post("/v1/sites/gone/authors/ada:erase", headers=admin)
    assert missing.status == 404
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=token)).status == 401


async def test_erasing_an_author_forgets_the_kept_answers_that_carry_their_comments(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    for comment_id, author in (("c1", "ada"), ("c2", "ada"), ("c3", "bob"), ("c4", "bob")):
        assert (await post_signed(site, comment(comment_id, author))).status == 202
    token = bearer(site["moderator_token"])
    requests: dict[str, tuple[str, Any, Headers]] = {
        "ada's": ("/v1/sites/held/comments/c1/decision", {"action": "approve"}, token),
        "ada's and bob's": (
            "/v1/sites/held/decisions",
            {"decisions": [{"id": "c2", "action": "reject"}, {"id": "c3", "action": "approve"}]},
            token,
        ),
        "bob's": ("/v1/sites/held/comments/c4/decision", {"action": "spam"}, token),
        "no one's": ("/v1/sites/held/moderators", {"name": "Bo"}, admin),
    }

    async def send(name: str) -> Any:
        path, body, headers = requests[name]
        return await client.post(path, json=body, headers={**headers, "Idempotency-Key": name})

    first = {name: await (await send(name)).json() for name in requests}
    outbox = await redis_client.xlen(KEYS.outbox("held"))
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200

    again = {name: await send(name) for name in requests}
    # What carries none of ada's data is still replayed, a new moderator's token included.
    for name in ("bob's", "no one's"):
        assert again[name].headers["Idempotent-Replayed"] == "true"
        assert await again[name].json() == first[name]
    # What carried ada's text and details runs again: on the erased comments, deciding nothing.
    for name in ("ada's", "ada's and bob's"):
        assert "Idempotent-Replayed" not in again[name].headers
    single = await again["ada's"].json()
    assert (single["text"], single["author"], single["state"]) == ("", {"id": "ada"}, "approved")
    assert single["version"] == first["ada's"]["version"]
    results = (await again["ada's and bob's"].json())["results"]
    assert [(item["comment"]["text"], item["comment"]["state"]) for item in results] == [
        ("", "rejected"),
        ("A calm remark about the harbour.", "approved"),
    ]
    assert await redis_client.xlen(KEYS.outbox("held")) == outbox


async def test_erasing_an_author_forgets_the_kept_answers_of_their_status(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    token = await held_comments_of_ada_and_bob(create_site, post_signed)
    ban = {"status": "banned", "reason": "SPAM", "reject_pending": True}

    async def send(author: str) -> Any:
        headers = {**token, "Idempotency-Key": f"ban-{author}"}
        return await client.post(
            f"/v1/sites/held/authors/{author}/status", json=ban, headers=headers
        )

    first = {author: await (await send(author)).json() for author in ("ada", "bob")}
    assert first["ada"]["author"]["counts"]["rejected"] == 2
    records = [key async for key in redis_client.scan_iter(match=KEYS.idempotency("held", "*"))]
    assert len(records) == 2
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200

    # Nothing kept names ada or her counts any more: her ban's retry runs again.
    left = [key async for key in redis_client.scan_iter(match=KEYS.idempotency("held", "*"))]
    assert [await redis_client.hget(key, "authors") for key in left] == ['["bob"]']
    again = {author: await send(author) for author in ("ada", "bob")}
    assert "Idempotent-Replayed" not in again["ada"].headers
    assert (await again["ada"].json())["author"]["status"] == "banned"
    assert again["bob"].headers["Idempotent-Replayed"] == "true"
    assert await again["bob"].json() == first["bob"]


async def test_an_erased_authors_held_comments_are_decided_and_teach_nothing(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    token = await held_comments_of_ada_and_bob(create_site, post_signed)
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200

    one = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "reject"}, headers=token
    )
    assert (one.status, (await one.json())["state"]) == (200, "rejected")
    bulk = await client.post(
        "/v1/sites/held/decisions",
        json={"decisions": [{"id": "c2", "action": "spam"}, {"id": "c3", "action": "reject"}]},
        headers=token,
    )
    results = (await bulk.json())["results"]
    assert [(result["id"], result["ok"]) for result in results] == [("c2", True), ("c3", True)]
    # Only bob's comment became a training label.
    entries = [entry async for entry in LabelLog(redis_client).export("held")]
    assert [entry["comment_id"] for entry in entries] == ["c3"]


async def test_a_decision_racing_an_erasure_keeps_neither_answer_nor_label_of_the_author(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = await held_comments_of_ada_and_bob(create_site, post_signed)
    store = client.app[MODERATION].store
    decide = store.decide

    async def erased_meanwhile(site_id: str, write: DecisionWrite) -> Comment:
        # The decision has read ada's comment, text and details; the erasure runs before the
        # decision keeps its answer and teaches its label.
        decided = await decide(site_id, write)
        erasure = await client.post("/v1/sites/held/authors/ada:erase", headers=admin)
        assert erasure.status == 200
        return decided

    monkeypatch.setattr(store, "decide", erased_meanwhile)
    keyed = {**token, "Idempotency-Key": "approve-c1"}
    path = "/v1/sites/held/comments/c1/decision"
    first = await client.post(path, json={"action": "approve"}, headers=keyed)
    assert (await first.json())["text"] == "A calm remark about the harbour."
    monkeypatch.setattr(store, "decide", decide)

    again = await client.post(path, json={"action": "approve"}, headers=keyed)
    assert "Idempotent-Replayed" not in again.headers
    assert ((await again.json())["text"], (await again.json())["author"]) == ("", {"id": "ada"})
    assert [entry async for entry in LabelLog(redis_client).export("held")] == []


async def test_a_new_comment_racing_its_authors_erasure_is_refused_and_kept_once_it_is_over(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held", flood_seconds_per_author=10, flood_seconds_per_ip=10)
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    token = bearer(site["moderator_token"])
    store = client.app[ADMINISTRATION].store
    erase = store._erase
    late = comment("c2", "ada", "Another calm remark, sent as the erasure runs.")
    arrived: list[Any] = []

    async def arriving_meanwhile(
        keys: list[str], author_id: str, remains: str, now_ms: int
    ) -> list[str]:
        # The erasure found every comment it will erase; ada's next one arrives now.
        erased = await erase(keys, author_id, remains, now_ms)
        arrived.append(await post_signed(site, late))
        return erased

    monkeypatch.setattr(store, "_erase", arriving_meanwhile)
    outbox = await redis_client.xlen(KEYS.outbox("held"))
    before = await (await client.get("/v1/sites/held/authors/ada", headers=token)).json()
    erasure = await client.post("/v1/sites/held/authors/ada:erase", headers=admin)
    assert (await erasure.json())["comments_erased"] == 1
    monkeypatch.setattr(store, "_erase", erase)

    # Until the erasure's marker is gone (a minute after it ends), the host is told to wait.
    [refused] = arrived
    again = await post_signed(site, late)
    for answer in (refused, again):
        assert answer.status == 503
        assert (await answer.json())["error"]["code"] == "erasure_running"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
    # Nothing of it was written: no comment, event, count or window holding it.
    assert (await client.get("/v1/sites/held/comments/c2", headers=token)).status == 404
    assert await redis_client.xlen(KEYS.outbox("held")) == outbox
    after = await (await client.get("/v1/sites/held/authors/ada", headers=token)).json()
    assert after["counts"] == before["counts"]
    windows = [
        key
        async for key in redis_client.scan_iter(match=f"{KEYS.site_prefix('held')}*")
        if ":flood:" in key or ":duplicate:" in key
    ]
    assert "c2" not in [await redis_client.get(key) for key in windows]

    # Sent once the marker has lapsed, it is new data, kept as any comment.
    await redis_client.delete(KEYS.erasure("held", "ada"))
    kept = await post_signed(site, late)
    assert kept.status == 202
    stored = await (await client.get("/v1/sites/held/comments/c2", headers=token)).json()
    assert stored["text"] == late["text"]
    assert stored["author"]["email"] == "ada@example.org"


async def test_the_erasure_mark_lasts_through_its_last_steps_however_long_they_take(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held")
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    keyed = {"Idempotency-Key": "r1-reports-c1"}
    path = "/v1/sites/held/comments/c1/reports"
    assert (await post_signed(site, report("r1", "spam"), path=path, headers=keyed)).status == 202
    administration = client.app[ADMINISTRATION]
    store, labels, rows = administration.store, administration.labels, administration.site_models
    assert rows is not None
    run, forget_labels, forget_rows = store._run, labels.forget_author, rows.forget_author
    marker = KEYS.erasure("held", "ada")
    arrived: list[Any] = []

    async def took_its_minute() -> None:
        # The step's scan took as long as the mark lasts: it is about to lapse.
        await redis_client.pexpire(marker, 1)

    async def arriving() -> None:
        # ada's next comment arrives as the erasure ends, long after her comments were looked at.
        late = comment(f"c{len(arrived) + 2}", "ada", f"Sent as the erasure ends, {len(arrived)}.")
        arrived.append(await post_signed(site, late))

    async def answers_slowly(name: str, keys: list[str], args: list[Any]) -> Any:
        if name == "erase_answers":
            await took_its_minute()
        return await run(name, keys, args)

    async def labels_slowly(site_id: str, author_id: str) -> int:
        await arriving()
        await took_its_minute()
        return await forget_labels(site_id, author_id)

    async def rows_slowly(site_id: str, author_id: str) -> Any:
        await arriving()
        return await forget_rows(site_id, author_id)

    monkeypatch.setattr(store, "_run", answers_slowly)
    monkeypatch.setattr(labels, "forget_author", labels_slowly)
    monkeypatch.setattr(rows, "forget_author", rows_slowly)
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200
    monkeypatch.setattr(store, "_run", run)
    monkeypatch.setattr(labels, "forget_author", forget_labels)
    monkeypatch.setattr(rows, "forget_author", forget_rows)

    assert len(arrived) == 2
    for refused in arrived:
        assert refused.status == 503
        assert (await refused.json())["error"]["code"] == "erasure_running"
    # And the mark lasts a minute from the erasure's end.
    assert await redis_client.pttl(marker) > 50_000
    again = await post_signed(site, comment("c9", "ada", "Sent just after."))
    assert again.status == 503


async def site_windows(redis: aioredis.Redis, site_id: str) -> dict[str, str]:
    """The site's flood and duplicate windows, each with the comment holding it."""
    prefix = KEYS.site_prefix(site_id)
    keys = [
        key
        async for key in redis.scan_iter(match=f"{prefix}*")
        if key.startswith((f"{prefix}flood:", f"{prefix}duplicate:"))
    ]
    return {key: str(await redis.get(key)) for key in keys}


async def test_erasing_an_author_forgets_the_address_and_text_windows_their_comments_hold(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", flood_seconds_per_ip=60)
    # An id that reads as a pattern to SCAN ("ada1" would match it) is found all the same.
    assert (await post_signed(site, comment("c1", "ada[1]"))).status == 202
    bobs = comment("c2", "bob", "Bob writes from home.")
    bobs["author"]["ip"] = "10.9.9.9"
    assert (await post_signed(site, bobs)).status == 202
    before = await site_windows(redis_client, "held")
    # ada's address, and a hash of her text beside her id, name windows her comment holds.
    assert before[KEYS.ip_flood("held", "10.1.2.3")] == "c1"
    assert [holder for key, holder in before.items() if key.endswith(":ada[1]")] == ["c1"]

    erased = await client.post("/v1/sites/held/authors/ada%5B1%5D:erase", headers=admin)
    assert (await erased.json())["comments_erased"] == 1

    after = await site_windows(redis_client, "held")
    assert after == {key: holder for key, holder in before.items() if holder == "c2"}
    assert len(after) == 2  # bob's address and text windows stay


def report(reporter: str, reason: str, note: str | None = None) -> Any:
    return {"comment_id": "c1", "reporter_id": reporter, "reason": reason, "note": note}


async def test_an_erased_authors_reports_still_count_without_who_made_them_or_their_note(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", report_threshold=2)
    token = bearer(site["moderator_token"])
    assert (await post_signed(site, comment("c1", "bob"))).status == 202
    path = "/v1/sites/held/comments/c1/reports"
    for sent in (report("ada", "abusive", "Ada knows him"), report("r2", "spam", "by r2")):
        assert (await post_signed(site, sent, path=path)).status == 202
    before = await (await client.get("/v1/sites/held/comments/c1", headers=token)).json()

    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200

    view = await (await client.get("/v1/sites/held/comments/c1", headers=token)).json()
    assert [(r["reporter_id"], r["reason"], r["note"]) for r in view["reports"]] == [
        (None, "abusive", None),
        ("r2", "spam", "by r2"),
    ]
    assert [r["at"] for r in view["reports"]] == [r["at"] for r in before["reports"]]
    kept = await redis_client.hgetall(KEYS.reports("held", "c1"))
    assert "ada" not in json.dumps(kept).lower()
    # The comment stays where its two reports brought it, with both counted.
    queue = await client.get("/v1/sites/held/queue?queue=reported", headers=token)
    assert [(item["id"], item["report_count"]) for item in (await queue.json())["items"]] == [
        ("c1", 2)
    ]
    # Once the erasure's marker is gone, a report from ada is new data, counted on its own.
    await redis_client.delete(KEYS.erasure("held", "ada"))
    again = await post_signed(site, report("ada", "abusive"), path=path)
    assert (again.status, (await again.json())["reports"]) == (202, 3)


async def test_readers_notes_on_an_erased_comment_go_with_its_text(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
) -> None:
    site = await create_site("held", report_threshold=5)
    token = bearer(site["moderator_token"])
    assert (await post_signed(site, comment("c1", "bob", "Bob's words to forget."))).status == 202
    assert (await post_signed(site, comment("c2", "cat"))).status == 202
    path = "/v1/sites/held/comments/{}/reports"
    quoting = report("r1", "abusive", "He wrote: Bob's words to forget.")
    assert (await post_signed(site, quoting, path=path.format("c1"))).status == 202
    elsewhere = {**report("r1", "spam", "a note on cat's comment"), "comment_id": "c2"}
    assert (await post_signed(site, elsewhere, path=path.format("c2"))).status == 202

    assert (await client.post("/v1/sites/held/authors/bob:erase", headers=admin)).status == 200

    # A reader's note may quote what the erased comment said: it goes, the report stays whole
    # otherwise (the reader's own id, reason and time, and its count).
    view = await (await client.get("/v1/sites/held/comments/c1", headers=token)).json()
    assert [(r["reporter_id"], r["reason"], r["note"]) for r in view["reports"]] == [
        ("r1", "abusive", None)
    ]
    other = await (await client.get("/v1/sites/held/comments/c2", headers=token)).json()
    assert [r["note"] for r in other["reports"]] == ["a note on cat's comment"]


async def test_a_readers_note_on_a_comment_already_erased_is_not_kept(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", report_threshold=5)
    token = bearer(site["moderator_token"])
    assert (await post_signed(site, comment("c1", "bob", "Bob's words to forget."))).status == 202
    assert (await client.post("/v1/sites/held/authors/bob:erase", headers=admin)).status == 200

    # The host is not told of the erasure and may still show the text: a reader reporting it
    # afterwards may quote it, as one reporting it before might have.
    quoting = report("r1", "abusive", "He wrote: Bob's words to forget.")
    sent = await post_signed(site, quoting, path="/v1/sites/held/comments/c1/reports")
    assert (sent.status, (await sent.json())["reports"]) == (202, 1)

    view = await (await client.get("/v1/sites/held/comments/c1", headers=token)).json()
    assert [(r["reporter_id"], r["reason"], r["note"]) for r in view["reports"]] == [
        ("r1", "abusive", None)
    ]
    kept = await redis_client.hgetall(KEYS.reports("held", "c1"))
    assert "forget" not in json.dumps(kept)


async def test_a_report_racing_its_readers_erasure_is_refused_and_its_key_not_kept(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held")
    assert (await post_signed(site, comment("c1", "bob"))).status == 202
    store = client.app[ADMINISTRATION].store
    erase = store._erase
    path = "/v1/sites/held/comments/c1/reports"
    keyed = {"Idempotency-Key": "ada-reports-c1"}
    arrived: list[Any] = []

    async def reported_meanwhile(
        keys: list[str], author_id: str, remains: str, now_ms: int
    ) -> list[str]:
        # The erasure has looked at every report; ada's next one arrives now.
        erased = await erase(keys, author_id, remains, now_ms)
        sent = report("ada", "abusive", "Ada knows him")
        arrived.append(await post_signed(site, sent, path=path, headers=keyed))
        return erased

    monkeypatch.setattr(store, "_erase", reported_meanwhile)
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200
    monkeypatch.setattr(store, "_erase", erase)

    [refused] = arrived
    assert refused.status == 503
    assert (await refused.json())["error"]["code"] == "erasure_running"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert await redis_client.hgetall(KEYS.reports("held", "c1")) == {}
    # The key was given back: sent again after the marker, the report runs and counts.
    await redis_client.delete(KEYS.erasure("held", "ada"))
    sent = report("ada", "abusive", "Ada knows him")
    again = await post_signed(site, sent, path=path, headers=keyed)
    assert again.status == 202
    assert "Idempotent-Replayed" not in again.headers
    assert list(await redis_client.hgetall(KEYS.reports("held", "c1"))) == ["ada"]


async def test_a_comment_delivered_again_after_its_authors_erasure_stays_erased(
    client: Client,
    create_site: Any,
    post_signed: Any,
    admin: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c1", "ada"))).status == 202
    token = bearer(site["moderator_token"])
    path = "/v1/sites/held/comments/c1/decision"
    assert (await client.post(path, json={"action": "approve"}, headers=token)).status == 200
    assert (await client.post("/v1/sites/held/authors/ada:erase", headers=admin)).status == 200
    outbox = await redis_client.xlen(KEYS.outbox("held"))

    # The host's retry of a delivery it saw fail, or a later edit: the comment is gone for good.
    again = await post_signed(site, comment("c1", "ada", "A calm remark about the harbour."))
    edited = await post_signed(site, comment("c1", "ada", "An edit after the erasure."))

    for answer in (again, edited):
        assert answer.status == 200
        shown = await answer.json()
        assert (shown["state"], shown["version"]) == ("approved", 2)
    stored = await (await client.get("/v1/sites/held/comments/c1", headers=token)).json()
    assert (stored["text"], stored["author"], stored["state"]) == ("", {"id": "ada"}, "approved")
    assert [entry["action"] for entry in stored["history"]] == ["create", "approve"]
    assert await redis_client.xlen(KEYS.outbox("held")) == outbox
