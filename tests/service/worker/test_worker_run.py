"""``civility run`` delivers webhooks too: one worker runs beside the API in that process."""

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from service import signatures
from tests.ports import free_port

from .support import Receiver, eventually

CIVILITY = str(Path(sys.executable).with_name("civility"))
PROJECT_ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "admin-token-for-the-run-test"


async def test_run_starts_a_worker_beside_the_api(
    topology_url: str, redis_client: aioredis.Redis, receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": ADMIN_TOKEN,
        "REDIS_URL": topology_url,
        "CIVILITY_PORT": str(port),
        "CIVILITY_DATA_DIR": str(tmp_path),
        "CIVILITY_MODELS_DIR": os.environ.get("CIVILITY_MODELS_DIR", str(PROJECT_ROOT / "models")),
        "CIVILITY_WORKER_POLL_MS": "10",
        "CIVILITY_CALLBACK_ALLOW": "loopback",
    }
    process = await asyncio.create_subprocess_exec(
        CIVILITY, "run", env=env, stdout=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while b"civility is running" not in (line := await process.stdout.readline()):
                assert line, "civility run exited before it was ready"
        async with aiohttp.ClientSession() as http:
            spec = {"id": "news", "name": "News", "callback_url": receiver.url}
            async with http.post(f"{base}/v1/sites", json=spec, headers=admin) as response:
                assert response.status == 201, await response.text()
                receiver.secret = (await response.json())["webhook_secret"]
            body = json.dumps(
                {
                    "id": "c1",
                    "article": {"id": "a1"},
                    "author": {"id": "reader-1"},
                    "text": "Thanks, the second paragraph answered my question.",
                }
            ).encode()
            headers = {
                "Content-Type": "application/json",
                signatures.HEADER: signatures.sign(receiver.secret, body),
            }
            url = f"{base}/v1/sites/news/comments"
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status < 300, await response.text()
                verdict = await response.json()

        async def delivered() -> bool:
            return bool(receiver.delivered())

        await eventually(delivered, 30, "the webhook")
        [arrival] = receiver.arrivals
        assert arrival.signature_ok
        assert arrival.event["comment"]["id"] == "c1"
        assert arrival.event["comment"]["state"] == verdict["state"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            exit_code = await process.wait()
    assert exit_code == 0
