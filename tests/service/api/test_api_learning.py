"""Learning from moderators: every decision becomes a training label, exported as JSON Lines."""

import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.labels import LabelLog

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
PROJECT_ROOT = Path(__file__).resolve().parents[3]
TEXTS = {
    "c0": "The summary of the talks is fair and the sources are named.",
    "c1": "Nobody asked for your opinion on the summit, go away.",
    "c2": "Buy cheap watches at my shop, link in my profile!",
}
ACTIONS = {"c0": "approve", "c1": "reject", "c2": "spam"}
LABELS = {"c0": {"spam": 0, "toxicity": 0}, "c1": {"toxicity": 1}, "c2": {"spam": 1}}


async def site_with_hold(
    client: Client, admin: dict[str, str], create_site: Any, site_id: str, hold: float
) -> dict[str, str]:
    """A pre-moderated site whose hold threshold for every label is ``hold``: at 1.0 the model
    flags nothing, at 0.0 it flags everything, so agreement with a decision is known."""
    labels = (await (await client.get("/v1/model", headers=admin)).json())["labels"]
    site: dict[str, str] = await create_site(
        site_id, mode="pre", hold={label: hold for label in labels}
    )
    return site


async def post_and_decide(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Headers
) -> dict[str, dict[str, Any]]:
    decided = {}
    for comment_id, text in TEXTS.items():
        body = {"id": comment_id, "article": {"id": "a1"}, "author": {"id": "u1"}, "text": text}
        assert (await post_signed(site, body)).status == 202
        response = await client.post(
            f"/v1/sites/{site['id']}/comments/{comment_id}/decision",
            json={"action": ACTIONS[comment_id]},
            headers=moderator(site),
        )
        assert response.status == 200, await response.text()
        decided[comment_id] = await response.json()
    return decided


async def exported(redis_client: aioredis.Redis, site_id: str) -> list[dict[str, Any]]:
    return [entry async for entry in LabelLog(redis_client).export(site_id)]


async def test_each_decision_is_kept_as_a_label_that_corrects_the_model(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await site_with_hold(client, admin, create_site, "news", hold=1.0)
    decided = await post_and_decide(client, site, post_signed, moderator)
    entries = await exported(redis_client, "news")
    assert [entry["comment_id"] for entry in entries] == ["c0", "c1", "c2"]
    for entry in entries:
        comment = decided[entry["comment_id"]]
        assert entry["site"] == "news"
        assert entry["text"] == TEXTS[entry["comment_id"]]
        assert entry["labels"] == LABELS[entry["comment_id"]]
        assert entry["model"] == comment["model"]
        assert datetime.fromisoformat(entry["at"]) == datetime.fromisoformat(comment["decided_at"])
    # The model flagged nothing: keeping c0 confirms it, rejecting c1 and c2 corrects it.
    assert [entry["source"] for entry in entries] == [
        "moderator.confirmed",
        "moderator.corrected",
        "moderator.corrected",
    ]


async def test_a_decision_the_model_saw_coming_is_a_confirmation(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await site_with_hold(client, admin, create_site, "news", hold=0.0)
    await post_and_decide(client, site, post_signed, moderator)
    entries = await exported(redis_client, "news")
    assert [entry["source"] for entry in entries] == [
        "moderator.corrected",
        "moderator.confirmed",
        "moderator.confirmed",
    ]


async def test_an_undo_is_a_new_label_and_a_bans_rejections_are_none(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
) -> None:
    site = await site_with_hold(client, admin, create_site, "news", hold=1.0)
    await post_and_decide(client, site, post_signed, moderator)
    undo = await client.post(
        "/v1/sites/news/comments/c1/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert undo.status == 200
    body = {"id": "b1", "article": {"id": "a1"}, "author": {"id": "troll"}, "text": TEXTS["c0"]}
    await post_signed(site, body)
    ban = await client.post(
        "/v1/sites/news/authors/troll/status",
        json={"status": "banned", "reject_pending": True},
        headers=moderator(site),
    )
    assert (await ban.json())["rejected"] == ["b1"]
    entries = await exported(redis_client, "news")
    assert [(e["comment_id"], e["labels"]) for e in entries] == [
        ("c0", {"spam": 0, "toxicity": 0}),
        ("c1", {"toxicity": 1}),
        ("c2", {"spam": 1}),
        ("c1", {"spam": 0, "toxicity": 0}),
    ]


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_civility_labels_export_writes_json_lines(
    client: Client,
    admin: dict[str, str],
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    redis_client: aioredis.Redis,
    redis_url: str,
) -> None:
    site = await site_with_hold(client, admin, create_site, "news", hold=1.0)
    await post_and_decide(client, site, post_signed, moderator)
    await site_with_hold(client, admin, create_site, "other", hold=1.0)
    env = {**os.environ, "REDIS_URL": redis_url}
    code, out, err = await run_cli("labels", "export", "--site", "news", env=env)
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == await exported(redis_client, "news")
    assert len(lines) == 3
    code, out, _ = await run_cli("labels", "export", "--site", "other", env=env)
    assert (code, out) == (0, "")


async def test_civility_labels_export_into_a_reader_that_stops_early_ends_quietly(
    create_site: Any, redis_client: aioredis.Redis, redis_url: str
) -> None:
    # `| head`: the reader leaves long before the export ends, with more than a pipe holds.
    await create_site("news")
    labels = LabelLog(redis_client, prefix="civ")
    for number in range(2000):
        text = f"Label {number}, long enough that the export overflows the pipe buffer soon."
        await labels.record("news", text, {"spam": 0}, "moderator", "1.7.0")
    export = f"{sys.executable} -m service labels export --site news"
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f"{export} | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}",
        cwd=PROJECT_ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert (process.returncode, err.decode()) == (0, "")


async def test_civility_labels_export_refuses_without_redis_or_site(
    redis_url: str, tmp_path: Path
) -> None:
    without = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    without["CIVILITY_DATA_DIR"] = str(tmp_path)
    code, out, err = await run_cli("labels", "export", "--site", "news", env=without)
    assert (code, out) == (2, "")
    assert err == (
        f"civility labels export: no REDIS_URL, and no `civility run` serves CIVILITY_DATA_DIR "
        f"{tmp_path}: set REDIS_URL, or start `civility run` (or run this from the folder it "
        "runs in)\n"
    )
    env = {**os.environ, "REDIS_URL": redis_url}
    code, out, err = await run_cli("labels", "export", "--site", "missing", env=env)
    assert (code, out) == (2, "")
    assert err == "civility labels export: no site 'missing'\n"
